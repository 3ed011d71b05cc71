"""HTTP statuses and transport failures become typed errors; only transient ones are retried."""

from __future__ import annotations

import builtins

import httpx
import pytest
from client_harness import Harness, error

from agent_reasoning import (
    APIError,
    AuthenticationError,
    ConnectionError,
    DeadlineExceededError,
    InvalidProblemError,
    NotFoundError,
    OverloadedError,
    ReasoningError,
    TaskType,
    TimeoutError,
)


async def test_422_is_an_invalid_problem_naming_the_field(harness: Harness) -> None:
    client = harness.client(lambda r: error(422, "invalid_problem", "must have 81 cells, got 80", "problem.puzzle"))
    with pytest.raises(InvalidProblemError) as caught:
        await harness.call(client, "reason", task="sudoku", problem={"puzzle": "1" * 80})
    exc = caught.value
    assert (exc.status_code, exc.field, exc.kind) == (422, "problem.puzzle", "invalid_problem")
    assert exc.detail == "must have 81 cells, got 80"
    assert "problem.puzzle" in str(exc) and isinstance(exc, APIError)


@pytest.mark.parametrize(
    ("status", "kind", "cls"),
    [
        (400, "bad_request", APIError),
        (401, "unauthorized", AuthenticationError),
        (403, "forbidden", AuthenticationError),
        (404, "not_found", NotFoundError),
        (413, "too_large", APIError),
        (422, "invalid_problem", InvalidProblemError),
    ],
)
async def test_client_errors_map_to_their_class_and_are_not_retried(harness: Harness, status: int, kind: str, cls: type[APIError]) -> None:
    client = harness.client(lambda r: error(status, kind, "no"))
    with pytest.raises(cls) as caught:
        await harness.call(client, "reason", TaskType.LOGIC, {})
    assert caught.value.status_code == status
    assert len(harness.requests) == 1 and harness.sleeps == []


@pytest.mark.parametrize(("status", "cls"), [(429, OverloadedError), (503, OverloadedError), (504, DeadlineExceededError), (502, APIError)])
async def test_transient_statuses_are_retried_then_raised(harness: Harness, status: int, cls: type[APIError]) -> None:
    client = harness.client(lambda r: error(status, "busy", "try later"))
    with pytest.raises(cls) as caught:
        await harness.call(client, "reason", TaskType.LOGIC, {})
    assert caught.value.status_code == status
    assert len(harness.requests) == 3  # the first try and max_retries=2 more
    assert len(harness.sleeps) == 2


async def test_a_proxy_error_page_becomes_the_detail(harness: Harness) -> None:
    client = harness.client(lambda r: httpx.Response(502, text="<html>Bad Gateway</html>"), max_retries=0)
    with pytest.raises(APIError) as caught:
        await harness.call(client, "reason", TaskType.LOGIC, {})
    assert (caught.value.detail, caught.value.kind, caught.value.field) == ("<html>Bad Gateway</html>", None, None)


async def test_overloaded_error_carries_retry_after(harness: Harness) -> None:
    client = harness.client(lambda r: error(503, "overloaded", "queue full", **{"Retry-After": "7"}), max_retries=0)
    with pytest.raises(OverloadedError) as caught:
        await harness.call(client, "reason", TaskType.LOGIC, {})
    assert caught.value.retry_after == 7.0


async def test_connection_errors_are_retried_then_raised(harness: Harness) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    client = harness.client(refuse)
    with pytest.raises(ConnectionError) as caught:
        await harness.call(client, "reason", TaskType.LOGIC, {})
    assert isinstance(caught.value, builtins.ConnectionError) and isinstance(caught.value, ReasoningError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(harness.requests) == 3 and len(harness.sleeps) == 2


async def test_a_read_timeout_is_raised_at_once(harness: Harness) -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    client = harness.client(hang)
    with pytest.raises(TimeoutError) as caught:
        await harness.call(client, "reason", TaskType.LOGIC, {})
    assert isinstance(caught.value, builtins.TimeoutError) and isinstance(caught.value, ReasoningError)
    # The service may still be working on it: retrying would only multiply the wait.
    assert len(harness.requests) == 1


async def test_a_connect_timeout_is_retried_and_raised_as_a_timeout(harness: Harness) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("connect timed out")

    with pytest.raises(TimeoutError):
        await harness.call(harness.client(unreachable), "reason", TaskType.LOGIC, {})
    assert len(harness.requests) == 3


async def test_ready_raises_when_the_service_cannot_be_reached(harness: Harness) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ConnectionError):
        await harness.call(harness.client(refuse), "ready")
    assert len(harness.requests) == 1
