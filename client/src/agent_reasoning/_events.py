"""CloudEvents encoding of reasoning requests and decoding of the service's reply events."""

from __future__ import annotations

from typing import Literal

import httpx
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from ._errors import ReasoningError, error_for_body
from .types import ErrorBody, ReasoningRequest, ReasoningResponse

REQUESTED = "io.homelab.reasoning.requested"
COMPLETED = "io.homelab.reasoning.completed"
FAILED = "io.homelab.reasoning.failed"
DEFAULT_SOURCE = "agent-reasoning-client"

Mode = Literal["binary", "structured"]

_FORMAT = JSONFormat()


def request_event(request: ReasoningRequest, source: str) -> CloudEvent:
    """A "requested" event; the SDK fills in id, time and specversion."""
    attributes = {"type": REQUESTED, "source": source, "datacontenttype": "application/json"}
    if request.conversation_id is not None:
        # Also as an attribute, so broker triggers can route on it without reading the data.
        attributes["conversationid"] = request.conversation_id
    return CloudEvent(attributes, request.model_dump(mode="json", exclude_none=True))


def encode(event: CloudEvent, mode: Mode) -> HTTPMessage:
    """The event as an HTTP message: "binary" (attributes in ce-* headers, the request as the body) or "structured" (one JSON envelope).

    Raises ValueError for another mode.
    """
    if mode == "binary":
        return to_binary(event, _FORMAT)
    if mode == "structured":
        return to_structured(event, _FORMAT)
    raise ValueError(f"mode must be 'binary' or 'structured', not {mode!r}")


def decode_reply(response: httpx.Response, request_id: str) -> ReasoningResponse:
    """The ReasoningResponse in a "completed" reply; a "failed" reply raises its typed error."""
    if not response.content:
        raise ReasoningError(
            f"{response.request.url} accepted the event (HTTP {response.status_code}) but sent no reply event; "
            "send to the service itself, or use emit() to fire and forget"
        )
    try:
        event = from_http(HTTPMessage(headers=dict(response.headers), body=response.content), _FORMAT)
    except (ValueError, BaseCloudEventException) as exc:
        raise ReasoningError(f"the reply from {response.request.url} is not a CloudEvent: {exc}") from exc
    reply_to = event.get_extension("requestid")
    if reply_to is not None and reply_to != request_id:
        raise ReasoningError(f"the reply answers event {reply_to!r}, not {request_id!r}")
    event_type = event.get_type()
    if event_type not in (COMPLETED, FAILED):
        raise ReasoningError(f"unexpected reply event type {event_type!r}")
    model: type[ReasoningResponse | ErrorBody] = ReasoningResponse if event_type == COMPLETED else ErrorBody
    try:
        payload = model.model_validate(event.get_data())
    except ValidationError as exc:
        raise ReasoningError(f"the {event_type!r} reply's data does not fit {model.__name__}: {exc}") from exc
    if isinstance(payload, ErrorBody):
        raise error_for_body(payload, response.status_code)
    return payload
