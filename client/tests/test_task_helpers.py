"""place, diagnose and plan_upgrade on both clients: the requests they send, and typed solutions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from client_harness import Harness, response_body
from pydantic import ValidationError

from agent_reasoning import (
    PlacementNode,
    PlacementPod,
    PlacementProblem,
    PlacementSolution,
    ReasoningResponse,
    RootCauseProblem,
    RootCauseSolution,
    ServiceSignal,
    UpgradeProblem,
    UpgradeService,
    UpgradeSolution,
    placement_from_kubectl,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"

PLACEMENT = {"assignments": {"media/immich-server-a": "studio", "media/immich-server-b": "air"}, "nodes_used": 2, "unplaced": []}
ROOTCAUSE = {
    "root_cause": "zigbee2mqtt",
    "ranking": ["zigbee2mqtt", "home-assistant"],
    "scores": {"zigbee2mqtt": 0.91, "home-assistant": 0.09},
}
UPGRADE = {"waves": [["air"], ["pi-1", "studio"]]}


def answering(task_type: str, task: str, solution: dict[str, Any]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=response_body(task_type=task_type, task=task, solution=solution, verified=None))

    return handler


async def test_place_sends_a_placement_problem(harness: Harness) -> None:
    problem = placement_from_kubectl((FIXTURES / "kubectl-nodes.json").read_text(), (FIXTURES / "kubectl-pods.json").read_text())
    client = harness.client(answering("optimization", "placement", PLACEMENT))
    result = await harness.call(client, "place", problem, deadline_ms=3000, conversation_id="ticket-7")

    assert (harness.requests[0].method, harness.requests[0].url.path) == ("POST", "/v1/reason")
    assert harness.json() == {
        "task_type": "optimization",
        "task": "placement",
        "problem": problem.model_dump(mode="json", exclude_none=True),
        "trace": False,
        "conversation_id": "ticket-7",
        "deadline_ms": 3000,
    }
    solution = result.solution_as(PlacementSolution)
    assert isinstance(solution, PlacementSolution)
    assert (solution.assignments["media/immich-server-a"], solution.nodes_used) == ("studio", 2)


async def test_place_takes_nodes_and_pods(harness: Harness) -> None:
    client = harness.client(answering("optimization", "placement", PLACEMENT))
    air = {"name": "air", "cpu_millicores": 5078, "memory_mib": 10194}
    nodes = [PlacementNode(name="studio", cpu_millicores=13078, memory_mib=56745), air]
    pods = [{"name": f"media/immich-server-{x}", "cpu_millicores": 1000, "memory_mib": 1536, "group": "immich"} for x in "ab"]
    await harness.call(client, "place", nodes, pods, fallback=True, trace=True)
    assert harness.json() == {
        "task_type": "optimization",
        "task": "placement",
        "problem": {"nodes": [{"name": "studio", "cpu_millicores": 13078, "memory_mib": 56745}, air], "pods": pods},
        "trace": True,
        "fallback": True,
    }


async def test_diagnose_sends_a_rootcause_problem(harness: Harness) -> None:
    client = harness.client(answering("troubleshooting", "rootcause", ROOTCAUSE))
    services = [
        {"name": "home-assistant", "error_rate": 0.002, "latency_p99_ms": 2400.0, "anomalous": True},
        ServiceSignal(name="zigbee2mqtt", error_rate=0.31, latency_p99_ms=None, anomalous=True),
        {"name": "mosquitto"},
    ]
    # Callees by caller, as a map: sent as [caller, callee] pairs.
    result = await harness.call(
        client, "diagnose", services, {"home-assistant": ["zigbee2mqtt", "mosquitto"], "zigbee2mqtt": ["mosquitto"]}
    )
    assert harness.json() == {
        "task_type": "troubleshooting",
        "task": "rootcause",
        "problem": {
            "services": [
                {"name": "home-assistant", "error_rate": 0.002, "latency_p99_ms": 2400.0, "anomalous": True},
                {"name": "zigbee2mqtt", "error_rate": 0.31, "anomalous": True},
                {"name": "mosquitto"},
            ],
            "dependencies": [["home-assistant", "zigbee2mqtt"], ["home-assistant", "mosquitto"], ["zigbee2mqtt", "mosquitto"]],
        },
        "trace": False,
    }
    assert result.solution_as(RootCauseSolution).ranking[0] == "zigbee2mqtt"

    problem = RootCauseProblem(services=[ServiceSignal(name="postgres", error_rate=None, latency_p99_ms=None, anomalous=True)])
    await harness.call(client, "diagnose", problem, question="why is the house dark?")
    assert harness.json()["problem"] == {"services": [{"name": "postgres", "anomalous": True}], "dependencies": []}
    assert harness.json()["question"] == "why is the house dark?"


async def test_plan_upgrade_sends_an_upgrade_problem(harness: Harness) -> None:
    client = harness.client(answering("planning", "upgrade", UPGRADE))
    services = [UpgradeService(name="monitoring/prometheus-k8s", replicas_on=["studio", "air"], max_unavailable=1)]
    result = await harness.call(client, "plan_upgrade", ["air", "pi-1", "studio"], services, model="upgrade-trm")
    assert harness.json() == {
        "task_type": "planning",
        "task": "upgrade",
        "problem": {"nodes": ["air", "pi-1", "studio"], "services": [services[0].model_dump()]},
        "trace": False,
        "model": "upgrade-trm",
    }
    assert result.solution_as(UpgradeSolution).waves == [["air"], ["pi-1", "studio"]]

    await harness.call(client, "plan_upgrade", UpgradeProblem(nodes=["pi-2"]))
    assert harness.json()["problem"] == {"nodes": ["pi-2"], "services": []}


async def test_helpers_check_their_problems_before_sending(harness: Harness) -> None:
    client = harness.client(answering("optimization", "placement", PLACEMENT))
    node = PlacementNode(name="air", cpu_millicores=1, memory_mib=1)
    with pytest.raises(TypeError, match="give a PlacementProblem alone, or its fields"):
        await harness.call(
            client, "place", PlacementProblem(nodes=[node], pods=[PlacementPod(name="p", cpu_millicores=1, memory_mib=1, group=None)]), []
        )
    with pytest.raises(ValidationError, match="pods"):
        await harness.call(client, "place", [node])  # pods are required
    with pytest.raises(ValidationError, match="not in services"):
        await harness.call(client, "diagnose", [{"name": "a"}], [["a", "b"]])
    with pytest.raises(ValidationError, match="not in nodes"):
        await harness.call(client, "plan_upgrade", ["air"], [{"name": "s", "replicas_on": ["studio"], "max_unavailable": 1}])
    with pytest.raises(ValueError, match=r"dependencies\[0\]"):
        await harness.call(client, "diagnose", [{"name": "a"}], [["a"]])
    with pytest.raises(ValidationError):
        await harness.call(client, "place", [node], [{"name": "p", "cpu_millicores": 1, "memory_mib": 1}], max_steps=0)
    # a string or a mapping where a list goes is refused naming the field, as the service refuses it;
    # "node1" used to become five one-letter nodes, planned and verified
    with pytest.raises(ValidationError, match=r"nodes\s+Input should be a valid list"):
        await harness.call(client, "plan_upgrade", "node1", [])
    with pytest.raises(ValidationError, match=r"nodes\s+Input should be a valid list"):
        await harness.call(client, "place", {"name": "air", "cpu_millicores": 1, "memory_mib": 1}, [])
    with pytest.raises(ValidationError, match=r"services\s+Input should be a valid list"):
        await harness.call(client, "plan_upgrade", ["air"], "web")
    with pytest.raises(ValidationError, match=r"services\s+Input should be a valid list"):
        await harness.call(client, "diagnose", "web")
    assert harness.requests == []


def test_solution_as_refuses_a_solution_of_another_task() -> None:
    response = ReasoningResponse.model_validate(response_body())  # a Sudoku's solution
    with pytest.raises(ValidationError, match="assignments"):
        response.solution_as(PlacementSolution)
