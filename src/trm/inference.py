"""Plain batched inference (no threads, no queue) and the post-processing every caller shares.

`recurse` runs a static batch for up to max_steps supervision steps with `act` or `fixed` halting.
It is the ground truth the continuous-batching engine must match. `vote` combines the predictions of
symmetric views; trm.pipeline turns a prediction into a checked answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from trm.act import LatentNoise, unroll
from trm.model import TRM
from trm.scheduler import HaltMode, passes, q_halts
from trm.tasks.base import View

__all__ = ["HaltMode", "Prediction", "StepRecord", "majority", "recurse", "vote"]


@dataclass
class StepRecord:
    """One supervision step of a traced solve: the prediction tokens [L], sigmoid(q_halt), and how many tokens changed."""

    step: int
    tokens: np.ndarray  # [L] prediction after this step
    confidence: float  # sigmoid(q_halt)
    changed: int  # tokens different from the previous step's prediction (all of them at step 1)


@dataclass
class Prediction:
    """A solved sample: answer tokens [L], steps taken, whether it halted or was cut, confidence (sigmoid(q_halt)), optional trace and probabilities [L, V], and the vote over views."""

    tokens: np.ndarray  # [L] the answer tokens
    steps: int  # supervision steps taken
    halted: bool  # True: stopped by its halting head (act) or ran its planned steps (fixed); False: cut
    confidence: float  # sigmoid(q_halt) of the final step
    q_halt: float
    trace: list[StepRecord] = field(default_factory=list)
    probs: np.ndarray | None = None  # [L, V] token probabilities of the final step, when asked for
    views: int = 1  # symmetric views of the problem that were solved (vote)
    votes: int = 1  # of those, how many gave this answer


@torch.inference_mode()
def recurse(
    model: TRM,
    inputs: torch.Tensor,
    puzzle_ids: torch.Tensor | None = None,
    *,
    max_steps: int | None = None,
    min_steps: int = 1,
    threshold: float = 0.0,
    mode: HaltMode = "act",
    trace: bool = False,
    probs: bool = False,
    dtype: str = "auto",
    noise: list[LatentNoise | None] | None = None,
    checks: list[Callable[[np.ndarray], bool] | None] | None = None,
) -> list[Prediction]:
    """Run a batch [B, L] to completion; each sample halts on its own (samples are independent).

    Runs in the dtype of the model's weights, or under bfloat16 autocast when `dtype` asks for bf16
    and the weights are float32 (pass `for_inference(model, dtype)` to cast them once instead).
    `noise` [B]: each sample's latent noise (trm.act.LatentNoise; None for a plain trajectory).
    `checks` [B]: each sample's exact check (tokens [L] -> passed) or None; a step whose answer
    passes ends the sample as halted (once it has taken `min_steps`), as the engine's `check` does.
    """
    max_steps = max_steps or model.config.halt_max_steps
    B = len(inputs)
    results: list[Prediction | None] = [None] * B
    traces: list[list[StepRecord]] = [[] for _ in range(B)]
    previous = None
    for step, out in unroll(model, inputs, puzzle_ids, max_steps=max_steps, dtype=dtype, noise=noise):
        pred = out.logits.argmax(-1)
        q = out.q_halt.float()
        conf = torch.sigmoid(q)
        changed = (pred != previous).sum(-1) if previous is not None else torch.full((B,), pred.shape[1], device=pred.device)
        previous = pred
        pred_np, q_np, conf_np, changed_np = pred.cpu().numpy(), q.cpu().numpy(), conf.cpu().numpy(), changed.cpu().numpy()
        finishing: list[tuple[int, Prediction]] = []  # (row, its prediction) of the samples that end this step
        for i in range(B):
            if results[i] is not None:
                continue
            if trace:
                traces[i].append(StepRecord(step, pred_np[i].copy(), float(conf_np[i]), int(changed_np[i])))
            halts = mode == "act" and bool(q_halts(step, q_np[i], threshold=threshold, min_steps=min_steps))
            halts = halts or (step >= min_steps and checks is not None and passes(checks[i], pred_np[i]))
            if halts or step == max_steps:
                results[i] = done = Prediction(pred_np[i].copy(), step, bool(halts or mode == "fixed"), float(conf_np[i]), float(q_np[i]), traces[i])
                finishing.append((i, done))
        if probs and finishing:  # only the rows that finish this step: the others' probabilities would be thrown away
            rows = torch.tensor([i for i, _ in finishing], device=out.logits.device)
            p_np = out.logits[rows].float().softmax(-1).cpu().numpy()  # [finishing, L, V]
            for k, (_, done) in enumerate(finishing):
                done.probs = p_np[k]
        if all(r is not None for r in results):
            break
    return [r for r in results if r is not None]


P = TypeVar("P", bound="Prediction")


def majority(answers: Sequence[np.ndarray], confidences: Sequence[float]) -> list[int]:
    """Indices of the answers in the largest group of identical answers (in input order); a tie goes
    to the group with the larger summed confidence. Raises ValueError for no answers."""
    groups: dict[bytes, list[int]] = {}
    for i, tokens in enumerate(answers):
        groups.setdefault(np.ascontiguousarray(tokens).tobytes(), []).append(i)
    return max(groups.values(), key=lambda g: (len(g), sum(confidences[i] for i in g)))


def vote(views: list[View], predictions: list[P]) -> P:
    """The answer most views agree on, mapped back to the problem (TRM's augmentation voting, as the
    reference evaluates ARC). `predictions[i]` answers `views[i]`. Ties go to the larger summed
    confidence; the result is the winning group's most confident prediction (its steps, confidence and
    trace) with its tokens and trace mapped back and `views` and `votes` set."""
    answers = [view.undo(p.tokens) for view, p in zip(views, predictions)]
    members = majority(answers, [p.confidence for p in predictions])
    best = max(members, key=lambda i: predictions[i].confidence)
    view, chosen = views[best], predictions[best]
    return dataclasses.replace(
        chosen,
        tokens=answers[best],
        trace=[dataclasses.replace(r, tokens=view.undo(r.tokens)) for r in chosen.trace],
        views=len(predictions),
        votes=len(members),
    )
