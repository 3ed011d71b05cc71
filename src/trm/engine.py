"""Inference engine: ACT early halting over a continuous batch of slots. Knows nothing about HTTP.

TRM's training carry is a continuous batch, and inference can use it the same way: a fixed number
of slots; each iteration runs one supervision step for the occupied slots only; a sample that
halts (q_halt > threshold after min_steps), reaches max_steps, passes its deadline or is cancelled
leaves at once and its slot is refilled from the queue in the same iteration. Easy problems leave
after a step or two, hard ones stay, and nobody waits for the slowest sample of a static batch.

The engine's steps run on a ComputeThread (trm/compute.py), shared by all the engines of a
process so that their OpenMP teams do not fight over the cores; an engine given none makes its
own. Callers `submit()` from any thread and get a Future, or `await engine.run(...)` from asyncio.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from trm.compute import ComputeThread
from trm.inference import HaltMode, Prediction, StepRecord, for_inference, step_context
from trm.model import TRM

log = logging.getLogger(__name__)

Batching = Literal["continuous", "static"]


class QueueFullError(RuntimeError):
    """The engine's queue is at capacity: shed load (HTTP 503 + Retry-After)."""


class EngineStoppedError(RuntimeError):
    """The engine no longer takes work (shutting down)."""


class DeadlineExceededError(TimeoutError):
    """The request's deadline passed before it reached a slot."""


@dataclass
class EngineResult(Prediction):
    cut_reason: str | None = None  # None, "max_steps" or "deadline"
    queue_seconds: float = 0.0
    compute_seconds: float = 0.0


@dataclass(eq=False)  # identity equality: the queue removes requests by identity
class _Request:
    tokens: torch.Tensor  # [L] int64
    puzzle_id: int
    max_steps: int
    min_steps: int
    threshold: float
    mode: HaltMode
    deadline: float | None  # time.monotonic() value
    trace: bool
    probs: bool
    future: concurrent.futures.Future
    submitted: float = field(default_factory=time.monotonic)
    started: float = 0.0
    records: list[StepRecord] = field(default_factory=list)
    last_tokens: np.ndarray | None = None
    last_q: float = 0.0


class Engine:
    def __init__(
        self,
        model: TRM,
        *,
        slots: int | Literal["auto"] = 32,
        queue_size: int = 256,
        halt_threshold: float = 0.0,
        min_steps: int = 1,
        dtype: str = "auto",
        threads: int = 0,
        batching: Batching = "continuous",
        compile: bool = False,
        name: str = "trm",
        worker: ComputeThread | None = None,
    ) -> None:
        if (slots != "auto" and (not isinstance(slots, int) or slots < 1)) or queue_size < 0:
            raise ValueError("slots must be >= 1 or 'auto', and queue_size >= 0")
        model = for_inference(model, dtype)  # bf16: weights cast once, not per matmul
        # the thread that steps this engine; without a shared one, a thread of its own
        self._owns_worker = worker is None
        self._worker = worker or ComputeThread(threads, name=f"engine-{name}")
        if slots == "auto":
            slots = self._worker.call(choose_slots, model).result()
        self.model = model
        self.config = model.config
        self.slots, self.queue_size = slots, queue_size
        self.halt_threshold, self.min_steps = halt_threshold, min_steps
        self.dtype, self.batching, self.name = dtype, batching, name
        self.device = next(model.parameters()).device
        self._forward = torch.compile(model, dynamic=True) if compile else model
        self._queue: collections.deque[_Request] = collections.deque()
        self._cond = self._worker.cond
        self._slots: list[_Request | None] = [None] * slots
        self._accepting = False
        self._running = False
        # the carry of every slot; only the occupied rows are stepped, each set when a request takes
        # its slot (empty, not zeros: filling would run a parallel op on the caller's thread)
        L, S, D = self.config.seq_len, self.config.total_len, self.config.hidden_size
        carry_dtype = next(model.parameters()).dtype
        self._y = torch.empty(slots, S, D, device=self.device, dtype=carry_dtype)
        self._z = torch.empty(slots, S, D, device=self.device, dtype=carry_dtype)
        self._inputs = torch.empty(slots, L, dtype=torch.long, device=self.device)
        self._pids = torch.empty(slots, dtype=torch.long, device=self.device)
        self._steps = [0] * slots
        # counters for observers (read without the lock: plain ints)
        self.iterations = 0
        self.sample_steps = 0
        self.completed = 0

    # --- lifecycle ---

    def start(self) -> Engine:
        with self._cond:
            if self._running:
                return self
            self._accepting = self._running = True
        self._worker.add(self)
        return self

    def stop(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking work; with `drain`, finish what is queued and in slots first."""
        with self._cond:
            self._accepting = False
            if not drain:
                self._fail_all(EngineStoppedError("the engine stopped"))
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        while drain and self._running and self.pending() > 0:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.005)
        with self._cond:
            self._running = False
            self._fail_all(EngineStoppedError("the engine stopped before this request finished"))
            self._cond.notify_all()
        self._worker.remove(self)
        if self._owns_worker:
            self._worker.stop()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- observers ---

    def queue_depth(self) -> int:
        return len(self._queue)

    def busy_slots(self) -> int:
        return sum(r is not None for r in self._slots)

    def pending(self) -> int:
        return self.queue_depth() + self.busy_slots()

    @property
    def accepting(self) -> bool:
        return self._accepting

    # --- submitting ---

    def submit(
        self,
        tokens: np.ndarray | torch.Tensor,
        *,
        puzzle_id: int = 0,
        max_steps: int | None = None,
        min_steps: int | None = None,
        threshold: float | None = None,
        mode: HaltMode = "act",
        deadline: float | None = None,
        trace: bool = False,
        probs: bool = False,
    ) -> concurrent.futures.Future[EngineResult]:
        """Queue one sample [L]. `deadline` is a time.monotonic() value. Raises QueueFullError."""
        t = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        if t.shape != (self.config.seq_len,):
            raise ValueError(f"tokens must have shape ({self.config.seq_len},), got {tuple(t.shape)}")
        if mode not in ("act", "fixed"):
            raise ValueError(f"mode must be 'act' or 'fixed', not {mode!r}")
        request = _Request(
            tokens=t.to(self.device),
            puzzle_id=puzzle_id,
            max_steps=max_steps or self.config.halt_max_steps,
            min_steps=min_steps or self.min_steps,
            threshold=self.halt_threshold if threshold is None else threshold,
            mode=mode,
            deadline=deadline,
            trace=trace,
            probs=probs,
            future=concurrent.futures.Future(),
        )
        with self._cond:
            if not self._accepting:
                raise EngineStoppedError("the engine is not taking work")
            # Requests cancelled while waiting leave the queue at once (see _on_done), so a full
            # queue means `queue_size` live requests beyond the ones already in slots.
            free = sum(r is None for r in self._slots)
            if len(self._queue) >= self.queue_size + free:
                raise QueueFullError(f"queue full ({self.queue_size} waiting)")
            self._queue.append(request)
            self._cond.notify_all()
        request.future.add_done_callback(lambda f, r=request: self._on_done(r, f))
        return request.future

    async def run(self, tokens: np.ndarray | torch.Tensor, **kwargs) -> EngineResult:
        """asyncio wrapper of submit(); cancelling the awaiting task cancels the request."""
        future = self.submit(tokens, **kwargs)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def _on_done(self, request: _Request, future: concurrent.futures.Future) -> None:
        if future.cancelled():
            with self._cond:
                try:
                    self._queue.remove(request)
                except ValueError:
                    pass  # already in a slot: the worker frees it at its next iteration

    # --- stepping (on the compute thread) ---

    def has_work(self) -> bool:
        """Called with the lock held."""
        return self._running and (bool(self._queue) or self.busy_slots() > 0)

    def crash(self, error: Exception) -> None:
        with self._cond:
            self._accepting = self._running = False
            self._fail_all(RuntimeError(f"engine worker failed: {error}"))

    def admit(self) -> None:
        """Move queued requests into free slots (static batching: only when every slot is free).
        Called with the lock held."""
        if not self._running or (self.batching == "static" and self.busy_slots()):
            return
        now = time.monotonic()
        for s in range(self.slots):
            if self._slots[s] is not None:
                continue
            while self._queue:
                request = self._queue.popleft()
                if request.future.cancelled():
                    continue
                if request.deadline is not None and now >= request.deadline:
                    _settle(request.future, error=DeadlineExceededError("the deadline passed while the request was queued"))
                    continue
                request.started = now
                self._slots[s] = request
                self._inputs[s] = request.tokens
                self._pids[s] = request.puzzle_id
                self._y[s] = self.model.y_init
                self._z[s] = self.model.z_init
                self._steps[s] = 0
                break
            if not self._queue:
                break

    def step(self) -> None:
        """One supervision step for every occupied slot; finished samples leave, their slots refill."""
        occupied = [s for s, r in enumerate(self._slots) if r is not None]
        if not occupied:
            return
        index = torch.tensor(occupied, device=self.device)
        with step_context(self.model, self.dtype):
            out = self._forward(self._y[index], self._z[index], self._inputs[index], self._pids[index])
        self._y[index] = out.y.to(self._y.dtype)
        self._z[index] = out.z.to(self._z.dtype)
        pred = out.logits.argmax(-1).cpu().numpy()
        want_probs = any(self._slots[s].probs for s in occupied)  # type: ignore[union-attr]
        probs = out.logits.float().softmax(-1).cpu().numpy() if want_probs else None
        q = out.q_halt.float().cpu().numpy()
        self.iterations += 1
        self.sample_steps += len(occupied)
        now = time.monotonic()
        for row, s in enumerate(occupied):
            request = self._slots[s]
            if request is None:  # failed by stop() meanwhile
                continue
            if request.future.cancelled():
                self._slots[s] = None
                continue
            self._steps[s] += 1
            step = self._steps[s]
            tokens, q_halt = pred[row], float(q[row])
            confidence = 1.0 / (1.0 + np.exp(-q_halt))
            if request.trace:
                changed = len(tokens) if request.last_tokens is None else int((tokens != request.last_tokens).sum())
                request.records.append(StepRecord(step, tokens.copy(), float(confidence), changed))
            request.last_tokens, request.last_q = tokens, q_halt
            halts = request.mode == "act" and step >= request.min_steps and q_halt > request.threshold
            cut = None
            if not halts and step >= request.max_steps:
                cut = None if request.mode == "fixed" else "max_steps"
            elif not halts and request.deadline is not None and now >= request.deadline:
                cut = "deadline"
            if halts or step >= request.max_steps or cut == "deadline":
                self._slots[s] = None
                self.completed += 1
                result = EngineResult(
                    tokens=tokens.copy(),
                    steps=step,
                    halted=cut is None,
                    confidence=float(confidence),
                    q_halt=q_halt,
                    trace=request.records,
                    cut_reason=cut,
                    probs=probs[row] if (probs is not None and request.probs) else None,
                    queue_seconds=request.started - request.submitted,
                    compute_seconds=now - request.started,
                )
                _settle(request.future, result=result)
        # refill freed slots in this same iteration's wake, before the next step
        with self._cond:
            self.admit()

    def _fail_all(self, error: Exception) -> None:
        """Fail everything queued and in slots (called with the lock held)."""
        while self._queue:
            _settle(self._queue.popleft().future, error=error)
        for s, request in enumerate(self._slots):
            if request is not None:
                _settle(request.future, error=error)
            self._slots[s] = None


def step_costs(model: TRM, *, max_slots: int = 64, max_step_seconds: float = 0.25, passes: int = 3) -> dict[int, float]:
    """Seconds per sample of one supervision step at batch 1, 2, 4, ... up to `max_slots` (or until
    one step takes `max_step_seconds`). Each size is timed once per pass, the passes in turn, and its
    best time counts, so that a change in the host's speed meanwhile hits every size alike. Call it
    on the thread that will step the model (it runs the model)."""
    c = model.config
    device = next(model.parameters()).device
    sizes = [1 << i for i in range(max_slots.bit_length()) if 1 << i <= max_slots]
    best_time: dict[int, float] = {}
    with torch.inference_mode():
        for pass_ in range(passes + 1):  # the first pass warms up
            for batch in sizes:
                inputs = torch.ones(batch, c.seq_len, dtype=torch.long, device=device)
                y, z = model.initial_carry(batch)
                started = time.perf_counter()
                model(y, z, inputs)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - started
                if pass_ > 0:
                    best_time[batch] = min(best_time.get(batch, seconds), seconds)
                if seconds > max_step_seconds:
                    sizes = sizes[: sizes.index(batch) + 1]  # no bigger batch from now on
                    break
    return {b: best_time[b] / b for b in sizes if b in best_time}


def choose_slots(model: TRM, *, max_slots: int = 64, tolerance: float = 0.15, max_step_seconds: float = 0.25) -> int:
    """The batch size past which a bigger batch stops paying: the smallest whose cost per sample of
    one supervision step (step_costs) is within `tolerance` of the best. More slots than that add no
    throughput, only step time, which every long-running sample pays at each of its steps. On the
    2-core CPU here the Sudoku model costs about 12, 8, 6, 5, 4.8 and 4.8 ms per sample at 1 to 32 in
    a batch, so 8 slots run as many puzzles per second as 32 with half the p99 (bench/engine.py); a
    GPU gets `max_slots`. Call it on the thread that will step the model."""
    costs = step_costs(model, max_slots=max_slots, max_step_seconds=max_step_seconds)
    best = min(costs.values())
    chosen = min(b for b, cost in costs.items() if cost <= best * (1 + tolerance))
    log.info("slots: %d (ms per sample by batch: %s)", chosen, ", ".join(f"{b}: {1000 * c:.1f}" for b, c in costs.items()))
    return chosen


def _settle(future: concurrent.futures.Future, result: EngineResult | None = None, error: Exception | None = None) -> None:
    """Complete a future unless its caller cancelled it meanwhile."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass
