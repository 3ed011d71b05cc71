"""Backoff with full jitter, Retry-After (seconds and HTTP-date, capped), and retry counts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from client_harness import Handler, Harness, error, response_body

from agent_reasoning import OverloadedError, ReasoningResponse, TaskType
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
