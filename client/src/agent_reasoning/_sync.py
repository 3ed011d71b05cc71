"""SyncReasoningClient: the blocking twin of ReasoningClient. Only the I/O loop is here; see _base."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._base import (
    DEFAULT_TIMEOUT,
    BaseClient,
    Nodes,
    Plan,
    Pods,
    Problem,
    ReasonOptions,
    Signals,
    Unpack,
    UpgradeNodes,
    UpgradeServices,
    build_request,
    maze_problem,
    placement_problem,
    rootcause_problem,
    sudoku_problem,
    upgrade_problem,
)
from ._events import DEFAULT_SOURCE, Mode
from ._retry import RetryPolicy
from ._tasks import TaskInfo
from .adapters import Dependencies
from .types import ReasoningResponse, Scope, TaskType

T = TypeVar("T")
_Self = TypeVar("_Self", bound="SyncReasoningClient")


class SyncReasoningClient(BaseClient):
    """Blocking client of the agent-reasoning service; the same calls as ReasoningClient.

    base_url: argument, else $AGENT_REASONING_URL, else the in-cluster service.
    token: bearer token; argument, else $AGENT_REASONING_TOKEN, else none.
    timeout: seconds (connect capped at 5) or an httpx.Timeout; default 60 s, connect 5 s.
    max_retries, backoff_base, backoff_max, retry_after_max: see README, "Retries".
    http_client: your own httpx.Client (transport, TLS, proxies); you close it.
    sleep: how to wait between retries (tests pass a recorder).
    clock: monotonic seconds, for the deadline that retries share (tests pass a fake that `sleep` advances).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        retry_after_max: float = 30.0,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(base_url, token, timeout, RetryPolicy(max_retries, backoff_base, backoff_max, retry_after_max))
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client()
        self._sleep = sleep
        self._clock = clock

    def _run(self, plan: Plan[T]) -> T:
        try:
            step = next(plan)
            while True:
                if step.after:
                    self._sleep(step.after)
                try:
                    outcome: httpx.Response | httpx.TransportError = self._http.send(step.request)
                except httpx.TransportError as exc:
                    outcome = exc
                step = plan.send(outcome)
        except StopIteration as done:
            result: T = done.value
            return result

    def reason(
        self,
        task_type: TaskType | str | None = None,
        problem: Problem | None = None,
        *,
        task: str | None = None,
        question: str | None = None,
        max_steps: int | None = None,
        min_steps: int | None = None,
        halt_threshold: float | None = None,
        trace: bool = False,
        fallback: bool | None = None,
        conversation_id: str | None = None,
        model: str | None = None,
        deadline_ms: int | None = None,
        views: int | None = None,
        scope: Scope | Mapping[str, Any] | None = None,
        context: str | None = None,
        exact: bool = False,
        budget_ms: int | None = None,
        attempts: int | None = None,
        compute_ms: int | None = None,
    ) -> ReasoningResponse:
        """Solve one problem (a dict or a pydantic Problem model) by task_type, task name, or both."""
        request = build_request(
            task_type, problem, task=task, question=question, max_steps=max_steps, min_steps=min_steps,
            halt_threshold=halt_threshold, trace=trace, fallback=fallback, conversation_id=conversation_id,
            model=model, deadline_ms=deadline_ms, views=views, scope=scope, context=context, exact=exact, budget_ms=budget_ms,
            attempts=attempts, compute_ms=compute_ms,
        )  # fmt: skip
        return self._run(self._reason_plan(request))

    def solve_sudoku(
        self, puzzle: str | Sequence[Sequence[int]], *, fallback: bool | None = None, trace: bool = False, deadline_ms: int | None = None
    ) -> ReasoningResponse:
        """Solve a Sudoku given as 81 characters ('.' or '0' blank) or a 9x9 grid of ints (0 blank)."""
        return self.reason(task="sudoku", problem=sudoku_problem(puzzle), fallback=fallback, trace=trace, deadline_ms=deadline_ms)

    def solve_maze(
        self, grid: Sequence[str], *, fallback: bool | None = None, trace: bool = False, deadline_ms: int | None = None
    ) -> ReasoningResponse:
        """Find a path from 'S' to 'G' in rows of '#' (wall), ' ' (open), 'S' and 'G'."""
        return self.reason(task="maze", problem=maze_problem(grid), fallback=fallback, trace=trace, deadline_ms=deadline_ms)

    def place(self, nodes: Nodes, pods: Pods | None = None, **options: Unpack[ReasonOptions]) -> ReasoningResponse:
        """Place pods on the fewest nodes (task "placement"): nodes and pods, or a PlacementProblem (placement_from_kubectl)."""
        return self.reason(TaskType.OPTIMIZATION, placement_problem(nodes, pods), task="placement", **options)

    def diagnose(self, services: Signals, dependencies: Dependencies | None = None, **options: Unpack[ReasonOptions]) -> ReasoningResponse:
        """Find the root cause (task "rootcause"): service signals and [caller, callee] pairs, or a RootCauseProblem."""
        return self.reason(TaskType.TROUBLESHOOTING, rootcause_problem(services, dependencies), task="rootcause", **options)

    def plan_upgrade(
        self, nodes: UpgradeNodes, services: UpgradeServices | None = None, **options: Unpack[ReasonOptions]
    ) -> ReasoningResponse:
        """Upgrade nodes in the fewest waves within disruption budgets (task "upgrade"): nodes and services, or an UpgradeProblem."""
        return self.reason(TaskType.PLANNING, upgrade_problem(nodes, services), task="upgrade", **options)

    def tasks(self) -> list[TaskInfo]:
        """The tasks the service solves, with their schemas, examples and models."""
        return self._run(self._tasks_plan())

    def health(self) -> dict[str, Any]:
        """The liveness answer, {"status": "ok"}; raises when the service is down."""
        return self._run(self._health_plan())

    def ready(self) -> bool:
        """Whether the service takes requests now; False while models load or while it drains."""
        return self._run(self._ready_plan())

    def reason_via_event(
        self,
        task_type: TaskType | str | None = None,
        problem: Problem | None = None,
        *,
        task: str | None = None,
        question: str | None = None,
        max_steps: int | None = None,
        min_steps: int | None = None,
        halt_threshold: float | None = None,
        trace: bool = False,
        fallback: bool | None = None,
        conversation_id: str | None = None,
        model: str | None = None,
        deadline_ms: int | None = None,
        views: int | None = None,
        scope: Scope | Mapping[str, Any] | None = None,
        context: str | None = None,
        exact: bool = False,
        budget_ms: int | None = None,
        attempts: int | None = None,
        compute_ms: int | None = None,
        url: str | None = None,
        source: str = DEFAULT_SOURCE,
        mode: Mode = "binary",
    ) -> ReasoningResponse:
        """Like reason(), as a CloudEvent posted to `url` (default: the service's /events); returns the reply's answer."""
        request = build_request(
            task_type, problem, task=task, question=question, max_steps=max_steps, min_steps=min_steps,
            halt_threshold=halt_threshold, trace=trace, fallback=fallback, conversation_id=conversation_id,
            model=model, deadline_ms=deadline_ms, views=views, scope=scope, context=context, exact=exact, budget_ms=budget_ms,
            attempts=attempts, compute_ms=compute_ms,
        )  # fmt: skip
        return self._run(self._event_plan(request, url, source, mode))

    def emit(
        self,
        task_type: TaskType | str | None = None,
        problem: Problem | None = None,
        *,
        task: str | None = None,
        question: str | None = None,
        max_steps: int | None = None,
        min_steps: int | None = None,
        halt_threshold: float | None = None,
        trace: bool = False,
        fallback: bool | None = None,
        conversation_id: str | None = None,
        model: str | None = None,
        deadline_ms: int | None = None,
        views: int | None = None,
        scope: Scope | Mapping[str, Any] | None = None,
        context: str | None = None,
        exact: bool = False,
        budget_ms: int | None = None,
        attempts: int | None = None,
        compute_ms: int | None = None,
        sink: str | None = None,
        source: str = DEFAULT_SOURCE,
        mode: Mode = "binary",
    ) -> str:
        """Fire a "requested" CloudEvent at `sink` (default $K_SINK) and return its id; any reply is ignored."""
        request = build_request(
            task_type, problem, task=task, question=question, max_steps=max_steps, min_steps=min_steps,
            halt_threshold=halt_threshold, trace=trace, fallback=fallback, conversation_id=conversation_id,
            model=model, deadline_ms=deadline_ms, views=views, scope=scope, context=context, exact=exact, budget_ms=budget_ms,
            attempts=attempts, compute_ms=compute_ms,
        )  # fmt: skip
        return self._run(self._emit_plan(request, sink, source, mode))

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
