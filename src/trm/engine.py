"""Inference engine: ACT early halting over a continuous batch of slots. Knows nothing about HTTP.

TRM's training carry is a continuous batch, and inference can use it the same way: a fixed number
of slots; each iteration runs one supervision step for the occupied slots only; a sample that
halts (q_halt > threshold after min_steps), reaches max_steps, passes its deadline or is cancelled
leaves at once and its slot is refilled from the queue before the next step. Easy problems leave
after a step or two, hard ones stay, and nobody waits for the slowest sample of a static batch.

Two parts: the slot scheduler (trm/scheduler.py: queue, admission, halting, deadlines; plain
Python) and the step runner here, which owns the tensors of every slot and runs the model. The
engine's lock guards the scheduler; the model runs outside it. The steps run on a ComputeThread
(trm/compute.py), shared by all the engines of a process so that their OpenMP teams do not fight
over the cores; an engine given none makes its own. Callers `submit()` from any thread and get a
Future, or `await engine.run(...)` from asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import statistics
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from trm.act import LatentNoise, perturb
from trm.compute import ComputeThread
from trm.inference import Prediction, StepRecord
from trm.model import TRM
from trm.precision import for_inference, step_context
from trm.scheduler import (
    Batching,
    DeadlineExceededError,
    HaltMode,
    QueueFullError,
    Request,
    Scheduler,
    choose_slots,
    passes,
    settle,
)

log = logging.getLogger(__name__)

__all__ = ["Batching", "DeadlineExceededError", "Engine", "EngineResult", "EngineStoppedError", "QueueFullError"]


class EngineStoppedError(RuntimeError):
    """The engine no longer takes work (shutting down)."""


@dataclass
class EngineResult(Prediction):
    """A Prediction from the engine, with why it was cut (None, "max_steps" or "deadline") and its times in seconds."""

    cut_reason: str | None = None  # None, "max_steps" or "deadline"
    queue_seconds: float = 0.0
    compute_seconds: float = 0.0


@dataclass
class _Sample:
    """The step runner's part of a request (Request.payload): its tokens, and what its steps produced."""

    tokens: torch.Tensor  # [L] int64, on the engine's device
    puzzle_id: int
    trace: bool
    probs: bool
    noise: LatentNoise | None = None  # latent noise before every step (a noisy trajectory, trm.testtime)
    check: Callable[[np.ndarray], bool] | None = None  # the exact check: a step whose answer passes ends the sample
    checked: np.ndarray | None = None  # the last answer the check failed (an unchanged answer is not checked again)
    records: list[StepRecord] = field(default_factory=list)
    last_tokens: np.ndarray | None = None


class Engine:
    """Serves one model: `slots` samples stepped together, `queue_size` more waiting.

    `slots="auto"` picks the number from a step-cost curve stored with the model for this device
    (`calibration`, written by `calibrate`), else a fixed default per device type (auto_slots):
    never from timings taken at start-up, which a busy host or a cold first step would skew.
    `dtype`: "auto" (bf16 where the hardware computes it natively), "bf16" or "fp32".
    Raises ValueError for slots < 1 or queue_size < 0.
    """

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
        calibration: list[dict[str, Any]] | None = None,
    ) -> None:
        if (slots != "auto" and (not isinstance(slots, int) or slots < 1)) or queue_size < 0:
            raise ValueError("slots must be >= 1 or 'auto', and queue_size >= 0")
        model = for_inference(model, dtype)  # bf16: weights cast once, not per matmul
        # the thread that steps this engine; without a shared one, a thread of its own
        self._owns_worker = worker is None
        self._worker = worker or ComputeThread(threads, name=f"engine-{name}")
        if slots == "auto":
            # on the compute thread: its torch thread count is part of the device a curve was measured on
            slots, why = self._worker.call(auto_slots, model, calibration).result()
            log.info("model %s: %d slots (%s)", name, slots, why)
        self.model = model
        self.config = model.config
        self.slots, self.queue_size = slots, queue_size
        self.halt_threshold, self.min_steps = halt_threshold, min_steps
        self.dtype, self.batching, self.name = dtype, batching, name
        self.device = next(model.parameters()).device
        self._forward = torch.compile(model, dynamic=True) if compile else model
        # the lock guards the scheduler and the flags; `_changed` wakes stop() when requests leave.
        # Reentrant: a future settled with the lock held runs its done-callbacks, which may call in.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._scheduler = Scheduler(slots, queue_size, batching)
        self._accepting = False
        self._running = False
        # the carry of every slot, owned by the step runner (the compute thread); only the occupied
        # rows are stepped, each set when a request takes its slot (empty, not zeros: filling would
        # run a parallel op on the caller's thread)
        L, S, D = self.config.seq_len, self.config.total_len, self.config.hidden_size
        carry_dtype = next(model.parameters()).dtype
        self._y = torch.empty(slots, S, D, device=self.device, dtype=carry_dtype)
        self._z = torch.empty(slots, S, D, device=self.device, dtype=carry_dtype)
        self._inputs = torch.empty(slots, L, dtype=torch.long, device=self.device)
        self._pids = torch.empty(slots, dtype=torch.long, device=self.device)
        # counters for observers (read without the lock: plain ints)
        self.iterations = 0
        self.sample_steps = 0
        self.completed = 0
        # each live request by its future, so a caller that cancels one can still ask what it cost (steps_taken)
        self._requests: weakref.WeakKeyDictionary[concurrent.futures.Future, Request] = weakref.WeakKeyDictionary()

    # --- lifecycle ---

    def start(self) -> Engine:
        """Start taking work and register with the compute thread (idempotent); returns self."""
        with self._lock:
            if self._running:
                return self
            self._accepting = self._running = True
        self._worker.add(self)
        return self

    def stop(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking work; with `drain`, first finish what is queued and in slots (waiting at most
        `timeout` seconds). Whatever is left then fails with EngineStoppedError."""
        with self._changed:
            self._accepting = False
            if drain:
                self._changed.wait_for(lambda: not self._running or self._scheduler.pending() == 0, timeout)
            else:
                self._fail_all(EngineStoppedError("the engine stopped"))
            self._running = False
            self._fail_all(EngineStoppedError("the engine stopped before this request finished"))
        self._worker.remove(self)
        if self._owns_worker:
            self._worker.stop()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- observers ---

    def queue_depth(self) -> int:
        """Requests waiting for a slot."""
        with self._lock:
            return len(self._scheduler.queue)

    def busy_slots(self) -> int:
        """Slots holding a sample."""
        with self._lock:
            return self._scheduler.busy()

    def pending(self) -> int:
        """Requests queued or in a slot."""
        with self._lock:
            return self._scheduler.pending()

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
        noise: LatentNoise | None = None,
        check: Callable[[np.ndarray], bool] | None = None,
    ) -> concurrent.futures.Future[EngineResult]:
        """Queue one sample [L]. `deadline` is a time.monotonic() value; `noise` makes it a noisy
        trajectory (Gaussian noise on its latent z before every step, trm.act.LatentNoise); `check`
        (tokens [L] -> passed) is called on the compute thread after every step, and an answer that
        passes ends the sample there once it has taken min_steps (for tasks whose check proves an answer right: Sudoku, maze).

        Raises ValueError for a wrong shape or mode, QueueFullError when the queue is full,
        EngineStoppedError when the engine takes no work."""
        t = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        if t.shape != (self.config.seq_len,):
            raise ValueError(f"tokens must have shape ({self.config.seq_len},), got {tuple(t.shape)}")
        if mode not in ("act", "fixed"):
            raise ValueError(f"mode must be 'act' or 'fixed', not {mode!r}")
        request = Request(
            max_steps=max_steps or self.config.halt_max_steps,
            min_steps=min_steps or self.min_steps,
            threshold=self.halt_threshold if threshold is None else threshold,
            mode=mode,
            deadline=deadline,
            future=concurrent.futures.Future(),
            payload=_Sample(tokens=t.to(self.device), puzzle_id=puzzle_id, trace=trace, probs=probs, noise=noise, check=check),
        )
        with self._lock:
            if not self._accepting:
                raise EngineStoppedError("the engine is not taking work")
            # Requests cancelled while waiting leave the queue at once (see _on_done), so a full
            # queue means `queue_size` live requests beyond the ones already in slots.
            self._scheduler.enqueue(request)
        self._requests[request.future] = request
        request.future.add_done_callback(functools.partial(self._on_done, request))
        self._worker.wake()
        return request.future

    def steps_taken(self, future: concurrent.futures.Future) -> int:
        """Supervision steps the request behind `future` (from submit) has taken so far, cancelled or not:
        what it cost (0 for a future this engine did not give out)."""
        request = self._requests.get(future)
        return request.steps if request is not None else 0

    async def run(self, tokens: np.ndarray | torch.Tensor, **kwargs: Any) -> EngineResult:
        """asyncio wrapper of submit(); cancelling the awaiting task cancels the request."""
        future = self.submit(tokens, **kwargs)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def _on_done(self, request: Request, future: concurrent.futures.Future) -> None:
        if future.cancelled():
            with self._changed:
                if self._scheduler.withdraw(request):
                    self._changed.notify_all()
                # else in a slot: the step runner frees it after its next step

    # --- stepping (on the compute thread) ---

    def has_work(self) -> bool:
        """Whether the engine runs and holds a request (the compute thread steps only engines with work)."""
        with self._lock:
            return self._running and self._scheduler.pending() > 0

    def crash(self, error: Exception) -> None:
        """The step failed: fail everything this engine holds and take no more work."""
        with self._changed:
            self._accepting = self._running = False
            self._fail_all(RuntimeError(f"engine worker failed: {error}"))

    def step(self) -> None:
        """Admit queued requests into free slots, then one supervision step for every occupied slot;
        finished samples leave and are answered."""
        with self._lock:
            if not self._running:
                return
            placed = self._scheduler.admit(time.monotonic())  # may drop cancelled and expired requests
            occupied = self._scheduler.occupied()
            self._changed.notify_all()
        for s, request in placed:  # a new sample's slot starts from the init carry
            sample: _Sample = request.payload
            self._inputs[s] = sample.tokens
            self._pids[s] = sample.puzzle_id
            self._y[s] = self.model.y_init
            self._z[s] = self.model.z_init
        if not occupied:
            return
        index = torch.tensor([s for s, _ in occupied], device=self.device)
        z = perturb(self._z[index], [r.payload.noise for _, r in occupied])
        with step_context(self.model, self.dtype):
            out = self._forward(self._y[index], z, self._inputs[index], self._pids[index])
        self._y[index] = out.y.to(self._y.dtype)
        self._z[index] = out.z.to(self._z.dtype)
        pred = out.logits.argmax(-1).cpu().numpy()
        q = out.q_halt.float().cpu().numpy()
        self.iterations += 1
        self.sample_steps += len(occupied)
        # the callers' exact checks, outside the lock (they decode and verify: pure, but not free)
        passed = [self._check(r, pred[row]) for row, (_, r) in enumerate(occupied)]
        now = time.monotonic()
        finished: list[tuple[Request, EngineResult]] = []
        wants_probs: list[tuple[int, EngineResult]] = []  # (row, result) of finished samples that asked for probabilities
        with self._changed:
            for row, (s, request) in enumerate(occupied):
                q_halt = float(q[row])
                exit_ = self._scheduler.advance(s, request, q_halt, now, passed[row])
                if exit_ is None and not self._scheduler.holds(s, request):
                    continue  # failed by stop() or cancelled meanwhile: its step counts for nobody
                sample = request.payload
                tokens, confidence = pred[row], 1.0 / (1.0 + np.exp(-q_halt))
                if sample.trace:
                    changed = len(tokens) if sample.last_tokens is None else int((tokens != sample.last_tokens).sum())
                    sample.records.append(StepRecord(request.steps, tokens.copy(), float(confidence), changed))
                sample.last_tokens = tokens
                if exit_ is None:
                    continue
                self.completed += 1
                result = EngineResult(
                    tokens=tokens.copy(),
                    steps=request.steps,
                    halted=exit_.halted,
                    confidence=float(confidence),
                    q_halt=q_halt,
                    trace=sample.records,
                    cut_reason=exit_.cut_reason,
                    queue_seconds=request.started - request.submitted,
                    compute_seconds=now - request.started,
                )  # fmt: skip
                finished.append((request, result))
                if sample.probs:
                    wants_probs.append((row, result))
            self._changed.notify_all()  # slots freed (finished or cancelled): stop() may be waiting for that
        if wants_probs:  # only the rows that finish this step: the others' probabilities would be thrown away
            rows = torch.tensor([row for row, _ in wants_probs], device=out.logits.device)
            probs = out.logits[rows].float().softmax(-1).cpu().numpy()  # [finishing, L, V]
            for i, (_, result) in enumerate(wants_probs):
                result.probs = probs[i]
        for request, result in finished:  # outside the lock: done-callbacks may call back in
            settle(request.future, result=result)

    @staticmethod
    def _check(request: Request, tokens: np.ndarray) -> bool:
        """The request's exact check on its step's answer: only from min_steps on, and not again for an answer it failed."""
        sample: _Sample = request.payload
        if sample.check is None or request.steps + 1 < request.min_steps:
            return False
        if sample.checked is not None and np.array_equal(sample.checked, tokens):
            return False
        if passes(sample.check, tokens):
            return True
        sample.checked = tokens
        return False

    def _fail_all(self, error: Exception) -> None:
        """Fail everything queued and in slots (called with the lock held)."""
        for request in self._scheduler.drop_all():
            settle(request.future, error=error)
        self._changed.notify_all()


# --- how many slots ---

# Without a curve for this device: enough slots for continuous batching and for a request's symmetric
# views (the maze models vote over 8) to run side by side. On a quiet 2-core CPU the Sudoku model's
# cost per sample flattened by 8 (12, 8, 6, 5 ms at 1..8, 4.8 at 16 and 32); a GPU's step time hardly
# grows with the batch up to far more than that. One slot, what a start-up timing on a busy host used
# to choose, turns continuous batching off: one request's views then queue one behind the other.
DEFAULT_SLOTS = {"cpu": 8, "cuda": 64}


def device_name(device: torch.device) -> str:
    """What a step-cost curve was measured on: the GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return "cpu: " + line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "cpu: " + (os.uname().machine if hasattr(os, "uname") else "unknown")
    return device.type


def _matches(entry: dict[str, Any], model: TRM) -> bool:
    device = next(model.parameters()).device
    return (
        entry.get("device") == device_name(device)
        and entry.get("dtype") == str(next(model.parameters()).dtype).removeprefix("torch.")
        and (device.type != "cpu" or entry.get("threads") == torch.get_num_threads())
    )


def auto_slots(model: TRM, calibration: list[dict[str, Any]] | None = None) -> tuple[int, str]:
    """The slots for `slots="auto"` and why: from the latest stored step-cost curve measured on this
    device (same CPU or GPU, weights dtype and, on CPU, torch threads) by choose_slots, else
    DEFAULT_SLOTS for the device type. Deterministic: nothing is timed. Call it on the thread that
    will step the model (its torch thread count is compared)."""
    device = next(model.parameters()).device
    for entry in reversed(calibration or []):
        if _matches(entry, model):
            costs = {int(b): float(ms) for b, ms in entry["ms_per_sample"].items()}
            chosen = choose_slots(costs)
            curve = ", ".join(f"{b}: {ms:.1f}" for b, ms in sorted(costs.items()))
            return chosen, f"from the step costs measured on {entry['device']} at {entry.get('measured', '?')}, ms per sample by batch: {curve}"
    default = DEFAULT_SLOTS.get(device.type, 8)
    known = ", ".join(sorted({str(e.get("device")) for e in calibration or []})) or "none"
    return default, f"the default for {device.type}: no step costs stored for {device_name(device)} with {torch.get_num_threads()} threads (stored: {known}); measure them with bench/engine.py --calibrate"


def step_costs(model: TRM, *, max_slots: int = 64, max_step_seconds: float = 0.5, passes: int = 5) -> dict[int, float]:
    """Seconds per sample of one supervision step at batch 1, 2, 4, ... up to `max_slots`: the median
    of `passes` timings per size, after two untimed warm-up steps. Every pass takes the sizes in turn,
    so that a change in the host's speed meanwhile hits every size alike. From the second pass on, a
    size whose median step passes `max_step_seconds` is the largest one kept: no single timing
    decides. Call it on the thread that will step the model (it runs the model); seconds to minutes."""
    c = model.config
    device = next(model.parameters()).device

    def timed(batch: int) -> float:
        inputs = torch.ones(batch, c.seq_len, dtype=torch.long, device=device)
        y, z = model.initial_carry(batch)
        started = time.perf_counter()
        model(y, z, inputs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    sizes = [1 << i for i in range(max_slots.bit_length()) if 1 << i <= max_slots]
    times: dict[int, list[float]] = {b: [] for b in sizes}
    with torch.inference_mode():
        timed(1), timed(1)  # the first steps pay one-off costs (allocations, lazy initialisation)
        for pass_ in range(1, passes + 1):
            for batch in sizes:
                times[batch].append(timed(batch))
            if pass_ >= 2:
                too_long = [b for b in sizes if statistics.median(times[b]) > max_step_seconds]
                if too_long:
                    sizes = sizes[: sizes.index(too_long[0]) + 1]
    return {b: statistics.median(times[b]) / b for b in sizes}


def calibrate(
    directory: str | os.PathLike, *, dtype: str = "auto", device: str = "cpu", threads: int = 0, max_slots: int = 64, max_step_seconds: float = 2.0
) -> dict[str, Any]:
    """Measure a checkpoint's step costs on this machine (step_costs, on a compute thread as the
    engine runs) and store them in its config.json under inference.calibration, replacing an earlier
    curve of the same device, dtype and threads. `slots="auto"` then chooses from them. Returns the entry,
    which records the host's load average too: run it on a quiet machine (medians absorb spikes, not
    a host that is busy throughout)."""
    from trm.checkpoint import CONFIG, load_checkpoint

    model, config = load_checkpoint(directory, device=device)
    served = for_inference(model, dtype)
    compute = ComputeThread(threads, name="calibrate")
    try:
        costs = compute.call(step_costs, served, max_slots=max_slots, max_step_seconds=max_step_seconds).result()
        n_threads = compute.call(torch.get_num_threads).result()
    finally:
        compute.stop()
    entry = {
        "device": device_name(next(served.parameters()).device),
        "dtype": str(next(served.parameters()).dtype).removeprefix("torch."),
        "threads": n_threads,
        "ms_per_sample": {str(b): round(1000 * c, 3) for b, c in costs.items()},
        "slots": choose_slots(costs),
        "torch": torch.__version__,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    inference = config.setdefault("inference", {})
    key = ("device", "dtype", "threads")
    inference["calibration"] = [e for e in inference.get("calibration", []) if any(e.get(k) != entry[k] for k in key)] + [entry]
    path = Path(directory) / CONFIG
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return entry
