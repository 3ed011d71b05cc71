"""Exponential moving average of the parameters; evaluation and export use it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


class EMA:
    """Shadow copies of a model's parameters, averaged after each optimizer step (`update`).

    `decay` is per step (0.999: an average over about the last 1000 steps); `warmup` ramps it up
    from 0.1 so the early average is not dominated by the random init.
    """
    def __init__(self, model: nn.Module, decay: float = 0.999, *, warmup: bool = False) -> None:
        self.decay = decay
        self.warmup = warmup
        self.shadow: dict[str, Tensor] = {n: p.detach().clone() for n, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """shadow <- d * shadow + (1 - d) * param, after optimizer step `step` (1-based)."""
        d = self.decay_at(step)
        for name, p in model.named_parameters():
            self.shadow[name].lerp_(p.detach(), 1.0 - d)

    def decay_at(self, step: int) -> float:
        """The decay, ramped as min(decay, (1 + t) / (10 + t)) with warm-up: an average over ~t/10 steps."""
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily load the averaged weights into `model` (e.g. for evaluation)."""
        backup = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    p.copy_(backup[n])

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Copy the averaged weights into `model`'s parameters (in place)."""
        for n, p in model.named_parameters():
            p.copy_(self.shadow[n])

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged weights by parameter name (the tensors themselves, not copies)."""
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load averaged weights saved by `state_dict`. Raises ValueError naming the parameters missing from `state`."""
        missing = set(self.shadow) - set(state)
        if missing:
            raise ValueError(f"EMA state lacks {sorted(missing)}")
        for n in self.shadow:
            self.shadow[n].copy_(state[n])
