"""One reasoning request, start to finish; shared by the HTTP routes and the CloudEvents handler.

validate -> pick model -> parse problem -> engine (continuous batch) -> decode/verify/fallback/render.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from agent_reasoning.types import ModelInfo, ReasoningRequest, ReasoningResponse, ReasoningStep
from reasoning_service.errors import ServiceError, outcome_of
from reasoning_service.metrics import Metrics
from reasoning_service.registry import ModelRegistry, NotFound
from reasoning_service.settings import Settings
from trm.engine import DeadlineExceededError, EngineStoppedError, QueueFullError
from trm.inference import finish, vote
from trm.tasks import InvalidProblem

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics
    registry: ModelRegistry = field(default_factory=ModelRegistry)
    ready: bool = False
    draining: bool = False
    load_error: str | None = None


def parse_request(raw: object) -> ReasoningRequest:
    """Validate a request body; a 422 names the first field at fault."""
    try:
        return ReasoningRequest.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        raise ServiceError(422, "invalid_request", f"{loc + ': ' if loc else ''}{err['msg']}", field=loc) from None


def _unavailable(state: ServiceState, task: str) -> ServiceError | None:
    # While draining, requests already received are still served (uvicorn accepts no new
    # connections and /readyz says 503); only the stopped engines turn work away.
    retry = {"Retry-After": str(state.settings.retry_after_seconds)}
    if not state.ready and not state.draining:
        state.metrics.rejections.labels(task, "loading").inc()
        return ServiceError(503, "overloaded", "models are still loading", headers=retry)
    return None


def _label(state: ServiceState, request: ReasoningRequest) -> str:
    """The metrics label for a request: a loaded task's name or a task type, never a free string a
    caller chose (that would let any client grow the series without bound)."""
    known = {m.task.name for m in state.registry.models.values()}
    if request.task:
        return request.task if request.task in known else "unknown"
    return request.task_type.value if request.task_type else "unknown"


async def reason(state: ServiceState, request: ReasoningRequest) -> ReasoningResponse:
    """Solve one request. Raises ServiceError; records the request metrics either way."""
    started = time.perf_counter()
    label = _label(state, request)
    try:
        response = await _reason(state, request, label)
    except ServiceError as e:
        state.metrics.requests.labels(label, outcome_of(e.kind)).inc()
        raise
    except Exception:
        state.metrics.requests.labels(label, "error").inc()
        raise
    elapsed = time.perf_counter() - started
    response.duration_ms = round(1000 * elapsed, 3)
    m, task = state.metrics, response.task
    m.requests.labels(task, "ok").inc()
    m.duration.labels(task).observe(elapsed)
    m.steps.labels(task).observe(response.steps)
    m.confidence.labels(task).observe(response.confidence)
    m.verified.labels(task, {True: "true", False: "false", None: "unchecked"}[response.verified]).inc()
    if response.solved_by == "baseline":
        m.fallbacks.labels(task).inc()
    return response


async def _reason(state: ServiceState, request: ReasoningRequest, label: str) -> ReasoningResponse:
    unavailable = _unavailable(state, label)
    if unavailable:
        raise unavailable
    settings = state.settings
    deadline_ms = request.deadline_ms or settings.default_deadline_ms
    deadline = time.monotonic() + deadline_ms / 1000
    try:
        model, problem = await run_in_threadpool(
            state.registry.resolve, task=request.task, task_type=request.task_type, model=request.model, problem=request.problem
        )
    except NotFound as e:
        raise ServiceError(404, e.kind, e.message) from None
    except InvalidProblem as e:
        raise ServiceError(422, "invalid_problem", str(e), field=e.field) from None
    task = model.task
    if request.max_steps and request.min_steps and request.min_steps > request.max_steps:
        raise ServiceError(422, "invalid_request", "min_steps must not exceed max_steps", field="min_steps")
    views = task.views(request.views or int(model.config.get("inference", {}).get("views", 1)))
    if request.views and request.views > len(views):
        raise ServiceError(422, "invalid_request", f"views: the {task.name} task has at most {len(views)}", field="views")
    tokens = task.encode(problem)
    futures = []
    try:
        try:
            for view in views:
                futures.append(
                    model.engine.submit(
                        view.apply(tokens),
                        max_steps=request.max_steps,
                        min_steps=request.min_steps,
                        threshold=request.halt_threshold,
                        deadline=deadline,
                        trace=request.trace,
                        probs=task.needs_probs,
                    )
                )
        except QueueFullError:
            state.metrics.rejections.labels(task.name, "queue_full").inc()
            raise ServiceError(503, "overloaded", f"the {task.name} queue is full; retry later", headers={"Retry-After": str(settings.retry_after_seconds)}) from None
        except EngineStoppedError:
            state.metrics.rejections.labels(task.name, "draining").inc()
            raise ServiceError(503, "overloaded", "the service is shutting down", headers={"Retry-After": str(settings.retry_after_seconds)}) from None
        try:
            # the engine cuts at the deadline itself; the extra second only covers hand-over
            results = await asyncio.wait_for(asyncio.gather(*(asyncio.wrap_future(f) for f in futures)), timeout=deadline_ms / 1000 + 1.0)
        except (DeadlineExceededError, asyncio.TimeoutError):
            raise ServiceError(504, "deadline_exceeded", f"no answer within deadline_ms={deadline_ms}", field="deadline_ms") from None
        except EngineStoppedError:
            raise ServiceError(503, "overloaded", "the service is shutting down", headers={"Retry-After": str(settings.retry_after_seconds)}) from None
    except BaseException:
        # whatever ends the request here (an error above, one view failing, the client going away:
        # CancelledError), its other views must not keep their queue places and slots
        for f in futures:
            f.cancel()
        raise
    result = vote(views, results) if len(views) > 1 else results[0]
    if any(r.cut_reason == "deadline" for r in results):
        raise ServiceError(504, "deadline_exceeded", f"no answer within deadline_ms={deadline_ms} ({result.steps} steps done)", field="deadline_ms")
    state.metrics.queue_wait.labels(task.name).observe(result.queue_seconds)
    state.metrics.compute.labels(task.name).observe(result.compute_seconds)
    try:
        answer = await run_in_threadpool(finish, task, problem, result, request.fallback)
    except InvalidProblem as e:  # found unsolvable once the model's answer failed its check
        raise ServiceError(422, "invalid_problem", str(e), field=e.field) from None
    return ReasoningResponse(
        answer=answer.answer,
        solution=answer.solution,
        verified=answer.verified,
        violations=answer.violations,
        solved_by=answer.solved_by,
        steps=answer.steps,
        halted=answer.halted,
        confidence=round(answer.confidence, 6),
        views=answer.views,
        votes=answer.votes,
        reasoning_trace=[ReasoningStep(**s) for s in answer.trace],
        queue_ms=round(1000 * result.queue_seconds, 3),
        task_type=task.task_type,
        task=task.name,
        model=ModelInfo(name=model.name, version=model.version),
        conversation_id=request.conversation_id,
        question=request.question,
    )
