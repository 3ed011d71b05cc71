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

from .conftest import MAZE, SUDOKU_EASY, needs_maze, needs_sudoku

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
            client.reason(task="toy_reverse", problem=TOY, max_steps=64, halt_threshold=20, deadline_ms=2)
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
