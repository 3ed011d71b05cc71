"""CloudEvents in, reply event out (Knative Eventing's reply convention).

A `io.homelab.reasoning.requested` event carries a ReasoningRequest. The HTTP response is the reply
event: `...completed` with the ReasoningResponse or `...failed` with an ErrorBody (status 200: bad
input is final, the broker must not retry). Overload and deadlines answer 503/504 without a reply,
so the broker retries. The reply has another type than the request, so a Trigger cannot loop, and
carries the request's id in the `requestid` extension. Delivery is at least once: a repeated
(source, id) gets the stored reply without solving again.

A request that is not one CloudEvent 1.0 (a required context attribute missing or empty, another
spec version, batch mode, an envelope that is not UTF-8 JSON) is a 400 without a reply event, as is
an unknown type; event data that does not decode (trm.jsonio, as for POST /v1/reason) is a `failed`
reply. Nothing a sender puts in a request answers 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import CE_PREFIX, HTTPMessage, from_binary, from_structured, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse  # type: ignore[import-untyped]  # the SDK's own parser for `time`

from reasoning_service.errors import ServiceError
from reasoning_service.reasoning import ServiceState, parse_request, reason
from trm import jsonio

log = logging.getLogger(__name__)

REQUESTED = "io.homelab.reasoning.requested"
COMPLETED = "io.homelab.reasoning.completed"
FAILED = "io.homelab.reasoning.failed"
FORMAT = JSONFormat()
SPECVERSION = "1.0"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


@dataclass
class Reply:
    """An HTTP answer to POST /events: status, headers and body bytes (a reply event or an ErrorBody)."""

    status: int
    headers: dict[str, str]
    body: bytes


class ReplyCache:
    """Bounded LRU of replies by (source, id), plus the events being solved right now."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._done: OrderedDict[tuple[str, str], Reply] = OrderedDict()
        self.inflight: dict[tuple[str, str], asyncio.Future[Reply]] = {}

    def get(self, key: tuple[str, str]) -> Reply | None:
        """The stored reply for (source, id), marking it recently used; None if not stored."""
        reply = self._done.get(key)
        if reply is not None:
            self._done.move_to_end(key)
        return reply

    def put(self, key: tuple[str, str], reply: Reply) -> None:
        """Store the reply for (source, id), evicting the least recently used past `size` (size <= 0 stores nothing)."""
        if self.size <= 0:
            return
        self._done[key] = reply
        self._done.move_to_end(key)
        while len(self._done) > self.size:
            self._done.popitem(last=False)


def _error(status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"error": kind, "detail": detail, "field": None}).encode()
    return Reply(status, {"content-type": "application/json", **(headers or {})}, body)


def _reply_event(state: ServiceState, request_event: BaseCloudEvent, kind: str, data: dict, structured: bool) -> Reply:
    attributes = {
        "type": kind,
        "source": state.settings.event_source,
        "datacontenttype": "application/json",  # the SDK sends no content type unless told
        "requestid": request_event.get_id(),
    }
    conversation = data.get("conversation_id") if kind == COMPLETED else None
    if conversation is None:
        conversation = request_event.get_extension("conversationid")
    if conversation:
        attributes["conversationid"] = str(conversation)
    subject = request_event.get_subject()
    if subject:
        attributes["subject"] = subject
    event = CloudEvent(attributes=attributes, data=data)
    message = to_structured(event, FORMAT) if structured else to_binary(event, FORMAT)
    return Reply(200, dict(message.headers), message.body)


class EventError(Exception):
    """The request is not one CloudEvent this service takes: answered `status` with no reply event."""

    def __init__(self, status: int, kind: str, detail: str, outcome: str = "bad_request") -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.outcome = status, kind, detail, outcome


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def parse_event(headers: dict[str, str], body: bytes) -> tuple[BaseCloudEvent, bool]:
    """An HTTP request (lower-case header names) -> (the CloudEvent, whether it came in binary mode).

    Checks what the SDK fills in or lets pass: every required context attribute (`id`, `source`,
    `type`, `specversion`) present and a non-empty string, `specversion` 1.0, one event (no batch).
    In binary mode the event's data is the raw body (decoded later, where a problem is a `failed`
    reply); in structured mode the body is the envelope and must be UTF-8 JSON. Raises EventError.
    """
    content_type = headers.get("content-type", "")
    if _media_type(content_type) == BATCH:
        raise EventError(400, "bad_request", f"batch mode ({BATCH}) is not supported: send one event per request, in binary or structured mode", "batch")
    try:
        jsonio.check_media(None, headers.get("content-encoding"), "the event")
    except jsonio.DecodeError as e:
        raise EventError(415, "unsupported_media_type", str(e)) from None
    binary = any(k.startswith(CE_PREFIX) for k in headers)
    if binary:
        attributes = {k[len(CE_PREFIX) :]: unquote(v) for k, v in headers.items() if k.startswith(CE_PREFIX)}
        _check_context(attributes, where="header ce-")
        message = HTTPMessage(headers=headers, body=b"")  # the data is decoded by _solve, from the raw body
    else:
        try:
            jsonio.check_media(content_type, None, "a structured event")
            envelope = jsonio.loads(body, "the event")
        except jsonio.DecodeError as e:
            raise EventError(415 if e.unsupported else 400, "unsupported_media_type" if e.unsupported else "bad_request", f"not a CloudEvent: {e}") from None
        if isinstance(envelope, list):
            raise EventError(400, "bad_request", "batch mode (a JSON array of events) is not supported: send one event per request, in binary or structured mode", "batch")
        if not isinstance(envelope, dict):
            raise EventError(400, "bad_request", f"not a CloudEvent: a structured event is a JSON object ({STRUCTURED}), got {type(envelope).__name__}; or send binary mode (ce-* headers)")
        _check_context(envelope, where="attribute ")
        message = HTTPMessage(headers={"content-type": content_type}, body=json.dumps(envelope).encode())
    try:
        event = from_binary(message, FORMAT, CloudEvent) if binary else from_structured(message, FORMAT, CloudEvent)
        if binary:
            event = CloudEvent(attributes=event.get_attributes(), data=body or None)
    except Exception as e:  # the SDK raises several types (time format, extension names, base64); all the sender's fault
        raise EventError(400, "bad_request", f"not a valid CloudEvent: {_sdk_message(e)}") from None
    return event, binary


def _check_context(attributes: Mapping[str, object], where: str) -> None:
    for name in ("specversion", "id", "source", "type"):
        value = attributes.get(name)
        if value is None:
            raise EventError(400, "bad_request", f"{where}{name} is missing; a CloudEvent needs specversion, id, source and type")
        if not isinstance(value, str) or not value:
            raise EventError(400, "bad_request", f"{where}{name} must be a non-empty string")
    if attributes["specversion"] != SPECVERSION:
        raise EventError(400, "bad_request", f"{where}specversion {attributes['specversion']!r} is not supported; send {SPECVERSION!r}")
    when = attributes.get("time")
    if when is not None:
        try:
            isoparse(when) if isinstance(when, str) else None
        except (ValueError, OverflowError):
            raise EventError(400, "bad_request", f"{where}time {when!r} is not an RFC 3339 timestamp") from None


def _sdk_message(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text[:300] or type(e).__name__


async def handle(state: ServiceState, cache: ReplyCache, headers: dict[str, str], body: bytes) -> Reply:
    """One POST /events (header names lower-case) -> the reply: an event, or an error without one."""
    metrics = state.metrics
    try:
        event, binary = parse_event(headers, body)
    except EventError as e:
        metrics.events.labels("invalid", e.outcome).inc()
        return _error(e.status, e.kind, e.detail)
    kind = event.get_type()
    if kind != REQUESTED:
        metrics.events.labels("other", "unknown_type").inc()  # never the sender's string: bounded series
        return _error(400, "bad_request", f"unsupported event type {kind!r}; send {REQUESTED!r}")
    key = (event.get_source(), event.get_id())
    stored = cache.get(key)
    if stored is not None:
        metrics.events.labels(kind, "duplicate").inc()
        return stored
    running = cache.inflight.get(key)
    if running is not None:  # the same event delivered twice at once: one solve, one reply
        metrics.events.labels(kind, "duplicate").inc()
        return await asyncio.shield(running)
    future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
    cache.inflight[key] = future
    try:
        reply = await _solve(state, event, structured=not binary, content_type=headers.get("content-type") if binary else None)
        if reply.status == 200:
            cache.put(key, reply)
        future.set_result(reply)
        return reply
    except BaseException as e:
        future.set_exception(e)
        future.exception()  # mark retrieved: a lone waiter-less failure must not log noise
        raise
    finally:
        cache.inflight.pop(key, None)


async def _solve(state: ServiceState, event: BaseCloudEvent, structured: bool, content_type: str | None = None) -> Reply:
    metrics = state.metrics
    data = event.get_data()
    try:
        if isinstance(data, (bytes, str)):
            # the same decoding as POST /v1/reason and `trm solve`: the same bytes get the same verdict
            try:
                jsonio.check_media(content_type, None, "the event data")
                data = jsonio.loads(data, "the event data")
            except jsonio.DecodeError as e:
                kind = "unsupported_media_type" if e.unsupported else "bad_request"
                raise ServiceError(415 if e.unsupported else 400, kind, str(e)) from None
        if not isinstance(data, dict):
            raise ServiceError(422, "invalid_request", "event data must be a ReasoningRequest object")
        response = await reason(state, parse_request(data))
    except ServiceError as e:
        if e.status in (503, 504):  # transient: let the broker retry
            metrics.events.labels(REQUESTED, "overloaded" if e.status == 503 else "deadline").inc()
            return _error(e.status, e.kind, e.detail, e.headers)
        metrics.events.labels(REQUESTED, "failed").inc()
        return _reply_event(state, event, FAILED, e.body(), structured)
    metrics.events.labels(REQUESTED, "completed").inc()
    return _reply_event(state, event, COMPLETED, response.model_dump(mode="json"), structured)
