"""Typed errors: one class per way a call can fail that an agent would handle differently."""

from __future__ import annotations

import builtins
from typing import Any

from .types import ErrorBody


class ReasoningError(Exception):
    """Base of every error the client raises."""


class APIError(ReasoningError):
    """The service (or a proxy in front of it) answered with an error status."""

    def __init__(self, status_code: int, detail: str, field: str | None = None, body: Any = None) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"{status_code}: {detail}{where}")
        self.status_code = status_code
        self.detail = detail
        self.field = field  # dotted path of the field at fault, when the service names one
        self.body = body  # the decoded error body: a dict for the service's own errors, text from proxies

    @property
    def kind(self) -> str | None:
        """The service's machine-readable error kind, e.g. "invalid_problem"."""
        return self.body.get("error") if isinstance(self.body, dict) else None


class InvalidProblemError(APIError):
    """422: the problem does not fit the task's schema or rules; `field` names the culprit."""


class NotFoundError(APIError):
    """404: unknown task or model."""


class AuthenticationError(APIError):
    """401/403: missing or wrong bearer token."""


class OverloadedError(APIError):
    """503/429: queue full or models loading; still failing after the client's retries."""

    def __init__(self, status_code: int, detail: str, field: str | None = None, body: Any = None, retry_after: float | None = None) -> None:
        super().__init__(status_code, detail, field, body)
        self.retry_after = retry_after  # seconds the server asked to wait, if it said


class DeadlineExceededError(APIError):
    """504: the request's deadline passed before the answer was ready."""


class TimeoutError(ReasoningError, builtins.TimeoutError):
    """The client gave up waiting (connect or read timeout)."""


class ConnectionError(ReasoningError, builtins.ConnectionError):
    """No HTTP answer: connection refused or reset, DNS failure, server hung up."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    422: InvalidProblemError,
    429: OverloadedError,
    503: OverloadedError,
    504: DeadlineExceededError,
}

# A failed CloudEvent reply travels with HTTP 200, so its ErrorBody kind is all there is to type it by.
_STATUS_BY_KIND: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "unknown_task": 404,
    "unknown_model": 404,
    "too_large": 413,
    "invalid_problem": 422,
    "invalid_request": 422,
    "overloaded": 503,
    "deadline_exceeded": 504,
}


def error_for_status(status_code: int, body: Any, retry_after: float | None = None) -> APIError:
    """The typed error for an HTTP error status; `body` is the decoded response body."""
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail, field = body["detail"], body.get("field")
    else:  # not the service's ErrorBody: a proxy's page or an empty body
        detail, field = (str(body)[:500] if body else f"HTTP {status_code}"), None
    cls = _BY_STATUS.get(status_code, APIError)
    if cls is OverloadedError:
        return OverloadedError(status_code, detail, field, body, retry_after=retry_after)
    return cls(status_code, detail, field, body)


def error_for_body(error: ErrorBody, fallback_status: int) -> APIError:
    """The typed error for an ErrorBody that arrived without a meaningful status (a failed reply event)."""
    status_code = _STATUS_BY_KIND.get(error.error, fallback_status)
    return error_for_status(status_code, error.model_dump())
