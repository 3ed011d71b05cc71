"""POST /events: CloudEvents (binary or structured mode); the reply event is the HTTP response."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from reasoning_service import events
from reasoning_service.deps import AuthorizedEvents, State

router = APIRouter(dependencies=[AuthorizedEvents], tags=["events"])


@router.post(
    "/events",
    summary="CloudEvent io.homelab.reasoning.requested -> reply event",
    responses={200: {"description": "The reply CloudEvent (completed or failed)"}, 400: {"description": "Not a CloudEvent, or an unsupported type"}, 503: {"description": "Overloaded: retry"}},
)
async def receive_event(request: Request, state: State) -> Response:
    """Answer one CloudEvent with its reply event (200), or 400/415 for a request that is not one, or 503/504 to have the broker retry."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    reply = await events.handle(state, request.app.state.event_cache, headers, body)
    return Response(content=reply.body, status_code=reply.status, headers=reply.headers)
