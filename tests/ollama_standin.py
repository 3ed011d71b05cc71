"""A stand-in Ollama server for tests: Ollama's real HTTP wire format, scripted answers.

No model weights can be fetched here, so the "model" is a script: a function of the request body
that returns what the model would say (text, JSON text, or tool calls). Everything around it is
Ollama's `/api/chat` as it is on the wire:

- request: {model, messages[{role, content, tool_calls?, tool_name?}], tools?, format?: "json" | JSON
  schema, stream?: bool (default true), options?};
- response (stream false): {model, created_at, message{role: "assistant", content, tool_calls?[{id,
  function{index, name, arguments: <object>}}]}, done: true, done_reason, total_duration,
  load_duration, prompt_eval_count, prompt_eval_duration, eval_count, eval_duration};
  stream true: NDJSON chunks with done false, then the final one with done true and the counters;
- `format` output is JSON text in message.content; tool-call arguments are JSON objects, not text;
- errors: {"error": "..."} with 400 (bad request) or 404 (model not pulled).

Like real Ollama, whose sampler is constrained to the `format` schema, the stand-in never returns
content that breaks the schema: a script that tries gets a 500 that names the violation, so a test
whose schema and scripted answer disagree fails loudly. A script can return Reply(truncated=True)
for output cut at num_predict (done_reason "length"), the one way real Ollama returns broken JSON.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jsonschema
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Reply:
    """What the scripted model says: `content` text, or `tool_calls` [(name, arguments dict)]."""

    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    truncated: bool = False  # cut at num_predict: content is returned half-way, done_reason "length"


Script = Callable[[dict[str, Any]], Reply]


def last_user_text(body: dict[str, Any]) -> str:
    """The content of the last user message of a chat request."""
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            return str(m.get("content", ""))
    return ""


class OllamaStandIn:
    """The stand-in's state: the models it "has", the script, and every request it received."""

    def __init__(self, script: Script, models: tuple[str, ...] = ("qwen3:8b",)) -> None:
        self.script = script
        self.models = models
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/chat", self.chat, methods=["POST"]),
                Route("/api/tags", self.tags, methods=["GET"]),
                Route("/api/version", self.version, methods=["GET"]),
                Route("/", lambda _: Response("Ollama is running"), methods=["GET"]),
            ]
        )

    async def version(self, _: Request) -> JSONResponse:
        return JSONResponse({"version": "0.12.6"})

    async def tags(self, _: Request) -> JSONResponse:
        now = _now()
        return JSONResponse(
            {"models": [{"name": m, "model": m, "modified_at": now, "size": 5_200_000_000, "digest": "0" * 64, "details": {"format": "gguf", "family": m.split(":")[0]}} for m in self.models]}
        )

    async def chat(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError as e:
            return JSONResponse({"error": f"invalid character in request body: {e}"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "json: cannot unmarshal into Go value of type api.ChatRequest"}, status_code=400)
        self.requests.append(body)
        model = body.get("model")
        if not model:
            return JSONResponse({"error": "model is required"}, status_code=400)
        if model not in self.models:
            return JSONResponse({"error": f'model "{model}" not found, try pulling it first'}, status_code=404)
        messages = body.get("messages")
        if not isinstance(messages, list) or any(not isinstance(m, dict) or "role" not in m for m in messages):
            return JSONResponse({"error": "messages: each message needs a role"}, status_code=400)
        fmt = body.get("format")
        reply = self.script(body)
        if fmt and not reply.tool_calls and not reply.truncated:
            try:
                data = json.loads(reply.content)
                if isinstance(fmt, dict):
                    jsonschema.validate(data, fmt)
            except (ValueError, jsonschema.ValidationError) as e:
                msg = e.message if isinstance(e, jsonschema.ValidationError) else str(e)
                return JSONResponse({"error": f"stand-in: the scripted reply breaks the request's format (real Ollama cannot): {msg}"}, status_code=500)
        offered = {t.get("function", {}).get("name") for t in body.get("tools") or []}
        for name, _ in reply.tool_calls:
            if name not in offered:
                return JSONResponse({"error": f"stand-in: the script calls {name!r}, which the request did not offer"}, status_code=500)
        content = reply.content[: max(1, len(reply.content) // 2)] if reply.truncated else reply.content
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{next(self._ids):08x}", "function": {"index": i, "name": name, "arguments": args}} for i, (name, args) in enumerate(reply.tool_calls)
            ]
        final = {
            "model": model,
            "created_at": _now(),
            "message": message,
            "done": True,
            "done_reason": "length" if reply.truncated else "stop",
            "total_duration": 812_345_678,
            "load_duration": 12_345_678,
            "prompt_eval_count": sum(len(str(m.get("content", ""))) // 4 for m in messages),
            "prompt_eval_duration": 200_000_000,
            "eval_count": max(1, len(content) // 4),
            "eval_duration": 600_000_000,
        }
        if body.get("stream", True) is False:
            return JSONResponse(final)

        def chunks() -> Iterator[bytes]:
            # streamed: the text in pieces with done false, tool calls in one chunk, then the counters
            for i in range(0, len(content), 16):
                piece = {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": content[i : i + 16]}, "done": False}
                yield (json.dumps(piece) + "\n").encode()
            if reply.tool_calls:
                yield (json.dumps({"model": model, "created_at": _now(), "message": {"role": "assistant", "content": "", "tool_calls": message["tool_calls"]}, "done": False}) + "\n").encode()
            yield (json.dumps(final | {"message": {"role": "assistant", "content": ""}}) + "\n").encode()

        return StreamingResponse(chunks(), media_type="application/x-ndjson")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def running_ollama(script: Script, models: tuple[str, ...] = ("qwen3:8b",)) -> Iterator[tuple[str, OllamaStandIn]]:
    """Serve a stand-in on a free port of 127.0.0.1; yields (base URL, the stand-in)."""
    standin = OllamaStandIn(script, models)
    server = uvicorn.Server(uvicorn.Config(standin.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the Ollama stand-in did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", standin
    finally:
        server.should_exit = True
        thread.join(timeout=10)
