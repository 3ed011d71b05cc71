"""Errors the service answers with: a status, a machine-readable kind, a message naming the field."""

from __future__ import annotations

from typing import Any

from agent_reasoning.types import ErrorBody


class ServiceError(Exception):
    """An error answered as `status` with an ErrorBody: `kind` (machine-readable), `detail`, the `field` at fault.

    `headers` go on the response (e.g. Retry-After with a 503, WWW-Authenticate with a 401).
    """
    def __init__(self, status: int, kind: str, detail: str, field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.field = status, kind, detail, field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body: ErrorBody(error=kind, detail, field) as a dict."""
        return ErrorBody(error=self.kind, detail=self.detail, field=self.field).model_dump()


# outcome label of agent_reasoning_requests_total for each error kind
OUTCOMES = {
    "invalid_problem": "invalid",
    "invalid_request": "invalid",
    "bad_request": "invalid",
    "unknown_task": "not_found",
    "unknown_model": "not_found",
    "not_found": "not_found",
    "too_large": "too_large",
    "overloaded": "overloaded",
    "loading": "overloaded",
    "draining": "overloaded",
    "deadline_exceeded": "deadline",
    "unauthorized": "unauthorized",
    "internal": "error",
}


def outcome_of(kind: str) -> str:
    """The outcome label of agent_reasoning_requests_total for an error kind ("error" for unknown kinds)."""
    return OUTCOMES.get(kind, "error")
