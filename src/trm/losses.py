"""Losses of TRM: token cross entropy (stablemax or softmax) + 0.5 * BCE halting loss.

Labels use 0 (PAD) for positions that carry no target; they are ignored. The token loss is a mean
over the valid tokens of each sequence, summed over the batch (divide by the batch size outside).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

PAD = 0


def log_stablemax(x: Tensor, dim: int = -1) -> Tensor:
    """log of s(x) / sum s(x) with s(x) = x + 1 for x >= 0 and 1 / (1 - x) for x < 0.

    Each branch sees its input clamped to its own side of zero: `torch.where` evaluates both, and
    1/(1-x) at x = 1 has an infinite gradient that would turn into NaN (inf * 0).
    """
    s = torch.where(x >= 0, x.clamp(min=0) + 1, 1 / (1 - x.clamp(max=0)))
    return torch.log(s) - torch.log(s.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-token loss [B, L] in float64; 0 where the label is PAD."""
    logprobs = log_stablemax(logits.double(), dim=-1)
    valid = labels != PAD
    picked = logprobs.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, -picked, 0.0)


def softmax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-token loss [B, L] in float32; 0 where the label is PAD."""
    loss = F.cross_entropy(logits.float().flatten(0, 1), labels.long().flatten(), reduction="none")
    return torch.where(labels != PAD, loss.view(labels.shape), 0.0)


TOKEN_LOSSES = {"stablemax": stablemax_cross_entropy, "softmax": softmax_cross_entropy}


@dataclass
class LossOutput:
    """The loss of one supervision step and its accuracy counts (`act_loss`)."""
    loss: Tensor  # scalar: sum over the batch of (token loss + 0.5 * halting loss)
    lm_loss: Tensor  # scalar, summed over the batch
    q_loss: Tensor  # scalar, summed over the batch
    seq_correct: Tensor  # [B] bool: every valid token right
    token_correct: Tensor  # [B] number of valid tokens right
    token_count: Tensor  # [B] number of valid tokens


def act_loss(logits: Tensor, labels: Tensor, q_halt: Tensor, kind: str = "stablemax", weights: Tensor | None = None) -> LossOutput:
    """Token loss plus the halting loss of one supervision step, summed over the batch.

    logits [B, L, V], labels [B, L] (PAD = 0 is ignored), q_halt [B] (halting logits; target:
    the whole sequence is right). The token loss is averaged over each sample's valid tokens;
    `kind` is "stablemax" (the paper's) or "softmax" cross-entropy. `weights` [B, L]: per-token
    factors on that loss (still divided by the count of valid tokens, so a sample with heavier
    tokens weighs more); None = all 1, the paper's loss.
    """
    valid = labels != PAD
    count = valid.sum(-1)
    with torch.no_grad():
        correct = valid & (logits.argmax(-1) == labels)
        token_correct = correct.sum(-1)
        seq_correct = token_correct == count
    per_token = TOKEN_LOSSES[kind](logits, labels)  # [B, L]
    if weights is not None:
        per_token = per_token * weights.to(per_token.dtype)
    lm_loss = (per_token.sum(-1) / count.clamp(min=1)).sum().float()
    q_loss = F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="sum")
    return LossOutput(
        loss=lm_loss + 0.5 * q_loss,
        lm_loss=lm_loss.detach(),
        q_loss=q_loss.detach(),
        seq_correct=seq_correct,
        token_correct=token_correct,
        token_count=count,
    )
