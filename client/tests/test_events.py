"""CloudEvents: the posted event is valid in both modes, replies parse, failed replies raise, emit fires and forgets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from client_harness import BASE, Harness, posted_event, reply, response_body

from agent_reasoning import InvalidProblemError, NotFoundError, OverloadedError, ReasoningError, ReasoningResponse, TaskType

PROBLEM = {"puzzle": "5" * 81}


def completed(mode: str = "binary") -> Any:
    return lambda request: reply(request, "io.homelab.reasoning.completed", response_body(), mode)


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_the_posted_event_is_a_valid_requested_event(harness: Harness, mode: str) -> None:
    client = harness.client(completed(mode))
    result = await harness.call(
        client, "reason_via_event", TaskType.LOGIC, PROBLEM, task="sudoku", conversation_id="conv-7", deadline_ms=900, mode=mode
    )
    request = harness.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/events")
    expected_type = "application/json" if mode == "binary" else "application/cloudevents+json"
    assert request.headers["content-type"] == expected_type
    assert any(name.startswith("ce-") for name in request.headers) == (mode == "binary")

    event = posted_event(request)
    assert event.get_specversion() == "1.0"
    assert event.get_type() == "io.homelab.reasoning.requested"
    assert event.get_source() == "agent-reasoning-client"
    assert event.get_id() and event.get_time() is not None
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("conversationid") == "conv-7"
    assert event.get_data() == {
        "task_type": "logic",
        "task": "sudoku",
        "problem": PROBLEM,
        "trace": False,
        "conversation_id": "conv-7",
        "deadline_ms": 900,
    }
    assert isinstance(result, ReasoningResponse) and result.task == "sudoku"


@pytest.mark.parametrize("reply_mode", ["binary", "structured"])
async def test_a_completed_reply_in_either_mode_parses(harness: Harness, reply_mode: str) -> None:
    client = harness.client(completed(reply_mode))
    result = await harness.call(client, "reason_via_event", task="sudoku", problem=PROBLEM, source="/agents/planner")
    assert result == ReasoningResponse.model_validate(response_body())
    assert posted_event(harness.requests[0]).get_source() == "/agents/planner"


@pytest.mark.parametrize("reply_mode", ["binary", "structured"])
async def test_a_failed_reply_raises_the_matching_error(harness: Harness, reply_mode: str) -> None:
    body = {"error": "invalid_problem", "detail": "must have 81 cells, got 80", "field": "problem.puzzle"}
    client = harness.client(lambda request: reply(request, "io.homelab.reasoning.failed", body, reply_mode))
    with pytest.raises(InvalidProblemError) as caught:
        await harness.call(client, "reason_via_event", task="sudoku", problem={"puzzle": "5" * 80})
    assert (caught.value.status_code, caught.value.field, caught.value.detail) == (422, "problem.puzzle", body["detail"])
    assert len(harness.requests) == 1


async def test_a_failed_reply_of_an_unknown_model_is_not_found(harness: Harness) -> None:
    body = {"error": "not_found", "detail": "no model 'x' for task 'sudoku'", "field": "model"}
    client = harness.client(lambda request: reply(request, "io.homelab.reasoning.failed", body))
    with pytest.raises(NotFoundError):
        await harness.call(client, "reason_via_event", task="sudoku", problem=PROBLEM, model="x")


async def test_an_overloaded_events_endpoint_is_retried(harness: Harness) -> None:
    answers = [httpx.Response(503, json={"error": "overloaded", "detail": "queue full"}, headers={"Retry-After": "1"})]
    client = harness.client(lambda request: answers.pop(0) if answers else completed()(request))
    result = await harness.call(client, "reason_via_event", task="sudoku", problem=PROBLEM)
    assert isinstance(result, ReasoningResponse) and harness.sleeps == [1.0]
    # A retry resends the same event: same id, so a broker or the service can drop the duplicate.
    assert posted_event(harness.requests[0]).get_id() == posted_event(harness.requests[1]).get_id()


async def test_an_overloaded_reply_event_raises_after_the_retries(harness: Harness) -> None:
    def overloaded(request: httpx.Request) -> httpx.Response:
        failed = reply(request, "io.homelab.reasoning.failed", {"error": "overloaded", "detail": "queue full"}, "structured")
        return httpx.Response(503, headers=failed.headers, content=failed.content)

    with pytest.raises(OverloadedError) as caught:
        await harness.call(harness.client(overloaded), "reason_via_event", task="sudoku", problem=PROBLEM)
    assert caught.value.detail == "queue full" and len(harness.requests) == 3


async def test_a_reply_to_another_event_is_refused(harness: Harness) -> None:
    client = harness.client(lambda request: reply(request, "io.homelab.reasoning.completed", response_body(), requestid="other"))
    with pytest.raises(ReasoningError, match="other"):
        await harness.call(client, "reason_via_event", task="sudoku", problem=PROBLEM)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"status_code": 202}, "no reply event"),
        ({"status_code": 200, "json": {"type": "io.homelab.reasoning.completed"}}, "not a CloudEvent"),
        (
            {"status_code": 200, "headers": {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "ce-type": "other"}, "json": {}},
            "other",
        ),
    ],
)
async def test_answers_that_are_no_reply_event_raise(harness: Harness, answer: dict[str, Any], message: str) -> None:
    client = harness.client(lambda request: httpx.Response(**answer))
    with pytest.raises(ReasoningError, match=message):
        await harness.call(client, "reason_via_event", task="sudoku", problem=PROBLEM)


async def test_the_token_goes_to_the_service_but_not_to_another_url(harness: Harness) -> None:
    client = harness.client(completed(), token="secret")
    await harness.call(client, "reason_via_event", task="sudoku", problem=PROBLEM)
    await harness.call(client, "reason_via_event", task="sudoku", problem=PROBLEM, url="http://broker.test/ns/default")
    assert harness.requests[0].headers["authorization"] == "Bearer secret"
    assert str(harness.requests[1].url) == "http://broker.test/ns/default"
    assert "authorization" not in harness.requests[1].headers


async def test_emit_fires_at_k_sink_and_returns_the_event_id(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SINK", "http://broker.test/ns/agents")
    client = harness.client(lambda request: httpx.Response(202), token="secret")
    event_id = await harness.call(client, "emit", TaskType.PLANNING, {"grid": ["SG"]}, task="maze", mode="structured")
    request = harness.requests[0]
    assert str(request.url) == "http://broker.test/ns/agents"
    assert "authorization" not in request.headers
    event = posted_event(request)
    assert event.get_id() == event_id
    assert event.get_type() == "io.homelab.reasoning.requested"
    assert event.get_data() == {"task_type": "planning", "task": "maze", "problem": {"grid": ["SG"]}, "trace": False}


async def test_emit_sink_argument_beats_k_sink(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SINK", "http://broker.test/from-env")
    client = harness.client(lambda request: httpx.Response(202))
    await harness.call(client, "emit", task="sudoku", problem=PROBLEM, sink="http://broker.test/from-arg")
    assert str(harness.requests[0].url) == "http://broker.test/from-arg"


async def test_emit_without_a_sink_is_an_error(harness: Harness) -> None:
    client = harness.client(lambda request: httpx.Response(202))
    with pytest.raises(ValueError, match="K_SINK"):
        await harness.call(client, "emit", task="sudoku", problem=PROBLEM)
    assert harness.requests == []


async def test_emit_raises_when_the_sink_refuses(harness: Harness) -> None:
    client = harness.client(lambda request: httpx.Response(404, text="no such broker"))
    with pytest.raises(NotFoundError):
        await harness.call(client, "emit", task="sudoku", problem=PROBLEM, sink="http://broker.test/nope")


async def test_an_unknown_mode_is_refused(harness: Harness) -> None:
    with pytest.raises(ValueError, match="mode"):
        await harness.call(harness.client(completed()), "reason_via_event", task="sudoku", problem=PROBLEM, mode="batched")
