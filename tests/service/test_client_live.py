"""The client library against the real service on a real socket."""

from __future__ import annotations

import pytest

from agent_reasoning import DeadlineExceededError as ClientDeadline
from agent_reasoning import (
    InvalidProblemError,
    NotFoundError,
    ReasoningClient,
    SyncReasoningClient,
    TaskType,
)
from agent_reasoning.adapters import placement_from_kubectl, rootcause_from_prometheus, upgrade_from_kubectl

from ..known_problems import MAZE
from .conftest import REPO, SUDOKU_EASY, needs_maze, needs_sudoku

TOY = {"sequence": [1, 2, 3, 4, 4, 3, 2, 1]}


def test_sync_calls(server):
    with SyncReasoningClient(server) as client:
        assert client.health()["status"] == "ok"
        assert client.ready() is True
        names = {t.name for t in client.tasks()}
        assert {"sudoku", "maze", "toy_reverse"} <= names
        r = client.reason(task="toy_reverse", problem=TOY, trace=True, conversation_id="c9", question="why?")
        assert r.task == "toy_reverse" and r.task_type == TaskType.GENERAL and r.conversation_id == "c9" and r.question == "why?"
        assert len(r.reasoning_trace) == r.steps


async def test_async_calls_and_events(server):
    async with ReasoningClient(server) as client:
        r = await client.reason(task_type=TaskType.GENERAL, problem=TOY, fallback=True)
        assert r.verified is True
        for mode in ("binary", "structured"):
            e = await client.reason_via_event(task="toy_reverse", problem=TOY, mode=mode, conversation_id="ev-1")
            assert e.task == "toy_reverse" and e.conversation_id == "ev-1"


def test_errors_map_to_classes(server):
    with SyncReasoningClient(server, max_retries=0) as client:
        with pytest.raises(InvalidProblemError) as e:
            client.reason(task="toy_reverse", problem={"sequence": [9] * 8})
        assert e.value.field == "problem.sequence.0" and e.value.status_code == 422
        with pytest.raises(NotFoundError):
            client.reason(task="no_such_task", problem={})
        with pytest.raises(ClientDeadline):
            client.reason(task="toy_reverse", problem=TOY, max_steps=64, min_steps=64, halt_threshold=20, deadline_ms=2)
        with pytest.raises(InvalidProblemError):
            client.reason_via_event(task="toy_reverse", problem={"sequence": [9] * 8})
        with pytest.raises(NotFoundError):
            client.reason_via_event(task="no_such_task", problem={})


@needs_sudoku
def test_solve_sudoku_helper(server):
    with SyncReasoningClient(server) as client:
        r = client.solve_sudoku(SUDOKU_EASY)
        assert r.verified is True and r.solution["solution"].startswith("534678912")


@needs_maze
def test_solve_maze_helper(server):
    with SyncReasoningClient(server) as client:
        r = client.solve_maze(MAZE, fallback=True)
        assert r.verified is True


# The homelab helpers end to end: cluster JSON shaped as kubectl and Prometheus print it, through the
# client's adapters, over a real socket, to the shipped model where there is one and else to the task's
# own solver: they never skip for lack of a model.
FIXTURES = REPO / "client" / "tests" / "fixtures"
DEPENDENCIES = [
    ["node-red", "home-assistant"],
    ["node-red", "mosquitto"],
    ["home-assistant", "mosquitto"],
    ["home-assistant", "zigbee2mqtt"],
    ["home-assistant", "postgres"],
    ["zigbee2mqtt", "mosquitto"],
    ["frigate", "mosquitto"],
    ["home-assistant", "frigate"],
]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_place_helper_from_kubectl(server):
    problem = placement_from_kubectl(fixture("kubectl-nodes.json"), fixture("kubectl-pods.json"))
    with SyncReasoningClient(server) as client:
        r = client.place(problem, fallback=True)
    assert r.task == "placement" and r.verified is True and r.solved_by in ("trm", "solver", "baseline")
    assert set(r.solution["assignments"]) == {p.name for p in problem.pods}
    assert r.objective == r.solution["nodes_used"] and r.lower_bound is not None and r.lower_bound <= r.objective
    assert r.optimal is (r.objective == r.lower_bound) or r.solved_by == "solver"


def test_plan_upgrade_helper_from_kubectl(server):
    problem = upgrade_from_kubectl(fixture("kubectl-nodes.json"), fixture("kubectl-pods.json"), fixture("kubectl-pdb.json"))
    blocked = [i for i, s in enumerate(problem.services) if s.max_unavailable == 0]
    assert blocked, "the fixture has a PodDisruptionBudget that allows no disruption"
    with SyncReasoningClient(server, max_retries=0) as client:
        with pytest.raises(InvalidProblemError) as e:  # no plan can drain its node: said, not guessed
            client.plan_upgrade(problem)
        assert e.value.field == f"problem.services.{blocked[0]}.max_unavailable"
        problem.services = [s for s in problem.services if s.max_unavailable > 0]
        r = client.plan_upgrade(problem, fallback=True)
    assert r.task == "upgrade" and r.verified is True and r.solved_by in ("trm", "solver", "baseline")
    assert sorted(n for wave in r.solution["waves"] for n in wave) == sorted(problem.nodes)
    assert r.objective == len(r.solution["waves"]) and r.lower_bound is not None and r.lower_bound <= r.objective


async def test_diagnose_helper_from_prometheus(server):
    problem = rootcause_from_prometheus(fixture("prometheus-error-ratio.json"), fixture("prometheus-latency-p99.json"), DEPENDENCIES)
    async with ReasoningClient(server) as client:
        r = await client.diagnose(problem)
    # zigbee2mqtt fails while its only dependency (mosquitto) is healthy; its callers fail with it.
    assert r.task == "rootcause" and r.verified is None and r.confidence is not None and r.solved_by in ("trm", "baseline")
    assert "zigbee2mqtt" in r.solution["ranking"][:3]
    assert set(r.solution["ranking"]) <= {s.name for s in problem.services}


def test_exact_mode_and_the_homelab_default_from_the_client(server):
    """exact=True asks for the exact solver (CP-SAT), which proves the optimum of a small placement;
    with fallback unset the service's per-task default applies (not a client-side False)."""
    problem = placement_from_kubectl(fixture("kubectl-nodes.json"), fixture("kubectl-pods.json"))
    with SyncReasoningClient(server) as client:
        r = client.place(problem, exact=True, budget_ms=20_000)
        assert r.verified is True and r.optimal is True and r.lower_bound == r.objective and r.solved_by in ("trm", "solver")
        sent = client.reason(task="placement", problem=problem, scope={"namespace": "default"})  # scope rides along
        assert sent.verified is True
