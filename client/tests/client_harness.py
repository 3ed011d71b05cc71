"""Helpers of the client tests: canned service answers, reply events, and a harness that runs a test on both clients."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from agent_reasoning import ReasoningClient, SyncReasoningClient

Handler = Callable[[httpx.Request], httpx.Response]

BASE = "http://reasoning.test"


def response_body(**overrides: Any) -> dict[str, Any]:
    """A ReasoningResponse as the service sends it."""
    body: dict[str, Any] = {
        "answer": "534678912\n...",
        "solution": {"solution": "5" * 81, "grid": [[5] * 9] * 9},
        "verified": True,
        "violations": [],
        "solved_by": "trm",
        "steps": 3,
        "halted": True,
        "confidence": 0.97,
        "reasoning_trace": [],
        "duration_ms": 12.5,
        "queue_ms": 0.4,
        "task_type": "logic",
        "task": "sudoku",
        "model": {"name": "sudoku-trm", "version": "1"},
    }
    return body | overrides


def error(status: int, kind: str, detail: str, field: str | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": kind, "detail": detail, "field": field}, headers=headers)


def posted_event(request: httpx.Request) -> CloudEvent:
    """Parse a request back with the SDK, as the service does."""
    event = from_http(HTTPMessage(headers=dict(request.headers), body=request.content), JSONFormat())
    assert isinstance(event, CloudEvent)
    return event


def reply(request: httpx.Request, event_type: str, data: dict[str, Any], mode: str = "binary", **extensions: str) -> httpx.Response:
    """The service's answer to a posted event: a reply event that names the request's id."""
    attributes = {
        "type": event_type,
        "source": "/agent-reasoning",
        "datacontenttype": "application/json",
        "requestid": posted_event(request).get_id(),
        **extensions,
    }
    message = (to_binary if mode == "binary" else to_structured)(CloudEvent(attributes, data), JSONFormat())
    return httpx.Response(200, headers=message.headers, content=message.body)


class Harness:
    """Builds a sync or async client around a handler; `call` runs a method of either kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sleeps: list[float] = []
        self.requests: list[httpx.Request] = []

    def client(self, handler: Handler, **kwargs: Any) -> ReasoningClient | SyncReasoningClient:
        def recording(request: httpx.Request) -> httpx.Response:
            request.read()
            self.requests.append(request)
            return handler(request)

        transport = httpx.MockTransport(recording)
        kwargs.setdefault("base_url", BASE)
        if self.kind == "sync":
            return SyncReasoningClient(http_client=httpx.Client(transport=transport), sleep=self.sleeps.append, **kwargs)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        return ReasoningClient(http_client=httpx.AsyncClient(transport=transport), sleep=sleep, **kwargs)

    async def call(self, client: ReasoningClient | SyncReasoningClient, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(client, method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)
