"""create_app(settings): the FastAPI application. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from reasoning_service import __version__
from reasoning_service.errors import ServiceError
from reasoning_service.events import ReplyCache
from reasoning_service.metrics import Metrics
from reasoning_service.middleware import BodyLimit, DecodeJSONBody, HeaderLimit, RequestContext, is_json
from reasoning_service.reasoning import ServiceState
from reasoning_service.registry import ModelRegistry
from reasoning_service.routes import events, health, metrics, reason, stats, tasks, ui
from reasoning_service.routes.mcp import PATH as MCP_PATH
from reasoning_service.routes.mcp import McpEndpoint
from reasoning_service.settings import Settings
from trm.compute import ComputeThread

log = logging.getLogger(__name__)


def load_models(state: ServiceState) -> None:
    """Load and warm up every model in the models directory (runs in a worker thread)."""
    s = state.settings
    paths = state.registry.discover(s.models_dir)
    if not paths:
        log.warning("no models found in %s: every task is answered by its own solver or classical baseline", s.models_dir)
    for path in paths:
        loaded = state.registry.load(
            path, device=s.device, dtype=s.dtype, slots=s.engine_slots, queue_size=s.queue_size, warmup=s.warmup
        )
        if loaded is not None:
            state.metrics.model_loaded.labels(loaded.task.name, loaded.name).set(1)
            state.metrics.model_load_seconds.labels(loaded.name).set(loaded.load_seconds)


# Imported while the models load rather than when the app is created (a cold start pays the two
# side by side): the request path's optional parts, which the first request after /readyz must not wait for.
DEFERRED_IMPORTS = ("reasoning_service.questions",)


def import_deferred() -> None:
    """Import DEFERRED_IMPORTS (runs in a worker thread beside the model loader)."""
    for name in DEFERRED_IMPORTS:
        importlib.import_module(name)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the models in the background (probes answer meanwhile; a failure is kept in `load_error` for /readyz).

    Beside the loader, the MCP SDK is imported and its session manager started before the app serves
    (/mcp answers from the first request), and the deferred imports run; /readyz turns 200 once all are done.
    On shutdown: mark draining, wait for the loader, then stop the engines within `shutdown_grace_seconds`.
    """
    state: ServiceState = app.state.service
    started = time.perf_counter()

    async def load() -> None:
        # both run to their end before an error is recorded (a loader left running would race shutdown)
        results = await asyncio.gather(run_in_threadpool(load_models, state), run_in_threadpool(import_deferred), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:  # keep serving probes and say why in /readyz and the logs
            state.load_error = "; ".join(str(e) for e in errors)
            log.error("loading models failed: %s", state.load_error, exc_info=errors[0])
            return
        if not state.draining:
            state.ready = True
        log.info("ready: %d model(s) in %.1f s", len(state.registry.models), time.perf_counter() - started)

    loader = asyncio.create_task(load())
    app.state.loader = loader
    endpoint: McpEndpoint = app.state.mcp_endpoint
    try:
        mcp_server = await run_in_threadpool(importlib.import_module, "reasoning_service.mcp_server")
        manager = mcp_server.session_manager(state)
        async with manager.run():
            endpoint.manager = manager
            try:
                yield
            finally:
                endpoint.manager = None
    finally:
        state.draining = True
        state.ready = False
        if not loader.done():
            await loader
        # uvicorn has already waited for in-flight requests; this finishes anything left in the engines
        await run_in_threadpool(state.registry.stop, state.settings.shutdown_grace_seconds)
        for m in state.registry.models.values():
            state.metrics.model_loaded.labels(m.task.name, m.name).set(0)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app: routes, MCP at /mcp, error handlers (JSON bodies as ErrorBody) and the middleware stack.

    `settings` defaults to `Settings()` (the environment). Models load in the lifespan, not here.
    """
    settings = settings or Settings()
    app = FastAPI(
        title="agent-reasoning",
        version=__version__,
        description="Tiny Recursive Models for homelab agents: structured problems in, verified answers out.",
        lifespan=lifespan,
    )
    # one thread steps every model (and loads them): see trm/compute.py
    state = ServiceState(settings=settings, metrics=Metrics(), registry=ModelRegistry(compute=ComputeThread(settings.torch_threads)))
    state.metrics.build_info.labels(__version__, torch.__version__).set(1)
    state.metrics.watch_engines(state.registry.engines)
    app.state.service = state
    app.state.event_cache = ReplyCache(settings.event_cache_size)

    for router in (reason.router, tasks.router, events.router, health.router, metrics.router, stats.router):
        app.include_router(router)
    if settings.ui_enabled:
        ui.install(app)
    # MCP (streamable HTTP) at /mcp, over the same request path and bearer token; the lifespan starts it
    app.state.mcp_endpoint = McpEndpoint(state)
    app.router.routes.append(Route(MCP_PATH, endpoint=app.state.mcp_endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False))

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, e: ServiceError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        err = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        field = ".".join(loc) or None
        # malformed JSON is a 400 (its "location" is a byte offset, not a field); a body that
        # parses but breaks the schema is a 422 naming the field
        status, kind = (400, "bad_request") if err.get("type") == "json_invalid" else (422, "invalid_request")
        if status == 400:
            field = None
        detail = f"{field}: {err.get('msg')}" if field else str(err.get("msg"))
        if field is None and status == 422:  # the body as a whole: say why it was not read as a JSON object
            content_type = request.headers.get("content-type", "")
            if not is_json(content_type):
                # not parsed on purpose: a form or text body is a "simple" cross-site request that a browser
                # sends without a CORS preflight (curl -d sends a form content type)
                status, kind = 415, "unsupported_media_type"
                detail = f"send the body as JSON with Content-Type: application/json (got {content_type or 'no Content-Type'!r})"
            elif err.get("type") == "missing":
                status, kind, detail = 400, "bad_request", "the request body is empty: send a JSON object"
            else:
                detail = f"the request body must be a JSON object ({err.get('msg')})"
        state.metrics.requests.labels("unknown", "invalid").inc()
        return JSONResponse({"error": kind, "detail": detail, "field": field}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 413: "too_large", 415: "unsupported_media_type", 431: "headers_too_large"}.get(e.status_code, "bad_request")
        return JSONResponse({"error": kind, "detail": str(e.detail), "field": None}, status_code=e.status_code, headers=getattr(e, "headers", None))

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"])
    # outermost last: RequestContext (ids, logs, the 500 of last resort) > HeaderLimit > BodyLimit > DecodeJSONBody
    app.add_middleware(DecodeJSONBody, on_reject=state.metrics.requests.labels("unknown", "invalid").inc)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, on_reject=state.metrics.requests.labels("unknown", "too_large").inc)
    app.add_middleware(HeaderLimit)
    app.add_middleware(RequestContext)
    _maybe_tracing(app)
    return app


def _maybe_tracing(app: FastAPI) -> None:
    """OpenTelemetry traces when OTEL_EXPORTER_OTLP_ENDPOINT is set and the `otel` extra is installed."""
    import os

    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: pip install 'agent-reasoning[otel]'")
        return
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "agent-reasoning")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,health,ready,metrics")
