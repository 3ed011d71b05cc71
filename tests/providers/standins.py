"""Real parts for the provider tests: a Prometheus server loaded with a generated incident, and a stand-in
Kubernetes API server (no kube-apiserver can be installed here) that serves `kubectl get -o json` payloads at
the API's paths, filters by namespace and label selector as the API does, checks the bearer token, and
answers RBAC refusals with the API's Status objects.

Both are started once per test process (Prometheus takes seconds to load) and stopped at exit.
fixtures/kubectl-deployments.json and kubectl-statefulsets.json are the owners of the pods in
client/tests/fixtures/kubectl-pods.json (same labels, selectors, pod templates and replica counts), in the
List format of `kubectl get deploy -A -o json`.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENT_FIXTURES = REPO / "client" / "tests" / "fixtures"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = "standin-token"  # the bearer token the stand-in API server accepts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- Kubernetes ---------------------------------------------------------------------------------------


def homelab_cluster() -> dict[str, list[dict[str, Any]]]:
    """The realistic kubectl payloads of client/tests/fixtures plus Deployments and StatefulSets matching their pods."""

    def items(path: Path) -> list[dict[str, Any]]:
        return json.loads(path.read_text())["items"]

    return {
        "nodes": items(CLIENT_FIXTURES / "kubectl-nodes.json"),
        "pods": items(CLIENT_FIXTURES / "kubectl-pods.json"),
        "poddisruptionbudgets": items(CLIENT_FIXTURES / "kubectl-pdb.json"),
        "deployments": items(FIXTURES / "kubectl-deployments.json"),
        "statefulsets": items(FIXTURES / "kubectl-statefulsets.json"),
    }


def synthetic_cluster(seed: int, n_nodes: int = 20, n_apps: int = 40) -> dict[str, list[dict[str, Any]]]:
    """A larger cluster in the same kubectl payloads (objects copied from the homelab fixtures and renamed):
    n_nodes nodes with a node-exporter DaemonSet pod each, n_apps Deployments of 1-4 replicas spread over
    random nodes where they fit (some with required anti-affinity, most with a PodDisruptionBudget of
    maxUnavailable 1), all Running."""
    import copy
    import random

    rng = random.Random(seed)
    base = homelab_cluster()
    node_template = next(n for n in base["nodes"] if n["metadata"]["name"] == "studio")
    pod_template = copy.deepcopy(next(p for p in base["pods"] if p["metadata"]["name"].startswith("sonarr")))
    pod_template["status"] = copy.deepcopy(next(p for p in base["pods"] if p["metadata"]["name"].startswith("jellyfin-7"))["status"])
    daemon_template = next(p for p in base["pods"] if p["metadata"]["name"].startswith("node-exporter"))
    pdb_template = next(p for p in base["poddisruptionbudgets"] if p["metadata"]["name"] == "jellyfin")
    nodes, pods, pdbs = [], [], []
    free = {}
    for j in range(n_nodes):
        node = copy.deepcopy(node_template)
        name = f"node-{j:02d}"
        cpu, mem_gi = rng.choice([(4, 8), (8, 16), (8, 32), (16, 64)])
        node["metadata"]["name"] = name
        node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        node["status"]["allocatable"] = {"cpu": str(cpu), "memory": f"{mem_gi * 1024 * 1024 - 204800}Ki", "pods": "110"}
        node["status"]["capacity"] = {"cpu": str(cpu), "memory": f"{mem_gi * 1024 * 1024}Ki", "pods": "110"}
        nodes.append(node)
        daemon = copy.deepcopy(daemon_template)
        daemon["metadata"]["name"] = f"node-exporter-{j:05x}"
        daemon["spec"]["nodeName"] = name
        pods.append(daemon)
        free[name] = [cpu * 1000 - 112, mem_gi * 1024 - 200 - 200]
    for a in range(n_apps):
        app = f"app{a:02d}"
        replicas = rng.choice([1, 2, 2, 3, 4])
        cpu, mem = rng.choice([50, 100, 250, 500, 1000]), rng.choice([64, 128, 256, 512, 1024, 2048])
        spread = replicas > 1 and rng.random() < 0.4
        labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app}
        placed: list[str] = []
        for r in range(replicas):
            candidates = [n for n in free if free[n][0] >= cpu and free[n][1] >= mem and not (spread and n in placed)]
            if not candidates:
                break
            node = rng.choice(candidates)
            free[node][0] -= cpu
            free[node][1] -= mem
            placed.append(node)
            pod = copy.deepcopy(pod_template)
            pod["metadata"].update(
                name=f"{app}-5d9f8c7b6-{r:05x}", namespace=f"team{a % 4}", labels=dict(labels, **{"pod-template-hash": "5d9f8c7b6"})
            )
            pod["metadata"]["ownerReferences"][0]["name"] = f"{app}-5d9f8c7b6"
            pod["spec"]["nodeName"] = node
            pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"}}
            if spread:
                pod["spec"]["affinity"] = {
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [
                            {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}}, "topologyKey": "kubernetes.io/hostname"}
                        ]
                    }
                }
            pods.append(pod)
        if replicas > 1 and rng.random() < 0.8:
            pdb = copy.deepcopy(pdb_template)
            pdb["metadata"].update(name=app, namespace=f"team{a % 4}")
            pdb["spec"] = {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": app}}}
            pdbs.append(pdb)
    return {"nodes": nodes, "pods": pods, "poddisruptionbudgets": pdbs, "deployments": [], "statefulsets": []}


_ROUTES = [
    (re.compile(r"^/api/v1/(nodes)$"), "v1", "NodeList"),
    (re.compile(r"^/api/v1/(pods)$"), "v1", "PodList"),
    (re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(pods)$"), "v1", "PodList"),
    (re.compile(r"^/apis/policy/v1/(poddisruptionbudgets)$"), "policy/v1", "PodDisruptionBudgetList"),
    (re.compile(r"^/apis/policy/v1/namespaces/(?P<ns>[^/]+)/(poddisruptionbudgets)$"), "policy/v1", "PodDisruptionBudgetList"),
    (re.compile(r"^/apis/apps/v1/(deployments)$"), "apps/v1", "DeploymentList"),
    (re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(deployments)$"), "apps/v1", "DeploymentList"),
    (re.compile(r"^/apis/apps/v1/(statefulsets)$"), "apps/v1", "StatefulSetList"),
    (re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(statefulsets)$"), "apps/v1", "StatefulSetList"),
]

_REQUIREMENT = re.compile(r"\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*(?:,|$)")


def selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """A label selector in the API's string form (k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k)."""
    pos = 0
    while pos < len(selector):
        m = _REQUIREMENT.match(selector, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unable to parse requirement: {selector[pos:]!r}")
        pos = m.end()
        neg, key, op, value, setop, values = m.groups()
        if op in ("=", "=="):
            ok = labels.get(key) == value
        elif op == "!=":
            ok = labels.get(key) != value
        elif setop:
            members = {v.strip() for v in values.split(",")}
            ok = (labels.get(key) in members) if setop == "in" else (labels.get(key) not in members)
        else:
            ok = (key not in labels) if neg else (key in labels)
        if not ok:
            return False
    return True


@dataclass
class KubeAPI:
    """State of a running stand-in API server: swap `objects`, `forbidden` (resources answered 403) or `delay_s` per test."""

    url: str
    objects: dict[str, list[dict[str, Any]]]
    forbidden: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    requests: list[str] = field(default_factory=list)

    def kubeconfig(self, directory: Path, token: str = TOKEN) -> Path:
        """A kubeconfig for this server (as `kubectl config` writes them), in `directory`."""
        path = directory / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: homelab\n  cluster:\n    server: {self.url}\n"
            f"users:\n- name: agent-reasoning\n  user:\n    token: {token}\n"
            "contexts:\n- name: homelab\n  context:\n    cluster: homelab\n    user: agent-reasoning\n"
            "current-context: homelab\n"
        )
        return path


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


@contextmanager
def kube_api(objects: dict[str, list[dict[str, Any]]] | None = None) -> Iterator[KubeAPI]:
    """Run a stand-in API server on 127.0.0.1 (a fresh port) for the duration of the block."""
    state = KubeAPI(url="", objects=objects if objects is not None else homelab_cluster())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            url = urlparse(self.path)
            state.requests.append(self.path)
            if state.delay_s:
                time.sleep(state.delay_s)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            for pattern, api_version, kind in _ROUTES:
                m = pattern.match(url.path)
                if not m:
                    continue
                resource = m.group(m.lastindex or 1)
                namespace = m.groupdict().get("ns")
                if resource in state.forbidden:
                    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                    group = api_version.split("/")[0] if "/" in api_version else ""
                    message = (
                        f'{resource} is forbidden: User "system:serviceaccount:ai-agents:agent-reasoning" cannot list resource '
                        f'"{resource}" in API group "{group}" {where}'
                    )
                    return self._send(403, _status(403, "Forbidden", message) | {"details": {"kind": resource}})
                items = [i for i in state.objects.get(resource, []) if namespace is None or i["metadata"].get("namespace") == namespace]
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                if selector:
                    try:
                        items = [i for i in items if selector_matches(selector, i["metadata"].get("labels") or {})]
                    except ValueError as e:
                        return self._send(400, _status(400, "BadRequest", str(e)))
                return self._send(200, {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "874512"}, "items": items})
            return self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def black_hole() -> Iterator[str]:
    """A URL whose server accepts connections and never answers (a hung upstream)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


# --- Prometheus ---------------------------------------------------------------------------------------

# The generated incident: a shop whose `payments` starts failing (30% errors, p99 2.5 s) 20 minutes before
# the data's "now"; its callers see some of it. Reported as Tempo's service graph, Istio and Linkerd would.
EDGES = [("user", "frontend"), ("frontend", "checkout"), ("frontend", "catalog"), ("checkout", "payments"),
         ("checkout", "inventory"), ("catalog", "inventory"), ("payments", "postgres")]  # fmt: skip
FAULT = "payments"
NORMAL = {"error": 0.002, "latency": 0.05}
DURING = {  # server -> (error ratio, latency in seconds) while the fault lasts
    "payments": (0.30, 2.5),
    "checkout": (0.12, 1.0),
    "frontend": (0.06, 1.0),
}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RATE = 20.0  # requests per second on every edge
STEP_S = 30


def _signal(server: str, t: float, fault_from: float) -> tuple[float, float]:
    """(error ratio, latency in seconds) of requests to `server` at time t."""
    if t >= fault_from and server in DURING:
        return DURING[server]
    return NORMAL["error"], NORMAL["latency"]


def incident_openmetrics(now: float, *, history_s: int = 9000, future_s: int = 5400, fault_s: int = 20 * 60) -> str:
    """OpenMetrics text of the incident as three meshes would report it (Tempo's service graph, Istio, Linkerd),
    samples every STEP_S from now - history_s to now + future_s (so the current window still has data however
    long the test session runs); the fault starts fault_s before now. Every service is in namespace "shop"."""
    times = list(range(int(now) - history_s, int(now) + future_s, STEP_S))
    fault_from = now - fault_s
    bounds = (*BUCKETS, float("inf"))
    workloads = [(c, s) for c, s in EDGES if c != "user"]  # meshes report workloads; "user" is Tempo's virtual client
    servers = sorted({s for _, s in workloads})
    families: dict[str, tuple[str, dict[str, list[str]]]] = {}

    def counter(family: str, labels: str, per_step: Any) -> None:
        rows = families.setdefault(family, ("counter", {}))[1]
        total = 0.0
        for t in times:
            total += per_step(t)
            rows.setdefault(f"{family}_total{{{labels}}}", []).append(f"{total:.2f} {t}")

    def histogram(family: str, labels: str, server: str, scale: float) -> None:
        rows = families.setdefault(family, ("histogram", {}))[1]
        counts = [0.0] * len(bounds)
        total = sum_ = 0.0
        n = RATE * STEP_S
        for t in times:
            latency = _signal(server, t, fault_from)[1]
            total += n
            sum_ += n * latency * scale
            for k, le in enumerate(bounds):
                counts[k] += n if latency <= le else 0.0
                name = "+Inf" if le == float("inf") else repr(le * scale)
                rows.setdefault(f'{family}_bucket{{{labels},le="{name}"}}', []).append(f"{counts[k]:.1f} {t}")
            rows.setdefault(f"{family}_sum{{{labels}}}", []).append(f"{sum_:.3f} {t}")
            rows.setdefault(f"{family}_count{{{labels}}}", []).append(f"{total:.1f} {t}")

    def share(server: str, failed: bool) -> Any:
        return lambda t: RATE * STEP_S * (_signal(server, t, fault_from)[0] if failed else 1.0)

    def ok(server: str) -> Any:
        return lambda t: RATE * STEP_S * (1.0 - _signal(server, t, fault_from)[0])

    for client, server in EDGES:  # Tempo / Alloy service graph
        labels = f'client="{client}",server="{server}"'
        counter("traces_service_graph_request", labels, share(server, False))
        counter("traces_service_graph_request_failed", labels, share(server, True))
        histogram("traces_service_graph_request_server_seconds", labels, server, 1.0)
    for client, server in workloads:  # Istio, both reporters
        for reporter in ("source", "destination"):
            labels = (
                f'reporter="{reporter}",source_workload="{client}",destination_workload="{server}",destination_workload_namespace="shop"'
            )
            counter("istio_requests", labels + ',response_code="200"', ok(server))
            counter("istio_requests", labels + ',response_code="503"', share(server, True))
        labels = f'reporter="destination",source_workload="{client}",destination_workload="{server}",destination_workload_namespace="shop"'
        histogram("istio_request_duration_milliseconds", labels, server, 1000.0)
    for client, server in workloads:  # Linkerd, outbound from the client's proxy
        labels = f'direction="outbound",deployment="{client}",dst_deployment="{server}",namespace="shop"'
        counter("response", labels + ',classification="success"', ok(server))
        counter("response", labels + ',classification="failure"', share(server, True))
    for server in servers:  # Linkerd, inbound at the server's proxy (all callers together)
        callers = sum(1 for _, s in workloads if s == server)
        labels = f'direction="inbound",deployment="{server}",namespace="shop"'
        counter("response", labels + ',classification="success"', lambda t, s=server, k=callers: k * ok(s)(t))
        counter("response", labels + ',classification="failure"', lambda t, s=server, k=callers: k * share(s, True)(t))
        histogram("response_latency_ms", labels, server, 1000.0)

    lines = []
    for family, (kind, rows) in families.items():
        lines.append(f"# TYPE {family} {kind}")
        for series, values in rows.items():
            lines.extend(f"{series} {v}" for v in values)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    directory: Path


_PROMETHEUS: PrometheusServer | None = None
_LOCK = threading.Lock()


def prometheus_server() -> PrometheusServer:
    """The process' Prometheus with the incident loaded (started on first use, stopped at exit). Skips when the
    `prometheus` and `promtool` binaries are missing, except under CI=true, where that fails."""
    global _PROMETHEUS
    with _LOCK:
        if _PROMETHEUS is not None and _PROMETHEUS.process.poll() is None:
            return _PROMETHEUS
        prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
        if not (prometheus and promtool):
            message = "prometheus/promtool not installed (Debian: apt-get install prometheus; .ci/run does it)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        directory = Path(tempfile.mkdtemp(prefix="prometheus-"))
        data = directory / "data"
        source = directory / "incident.om"
        source.write_text(incident_openmetrics(time.time()))
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)], check=True, capture_output=True, timeout=300
        )
        source.unlink()
        config = directory / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1h\n")
        port = free_port()
        log = open(directory / "prometheus.log", "wb")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=30d", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"prometheus did not start: {(directory / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.1)
        _PROMETHEUS = PrometheusServer(url, process, directory)

        def stop(server: PrometheusServer = _PROMETHEUS) -> None:
            server.process.terminate()
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
            shutil.rmtree(server.directory, ignore_errors=True)

        atexit.register(stop)
        return _PROMETHEUS
