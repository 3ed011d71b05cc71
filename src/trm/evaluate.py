"""Exact accuracy of a model on a token dataset, in `act` and `fixed` halting, per difficulty bucket.

One pass serves both modes: each batch runs up to max_steps; a sample's `act` answer is its
prediction at the first step where q_halt > threshold (after min_steps), its `fixed` answer the
prediction after the last step. Samples are independent, so this equals running each mode alone.
The steps are act.unroll's, as inference.recurse's are; precision helpers live in trm.precision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from trm.act import unroll
from trm.data import TokenDataset
from trm.losses import PAD
from trm.model import TRM
from trm.progress import bar
from trm.scheduler import q_halts


@dataclass
class Tally:
    """Running counts of one mode and bucket: examples, exact answers, right/valid tokens (PAD excluded), steps, right halting calls."""

    n: int = 0
    exact: int = 0
    tokens_right: int = 0
    tokens: int = 0
    steps: int = 0
    halt_right: int = 0  # (q_halt > 0) agreed with "the answer is exactly right"

    def add(self, exact: np.ndarray, right: np.ndarray, count: np.ndarray, steps: np.ndarray, q: np.ndarray) -> None:
        """Count a batch; every argument is [B]: exact (bool), right and count (valid tokens), steps, and q_halt logits."""
        self.n += len(exact)
        self.exact += int(exact.sum())
        self.tokens_right += int(right.sum())
        self.tokens += int(count.sum())
        self.steps += int(steps.sum())
        self.halt_right += int(((q > 0) == exact).sum())

    def summary(self) -> dict[str, float]:
        """n, exact_accuracy, token_accuracy, mean_steps and halting_accuracy (fractions in [0, 1]; 0 when empty)."""
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
    """Tallies per bucket of each halting mode (`act`, `fixed`), and the wall time of the run in seconds."""

    act: dict[str, Tally] = field(default_factory=dict)
    fixed: dict[str, Tally] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """mode -> bucket -> Tally.summary(), with an `all` bucket summing the mode's buckets; modes not run are left out."""
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
    """Run `dataset` (or `limit` examples spread over it) in batches of `batch_size` through act.unroll
    and tally each mode's answers per bucket. One pass serves both modes (see the module docstring);
    `act` answers halt by trm.scheduler.q_halts as the engine's do. Leaves the model's train/eval mode
    as it found it.
    `progress`: a bar (examples, rate, ETA) on stderr when it is a terminal."""
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
        act_pred = torch.zeros_like(labels)
        act_steps = torch.zeros(B, dtype=torch.long, device=device)
        act_q = torch.zeros(B, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        for step, out in unroll(model, inputs, pids, max_steps=max_steps, dtype=dtype):
            pred = out.logits.argmax(-1)
            stop = ~done & (q_halts(step, out.q_halt, threshold=threshold, min_steps=min_steps) | (step == max_steps))
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
    """EvalResult.summary() as a plain-text table, one row per mode and bucket (accuracies in %)."""
    lines = [f"{'mode':<6} {'bucket':<10} {'n':>6} {'exact':>8} {'token':>8} {'steps':>7} {'halt acc':>9}"]
    for mode, buckets in summary.items():
        for b, s in buckets.items():
            lines.append(
                f"{mode:<6} {b:<10} {s['n']:>6} {100 * s['exact_accuracy']:>7.2f}% {100 * s['token_accuracy']:>7.2f}% "
                f"{s['mean_steps']:>7.2f} {100 * s['halting_accuracy']:>8.1f}%"
            )
    return "\n".join(lines)
