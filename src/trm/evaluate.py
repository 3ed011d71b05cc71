"""Exact accuracy of a model on a token dataset, in `act` and `fixed` halting, per difficulty bucket.

One pass serves both modes: each batch runs up to max_steps; a sample's `act` answer is its
prediction at the first step where q_halt > threshold (after min_steps), its `fixed` answer the
prediction after the last step. Samples are independent, so this equals running each mode alone.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from trm.data import TokenDataset
from trm.losses import PAD
from trm.model import TRM
from trm.progress import bar


@dataclass
class Tally:
    n: int = 0
    exact: int = 0
    tokens_right: int = 0
    tokens: int = 0
    steps: int = 0
    halt_right: int = 0  # (q_halt > 0) agreed with "the answer is exactly right"

    def add(self, exact: np.ndarray, right: np.ndarray, count: np.ndarray, steps: np.ndarray, q: np.ndarray) -> None:
        self.n += len(exact)
        self.exact += int(exact.sum())
        self.tokens_right += int(right.sum())
        self.tokens += int(count.sum())
        self.steps += int(steps.sum())
        self.halt_right += int(((q > 0) == exact).sum())

    def summary(self) -> dict[str, float]:
        n = max(1, self.n)
        return {
            "n": self.n,
            "exact_accuracy": self.exact / n,
            "token_accuracy": self.tokens_right / max(1, self.tokens),
            "mean_steps": self.steps / n,
            "halting_accuracy": self.halt_right / n,
        }


@dataclass
class EvalResult:
    act: dict[str, Tally] = field(default_factory=dict)
    fixed: dict[str, Tally] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for mode, tallies in (("act", self.act), ("fixed", self.fixed)):
            if not tallies:
                continue
            total = Tally()
            for t in tallies.values():
                for k in ("n", "exact", "tokens_right", "tokens", "steps", "halt_right"):
                    setattr(total, k, getattr(total, k) + getattr(t, k))
            out[mode] = {b: t.summary() for b, t in tallies.items()} | {"all": total.summary()}
        return out


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bfloat16 matmuls natively (CUDA; a CPU with AVX512-BF16 or AMX).

    On a CPU without them torch emulates bf16: the shipped Sudoku model stepped 8.5x slower in bf16 than
    in fp32 on a 2-core AVX2 EPYC (468 vs 55 ms a step at batch 1), where an AVX512-BF16 CPU ran it 2.3x faster.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere, which means fp32)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def wants_bf16(device: torch.device, dtype: str) -> bool:
    """bfloat16 where asked (`bf16`), or with `auto` where the device computes it natively; float32 otherwise."""
    return dtype == "bf16" or (dtype == "auto" and native_bf16(device))


def autocast_context(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for float32 weights where bf16 is wanted (training and training-time eval)."""
    if wants_bf16(device, dtype):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def evaluate(
    model: TRM,
    dataset: TokenDataset,
    *,
    max_steps: int | None = None,
    threshold: float = 0.0,
    min_steps: int = 1,
    batch_size: int = 64,
    limit: int | None = None,
    modes: tuple[str, ...] = ("act", "fixed"),
    dtype: str = "auto",
    progress: bool = False,
) -> EvalResult:
    """Exact and token accuracy per bucket of up to `limit` examples, in the `modes` asked for.
    `progress`: a bar (examples, rate, ETA, current step) on stderr when it is a terminal."""
    device = next(model.parameters()).device
    max_steps = max_steps or model.config.halt_max_steps
    names = dataset.bucket_names
    result = EvalResult()
    for mode in modes:
        getattr(result, mode).update({b: Tally() for b in names})
    # a limit takes examples evenly spread over the dataset, so every bucket stays represented
    if limit is None or limit >= len(dataset):
        order = np.arange(len(dataset))
    else:
        order = np.unique(np.linspace(0, len(dataset) - 1, limit).astype(np.int64))
    n = len(order)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    shown = bar(n, "eval", "ex", show=progress)
    for lo in range(0, n, batch_size):
        batch = dataset.take(order[lo : lo + batch_size])
        inputs = torch.from_numpy(batch.inputs).to(device)
        labels = torch.from_numpy(batch.labels).to(device)
        pids = torch.from_numpy(batch.puzzle_ids).to(device)
        B = len(inputs)
        y, z = model.initial_carry(B)
        y, z = y.to(device), z.to(device)
        act_pred = torch.zeros_like(labels)
        act_steps = torch.zeros(B, dtype=torch.long, device=device)
        act_q = torch.zeros(B, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        for step in range(1, max_steps + 1):
            with autocast_context(device, dtype):
                out = model(y, z, inputs, pids)
            y, z = out.y, out.z
            pred = out.logits.argmax(-1)
            stop = ~done & (((out.q_halt > threshold) & (step >= min_steps)) | (step == max_steps))
            act_pred[stop], act_steps[stop], act_q[stop] = pred[stop], step, out.q_halt[stop]
            done |= stop
            shown.set_postfix_str(f"step {step}/{max_steps}", refresh=False)
            shown.refresh()
            if done.all() and "fixed" not in modes:
                break
        for mode, p, steps, q in (("act", act_pred, act_steps, act_q), ("fixed", pred, torch.full_like(act_steps, max_steps), out.q_halt)):
            if mode not in modes:
                continue
            valid = labels != PAD
            right = ((p == labels) & valid).sum(-1)
            count = valid.sum(-1)
            exact = right == count
            for b_index, b in enumerate(names):
                sel = (torch.from_numpy(batch.buckets).to(device) == b_index)
                if sel.any():
                    getattr(result, mode)[b].add(*(t[sel].cpu().numpy() for t in (exact, right, count, steps, q)))
        shown.update(B)
    shown.close()
    result.seconds = time.perf_counter() - start
    # drop buckets this dataset has no examples of
    for mode in modes:
        tallies = getattr(result, mode)
        for b in [b for b, t in tallies.items() if t.n == 0]:
            del tallies[b]
    model.train(was_training)
    return result


def format_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"{'mode':<6} {'bucket':<10} {'n':>6} {'exact':>8} {'token':>8} {'steps':>7} {'halt acc':>9}"]
    for mode, buckets in summary.items():
        for b, s in buckets.items():
            lines.append(
                f"{mode:<6} {b:<10} {s['n']:>6} {100 * s['exact_accuracy']:>7.2f}% {100 * s['token_accuracy']:>7.2f}% "
                f"{s['mean_steps']:>7.2f} {100 * s['halting_accuracy']:>8.1f}%"
            )
    return "\n".join(lines)
