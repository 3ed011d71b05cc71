"""AdamATan2 in plain PyTorch, the optimizer builder and the learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer


class AdamATan2(Optimizer):
    """Adam whose update is atan2(m_hat, sqrt(v_hat)) instead of m_hat / (sqrt(v_hat) + eps).

    atan2 is bounded and needs no epsilon (Everett et al., 2024). Weight decay is decoupled:
        p <- p * (1 - lr * wd) - lr * atan2(m / (1 - b1^t), sqrt(v / (1 - b2^t)))
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.95),
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError("invalid AdamATan2 hyper-parameters")
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; `closure` (re-evaluates the loss) is optional. Returns its loss."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(p.grad, 1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat = m / (1 - b1**t)
                v_hat = v / (1 - b2**t)
                p.mul_(1 - lr * wd)
                p.add_(torch.atan2(m_hat, v_hat.sqrt()), alpha=-lr)
        return loss


def build_optimizer(
    name: str, params: Iterable[Tensor], lr: float, weight_decay: float, betas: tuple[float, float]
) -> Optimizer:
    """The optimizer `name` ("adam_atan2" or "adamw") over `params`. Raises ValueError for another name."""
    if name == "adam_atan2":
        return AdamATan2(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r} (adam_atan2 or adamw)")


def lr_at(
    step: int, base_lr: float, warmup_steps: int, total_steps: int, schedule: str, min_ratio: float = 0.1, time_progress: float = 0.0
) -> float:
    """Linear warm-up to base_lr, then constant, or cosine down to min_ratio * base_lr at total_steps.

    time_progress (the fraction of a wall-time budget used) lets the cosine end with the budget when that
    runs out before total_steps: the schedule follows whichever of the two is further along.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        progress = min(1.0, max(time_progress, (step - warmup_steps) / max(1, total_steps - warmup_steps)))
        return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown schedule {schedule!r} (constant or cosine)")
