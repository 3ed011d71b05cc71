"""FastAPI dependencies: the service state and the optional bearer token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from reasoning_service.errors import ServiceError
from reasoning_service.reasoning import ServiceState


def get_state(request: Request) -> ServiceState:
    """The ServiceState the app was started with (`app.state.service`)."""
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]


def require_token(request: Request, state: State) -> None:
    """Let the request through if no API token is set or it carries `Authorization: Bearer <token>`; else 401.

    Raises ServiceError(401, "unauthorized") with a WWW-Authenticate header, and counts the rejection.
    """
    token = state.settings.api_token
    if not token:
        return
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        state.metrics.requests.labels("unknown", "unauthorized").inc()
        raise ServiceError(401, "unauthorized", "a valid 'Authorization: Bearer <token>' header is required", headers={"WWW-Authenticate": "Bearer"})


def require_token_for_events(request: Request, state: State) -> None:
    """`require_token` for /events too when REASONING_EVENTS_REQUIRE_TOKEN is set (brokers often cannot send one)."""
    if state.settings.events_require_token:
        require_token(request, state)


Authorized = Depends(require_token)
AuthorizedEvents = Depends(require_token_for_events)
