"""The halting rule, and the slot scheduler of the continuous-batching engine. Plain Python: no torch.

`q_halts` is the one halting decision of the project: the trainer's carry (act.halt_decision),
the plain batched loop (inference.recurse), evaluation and the engine all ask it.

`Scheduler` keeps the engine's queue and slots: it admits queued requests into free slots
(dropping cancelled ones and failing those whose deadline passed while they waited), decides
after every step which samples leave (halted, cut at max_steps, cut at their deadline, or
cancelled), and frees their slots for the next admission. It holds no tensors and takes no lock:
the engine (trm/engine.py) calls it with its own lock held and keeps the tensors of each slot.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)
HaltMode = Literal["act", "fixed"]
Batching = Literal["continuous", "static"]
CutReason = Literal["max_steps", "deadline"]


def q_halts(steps: Any, q_halt: Any, *, threshold: float = 0.0, min_steps: int = 1) -> Any:
    """Whether the halting head stops a sample after the step just taken (`steps` counts it).

    A sample stops once its halting logit q_halt is above `threshold` and it has taken at least
    `min_steps`. Elementwise: `steps` and `q_halt` may be ints and floats, numpy arrays or tensors
    (the result then is a bool array or tensor). The step cap (max_steps) is the caller's: a sample
    that reaches it stops whatever this says, and whether that counts as halted depends on the mode.
    """
    return (q_halt > threshold) & (steps >= min_steps)


class QueueFullError(RuntimeError):
    """The engine's queue is at capacity: shed load (HTTP 503 + Retry-After)."""


class DeadlineExceededError(TimeoutError):
    """The request's deadline passed before it reached a slot."""


@dataclass(eq=False)  # identity equality: the queue removes requests by identity
class Request:
    """One sample's journey through the scheduler. `payload` is the engine's (its tokens and trace)."""

    max_steps: int
    min_steps: int
    threshold: float
    mode: HaltMode
    deadline: float | None  # time.monotonic() value
    future: concurrent.futures.Future
    payload: Any = None
    submitted: float = field(default_factory=time.monotonic)
    started: float = 0.0  # when it took a slot
    steps: int = 0  # supervision steps taken


@dataclass(frozen=True)
class Exit:
    """How a sample left its slot after a step."""

    halted: bool  # its halting head stopped it (act), or it ran its planned steps (fixed)
    cut_reason: CutReason | None  # None when halted


def decide(request: Request, q_halt: float, now: float) -> Exit | None:
    """After the step just counted in `request.steps`: does the sample leave, and how? None: it stays.

    act: halts by q_halts; else cut at max_steps, or at its deadline. fixed: halted at max_steps;
    cut at its deadline before that."""
    step = request.steps
    if request.mode == "act" and q_halts(step, q_halt, threshold=request.threshold, min_steps=request.min_steps):
        return Exit(halted=True, cut_reason=None)
    if step >= request.max_steps:
        return Exit(halted=request.mode == "fixed", cut_reason=None if request.mode == "fixed" else "max_steps")
    if request.deadline is not None and now >= request.deadline:
        return Exit(halted=False, cut_reason="deadline")
    return None


class Scheduler:
    """Queue and slots of one engine. Not thread-safe: the caller holds its lock around every call.

    `slots` samples are stepped together; `queue_size` more may wait. A cancelled request's future
    is left alone (its caller gave up); the scheduler only stops spending steps on it.
    """

    def __init__(self, slots: int, queue_size: int, batching: Batching = "continuous") -> None:
        if slots < 1 or queue_size < 0:
            raise ValueError("slots must be >= 1 and queue_size >= 0")
        if batching not in ("continuous", "static"):
            raise ValueError(f"batching must be 'continuous' or 'static', not {batching!r}")
        self.slots, self.queue_size, self.batching = slots, queue_size, batching
        self.queue: collections.deque[Request] = collections.deque()
        self.occupant: list[Request | None] = [None] * slots

    # --- observers ---

    def busy(self) -> int:
        """Occupied slots."""
        return sum(r is not None for r in self.occupant)

    def pending(self) -> int:
        """Requests queued or in a slot."""
        return len(self.queue) + self.busy()

    def holds(self, slot: int, request: Request) -> bool:
        """Whether `slot` still holds `request` (not cancelled, finished or refilled since)."""
        return self.occupant[slot] is request

    def occupied(self) -> list[tuple[int, Request]]:
        """(slot, request) of every occupied slot, in slot order: the rows of the next step."""
        return [(s, r) for s, r in enumerate(self.occupant) if r is not None]

    # --- changes ---

    def enqueue(self, request: Request) -> None:
        """Queue a request. Raises QueueFullError when `queue_size` requests wait beyond the free slots."""
        free = self.slots - self.busy()
        if len(self.queue) >= self.queue_size + free:
            raise QueueFullError(f"queue full ({self.queue_size} waiting)")
        self.queue.append(request)

    def withdraw(self, request: Request) -> bool:
        """Take a (cancelled) request out of the queue; False if it is not queued (in a slot, or gone)."""
        try:
            self.queue.remove(request)
            return True
        except ValueError:
            return False

    def admit(self, now: float) -> list[tuple[int, Request]]:
        """Move queued requests into free slots, in slot order; returns the (slot, request) pairs placed.

        Cancelled requests are dropped; one whose deadline has passed fails with DeadlineExceededError.
        Static batching admits only when every slot is free (the batch runs to its end together)."""
        if self.batching == "static" and self.busy():
            return []
        placed: list[tuple[int, Request]] = []
        for s in range(self.slots):
            if not self.queue:
                break
            if self.occupant[s] is not None:
                continue
            while self.queue:
                request = self.queue.popleft()
                if request.future.cancelled():
                    continue
                if request.deadline is not None and now >= request.deadline:
                    settle(request.future, error=DeadlineExceededError("the deadline passed while the request was queued"))
                    continue
                request.started, request.steps = now, 0
                self.occupant[s] = request
                placed.append((s, request))
                break
        return placed

    def advance(self, slot: int, request: Request, q_halt: float, now: float, passed_check: bool = False) -> Exit | None:
        """Count the step `request` just took in `slot` and decide whether it leaves (its slot then frees).

        `passed_check`: the step's answer passed the caller's exact check, which ends the sample as
        halted once it has taken `min_steps` (its answer is right; more steps cannot improve it).

        Returns None while it stays, or when it no longer holds the slot (failed meanwhile, or
        cancelled: its slot frees without an Exit, and nobody is answered)."""
        if self.occupant[slot] is not request:
            return None
        if request.future.cancelled():
            self.occupant[slot] = None
            return None
        request.steps += 1
        exit_ = Exit(halted=True, cut_reason=None) if passed_check and request.steps >= request.min_steps else decide(request, q_halt, now)
        if exit_ is not None:
            self.occupant[slot] = None
        return exit_

    def drop_all(self) -> list[Request]:
        """Empty the queue and every slot; returns the requests that were there (the caller fails them)."""
        dropped = list(self.queue) + [r for r in self.occupant if r is not None]
        self.queue.clear()
        self.occupant = [None] * self.slots
        return dropped


def choose_slots(costs: dict[int, float], tolerance: float = 0.15) -> int:
    """The batch size past which a bigger batch stops paying, from a step-cost curve {batch: cost per
    sample of one supervision step} (any unit): the smallest batch whose cost is within `tolerance`
    of the best. More slots than that add no throughput, only step time, which every long-running
    sample pays at each of its steps. On the 2-core CPU here the Sudoku model cost about 12, 8, 6, 5,
    4.8 and 4.8 ms per sample at 1 to 32 in a batch: 8 slots ran as many puzzles per second as 32 with
    half the p99 (bench/engine.py). Raises ValueError for an empty curve."""
    if not costs:
        raise ValueError("no step costs to choose slots from")
    best = min(costs.values())
    return min(b for b, cost in costs.items() if cost <= best * (1 + tolerance))


def passes(check: Any, tokens: Any) -> bool:
    """A caller's exact check (tokens -> passed) on a step's answer; one that raises counts as not
    passed, and the sample goes on (the engine's and the plain loop's rule alike)."""
    if check is None:
        return False
    try:
        return bool(check(tokens))
    except Exception:
        log.warning("a request's exact check raised; its sample goes on", exc_info=True)
        return False


def settle(future: concurrent.futures.Future, result: Any = None, error: BaseException | None = None) -> None:
    """Complete a future unless its caller cancelled it meanwhile."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass
