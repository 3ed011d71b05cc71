"""ACT with deep supervision: the trainer's slot carry, and the supervision steps of a static batch.

Training: a batch is a fixed set of slots. Each supervision step advances every slot by one step; a
slot whose sample has halted is reset to the init vectors and loaded with a new sample, while the
other slots keep their carry. Gradients never cross steps (the model returns a detached carry).

Inference and evaluation: `unroll` steps a whole batch from the init carry; `inference.recurse` and
`evaluate.evaluate` decide from its outputs which samples stop. Every one of them halts by
`trm.scheduler.q_halts`, as the continuous-batching engine does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from trm.model import TRM, StepOutput
from trm.precision import step_context
from trm.scheduler import q_halts


@dataclass
class Carry:
    """The state of every slot of a batch between supervision steps: B slots, L tokens, S = prefix_len + L positions, D hidden size."""

    y: Tensor  # [B, S, D] answer state
    z: Tensor  # [B, S, D] latent state
    steps: Tensor  # [B] int32 supervision steps taken by the slot's current sample
    halted: Tensor  # [B] bool: the slot's sample is finished and the slot takes a new one next step
    inputs: Tensor  # [B, L] tokens of the slot's current sample
    labels: Tensor  # [B, L] targets (training; zeros at inference)
    puzzle_ids: Tensor  # [B] int64


def empty_carry(model: TRM, batch_size: int, seq_len: int, device: torch.device | str = "cpu") -> Carry:
    """All slots halted, so the first step loads a sample into each."""
    y, z = model.initial_carry(batch_size)
    return Carry(
        y=y.to(device),
        z=z.to(device),
        steps=torch.zeros(batch_size, dtype=torch.int32, device=device),
        halted=torch.ones(batch_size, dtype=torch.bool, device=device),
        inputs=torch.zeros(batch_size, seq_len, dtype=torch.long, device=device),
        labels=torch.zeros(batch_size, seq_len, dtype=torch.long, device=device),
        puzzle_ids=torch.zeros(batch_size, dtype=torch.long, device=device),
    )


def refill(model: TRM, carry: Carry, inputs: Tensor, labels: Tensor, puzzle_ids: Tensor) -> Carry:
    """Load new samples into the halted slots (in slot order) and reset their state.

    `inputs`/`labels` [K, L] and `puzzle_ids` [K] with K = number of halted slots.
    """
    slots = carry.halted.nonzero().squeeze(-1)
    if len(slots) != len(inputs):
        raise ValueError(f"{len(slots)} free slots but {len(inputs)} new samples")
    y, z = model.reset_carry(carry.y, carry.z, carry.halted)
    new_inputs, new_labels, new_ids = carry.inputs.clone(), carry.labels.clone(), carry.puzzle_ids.clone()
    new_inputs[slots], new_labels[slots], new_ids[slots] = inputs, labels, puzzle_ids
    return Carry(
        y=y,
        z=z,
        steps=torch.where(carry.halted, 0, carry.steps),
        halted=torch.zeros_like(carry.halted),
        inputs=new_inputs,
        labels=new_labels,
        puzzle_ids=new_ids,
    )


def halt_decision(
    steps: Tensor,
    q_halt: Tensor,
    *,
    max_steps: int,
    use_q: bool,
    threshold: float = 0.0,
    min_steps: int = 1,
    exploration_prob: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Which samples stop after the step just taken (`steps` already counts it).

    - Every sample stops at `max_steps`.
    - With `use_q` (training, or `act` inference), a sample also stops once q_halt > threshold and
      it has taken at least `min_steps`.
    - Exploration (training): with probability `exploration_prob` a sample must first reach a
      random minimum in [2, max_steps].
    """
    halted = steps >= max_steps
    if use_q and max_steps > 1:
        halted = halted | q_halts(steps, q_halt, threshold=threshold, min_steps=min_steps)
        if exploration_prob > 0:
            explore = torch.rand(steps.shape, generator=generator, device=steps.device) < exploration_prob
            floor = torch.randint(2, max_steps + 1, steps.shape, generator=generator, device=steps.device)
            halted = halted & (steps >= explore * floor)
    return halted


class LatentNoise:
    """Gaussian noise for one trajectory's latent state: before every supervision step its z gets
    `sigma` * N(0, 1) noise of shape [S, D], drawn from a generator seeded by `seed`.

    Test-time compute (trm.testtime): trajectories of one problem that differ only in this noise
    explore different paths through the recursion, and the halting head, a vote or an exact check
    picks among them; no retraining. The same (sigma, seed) gives the same noise in the engine and
    in `unroll`, so a noisy attempt is reproducible."""

    def __init__(self, sigma: float, seed: int) -> None:
        if sigma < 0:
            raise ValueError(f"noise sigma must be >= 0, got {sigma}")
        self.sigma, self.seed = sigma, seed
        self._generator = torch.Generator().manual_seed(seed)

    def sample(self, shape: tuple[int, ...]) -> Tensor:
        """The next step's noise [*shape] (float32, on the CPU)."""
        return self.sigma * torch.randn(shape, generator=self._generator)


def perturb(z: Tensor, noise: list[LatentNoise | None]) -> Tensor:
    """z [B, S, D] with each row's noise added (rows whose entry is None or sigma 0 stay as they are)."""
    if not any(n is not None and n.sigma > 0 for n in noise):
        return z
    eps = torch.zeros(z.shape, dtype=torch.float32)
    for row, n in enumerate(noise):
        if n is not None and n.sigma > 0:
            eps[row] = n.sample(tuple(z.shape[1:]))
    return z + eps.to(device=z.device, dtype=z.dtype)


def unroll(
    model: TRM,
    inputs: Tensor,
    puzzle_ids: Tensor | None = None,
    *,
    max_steps: int,
    dtype: str = "auto",
    noise: list[LatentNoise | None] | None = None,
) -> Iterator[tuple[int, StepOutput]]:
    """Supervision steps 1..max_steps of a batch `inputs` [B, L] from the init carry: yields (step, output).

    The caller stops it early (break) once every sample it cares about has stopped. Runs in the dtype
    of the model's weights, or under bfloat16 autocast where `dtype` wants bf16 and the weights are
    float32 (trm.precision.step_context). `noise` [B]: each sample's latent noise (LatentNoise), added
    to z before every step. Call it under torch.inference_mode() (or no_grad)."""
    device = next(model.parameters()).device
    inputs = inputs.to(device)
    if puzzle_ids is None:
        puzzle_ids = torch.zeros(len(inputs), dtype=torch.long, device=device)
    if noise is not None and len(noise) != len(inputs):
        raise ValueError(f"{len(noise)} noise sources for a batch of {len(inputs)}")
    y, z = model.initial_carry(len(inputs))
    y, z = y.to(device), z.to(device)
    for step in range(1, max_steps + 1):
        if noise is not None:
            z = perturb(z, noise)
        with step_context(model, dtype):
            out = model(y, z, inputs, puzzle_ids.to(device))
        y, z = out.y, out.z
        yield step, out
