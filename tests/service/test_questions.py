"""Questions without a problem, through the real app on a real socket: the origin document's calls, verbatim,
answered from the stand-in Kubernetes API server and a real Prometheus holding a generated incident."""

from __future__ import annotations

import httpx
import pytest

from agent_reasoning import ReasoningClient, TaskType
from agent_reasoning._errors import APIError
from agent_reasoning.types import PlacementProblem
from reasoning_service.plans import Budget, ConsolidationPlan, Move, check_plan
from tests.providers.standins import FAULT, black_hole, free_port, kube_api, prometheus_server
from trm.tasks import get_task
from trm.tasks.placement import PlacementTask

from .conftest import SHIPPED, settings_for
from .server import running_server


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The shipped models only (the cluster tasks are answered by their solvers until they have models)."""
    root = tmp_path_factory.mktemp("models")
    for path in sorted(SHIPPED.glob("*/config.json")):
        (root / path.parent.name).symlink_to(path.parent.resolve())
    return root


@pytest.fixture(scope="module")
def cluster():
    with kube_api() as api:
        yield api


@pytest.fixture(scope="module")
def service(models, cluster, tmp_path_factory):
    kubeconfig = cluster.kubeconfig(tmp_path_factory.mktemp("kube"))
    settings = settings_for(
        models, warmup=False, kubeconfig=str(kubeconfig), prometheus_url=prometheus_server().url, plan_time_limit_seconds=5
    )
    with running_server(settings) as url:
        yield url


@pytest.fixture
def origin(service, monkeypatch):
    monkeypatch.setenv("AGENT_REASONING_URL", service)  # ReasoningClient() reads it, as in a pod
    return service


def ask(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/v1/reason", json=body, timeout=60)


async def test_origin_optimization_call(origin):
    client = ReasoningClient()
    result = await client.reason(question="How should I optimize my cluster?", task_type=TaskType.OPTIMIZATION)

    assert result.task == "placement" and result.verified is True
    assert result.problem is not None and [s.kind for s in result.sources] == ["kubernetes"] * 3
    problem = PlacementProblem.model_validate(result.problem)
    current = {p["name"]: p["current_node"] for p in result.problem["pods"]}
    budgets = [Budget(b["name"], tuple(b["pods"]), b["allowed_disruptions"]) for b in result.problem["budgets"]]
    steps = [[Move(m["pod"], m["from"], m["to"]) for m in step] for step in result.solution["steps"]]
    plan = ConsolidationPlan(result.solution["assignments"], result.solution["nodes_used"], result.solution["drain"], steps, 0, True, True)
    assert check_plan(problem, current, plan, budgets) == []
    ffd = PlacementTask().baseline(problem)
    assert result.solution["nodes_used"] <= ffd.nodes_used
    assert result.optimal is True and result.objective == result.solution["nodes_used"]
    # fewest moves: every pod on the drained node moves, and nothing else
    drained = set(result.solution["drain"])
    assert sorted(m["pod"] for m in result.solution["moves"]) == sorted(p for p, n in current.items() if n in drained)
    assert "Nodes that can be drained: air" in result.answer and "kubectl cordon air" in result.solution["commands"]


async def test_origin_troubleshooting_call(origin):
    client = ReasoningClient()
    result = await client.reason(question="Why is my service slow?", task_type=TaskType.TROUBLESHOOTING)

    assert result.task == "rootcause"
    assert result.solution["ranking"][0] == FAULT and result.solution["signals"][0]["service"] == FAULT
    evidence = {e["name"]: e for e in result.solution["evidence"]}  # the task's own: which signals moved
    assert evidence[FAULT]["anomalous"] is True and "error_rate" in evidence[FAULT]["moved"]
    assert result.answer.startswith(f"Root cause: {FAULT}")
    assert [s.kind for s in result.sources] == ["prometheus"] * 5 and all(s.at for s in result.sources)


async def test_origin_planning_call(origin):
    client = ReasoningClient()
    with pytest.raises(APIError) as e:
        result = await client.reason(question="How should I deploy this app?", task_type=TaskType.PLANNING)
    assert e.value.status_code == 422 and e.value.field == "scope.app"
    assert "Deployments in scope:" in e.value.detail and "media/sonarr" in e.value.detail

    response = ask(origin, question="How should I deploy this app?", task_type="planning", scope={"app": "prometheus-k8s"})
    assert response.status_code == 200, response.text
    result = response.json()
    task = get_task("placement")
    problem = task.parse(result["problem"], canvas=False)
    assert task.verify(problem, task.Solution.model_validate(result["solution"])) == []
    assert set(result["solution"]["assignments"]) == {"monitoring/prometheus-k8s-0", "monitoring/prometheus-k8s-1"}
    assert result["verified"] is True


def test_a_question_with_an_explicit_problem_is_answered_as_today(service):
    problem = {
        "nodes": [{"name": "a", "cpu_millicores": 1000, "memory_mib": 1024}],
        "pods": [{"name": "p", "cpu_millicores": 100, "memory_mib": 100}],
    }
    response = ask(service, question="How should I optimize my cluster?", task_type="optimization", problem=problem)
    assert response.status_code == 200, response.text
    assert response.json()["question"] == "How should I optimize my cluster?" and response.json()["problem"] in (None, problem)


def test_without_providers_the_422_names_what_is_missing(models):
    settings = settings_for(models, warmup=False, kubeconfig=None, kubernetes_in_cluster=False, prometheus_url=None)
    with running_server(settings) as url:
        for kind, missing in (("optimization", "KUBECONFIG"), ("planning", "KUBECONFIG"), ("troubleshooting", "REASONING_PROMETHEUS_URL")):
            response = ask(url, question="?", task_type=kind)
            body = response.json()
            assert response.status_code == 422 and body["field"] == "problem", body
            assert missing in body["detail"] and "/v1/tasks" in body["detail"]


@pytest.mark.parametrize("failure", ["down", "hung", "forbidden", "no series"])
def test_provider_failures_name_the_source(models, tmp_path, failure):
    with kube_api() as api, black_hole() as hole:
        prometheus = {"down": f"http://127.0.0.1:{free_port()}", "hung": hole}.get(failure, prometheus_server().url)
        if failure == "forbidden":
            api.forbidden = {"pods"}
        settings = settings_for(
            models,
            warmup=False,
            kubeconfig=str(api.kubeconfig(tmp_path)),
            prometheus_url=prometheus,
            prometheus_metrics="istio",  # its series carry the namespace (the service graph's do not)
            provider_timeout_seconds=1,
        )
        with running_server(settings) as url:
            if failure == "forbidden":
                response = ask(url, task_type="optimization")
                assert response.status_code == 502 and response.json()["detail"].startswith("kubernetes: forbidden to list pods")
            elif failure == "no series":
                response = ask(url, task_type="troubleshooting", scope={"namespace": "nope"})
                body = response.json()
                assert (
                    response.status_code == 422
                    and body["field"] == "scope"
                    and body["detail"].startswith("prometheus: no call-graph series")
                )
            else:
                response = ask(url, task_type="troubleshooting")
                assert response.status_code == 503 and response.json()["detail"].startswith("prometheus: ")
                assert response.headers["Retry-After"]
