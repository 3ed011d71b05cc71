"""Read-only providers of cluster data for questions without a problem: the Kubernetes API and Prometheus.

Each provider answers raw API JSON (what `kubectl get -o json` and Prometheus' /api/v1/query return), which
the client's adapters (agent_reasoning.adapters) turn into problems, plus a `Source` per read. Failures
raise `ProviderError`, already a `ServiceError` with the status the caller should see (502/503, or 422
when the data in scope is missing) and the source named.
"""

from __future__ import annotations

from datetime import datetime, timezone

from reasoning_service.errors import ServiceError


class ProviderError(ServiceError):
    """A provider could not answer: `source` ("kubernetes", "prometheus") is named in the message."""

    def __init__(self, status: int, source: str, detail: str, *, field: str | None = None, retry_after: int | None = None) -> None:
        kind = {502: "bad_gateway", 503: "unavailable", 422: "invalid_request"}.get(status, "provider_error")
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        super().__init__(status, kind, f"{source}: {detail}", field=field, headers=headers)
        self.source = source


def now_rfc3339() -> str:
    """The current time as RFC 3339 in UTC with milliseconds, for `Source.at`."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["ProviderError", "now_rfc3339"]
