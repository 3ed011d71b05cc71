"""build_problem end to end below the HTTP layer: the real providers (stand-in API server, real Prometheus) ->
the client's adapters -> a problem the task's own solver answers -> the answer in operator terms."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agent_reasoning.types import PlacementProblem, ReasoningRequest
from reasoning_service.errors import ServiceError
from reasoning_service.plans import Budget, ConsolidationPlan, Move, check_plan
from reasoning_service.questions import build_problem
from reasoning_service.settings import Settings
from trm.tasks import InvalidProblem, get_task
from trm.tasks.placement import PlacementTask

from .standins import FAULT, kube_api, prometheus_server, synthetic_cluster


@dataclass
class State:  # what build_problem reads of the service's state
    settings: Settings


@pytest.fixture
def api():
    with kube_api() as state:
        yield state


@pytest.fixture
def state(api, tmp_path):
    return State(Settings(kubeconfig=str(api.kubeconfig(tmp_path)), prometheus_url=prometheus_server().url, plan_time_limit_seconds=5))


def solve(built):
    task = get_task(built.task)
    problem = task.parse(built.problem, canvas=False)
    answer = task.solve(problem)
    return task, problem, built.present(answer.solution.model_dump(mode="json"))


async def test_consolidation_moves_the_running_pods_within_budgets(state):
    built = await build_problem(state, ReasoningRequest(task_type="optimization", question="How should I optimize my cluster?"))
    assert built.task == "placement" and [s.url.rsplit("/", 1)[1] for s in built.sources] == ["nodes", "pods", "poddisruptionbudgets"]
    names = {p["name"] for p in built.problem["pods"]}
    # DaemonSet and static pods stay; finished and pending pods are not packed; only air and studio take pods
    assert not any("node-exporter" in n or n.endswith("-pi-1") for n in names)
    assert "media/jellyfin-backup-28874520-7xk2q" not in names and "monitoring/loki-0" not in names
    assert {n["name"] for n in built.problem["nodes"]} == {"air", "studio"}
    task, problem, presented = solve(built)
    assert task.verify(problem, task.Solution.model_validate(presented.solution)) == []
    current = {p["name"]: p["current_node"] for p in built.problem["pods"]}
    budgets = [Budget(b["name"], tuple(b["pods"]), b["allowed_disruptions"]) for b in built.problem["budgets"]]
    assert {b.name: b.allowed for b in budgets}["monitoring/prometheus-k8s"] == 1
    plain = PlacementProblem.model_validate(built.problem)
    steps = [[Move(m["pod"], m["from"], m["to"]) for m in step] for step in presented.solution["steps"]]
    plan = ConsolidationPlan(
        presented.solution["assignments"], presented.solution["nodes_used"], presented.solution["drain"], steps, 0, True, True
    )
    assert check_plan(plain, current, plan, budgets) == []
    assert presented.solution["nodes_used"] <= PlacementTask().baseline(plain).nodes_used
    # studio holds every movable pod: air drains, its four pods move (prometheus-k8s' anti-affinity is only preferred)
    assert presented.solution["nodes_used"] == 1 and presented.solution["drain"] == ["air"]
    assert sorted(m["pod"] for m in presented.solution["moves"]) == sorted(p for p, n in current.items() if n == "air")
    assert "kubectl cordon air" in presented.solution["commands"] and presented.solution["commands"][-1].startswith("kubectl drain air")
    assert presented.optimal is True and "fewest possible" in presented.answer


async def test_a_cluster_larger_than_the_canvas_gets_a_verified_plan(state, api):
    api.objects = synthetic_cluster(seed=7, n_nodes=20, n_apps=40)
    state.settings.plan_time_limit_seconds = 3
    built = await build_problem(state, ReasoningRequest(task_type="optimization"))
    plain = PlacementProblem.model_validate(built.problem)
    assert len(plain.nodes) == 20 and len(plain.pods) > 48  # past the placement model's 16 x 48
    assert not any("node-exporter" in p.name for p in plain.pods)
    presented = built.present({})
    current = {p["name"]: p["current_node"] for p in built.problem["pods"]}
    budgets = [Budget(b["name"], tuple(b["pods"]), b["allowed_disruptions"]) for b in built.problem["budgets"]]
    steps = [[Move(m["pod"], m["from"], m["to"]) for m in step] for step in presented.solution["steps"]]
    plan = ConsolidationPlan(
        presented.solution["assignments"], presented.solution["nodes_used"], presented.solution["drain"], steps, 0, True, True
    )
    assert check_plan(plain, current, plan, budgets) == []
    assert get_task("placement").verify(plain, get_task("placement").Solution.model_validate(presented.solution)) == []
    ffd = PlacementTask().baseline(plain)
    assert presented.solution["nodes_used"] <= ffd.nodes_used < 20
    assert len(presented.solution["drain"]) == 20 - presented.solution["nodes_used"]
    # spreading pods over random nodes left room: the plan frees nodes, and moves fewer pods than FFD's packing would
    assert len(presented.solution["moves"]) < sum(ffd.assignments[p] != n for p, n in current.items())


async def test_scope_narrows_what_moves(state, api):
    built = await build_problem(state, ReasoningRequest(task_type="optimization", scope={"namespace": "home-automation"}))
    assert {p["name"].split("/")[0] for p in built.problem["pods"]} == {"home-automation"}
    assert api.requests[-1].startswith("/api/v1/namespaces/home-automation/pods")
    # the pods left out still take their room: studio's free CPU is less than without the scope
    full = await build_problem(state, ReasoningRequest(task_type="optimization"))
    free = lambda b: {n["name"]: n["cpu_millicores"] for n in b.problem["nodes"]}  # noqa: E731
    assert free(built)["studio"] < free(full)["studio"]


async def test_planning_without_an_app_lists_the_deployments(state):
    with pytest.raises(ServiceError) as e:
        await build_problem(state, ReasoningRequest(task_type="planning", question="How should I deploy this app?"))
    assert e.value.status == 422 and e.value.field == "scope.app"
    assert "Deployments in scope: home-automation/esphome" in e.value.detail and "media/immich-server" in e.value.detail


async def test_planning_an_app_named_in_scope_in_the_question_or_in_a_manifest(state):
    built = await build_problem(state, ReasoningRequest(task_type="planning", scope={"app": "prometheus-k8s"}))
    assert built.problem["app"] == "StatefulSet monitoring/prometheus-k8s"
    assert [p["name"] for p in built.problem["pods"]] == ["monitoring/prometheus-k8s-0", "monitoring/prometheus-k8s-1"]
    task, problem, presented = solve(built)
    assert task.verify(problem, task.Solution.model_validate(presented.solution)) == []
    assert set(presented.solution["assignments"]) == {"monitoring/prometheus-k8s-0", "monitoring/prometheus-k8s-1"}
    assert "replica monitoring/prometheus-k8s-0 ->" in presented.answer

    built = await build_problem(state, ReasoningRequest(task_type="planning", question="Where should sonarr run?"))
    assert built.problem["app"] == "Deployment media/sonarr"

    manifest = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: paperless, namespace: docs}
spec:
  replicas: 2
  selector: {matchLabels: {app: paperless}}
  template:
    metadata: {labels: {app: paperless}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: paperless}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: web
        image: ghcr.io/paperless-ngx/paperless-ngx:2.13
        resources: {requests: {cpu: "2", memory: 3Gi}}
"""
    built = await build_problem(state, ReasoningRequest(task_type="planning", question="How should I deploy this app?", context=manifest))
    assert [(p["name"], p["cpu_millicores"], p["memory_mib"]) for p in built.problem["pods"]] == [
        ("docs/paperless-0", 2000, 3072),
        ("docs/paperless-1", 2000, 3072),
    ]
    assert built.problem["pods"][0]["group"] == built.problem["pods"][1]["group"] == "docs/app=paperless"  # its required anti-affinity
    task, problem, presented = solve(built)
    assert sorted(presented.solution["assignments"].values()) == ["air", "studio"]


async def test_an_unknown_app_is_a_422_naming_scope_app(state):
    with pytest.raises(ServiceError) as e:
        await build_problem(state, ReasoningRequest(task_type="planning", scope={"app": "nextcloud"}))
    assert e.value.status == 422 and e.value.field == "scope.app" and "'nextcloud'" in e.value.detail


async def test_an_upgrade_question_gets_waves_with_kubectl_commands(state, api):
    question = ReasoningRequest(task_type="planning", question="In which order should I upgrade my nodes?")
    built = await build_problem(state, question)
    assert built.task == "upgrade" and built.problem["nodes"] == ["air", "pi-1", "studio"]
    # blackbox-exporter runs on the unreachable pi-3: the exporters budget (minAvailable 50% of 2) has none left
    with pytest.raises(InvalidProblem, match="monitoring/exporters.*no node of it can ever be drained"):
        get_task("upgrade").parse(built.problem, canvas=False)
    for pod in api.objects["pods"]:  # rescheduled to studio, it counts again
        if pod["spec"].get("nodeName") == "pi-3" and pod["metadata"]["name"].startswith("blackbox"):
            pod["spec"]["nodeName"] = "air"
    built = await build_problem(state, question)
    task, problem, presented = solve(built)
    assert task.verify(problem, task.Solution.model_validate(presented.solution)) == []
    assert any(c.startswith("kubectl drain ") and "--ignore-daemonsets" in c for c in presented.solution["commands"])
    assert any(c.startswith("kubectl uncordon ") for c in presented.solution["commands"])


async def test_troubleshooting_ranks_the_injected_fault_first_with_evidence(state):
    built = await build_problem(state, ReasoningRequest(task_type="troubleshooting", question="Why is my service slow?"))
    assert built.task == "rootcause" and len(built.sources) == 5 and all(s.kind == "prometheus" for s in built.sources)
    signals = {s["name"]: s for s in built.problem["services"]}
    assert signals[FAULT]["anomalous"] is True and signals["inventory"]["anomalous"] is False
    task, problem, presented = solve(built)
    assert presented.solution["ranking"][0] == FAULT
    top = presented.solution["signals"][0]
    assert top["service"] == FAULT and top["error_ratio"] > 0.25 and top["error_ratio_normal"] < 0.01 and top["calls"] == ["postgres"]
    assert presented.answer.startswith(f"Root cause: {FAULT}")


async def test_scope_service_keeps_its_part_of_the_call_graph(state):
    built = await build_problem(state, ReasoningRequest(task_type="troubleshooting", scope={"service": "payments"}))
    assert {s["name"] for s in built.problem["services"]} == {
        "user",
        "frontend",
        "checkout",
        "catalog",
        "inventory",
        "payments",
        "postgres",
    }
    with pytest.raises(ServiceError) as e:
        await build_problem(state, ReasoningRequest(task_type="troubleshooting", scope={"service": "nope"}))
    assert e.value.status == 422 and e.value.field == "scope.service"


async def test_without_providers_a_422_names_the_setting_and_v1_tasks():
    bare = State(Settings(kubeconfig=None, kubernetes_in_cluster=False, prometheus_url=None))
    for kind, setting in (("optimization", "KUBECONFIG"), ("planning", "KUBECONFIG"), ("troubleshooting", "REASONING_PROMETHEUS_URL")):
        with pytest.raises(ServiceError) as e:
            await build_problem(bare, ReasoningRequest(task_type=kind, question="?"))
        assert e.value.status == 422 and e.value.field == "problem" and setting in e.value.detail and "/v1/tasks" in e.value.detail
    with pytest.raises(ServiceError) as e:
        await build_problem(bare, ReasoningRequest(task="sudoku"))
    assert e.value.status == 422 and "task 'sudoku' needs its problem" in e.value.detail


async def test_rbac_forbidden_is_a_502_naming_kubernetes(state, api):
    api.forbidden = {"poddisruptionbudgets"}
    with pytest.raises(ServiceError) as e:
        await build_problem(state, ReasoningRequest(task_type="optimization"))
    assert e.value.status == 502 and e.value.detail.startswith("kubernetes: forbidden to list poddisruptionbudgets")
