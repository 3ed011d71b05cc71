"""TRMConfig: everything that fixes the network's shape and recursion, saved beside the weights.

Names follow the paper; the reference code's names are given in comments so its configs map across.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Mixer = Literal["attention", "mlp_t", "conv"]
Positions = Literal["rope", "rope2d", "learned", "none"]


@dataclass
class TRMConfig:
    """Shape and recursion of a TRM; saved as config.json beside the weights.

    Fields are documented where they are declared. Raises ValueError from `__post_init__` on an
    inconsistent configuration (heads not dividing D, a puzzle embedding without ids, T, n or
    halt_max_steps below 1, ...).
    """
    # --- the data the network reads ---
    vocab_size: int  # token ids 0..vocab_size-1; 0 is PAD in every task
    seq_len: int  # tokens per puzzle (81 for Sudoku, side*side for a maze)

    # --- the network ---
    hidden_size: int = 128  # D; the paper uses 512
    num_layers: int = 2  # blocks in `net` (reference: L_layers)
    num_heads: int = 2  # attention heads; head_dim = hidden_size // num_heads (64 in the paper)
    expansion: float = 4.0  # SwiGLU width = round(expansion * D * 2/3) rounded up to ffn_multiple
    ffn_multiple: int = 256  # the reference rounds SwiGLU widths up to a multiple of 256
    mixer: Mixer = "attention"  # "mlp_t": a SwiGLU across the sequence axis instead of attention
    # "conv" (not in the reference): a conv_kernel x conv_kernel convolution over the square grid of
    # tokens; the prefix slots take the grid's mean. No weight depends on seq_len, so a conv model
    # trained on one canvas runs on any square canvas (a 15x15-trained maze model on 30x30).
    conv_kernel: int = 3
    positions: Positions = "rope"  # mlp_t needs none: its weights are per position already
    # "rope2d" (not in the reference): half of each head rotates by the row, half by the column of a
    # grid_width-wide grid, so "the cell above" is the same relative position everywhere on a grid.
    grid_width: int = 0  # rope2d only; 0 = sqrt(seq_len)
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5

    # --- the prefix in front of the tokens (the q head reads its first slot) ---
    prefix_len: int = 2  # slots before the tokens (reference: puzzle_emb_len, 16 there)
    # Per-puzzle embedding table (ARC). 0 = none: the prefix is then a learned, shared parameter.
    puzzle_emb_dim: int = 0  # reference: puzzle_emb_ndim; padded to prefix_len * hidden_size
    num_puzzle_ids: int = 0  # rows of the table; Sudoku/maze in the reference use a single id 0

    # --- the recursion ---
    T: int = 2  # cycles per supervision step, the first T-1 without gradients (reference: H_cycles)
    n: int = 3  # latent updates per cycle (reference: L_cycles)
    halt_max_steps: int = 16  # N_sup, supervision steps before a sample is cut
    halt_exploration_prob: float = 0.1  # training only: force a random minimum number of steps

    # --- bookkeeping saved with the weights (not part of the shape) ---
    task: str = ""  # the task this network was trained for
    task_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"size": 15} for a maze

    def __post_init__(self) -> None:
        if self.mixer == "attention" and self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.mixer not in ("attention", "mlp_t", "conv"):
            raise ValueError(f"mixer must be 'attention', 'mlp_t' or 'conv', not {self.mixer!r}")
        if self.mixer == "conv":
            side = math.isqrt(self.seq_len)
            if side * side != self.seq_len or self.conv_kernel % 2 == 0:
                raise ValueError("the conv mixer needs a square grid (seq_len a square) and an odd conv_kernel")
        if self.positions not in ("rope", "rope2d", "learned", "none"):
            raise ValueError(f"positions must be 'rope', 'rope2d', 'learned' or 'none', not {self.positions!r}")
        if self.positions == "rope2d":
            width = self.grid_width or int(round(math.sqrt(self.seq_len)))
            if self.seq_len % width or self.head_dim % 4:
                raise ValueError(f"rope2d needs seq_len divisible by grid_width ({width}) and head_dim divisible by 4")
        if self.puzzle_emb_dim > self.prefix_len * self.hidden_size:
            raise ValueError("puzzle_emb_dim does not fit in prefix_len * hidden_size")
        if self.puzzle_emb_dim and not self.num_puzzle_ids:
            raise ValueError("puzzle_emb_dim > 0 needs num_puzzle_ids > 0")
        if self.T < 1 or self.n < 1 or self.halt_max_steps < 1:
            raise ValueError("T, n and halt_max_steps must be at least 1")

    @property
    def head_dim(self) -> int:
        """Width of one attention head: hidden_size // num_heads."""
        return self.hidden_size // self.num_heads

    @property
    def total_len(self) -> int:
        """Positions the network mixes: prefix slots + tokens."""
        return self.prefix_len + self.seq_len

    @property
    def block_calls_per_step(self) -> int:
        """Block calls in one supervision step: T cycles of (n latent + 1 answer) updates, num_layers each."""
        return self.T * (self.n + 1) * self.num_layers

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TRMConfig:
        """The config from `to_dict`'s output. Raises ValueError naming unknown fields."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TRMConfig fields: {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        """The fields as indented, key-sorted JSON (config.json)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def swiglu_width(dim: int, expansion: float, multiple: int) -> int:
    """Hidden width of a SwiGLU for input width `dim`, as the reference sizes it."""
    return multiple * math.ceil(round(expansion * dim * 2 / 3) / multiple)
