"""Backoff with full jitter, Retry-After (seconds and HTTP-date, capped), retry counts, and the
caller's deadline: not retried past it, shared by every try."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from client_harness import BASE, Handler, Harness, error, response_body

from agent_reasoning import DeadlineExceededError, OverloadedError, ReasoningClient, ReasoningResponse, SyncReasoningClient, TaskType
from agent_reasoning._base import DEADLINE_GRACE_S
from agent_reasoning._retry import RetryPolicy, parse_retry_after


def flaky(*failures: httpx.Response) -> Handler:
    """A handler that answers with `failures` in turn, then succeeds."""
    pending = list(failures)
    return lambda request: pending.pop(0) if pending else httpx.Response(200, json=response_body())


async def test_a_transient_failure_then_success_returns_the_answer(harness: Harness) -> None:
    client = harness.client(flaky(error(503, "overloaded", "queue full"), httpx.Response(502)))
    result = await harness.call(client, "reason", TaskType.LOGIC, {})
    assert isinstance(result, ReasoningResponse)
    assert len(harness.requests) == 3
    # Full jitter: the n-th wait is drawn from [0, backoff_base * 2**n].
    assert 0 <= harness.sleeps[0] <= 0.5 and 0 <= harness.sleeps[1] <= 1.0


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_max_retries_bounds_the_attempts(harness: Harness, max_retries: int) -> None:
    client = harness.client(lambda r: error(503, "overloaded", "queue full"), max_retries=max_retries, backoff_base=0.01)
    with pytest.raises(OverloadedError):
        await harness.call(client, "reason", TaskType.LOGIC, {})
    assert len(harness.requests) == max_retries + 1
    assert len(harness.sleeps) == max_retries and all(0 <= s <= 0.01 * 2**i for i, s in enumerate(harness.sleeps))


async def test_retry_after_seconds_is_honoured(harness: Harness) -> None:
    client = harness.client(flaky(error(503, "overloaded", "loading", **{"Retry-After": "3"})))
    await harness.call(client, "reason", TaskType.LOGIC, {})
    assert harness.sleeps == [3.0]


async def test_retry_after_http_date_is_honoured(harness: Harness) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=10), usegmt=True)
    client = harness.client(flaky(error(429, "rate_limited", "slow down", **{"Retry-After": when})))
    await harness.call(client, "reason", TaskType.LOGIC, {})
    assert 8.0 <= harness.sleeps[0] <= 10.0  # the date has whole seconds


async def test_retry_after_is_capped(harness: Harness) -> None:
    client = harness.client(flaky(error(503, "overloaded", "loading", **{"Retry-After": "3600"})), retry_after_max=12.0)
    await harness.call(client, "reason", TaskType.LOGIC, {})
    assert harness.sleeps == [12.0]


def test_backoff_doubles_up_to_its_maximum() -> None:
    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    policy = RetryPolicy(max_retries=10, backoff_base=0.5, backoff_max=3.0, rng=Highest())
    assert [policy.delay(n, httpx.Response(503)) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_only_transient_outcomes_are_retried() -> None:
    policy = RetryPolicy(max_retries=2)
    assert all(policy.should_retry(0, httpx.Response(s)) for s in (429, 502, 503, 504))
    assert not any(policy.should_retry(0, httpx.Response(s)) for s in (400, 401, 403, 404, 413, 422, 500))
    assert policy.should_retry(1, httpx.ConnectError("refused")) and not policy.should_retry(2, httpx.ConnectError("refused"))
    assert not policy.should_retry(0, httpx.ReadTimeout("slow"))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("12", 12.0),
        (" 0 ", 0.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: retry now
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)
    assert parse_retry_after(header, now=now) == seconds


def test_the_services_deadline_504_is_final_only_for_a_deadline_the_caller_chose() -> None:
    policy = RetryPolicy(max_retries=2)
    ours = error(504, "deadline_exceeded", "deadline of 200 ms passed")
    assert not policy.should_retry(0, ours, caller_deadline=True)
    assert policy.should_retry(0, ours)  # the service's default deadline on a busy host: worth another try
    assert policy.should_retry(0, httpx.Response(504, text="<html>gateway timeout</html>"), caller_deadline=True)


def test_the_solvers_budget_504_is_final_whatever_the_deadline() -> None:
    # the exact solver ran out of budget_ms: the same request gets the same budget and fails again
    policy = RetryPolicy(max_retries=2)
    solver = error(504, "deadline_exceeded", "the placement solver found no answer within 0.01 s; give a larger budget_ms", field="budget_ms")
    assert not policy.should_retry(0, solver)
    assert not policy.should_retry(0, solver, caller_deadline=True)


async def test_a_call_with_deadline_ms_is_not_resent_after_the_services_504(harness: Harness) -> None:
    # the case: deadline_ms=200 was sent 3 times, each with 5 s of grace
    client = harness.client(lambda r: error(504, "deadline_exceeded", "deadline of 200 ms passed"))
    with pytest.raises(DeadlineExceededError):
        await harness.call(client, "reason", TaskType.LOGIC, {}, deadline_ms=200)
    assert len(harness.requests) == 1 and harness.sleeps == []


async def test_a_call_is_not_resent_after_the_solvers_budget_504(harness: Harness) -> None:
    client = harness.client(lambda r: error(504, "deadline_exceeded", "the upgrade solver found no answer within 0.05 s", field="budget_ms"))
    with pytest.raises(DeadlineExceededError) as raised:
        await harness.call(client, "reason", TaskType.PLANNING, {}, budget_ms=50)
    assert raised.value.field == "budget_ms"
    assert len(harness.requests) == 1 and harness.sleeps == []


class FakeTime:
    """A clock that only the client's sleeps move: the test decides how long everything takes."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_with_fake_time(kind: str, handler: Handler, fake: FakeTime, requests: list[httpx.Request], **kwargs: Any) -> Any:
    def recording(request: httpx.Request) -> httpx.Response:
        request.read()
        requests.append(request)
        fake.now += 0.1  # each answer takes 100 ms
        return handler(request)

    transport = httpx.MockTransport(recording)
    if kind == "sync":
        return SyncReasoningClient(BASE, http_client=httpx.Client(transport=transport), sleep=fake.sleep, clock=fake.clock, **kwargs)

    async def sleep(seconds: float) -> None:
        fake.sleep(seconds)

    return ReasoningClient(BASE, http_client=httpx.AsyncClient(transport=transport), sleep=sleep, clock=fake.clock, **kwargs)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("method", ["reason", "reason_via_event"])
async def test_retries_share_the_callers_deadline(kind: str, method: str) -> None:
    fake, requests = FakeTime(), []
    overloaded = error(503, "overloaded", "queue full", **{"Retry-After": "1"})
    client = client_with_fake_time(kind, lambda r: overloaded, fake, requests, max_retries=5)
    harness = Harness(kind)
    with pytest.raises(OverloadedError):
        await harness.call(client, method, TaskType.LOGIC, {}, deadline_ms=3000)
    # tries at 0, 1.1 and 2.2 s (100 ms answers, 1 s Retry-After): a fourth would start at 3.3 s,
    # past the 3 s deadline, so it is not sent although max_retries allows it
    assert len(requests) == 3 and fake.sleeps == [1.0, 1.0]
    read_timeouts = [r.extensions["timeout"]["read"] for r in requests]
    assert read_timeouts == pytest.approx([3.0 + DEADLINE_GRACE_S, 1.9 + DEADLINE_GRACE_S, 0.8 + DEADLINE_GRACE_S])
    if method == "reason":  # each retry asks the service for what is left, not the whole deadline again
        assert [json.loads(r.content)["deadline_ms"] for r in requests] == [3000, 1900, 800]
    else:  # the same event, so the service deduplicates it
        assert len({r.headers["ce-id"] for r in requests}) == 1


async def test_without_a_deadline_retries_are_unchanged(harness: Harness) -> None:
    client = harness.client(flaky(error(504, "deadline_exceeded", "default deadline passed")))
    await harness.call(client, "reason", TaskType.LOGIC, {})
    assert len(harness.requests) == 2 and "deadline_ms" not in json.loads(harness.requests[1].content)
