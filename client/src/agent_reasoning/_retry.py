"""When to retry and how long to wait: exponential backoff with full jitter, or the server's Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

# Statuses that mean "not now" rather than "not like this": overload, and gateways that lost the upstream.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

# Failures where the request may never have reached a worker, or the pod went away mid-answer (a rollout).
# Read/write/pool timeouts are not here: the service may still be working, and a retry would multiply the wait.
RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    backoff_base: float = 0.5  # seconds; the cap of the first retry's wait, doubled for each later one
    backoff_max: float = 8.0
    # A Retry-After beyond this is cut down: an agent should not stall for minutes on one proxy's say-so.
    retry_after_max: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def should_retry(self, attempt: int, outcome: httpx.Response | httpx.TransportError, *, caller_deadline: bool = False) -> bool:
        """Whether the failed `attempt` (0 = the first try) deserves another one.

        With `caller_deadline` (the call set deadline_ms), the service's own 504 deadline_exceeded is
        final: the deadline the caller chose has passed, and another try would only pass it again. So
        is one naming `budget_ms`, whatever the deadline: the exact solver found no answer within the
        request's budget, and the same request gets the same budget (the caller must raise it).
        A gateway's 504 (no such body: a proxy lost the upstream) is still retried."""
        if attempt >= self.max_retries:
            return False
        if isinstance(outcome, httpx.Response):
            if outcome.status_code == 504 and error_kind(outcome) == "deadline_exceeded":
                if caller_deadline or error_field(outcome) == "budget_ms":
                    return False
            return outcome.status_code in RETRY_STATUSES
        return isinstance(outcome, RETRY_ERRORS)

    def delay(self, attempt: int, outcome: httpx.Response | httpx.TransportError) -> float:
        """Seconds to wait before retrying after the failed `attempt`."""
        if isinstance(outcome, httpx.Response):
            retry_after = parse_retry_after(outcome.headers.get("retry-after"))
            if retry_after is not None:
                return min(retry_after, self.retry_after_max)
        # Full jitter: many agents hitting the same overloaded service spread out instead of retrying in step.
        return self.rng.uniform(0.0, min(self.backoff_max, self.backoff_base * 2**attempt))


def error_kind(response: httpx.Response) -> str | None:
    """The `error` of the service's ErrorBody in `response`, or None (not JSON, a proxy's page)."""
    return _body_str(response, "error")


def error_field(response: httpx.Response) -> str | None:
    """The `field` of the service's ErrorBody in `response` (the request field at fault), or None."""
    return _body_str(response, "field")


def _body_str(response: httpx.Response, key: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses naive
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
