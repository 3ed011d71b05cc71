"""CloudEvents in, reply event out (Knative Eventing's reply convention).

A `io.homelab.reasoning.requested` event carries a ReasoningRequest. The HTTP response is the reply
event: `...completed` with the ReasoningResponse or `...failed` with an ErrorBody (status 200: bad
input is final, the broker must not retry). Overload and deadlines answer 503/504 without a reply,
so the broker retries. The reply has another type than the request, so a Trigger cannot loop, and
carries the request's id in the `requestid` extension. Delivery is at least once: a repeated
(source, id) gets the stored reply without solving again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass

from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from reasoning_service.errors import ServiceError
from reasoning_service.reasoning import ServiceState, parse_request, reason

log = logging.getLogger(__name__)

REQUESTED = "io.homelab.reasoning.requested"
COMPLETED = "io.homelab.reasoning.completed"
FAILED = "io.homelab.reasoning.failed"
FORMAT = JSONFormat()


@dataclass
class Reply:
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
        reply = self._done.get(key)
        if reply is not None:
            self._done.move_to_end(key)
        return reply

    def put(self, key: tuple[str, str], reply: Reply) -> None:
        if self.size <= 0:
            return
        self._done[key] = reply
        self._done.move_to_end(key)
        while len(self._done) > self.size:
            self._done.popitem(last=False)


def _error(status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"error": kind, "detail": detail, "field": None}).encode()
    return Reply(status, {"content-type": "application/json", **(headers or {})}, body)


def _reply_event(state: ServiceState, request_event: CloudEvent, kind: str, data: dict, structured: bool) -> Reply:
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


async def handle(state: ServiceState, cache: ReplyCache, headers: dict[str, str], body: bytes) -> Reply:
    metrics = state.metrics
    try:
        event = from_http(HTTPMessage(headers=headers, body=body), FORMAT)
    except Exception as e:  # the SDK raises several types for malformed input; all are the sender's fault
        metrics.events.labels("invalid", "bad_request").inc()
        return _error(400, "bad_request", f"not a CloudEvent: {e}")
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
        reply = await _solve(state, event, structured=not any(k.lower().startswith("ce-") for k in headers))
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


async def _solve(state: ServiceState, event: CloudEvent, structured: bool) -> Reply:
    metrics = state.metrics
    data = event.get_data()
    try:
        if isinstance(data, (bytes, str)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise ServiceError(400, "bad_request", f"event data is not JSON: {e}") from None
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
