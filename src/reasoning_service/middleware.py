"""ASGI middleware: request ids and access logs, the header and body size limits, JSON body decoding."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reasoning_service.logging_setup import request_id
from trm import jsonio

log = logging.getLogger("reasoning_service.access")


def _json_reply(status: int, kind: str, detail: str) -> tuple[Message, Message]:
    body = json.dumps({"error": kind, "detail": detail, "field": None}).encode()
    start: Message = {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


class RequestContext:
    """Give every request an id (X-Request-ID if the caller sent a sane one), echo it, log the request.

    Also the last line of defence: an exception no handler took becomes a JSON 500 that still carries
    the id (Starlette's own 500 is sent outside every middleware, without it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: set the request id, add X-Request-ID to the response, log it, turn an unhandled exception into a JSON 500."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if 0 < len(given) <= 128 and given.isprintable() else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        started_response = False

        async def send_tracked(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            log.exception("unhandled error")
            if started_response:
                raise  # too late for a reply: the server closes the connection
            for message in _json_reply(500, "internal", "internal error; see the service logs"):
                await send_with_id(message)
        finally:
            path = scope.get("path", "")
            if path not in ("/healthz", "/readyz", "/health", "/ready", "/metrics") or status >= 400:
                log.info(
                    "%s %s %d",
                    scope.get("method"),
                    path,
                    status,
                    extra={"fields": {"method": scope.get("method"), "path": path, "status": status, "duration_ms": round(1000 * (time.perf_counter() - started), 2)}},
                )
            request_id.reset(token)


class _TooLarge(StarletteHTTPException):
    """Raised from inside receive() when a streamed body passes the limit. An HTTPException, because
    FastAPI re-raises those from body parsing (any other error there becomes a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body exceeds {max_bytes} bytes")


class BodyLimit:
    """413 for bodies over the limit, by Content-Length or by counting a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: Callable[[], None] | None = None) -> None:
        self.app, self.max_bytes, self.on_reject = app, max_bytes, on_reject

    def _count(self) -> None:
        if self.on_reject is not None:
            self.on_reject()

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": "too_large", "detail": f"the request body exceeds {self.max_bytes} bytes", "field": None}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: 413 (JSON) when Content-Length or the streamed body exceeds `max_bytes`, else pass through."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_bytes:
                    self._count()
                    return await self._reject(send)
            except ValueError:
                pass
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    self._count()  # counted here, once: the app's HTTPException handler renders the 413
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)


class HeaderLimit:
    """431 when the request's header block is too large: one field over `max_field_bytes` or all
    together over `max_total_bytes` (name + value bytes), or more than `max_count` fields.

    uvicorn's httptools parser has no limit of its own; `python -m reasoning_service` also caps the
    raw header block at the transport (h11), this middleware gives every server the same clear answer."""

    def __init__(self, app: ASGIApp, max_field_bytes: int = 8192, max_total_bytes: int = 32768, max_count: int = 100) -> None:
        self.app, self.max_field, self.max_total, self.max_count = app, max_field_bytes, max_total_bytes, max_count

    def problem(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """What is too large about `headers`, or None."""
        if len(headers) > self.max_count:
            return f"{len(headers)} header fields; at most {self.max_count}"
        total = 0
        for name, value in headers:
            size = len(name) + len(value)
            if size > self.max_field:
                return f"header {name[:64].decode('latin-1')!r} is {size} bytes; at most {self.max_field} per field"
            total += size
        if total > self.max_total:
            return f"the headers take {total} bytes; at most {self.max_total} in all"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: 431 (JSON) naming what is too large, else pass through."""
        if scope["type"] == "http":
            problem = self.problem(list(scope.get("headers") or []))
            if problem is not None:
                for message in _json_reply(431, "headers_too_large", problem):
                    await send(message)
                return
        await self.app(scope, receive, send)


def is_json(content_type: str) -> bool:
    """Whether a Content-Type header names JSON (application/json or application/*+json, any parameters)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class DecodeJSONBody:
    """Decode JSON request bodies with trm.jsonio before the app sees them, so that every input path
    treats the same bytes the same way: 415 for another charset or a compressed body, 400 saying what
    is wrong for invalid UTF-8, a UTF-16/32 body, truncated or malformed JSON; a UTF-8 byte-order mark
    is dropped. Bodies without a JSON content type (FastAPI does not parse them) and the paths in
    `skip` (POST /events decodes its own: a bad event body is a `failed` reply there) pass untouched.
    Runs inside BodyLimit, which bounds what is buffered here."""

    def __init__(self, app: ASGIApp, skip: tuple[str, ...] = ("/events",), on_reject: Callable[[], None] | None = None) -> None:
        self.app, self.skip, self.on_reject = app, skip, on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: buffer and decode a JSON body (400/415 as described on the class), then hand the app the canonical UTF-8 bytes."""
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH") or scope.get("path") in self.skip:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if content_type and not is_json(content_type):
            return await self.app(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                jsonio.check_media(content_type, headers.get(b"content-encoding", b"").decode("latin-1"))
                body = jsonio.decode_text(body).encode()
                jsonio.loads(body)
            except jsonio.DecodeError as e:
                if self.on_reject is not None:
                    self.on_reject()
                status, kind = (415, "unsupported_media_type") if e.unsupported else (400, "bad_request")
                for reply in _json_reply(status, kind, str(e)):
                    await send(reply)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
