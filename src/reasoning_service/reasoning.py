"""One reasoning request, start to finish; shared by the HTTP routes and the CloudEvents handler.

validate -> build the problem (when only a question came) -> route (a model, or the task's solver) ->
engine (continuous batch) -> trm.pipeline.finish (decode, verify, better of TRM and classical, render).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from agent_reasoning.types import ModelInfo, ReasoningRequest, ReasoningResponse, ReasoningStep
from reasoning_service.errors import ServiceError, outcome_of
from reasoning_service.metrics import Metrics
from reasoning_service.registry import LoadedModel, Mismatch, ModelRegistry, NotFound
from reasoning_service.settings import Settings
from reasoning_service.unread import unread_fields
from trm.engine import DeadlineExceededError, EngineStoppedError, QueueFullError
from trm.pipeline import AnswerOptions, InvalidOption, finish, plan_attempts, solve_without_model
from trm.tasks import InvalidProblem, task_classes
from trm.tasks.common import LimitReached
from trm.testtime import Outcome, run_attempts

if TYPE_CHECKING:
    from reasoning_service.questions import BuiltProblem

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ServiceState:
    """What the request path shares: settings, metrics, the model registry, and readiness (`ready`, `draining`, `load_error` for /readyz)."""

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
    known = task_classes()
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
    if response.model is not None:
        m.steps.labels(task).observe(response.steps)
        m.confidence.labels(task).observe(response.confidence)
        m.attempts.labels(task).observe(response.attempts)
        m.chosen.labels(task, response.chosen_by, response.strategy).inc()
    m.verified.labels(task, {True: "true", False: "false", None: "unchecked"}[response.verified]).inc()
    if response.model is not None and response.solved_by != "trm":
        m.fallbacks.labels(task).inc()
    return response


async def _reason(state: ServiceState, request: ReasoningRequest, label: str) -> ReasoningResponse:
    unavailable = _unavailable(state, label)
    if unavailable:
        raise unavailable
    settings = state.settings
    deadline_ms = request.deadline_ms or settings.default_deadline_ms
    deadline = time.monotonic() + deadline_ms / 1000
    if request.max_steps and request.min_steps and request.min_steps > request.max_steps:
        raise ServiceError(422, "invalid_request", "min_steps must not exceed max_steps", field="min_steps")
    built: BuiltProblem | None = None
    task_name, task_type, raw_problem = request.task, request.task_type, request.problem
    if raw_problem is None:
        if request.task is not None:  # 404 for unknown names, as with a problem
            try:
                state.registry.task_class(request.task)
            except NotFound as e:
                raise ServiceError(404, e.kind, e.message) from None
        from reasoning_service.questions import build_problem  # imported beside the model loader (app.DEFERRED_IMPORTS)

        # a question about the cluster: the providers build the problem and name the task that answers
        # it (planning an app's replicas is a placement, whatever the question's type)
        built = await _within_deadline(build_problem(state, request), deadline, deadline_ms)
        task_name, task_type, raw_problem = built.task, None, built.problem
    try:
        route = await run_in_threadpool(state.registry.resolve, task=task_name, task_type=task_type, model=request.model, problem=raw_problem)
    except NotFound as e:
        raise ServiceError(404, e.kind, e.message) from None
    except Mismatch as e:
        raise ServiceError(422, "invalid_request", f"{e.field}: {e.message}", field=e.field) from None
    except InvalidProblem as e:
        raise ServiceError(422, "invalid_problem", str(e), field=e.field) from None
    task, problem = route.task, route.problem
    result: Outcome | None = None
    budget_s = 0.0
    notes: list[str] = []  # what the caller should hear about how the answer came about (warnings)
    try:
        if route.model is not None:
            result = await _run_model(state, route.model, problem, request, deadline, deadline_ms)
            if result is None:
                notes.append(f"deadline_ms: the model had no time for a step within {deadline_ms} ms; the task's solver answered")
            elif result.cut_reason == "deadline":
                notes.append(
                    f"deadline_ms: the model was cut at the deadline after {result.steps} supervision steps; its plan at that step, "
                    "checked, is the answer (or the classical one where better)"
                )
            elif result.attempts > result.views:
                notes.append(f"deadline_ms: {result.views} of the {result.attempts} attempts started finished before the deadline")
        else:  # size is never a 422: the solver answers, and the options it cannot honour are named
            notes += [
                f"{name}: {route.why_no_model}; the task's {task.name} solver answered, without {name}"
                for name in ("views", "attempts")
                if (getattr(request, name) or 1) > 1
            ]
        budget_s = _budget(request, settings, deadline)  # what the model left of the deadline
        options = AnswerOptions(fallback=request.fallback, mode=request.mode or "fast", budget_s=budget_s)
        if result is None:
            answer = await _within_deadline(run_in_threadpool(solve_without_model, task, problem, options), deadline, deadline_ms)
        else:
            answer = await _within_deadline(run_in_threadpool(finish, task, problem, result, options), deadline, deadline_ms)
    except InvalidProblem as e:  # found unsolvable (the model's answer failed its check, or the solver found none)
        raise ServiceError(422, "invalid_problem", str(e), field=e.field) from None
    except (LimitReached, TimeoutError):  # the solver found no answer in its time (nor did the classical start)
        raise ServiceError(
            504,
            "deadline_exceeded",
            f"the {task.name} solver found no answer within {budget_s:.3g} s; give a larger budget_ms (or deadline_ms)",
            field="budget_ms",
        ) from None
    if built is not None and built.present is not None:
        # the answer in operator terms (moves and PDB-safe steps, drain commands, evidence); a
        # consolidation plan replaces the assignment, so its check runs again
        presented = await _within_deadline(run_in_threadpool(built.present, answer.solution), deadline, deadline_ms)
        violations = await run_in_threadpool(task.verify, problem, task.Solution.model_validate(presented.solution))
        if presented.solution.get("assignments", answer.solution.get("assignments")) != answer.solution.get("assignments"):
            answer.solved_by = "solver"  # a consolidation plan (CP-SAT) replaced the placement the model or solver gave
        answer.answer, answer.solution = presented.answer, presented.solution
        answer.verified, answer.violations = (None if violations is None else not violations), violations or []
        for name in ("objective", "lower_bound", "optimal"):
            if getattr(presented, name) is not None and answer.verified is not False:
                setattr(answer, name, getattr(presented, name))
    model = route.model if result is not None else None  # None: the solver answered alone (no model step in time)
    # what the caller sent that nothing reads; a problem the service built has only its own fields
    warnings = unread_fields(request) + (unread_fields(problem, "problem") + task.notes(problem) if built is None else []) + notes
    if route.model is None and state.registry.for_task(task.name):  # a model is loaded, yet the solver answered: say why
        warnings.append(f"{route.why_no_model}; the task's {answer.solved_by} answered")
    if request.mode == "exact" and not task.has_exact_check:
        warnings.append(f"mode: {task.name} has no exact solver (its answer is a ranking); 'exact' changed nothing")
    if warnings:
        log.info("request fields ignored: %s", "; ".join(warnings))
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
        attempts=answer.attempts,
        total_steps=answer.total_steps,
        chosen_by=answer.chosen_by,
        strategy=answer.strategy,
        reasoning_trace=[ReasoningStep(**s) for s in answer.trace],
        queue_ms=round(1000 * result.queue_seconds, 3) if result else 0.0,
        task_type=task.task_type,
        task=task.name,
        model=ModelInfo(name=model.name, version=model.version) if model else None,
        objective=answer.objective,
        lower_bound=answer.lower_bound,
        optimal=answer.optimal,
        unique=answer.unique,
        problem=problem.model_dump(mode="json") if built else None,
        sources=built.sources if built else [],
        conversation_id=request.conversation_id,
        question=request.question,
        warnings=warnings,
    )


def _budget(request: ReasoningRequest, settings: Settings, deadline: float) -> float:
    """The solver's seconds: the request's budget_ms (else the setting), never past the deadline."""
    return min((request.budget_ms or settings.solver_budget_ms) / 1000, max(0.05, deadline - time.monotonic() - 0.05))


async def _within_deadline(work: Awaitable[T], deadline: float, deadline_ms: int) -> T:
    """Await work that runs in a thread, answering 504 at the deadline (the thread finishes unobserved)."""
    try:
        return await asyncio.wait_for(work, timeout=max(0.001, deadline - time.monotonic()) + 1.0)
    except asyncio.TimeoutError:
        raise ServiceError(504, "deadline_exceeded", f"no answer within deadline_ms={deadline_ms}", field="deadline_ms") from None


async def _run_model(
    state: ServiceState, model: LoadedModel, problem: BaseModel, request: ReasoningRequest, deadline: float, deadline_ms: int
) -> Outcome | None:
    """The model's attempts at the problem on its engine (trm.testtime: one, a vote over views, or
    adaptive test-time compute). None where the deadline left the model no step at all on a task
    whose solver can still answer in time (placement, upgrade); a 504 for the others."""
    settings, task = state.settings, model.task
    # placement and upgrade: a cut plan is still made valid and checked (`finish`), and the exact solver
    # can answer with no model step at all; a cut Sudoku or maze answer is a guess, a 504
    plans = task.has_objective and task.exact_solver
    try:
        policy = plan_attempts(
            task,
            model.inference,
            views=request.views,
            attempts=request.attempts,
            strategy=request.strategy,
            noise=request.noise,
            select=request.select,
            adaptive=request.adaptive,
            budget_s=request.compute_ms / 1000 if request.compute_ms else None,
        )
    except InvalidOption as e:
        raise ServiceError(422, "invalid_request", str(e), field=e.field) from None
    retry = {"Retry-After": str(settings.retry_after_seconds)}
    submit = {
        "max_steps": request.max_steps,
        "min_steps": request.min_steps,
        "threshold": request.halt_threshold,
        "trace": request.trace,
        "probs": task.needs_probs,
    }

    def overflow(error: Exception) -> None:  # an extra attempt could not start: fewer attempts, counted
        reason = "attempt_queue_full" if isinstance(error, QueueFullError) else "attempt_draining" if isinstance(error, EngineStoppedError) else "attempt_failed"
        state.metrics.rejections.labels(task.name, reason).inc()

    try:
        # the engine cuts at the deadline itself; the extra second only covers hand-over
        result = await asyncio.wait_for(
            run_attempts(model.engine, task, problem, policy, deadline=deadline, submit=submit, on_overflow=overflow), timeout=deadline_ms / 1000 + 1.0
        )
    except QueueFullError:
        state.metrics.rejections.labels(task.name, "queue_full").inc()
        raise ServiceError(503, "overloaded", f"the {task.name} queue is full; retry later", headers=retry) from None
    except EngineStoppedError:
        state.metrics.rejections.labels(task.name, "draining").inc()
        raise ServiceError(503, "overloaded", "the service is shutting down", headers=retry) from None
    except (DeadlineExceededError, asyncio.TimeoutError):
        if plans:
            return None
        raise ServiceError(504, "deadline_exceeded", f"no answer within deadline_ms={deadline_ms}", field="deadline_ms") from None
    if result.cut_reason == "deadline" and not plans:
        raise ServiceError(504, "deadline_exceeded", f"no answer within deadline_ms={deadline_ms} ({result.steps} steps done)", field="deadline_ms")
    state.metrics.queue_wait.labels(task.name).observe(result.queue_seconds)
    state.metrics.compute.labels(task.name).observe(result.compute_seconds)
    return result
