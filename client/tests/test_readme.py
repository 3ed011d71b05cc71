"""Every Python example in README.md runs as written, against a stand-in service, Prometheus (respx) and kubectl."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from client_harness import reply, response_body

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KUBECTL = {"nodes": "kubectl-nodes.json", "pods": "kubectl-pods.json", "pdb": "kubectl-pdb.json"}

MAZE_ANSWER = {
    "task_type": "planning",
    "task": "maze",
    "solution": {"path": [[1, 1], [1, 2], [1, 3]], "grid": ["#####", "#ooo#", "#####"]},
    "model": {"name": "maze-trm", "version": "1"},
}


HOMELAB_ANSWERS: dict[str, dict[str, Any]] = {
    "placement": {
        "task_type": "optimization",
        "solution": {"assignments": {"media/immich-server-a": "studio", "media/immich-server-b": "air"}, "nodes_used": 2, "unplaced": []},
    },
    "rootcause": {
        "task_type": "troubleshooting",
        "solution": {
            "root_cause": "zigbee2mqtt",
            "ranking": ["zigbee2mqtt", "home-assistant"],
            "scores": {"zigbee2mqtt": 0.9},
            "evidence": [{"name": "zigbee2mqtt", "anomalous": True, "moved": ["error_rate"], "healthy_callees": ["mosquitto"]}],
        },
    },
    "upgrade": {"task_type": "planning", "solution": {"waves": [["air"], ["pi-1", "studio"]]}},
}


def answer(request: httpx.Request) -> dict[str, Any]:
    asked = json.loads(request.content)
    asked = asked.get("data", asked)  # a structured-mode event wraps the request
    task = asked.get("task")
    if task == "maze":
        body = response_body(**MAZE_ANSWER)
    elif task in HOMELAB_ANSWERS:
        body = response_body(task=task, verified=None, model={"name": f"{task}-trm", "version": "1"}, **HOMELAB_ANSWERS[task])
    else:
        body = response_body()
    if asked.get("trace"):
        body["reasoning_trace"] = [{"step": 1, "answer": "…", "confidence": 0.4, "changed": 12}]
    return body


def stand_in(router: respx.MockRouter) -> None:
    router.post(path="/v1/reason").mock(side_effect=lambda request: httpx.Response(200, json=answer(request)))
    router.post(path="/events").mock(side_effect=lambda request: reply(request, "io.homelab.reasoning.completed", answer(request)))
    router.get(path="/v1/tasks").mock(
        return_value=httpx.Response(
            200,
            json={
                "tasks": [
                    {
                        "name": "sudoku",
                        "task_type": "logic",
                        "description": "9x9 Sudoku",
                        "default": True,
                        "example": {"puzzle": "." * 81},
                        "models": [{"name": "sudoku-trm", "version": "1", "metrics": {"exact": 0.9}, "default": True}],
                    }
                ]
            },
        )
    )
    router.get(path="/healthz").mock(return_value=httpx.Response(200, json={"status": "ok"}))
    router.get(path="/readyz").mock(return_value=httpx.Response(200, json={"status": "ready"}))
    router.post(host="broker-ingress.knative-eventing.svc.cluster.local").mock(return_value=httpx.Response(202))
    prometheus = "prometheus-k8s.monitoring.svc.cluster.local"
    router.get(host=prometheus, path="/api/v1/query").mock(side_effect=prometheus_query)
    router.get(host=prometheus, path="/api/v1/alerts").mock(return_value=httpx.Response(200, text=fixture("prometheus-alerts.json")))


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def prometheus_query(request: httpx.Request) -> httpx.Response:
    latency = "histogram_quantile" in request.url.params["query"]
    return httpx.Response(200, text=fixture("prometheus-latency-p99.json" if latency else "prometheus-error-ratio.json"))


def kubectl(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`kubectl get nodes|pods|pdb … -o json`, answered from the fixtures."""
    assert args[:2] == ["kubectl", "get"] and args[-2:] == ["-o", "json"], args
    return subprocess.CompletedProcess(args, 0, stdout=fixture(KUBECTL[args[2]]), stderr="")


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", kubectl)
    with respx.mock(assert_all_called=False) as router:
        stand_in(router)
        exec(compile(example, str(README), "exec"), {"__name__": "__main__"})
