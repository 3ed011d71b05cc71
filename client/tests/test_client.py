"""Requests the clients build and responses they parse, for both the async and the sync client."""

from __future__ import annotations

import httpx
import pytest
from client_harness import BASE, Harness, response_body
from pydantic import ValidationError

from agent_reasoning import (
    MazeProblem,
    ReasoningClient,
    ReasoningError,
    ReasoningResponse,
    SudokuProblem,
    SudokuSolution,
    SyncReasoningClient,
    TaskInfo,
    TaskType,
    __version__,
)

PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
MAZE = ["#######", "#S  # #", "# # # #", "# #   #", "# ### #", "#    G#", "#######"]


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=response_body())


async def test_reason_posts_the_request_and_parses_the_response(harness: Harness) -> None:
    client = harness.client(ok)
    result = await harness.call(client, "reason", TaskType.LOGIC, {"puzzle": PUZZLE}, task="sudoku", trace=True, deadline_ms=2000)

    request = harness.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/v1/reason")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"agent-reasoning-client/{__version__}"
    assert "authorization" not in request.headers
    # None fields stay off the wire, so the service applies its own defaults.
    assert harness.json() == {
        "task_type": "logic",
        "task": "sudoku",
        "problem": {"puzzle": PUZZLE},
        "trace": True,
        "deadline_ms": 2000,
    }
    assert isinstance(result, ReasoningResponse)
    assert (result.task_type, result.model.name, result.verified) == (TaskType.LOGIC, "sudoku-trm", True)
    assert SudokuSolution.model_validate(result.solution).solution == "5" * 81


async def test_every_request_field_reaches_the_wire(harness: Harness) -> None:
    client = harness.client(ok)
    await harness.call(
        client,
        "reason",
        task_type="planning",
        problem={"grid": MAZE},
        task="maze",
        question="how do I get out?",
        max_steps=8,
        min_steps=2,
        halt_threshold=0.5,
        fallback=True,
        conversation_id="c-1",
        model="maze-trm",
    )
    assert harness.json() == {
        "task_type": "planning",
        "task": "maze",
        "problem": {"grid": MAZE},
        "question": "how do I get out?",
        "max_steps": 8,
        "min_steps": 2,
        "halt_threshold": 0.5,
        "trace": False,
        "fallback": True,
        "conversation_id": "c-1",
        "model": "maze-trm",
    }


async def test_a_problem_model_is_sent_without_its_unset_fields(harness: Harness) -> None:
    client = harness.client(ok)
    await harness.call(client, "reason", task="sudoku", problem=SudokuProblem(puzzle=PUZZLE.replace(".", "0")))
    assert harness.json()["problem"] == {"puzzle": PUZZLE}  # as the model normalised it, and no "grid": null


async def test_solve_sudoku_takes_a_string_or_a_grid(harness: Harness) -> None:
    client = harness.client(ok)
    grid = [[0 if ch == "." else int(ch) for ch in PUZZLE[r * 9 : r * 9 + 9]] for r in range(9)]
    await harness.call(client, "solve_sudoku", PUZZLE, fallback=True)
    await harness.call(client, "solve_sudoku", grid)
    assert harness.json(0) == {"task": "sudoku", "problem": {"puzzle": PUZZLE}, "trace": False, "fallback": True}
    assert harness.json(1)["problem"] == {"grid": grid}


async def test_solve_maze(harness: Harness) -> None:
    client = harness.client(ok)
    await harness.call(client, "solve_maze", MAZE, trace=True)
    assert harness.json() == {"task": "maze", "problem": MazeProblem(grid=MAZE).model_dump(), "trace": True}


async def test_a_question_without_a_problem_is_sent_for_the_service_to_answer(harness: Harness) -> None:
    # The service builds the problem from its providers, or its 422 says what it lacks: no local TypeError.
    await harness.call(harness.client(ok), "reason", question="How should I optimize my cluster?", task_type=TaskType.OPTIMIZATION)
    assert harness.json() == {"task_type": "optimization", "question": "How should I optimize my cluster?", "trace": False}


async def test_bad_arguments_fail_before_any_request(harness: Harness) -> None:
    client = harness.client(ok)
    with pytest.raises(ValidationError, match="task"):
        await harness.call(client, "reason", problem={"puzzle": PUZZLE})
    with pytest.raises(ValidationError):
        await harness.call(client, "reason", TaskType.LOGIC, {}, max_steps=0)
    with pytest.raises(ValidationError):
        await harness.call(client, "solve_sudoku", PUZZLE[:80])
    assert harness.requests == []


async def test_token_argument_beats_the_environment(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_REASONING_TOKEN", "from-env")
    await harness.call(harness.client(ok), "reason", TaskType.LOGIC, {})
    await harness.call(harness.client(ok, token="from-arg"), "reason", TaskType.LOGIC, {})
    assert [r.headers["authorization"] for r in harness.requests] == ["Bearer from-env", "Bearer from-arg"]


def test_base_url_comes_from_the_argument_then_the_environment_then_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SyncReasoningClient().base_url == "http://agent-reasoning.ai-agents.svc.cluster.local"
    monkeypatch.setenv("AGENT_REASONING_URL", "http://from-env:8080/")
    assert SyncReasoningClient().base_url == "http://from-env:8080"
    assert ReasoningClient().base_url == "http://from-env:8080"
    assert SyncReasoningClient("http://from-arg").base_url == "http://from-arg"


async def test_environment_base_url_is_used_for_requests(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_REASONING_URL", "http://from-env:8080/")
    await harness.call(harness.client(ok, base_url=None), "health")
    assert str(harness.requests[0].url) == "http://from-env:8080/healthz"


async def test_timeouts_default_to_5s_connect_and_60s_and_stretch_to_the_deadline(harness: Harness) -> None:
    client = harness.client(ok)
    await harness.call(client, "reason", TaskType.LOGIC, {})
    await harness.call(client, "reason", TaskType.LOGIC, {}, deadline_ms=120_000)
    default, stretched = (r.extensions["timeout"] for r in harness.requests)
    assert default == {"connect": 5.0, "read": 60.0, "write": 60.0, "pool": 60.0}
    # Waiting past the service's own deadline lets its 504 arrive instead of a client-side timeout.
    assert stretched["read"] == 125.0 and stretched["connect"] == 5.0

    await harness.call(harness.client(ok, timeout=2.0), "reason", TaskType.LOGIC, {})
    assert harness.requests[-1].extensions["timeout"] == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


async def test_tasks_parse_into_task_info(harness: Harness) -> None:
    catalogue = {
        "tasks": [
            {
                "name": "sudoku",
                "task_type": "logic",
                "description": "9x9 Sudoku",
                "default": True,
                "problem_schema": {"type": "object"},
                "solution_schema": {"type": "object"},
                "example": {"puzzle": PUZZLE},
                "models": [{"name": "sudoku-trm", "version": "3", "metrics": {"exact": 0.87}, "default": True}],
                "seq_len": 81,  # a field this client does not know is kept, not refused
            }
        ]
    }
    client = harness.client(lambda request: httpx.Response(200, json=catalogue))
    (task,) = await harness.call(client, "tasks")
    assert (harness.requests[0].method, harness.requests[0].url.path) == ("GET", "/v1/tasks")
    assert isinstance(task, TaskInfo)
    assert (task.name, task.task_type, task.default, task.example) == ("sudoku", TaskType.LOGIC, True, {"puzzle": PUZZLE})
    assert task.models[0].metrics == {"exact": 0.87} and task.models[0].default
    assert task.model_extra == {"seq_len": 81}


async def test_health_and_ready(harness: Harness) -> None:
    answers = {"/healthz": (200, {"status": "ok"}), "/readyz": (200, {"status": "ready"})}
    client = harness.client(lambda request: httpx.Response(answers[request.url.path][0], json=answers[request.url.path][1]))
    assert await harness.call(client, "health") == {"status": "ok"}
    assert await harness.call(client, "ready") is True

    answers["/readyz"] = (503, {"status": "loading"})
    assert await harness.call(client, "ready") is False
    assert len(harness.requests) == 3 and harness.sleeps == []  # a probe answers now: no retries


async def test_a_body_that_is_not_a_response_is_a_reasoning_error(harness: Harness) -> None:
    client = harness.client(lambda request: httpx.Response(200, text="<html>wrong service</html>"))
    with pytest.raises(ReasoningError, match="unexpected body"):
        await harness.call(client, "reason", TaskType.LOGIC, {})


def test_sync_context_manager_closes_its_own_client_only() -> None:
    with SyncReasoningClient(BASE) as client:
        own = client._http
    assert own.is_closed

    injected = httpx.Client(transport=httpx.MockTransport(ok))
    with SyncReasoningClient(BASE, http_client=injected):
        pass
    assert not injected.is_closed
    injected.close()


async def test_async_context_manager_closes_its_own_client_only() -> None:
    async with ReasoningClient(BASE) as client:
        own = client._http
    assert own.is_closed

    injected = httpx.AsyncClient(transport=httpx.MockTransport(ok))
    async with ReasoningClient(BASE, http_client=injected):
        pass
    assert not injected.is_closed
    await injected.aclose()
