"""What the async and sync clients share: configuration, requests, response parsing and the retry loop.

Every call is a *plan*: a generator that yields the next `Send` (wait this long, then send this request)
and is sent back the outcome (the response, or the transport error). ReasoningClient and
SyncReasoningClient only run plans, one awaiting and one blocking; all else is written once, here.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple, TypedDict, TypeVar, Union

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from ._errors import APIError, ConnectionError, OverloadedError, ReasoningError, TimeoutError, error_for_status
from ._events import Mode, decode_reply, encode, request_event
from ._retry import RetryPolicy, parse_retry_after
from ._tasks import TaskInfo, TaskList
from ._version import __version__
from .adapters import Dependencies, dependency_pairs
from .types import (
    MazeProblem,
    PlacementNode,
    PlacementPod,
    PlacementProblem,
    ReasoningRequest,
    ReasoningResponse,
    RootCauseProblem,
    Scope,
    ServiceSignal,
    SudokuProblem,
    TaskType,
    UpgradeProblem,
    UpgradeService,
)

# Re-exported (`as`) for the clients' **options annotations.
if sys.version_info >= (3, 11):
    from typing import Unpack as Unpack
else:  # pydantic depends on typing_extensions
    from typing_extensions import Unpack as Unpack

T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)

DEFAULT_BASE_URL = "http://agent-reasoning.ai-agents.svc.cluster.local"
DEFAULT_CONNECT_TIMEOUT = 5.0
# httpx has no whole-request timeout; the answer is one small JSON body, so the read timeout (time to the
# first byte) bounds the wait for it.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=DEFAULT_CONNECT_TIMEOUT)
# With deadline_ms, wait this much past the deadline, so the service's 504 arrives, not a client timeout.
DEADLINE_GRACE_S = 5.0
# A retry needs at least this much of the caller's deadline left after its backoff, or it is not sent.
MIN_RETRY_MS = 50
USER_AGENT = f"agent-reasoning-client/{__version__}"

Problem = Union[Mapping[str, Any], BaseModel]
Outcome = Union[httpx.Response, httpx.TransportError]


class Send(NamedTuple):
    request: httpx.Request
    after: float  # seconds to sleep before sending: the backoff before a retry


Plan = Generator[Send, Outcome, T]

_RESPONSE = TypeAdapter(ReasoningResponse)
_TASKS = TypeAdapter(TaskList)
_OBJECT = TypeAdapter(dict[str, Any])


def build_request(
    task_type: TaskType | str | None,
    problem: Problem | None,
    *,
    task: str | None,
    question: str | None,
    max_steps: int | None,
    min_steps: int | None,
    halt_threshold: float | None,
    trace: bool,
    fallback: bool | None,
    conversation_id: str | None,
    model: str | None,
    deadline_ms: int | None,
    views: int | None = None,
    scope: Scope | Mapping[str, Any] | None = None,
    context: str | None = None,
    exact: bool = False,
    budget_ms: int | None = None,
    attempts: int | None = None,
    compute_ms: int | None = None,
) -> ReasoningRequest:
    """Validate the arguments of reason() here, so mistakes fail before a round trip (pydantic ValidationError).

    fallback None: the service's default per task (on for placement, upgrade, rootcause). exact: the
    task's exact solver (CP-SAT) with the model's answer as its hint, within budget_ms. scope/context:
    narrow a question the service answers from the cluster (no problem given). attempts/compute_ms:
    test-time compute (the most attempts; wall time for those after the first), default the model's."""
    # Without a problem the service builds one from the question (its Kubernetes and Prometheus providers)
    # or answers 422 naming what it lacks, which says more than a local TypeError could.
    if isinstance(problem, BaseModel):
        problem = problem.model_dump(mode="json", exclude_none=True)
    return ReasoningRequest(
        task_type=None if task_type is None else TaskType(task_type),
        task=task,
        problem=None if problem is None else dict(problem),
        question=question,
        max_steps=max_steps,
        min_steps=min_steps,
        halt_threshold=halt_threshold,
        trace=trace,
        fallback=fallback,
        conversation_id=conversation_id,
        model=model,
        deadline_ms=deadline_ms,
        views=views,
        scope=None if scope is None else Scope.model_validate(scope),
        context=context,
        mode="exact" if exact else None,
        budget_ms=budget_ms,
        attempts=attempts,
        compute_ms=compute_ms,
    )


def sudoku_problem(puzzle: str | Sequence[Sequence[int]]) -> SudokuProblem:
    return SudokuProblem.model_validate({"puzzle": puzzle} if isinstance(puzzle, str) else {"grid": [list(row) for row in puzzle]})


def maze_problem(grid: Sequence[str]) -> MazeProblem:
    return MazeProblem(grid=list(grid))


class ReasonOptions(TypedDict, total=False):
    """The keyword arguments of reason() that the task helpers (place, diagnose, plan_upgrade) pass on."""

    question: str | None
    max_steps: int | None
    min_steps: int | None
    halt_threshold: float | None
    trace: bool
    fallback: bool | None
    scope: Scope | Mapping[str, Any] | None
    context: str | None
    exact: bool
    budget_ms: int | None
    conversation_id: str | None
    model: str | None
    deadline_ms: int | None
    views: int | None
    attempts: int | None
    compute_ms: int | None


Nodes = Union[PlacementProblem, Sequence[Union[PlacementNode, Mapping[str, Any]]]]
Pods = Sequence[Union[PlacementPod, Mapping[str, Any]]]
Signals = Union[RootCauseProblem, Sequence[Union[ServiceSignal, Mapping[str, Any]]]]
UpgradeNodes = Union[UpgradeProblem, Sequence[str]]
UpgradeServices = Sequence[Union[UpgradeService, Mapping[str, Any]]]


def _whole_or_fields(cls: type[P], given: P | Sequence[Any], first: str, **rest: Any) -> P:
    """A task helper's problem: given whole as the model, or built (and validated) from its fields."""
    if isinstance(given, cls):
        if any(value is not None for value in rest.values()):
            raise TypeError(f"give a {cls.__name__} alone, or its fields ({first}, {', '.join(rest)})")
        return given
    return cls.model_validate({first: _listed(given), **{name: value for name, value in rest.items() if value is not None}})


def _listed(value: Any) -> Any:
    """A sequence or iterator as a list; anything else as it is, so the model's validation names the
    field ("nodes: Input should be a valid list"), as the service does. A string or a mapping is
    iterable but never a list of items: list("node1") would be five one-letter nodes."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        return value
    return list(value)


def placement_problem(nodes: Nodes, pods: Pods | None) -> PlacementProblem:
    return _whole_or_fields(PlacementProblem, nodes, "nodes", pods=None if pods is None else _listed(pods))


def rootcause_problem(services: Signals, dependencies: Dependencies | None) -> RootCauseProblem:
    return _whole_or_fields(
        RootCauseProblem, services, "services", dependencies=None if dependencies is None else dependency_pairs(dependencies)
    )


def upgrade_problem(nodes: UpgradeNodes, services: UpgradeServices | None) -> UpgradeProblem:
    return _whole_or_fields(UpgradeProblem, nodes, "nodes", services=None if services is None else _listed(services))


class BaseClient:
    def __init__(
        self,
        base_url: str | None,
        token: str | None,
        timeout: float | httpx.Timeout,
        retry: RetryPolicy,
    ) -> None:
        self.base_url = (base_url or os.environ.get("AGENT_REASONING_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._token = token or os.environ.get("AGENT_REASONING_TOKEN") or None
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT))
        self.timeout = timeout
        self.retry = retry
        self._clock: Callable[[], float] = time.monotonic  # seconds; the subclasses let tests pass a fake

    # --- one plan per call --------------------------------------------------------------------------

    def _reason_plan(self, request: ReasoningRequest) -> Plan[ReasoningResponse]:
        body = request.model_dump(mode="json", exclude_none=True)

        def with_deadline(ms: int) -> httpx.Request:  # a retry asks the service for what is left of the deadline
            return self._request("POST", "/v1/reason", json={**body, "deadline_ms": ms}, deadline_ms=ms)

        http_request = self._request("POST", "/v1/reason", json=body, deadline_ms=request.deadline_ms)
        response = yield from self._exchange(http_request, deadline_ms=request.deadline_ms, rebuild=with_deadline)
        return _parse(_RESPONSE, response)

    def _tasks_plan(self) -> Plan[list[TaskInfo]]:
        response = yield from self._exchange(self._request("GET", "/v1/tasks"))
        return _parse(_TASKS, response).tasks

    def _health_plan(self) -> Plan[dict[str, Any]]:
        # Probes are not retried: they should say how the service is now, and a polling caller sets the pace.
        response = yield from self._exchange(self._request("GET", "/healthz"), retry=False)
        return _parse(_OBJECT, response)

    def _ready_plan(self) -> Plan[bool]:
        try:
            yield from self._exchange(self._request("GET", "/readyz"), retry=False)
        except OverloadedError as exc:
            if exc.status_code == 503:  # loading models or draining: an answer, not a failure
                return False
            raise
        return True

    def _event_plan(self, request: ReasoningRequest, url: str | None, source: str, mode: Mode) -> Plan[ReasoningResponse]:
        event = request_event(request, source)
        message = encode(event, mode)

        def with_deadline(ms: int) -> httpx.Request:  # the same event (the service deduplicates it), less time to wait
            return self._request("POST", url or "/events", content=message.body, headers=message.headers, deadline_ms=ms)

        http_request = with_deadline(request.deadline_ms) if request.deadline_ms is not None else self._request(
            "POST", url or "/events", content=message.body, headers=message.headers
        )
        response = yield from self._exchange(http_request, deadline_ms=request.deadline_ms, rebuild=with_deadline)
        return decode_reply(response, event.get_id())

    def _emit_plan(self, request: ReasoningRequest, sink: str | None, source: str, mode: Mode) -> Plan[str]:
        sink = sink or os.environ.get("K_SINK")
        if not sink:
            raise ValueError("emit() needs a sink: pass sink= or set K_SINK")
        event = request_event(request, source)
        message = encode(event, mode)
        yield from self._exchange(self._request("POST", sink, content=message.body, headers=message.headers))
        return event.get_id()

    # --- shared mechanics ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        deadline_ms: int | None = None,
    ) -> httpx.Request:
        """`url` is a path on the service or an absolute URL (a broker, a sink)."""
        if url.startswith("/"):
            url = self.base_url + url
        all_headers = {"user-agent": USER_AGENT, **(headers or {})}
        # The token is for the service: a broker or sink elsewhere never sees it.
        if self._token and url.startswith(self.base_url + "/"):
            all_headers["authorization"] = f"Bearer {self._token}"
        timeout = self._timeout_for(deadline_ms)
        return httpx.Request(method, url, json=json, content=content, headers=all_headers, extensions={"timeout": timeout.as_dict()})

    def _timeout_for(self, deadline_ms: int | None) -> httpx.Timeout:
        """The configured timeouts; with the caller's `deadline_ms` (what is left of it, on a retry),
        the read timeout is that deadline plus the grace, longer or shorter than the configured one."""
        t = self.timeout
        if deadline_ms is None or t.read is None:
            return t
        read = deadline_ms / 1000 + DEADLINE_GRACE_S
        return httpx.Timeout(connect=t.connect, read=read, write=t.write, pool=t.pool)

    def _exchange(
        self,
        request: httpx.Request,
        *,
        retry: bool = True,
        deadline_ms: int | None = None,
        rebuild: Callable[[int], httpx.Request] | None = None,
    ) -> Plan[httpx.Response]:
        """Send until it succeeds or fails for good: the 2xx response, or the typed error raised.

        With `deadline_ms` (the caller's), every try shares that one deadline: a retry is sent only
        if some of it is left after its backoff, as `rebuild(ms left)`, so the whole call waits at most
        the deadline plus one grace period; the service's 504 deadline_exceeded is not retried."""
        started = self._clock()
        attempt, after = 0, 0.0
        while True:
            outcome = yield Send(request, after)
            if isinstance(outcome, httpx.Response) and outcome.is_success:
                return outcome
            retrying = retry and self.retry.should_retry(attempt, outcome, caller_deadline=deadline_ms is not None)
            if retrying:
                after = self.retry.delay(attempt, outcome)
                if deadline_ms is not None:
                    left_ms = deadline_ms - 1000 * (self._clock() - started + after)
                    retrying = left_ms >= MIN_RETRY_MS
                    if retrying and rebuild is not None:
                        request = rebuild(int(left_ms))
            if not retrying:
                if isinstance(outcome, httpx.TransportError):
                    raise _transport_error(request, outcome) from outcome
                raise _response_error(outcome)
            attempt += 1


def _parse(adapter: TypeAdapter[T], response: httpx.Response) -> T:
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        raise ReasoningError(f"{response.request.url} answered HTTP {response.status_code} with an unexpected body: {exc}") from exc


def _response_error(response: httpx.Response) -> APIError:
    try:
        body: Any = response.json()
    except ValueError:  # not JSON: a proxy's error page
        body = response.text
    if isinstance(body, dict) and "specversion" in body and isinstance(body.get("data"), dict):
        body = body["data"]  # a failed reply event in structured mode: its data is the ErrorBody
    return error_for_status(response.status_code, body, retry_after=parse_retry_after(response.headers.get("retry-after")))


def _transport_error(request: httpx.Request, exc: httpx.TransportError) -> ReasoningError:
    cls = TimeoutError if isinstance(exc, httpx.TimeoutException) else ConnectionError
    return cls(f"{request.method} {request.url}: {type(exc).__name__}: {exc}")
