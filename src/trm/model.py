"""The Tiny Recursive Model, top to bottom.

Shapes: B batch, P prefix slots, L tokens, S = P + L positions, D hidden, V vocabulary, H heads.

One network `net` (num_layers post-norm blocks) does both updates of the paper:
    latent update   z = net(z, y + x)      n times
    answer update   y = net(y, z)          once
where net(h, inj) first adds the injection (h + inj) and then runs the blocks. A supervision step
runs T such cycles, the first T-1 without gradients, and returns the detached carry (y, z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trm.config import TRMConfig, swiglu_width

# --- init -------------------------------------------------------------------------------------

# std of a standard normal truncated to [-2, 2]; dividing by it makes the truncated draw have `std`.
_TRUNC2_STD = 0.87962566103423978


def trunc_normal_(tensor: Tensor, std: float) -> Tensor:
    """Truncated normal cut at 2 sigma, rescaled so the result has standard deviation `std`."""
    with torch.no_grad():
        nn.init.trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0)
        tensor.mul_(std / _TRUNC2_STD)
    return tensor


def lecun_linear(in_features: int, out_features: int, bias: bool = False) -> nn.Linear:
    """A Linear layer (no bias by default) with LeCun-normal weights: truncated normal, std 1/sqrt(in_features)."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    trunc_normal_(layer.weight, std=1.0 / math.sqrt(in_features))
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


# --- building blocks --------------------------------------------------------------------------


def rms_norm(x: Tensor, eps: float, dim: int = -1) -> Tensor:
    """RMSNorm without a weight over axis `dim` (the last by default), computed in float32."""
    dtype = x.dtype
    x = x.float()
    x = x * torch.rsqrt(x.square().mean(dim, keepdim=True) + eps)
    return x.to(dtype)


def rope_angles(dim: int, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Angles [S, dim] for 1-D positions [S]: frequencies theta^(-2i/dim), halves repeated (Llama style)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    freqs = torch.outer(positions.float(), inv_freq)  # [S, dim/2]
    return torch.cat((freqs, freqs), dim=-1)


class Rotary(nn.Module):
    """RoPE tables cos, sin [S, head_dim] over prefix + tokens.

    1-D (the reference): position = index in the sequence. 2-D: the first half of each head turns
    with the row, the second half with the column; the prefix slots sit on a row of their own above
    the grid.
    """

    cos: Tensor  # buffers, declared for the type checker
    sin: Tensor

    def __init__(self, head_dim: int, positions: int, theta: float, grid: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.two_d = grid is not None
        if grid is None:
            emb = rope_angles(head_dim, torch.arange(positions), theta)
        else:
            prefix, width = grid
            index = torch.arange(positions) - prefix
            rows = torch.where(index < 0, 0, index // width + 1)
            cols = torch.where(index < 0, index + prefix, index % width)
            emb = torch.cat((rope_angles(head_dim // 2, rows, theta), rope_angles(head_dim // 2, cols, theta)), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Rotate queries or keys [B, S, H, hd]."""
        if not self.two_d:
            return apply_rope(x, self.cos, self.sin)
        h = x.shape[-1] // 2
        return torch.cat((apply_rope(x[..., :h], self.cos[:, :h], self.sin[:, :h]), apply_rope(x[..., h:], self.cos[:, h:], self.sin[:, h:])), dim=-1)


def rotate_half(x: Tensor) -> Tensor:
    """[x1, x2] -> [-x2, x1] over the last axis (halves): the 90-degree turn of RoPE."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x [B, S, H, hd] by the angles whose cos and sin are given [S, hd]: x cos + rotate_half(x) sin."""
    cos, sin = cos.unsqueeze(-2).to(x.dtype), sin.unsqueeze(-2).to(x.dtype)
    return x * cos + rotate_half(x) * sin


class SwiGLU(nn.Module):
    """Gated MLP: down(silu(gate(x)) * up(x)); hidden width round(expansion * dim * 2/3) rounded up to `multiple`."""
    def __init__(self, dim: int, expansion: float, multiple: int) -> None:
        super().__init__()
        width = swiglu_width(dim, expansion, multiple)
        self.gate_up_proj = lecun_linear(dim, 2 * width)
        self.down_proj = lecun_linear(width, dim)

    def forward(self, x: Tensor) -> Tensor:
        """[..., dim] -> [..., dim]."""
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)

    def across(self, h: Tensor) -> Tensor:
        """forward(h.transpose(-1, -2)).transpose(-1, -2) without the transposes: [B, S, D] -> [B, S, D].

        The weights multiply from the left (W @ h) so h keeps its layout: the same sums, and on CPU
        11-16% faster than transposing around nn.Linear (no strided copies).
        """
        B = h.shape[0]  # bmm, not matmul: for a weight that requires grad, matmul transposes and copies
        gate, up = torch.bmm(self.gate_up_proj.weight.expand(B, -1, -1), h).chunk(2, dim=-2)  # 2 x [B, W, D]
        return torch.bmm(self.down_proj.weight.expand(B, -1, -1), F.silu(gate) * up)  # [B, S, D]


class Attention(nn.Module):
    """Non-causal multi-head self-attention with a fused qkv projection and no biases."""

    def __init__(self, config: TRMConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.qkv_proj = lecun_linear(config.hidden_size, 3 * config.hidden_size)
        self.o_proj = lecun_linear(config.hidden_size, config.hidden_size)

    def forward(self, x: Tensor, rope: Rotary | None) -> Tensor:
        """[B, S, D] -> [B, S, D]; `rope` rotates queries and keys (None: no positions)."""
        B, S, D = x.shape
        qkv = self.qkv_proj(x).view(B, S, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.split(self.num_heads, dim=2)  # each [B, S, H, hd]
        if rope is not None:
            q, k = rope(q), rope(k)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.o_proj(out.transpose(1, 2).reshape(B, S, D))


class GridConv(nn.Module):
    """Mixer for square grids: a k x k convolution over the tokens; every prefix slot gets the mean of
    the grid's output (how the q head, reading slot 0, sees the whole grid). [B, P + W*W, D] -> same.

    The grid side W comes from the input, not the config: the same weights run on any square canvas.
    """

    def __init__(self, config: TRMConfig) -> None:
        super().__init__()
        self.prefix_len = config.prefix_len
        k, D = config.conv_kernel, config.hidden_size
        self.conv = nn.Conv2d(D, D, k, padding=k // 2, bias=False)
        trunc_normal_(self.conv.weight, std=1.0 / math.sqrt(D * k * k))  # LeCun, as the linear layers

    def forward(self, h: Tensor) -> Tensor:
        """[B, P + W*W, D] -> [B, P + W*W, D]."""
        B, S, D = h.shape
        P = self.prefix_len
        W = math.isqrt(S - P)
        grid = h[:, P:].transpose(1, 2).reshape(B, D, W, W)  # [B, D, W, W]
        out = self.conv(grid).flatten(2).transpose(1, 2)  # [B, L, D]
        return torch.cat((out.mean(1, keepdim=True).expand(B, P, D), out), dim=1)


class Block(nn.Module):
    """Post-norm block: h = norm(h + mixer(h)); h = norm(h + swiglu(h))."""

    def __init__(self, config: TRMConfig) -> None:
        super().__init__()
        self.eps = config.rms_norm_eps
        self.mixer = config.mixer
        if config.mixer == "mlp_t":
            # A SwiGLU across the S positions: the same mixing for every channel.
            self.mlp_t = SwiGLU(config.total_len, config.expansion, config.ffn_multiple)
        elif config.mixer == "conv":
            self.conv = GridConv(config)
        else:
            self.self_attn = Attention(config)
        self.mlp = SwiGLU(config.hidden_size, config.expansion, config.ffn_multiple)

    def forward(self, h: Tensor, rope: Rotary | None) -> Tensor:
        """One block on h [B, S, D] -> [B, S, D]; `rope` is used by the attention mixer only."""
        if self.mixer == "mlp_t":
            # the SwiGLU runs along S for every channel (the reference transposes to [B, D, S] and
            # back); the norm is over S too, as the reference's
            h = rms_norm(h + self.mlp_t.across(h), self.eps, dim=-2)
        elif self.mixer == "conv":
            h = rms_norm(h + self.conv(h), self.eps)
        else:
            h = rms_norm(h + self.self_attn(h, rope), self.eps)
        return rms_norm(h + self.mlp(h), self.eps)


class PuzzleEmbedding(nn.Module):
    """One row per puzzle id, zero-initialised, trained by sign-SGD on the rows in the batch only.

    The table is a buffer, not a Parameter: it stays out of the optimizer, the parameter count and
    the EMA. In training, `forward` hands out a detached copy of the looked-up rows that collects
    gradients; `sign_sgd_step` then updates just those rows.
    """

    weight: Tensor  # [num_ids, dim] buffer

    def __init__(self, num_ids: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_ids, dim))
        self._ids: Tensor | None = None
        self._rows: Tensor | None = None

    def forward(self, ids: Tensor) -> Tensor:
        """Puzzle ids [B] -> rows [B, dim]; in training, a detached copy that collects this step's gradients."""
        if not (self.training and torch.is_grad_enabled()):
            return self.weight[ids]
        rows = self.weight[ids].detach().requires_grad_(True)
        self._ids, self._rows = ids, rows
        return rows

    @torch.no_grad()
    def sign_sgd_step(self, lr: float, weight_decay: float) -> None:
        """w <- w * (1 - lr * wd) - lr * sign(sum of this step's gradients), for the rows used."""
        if self._ids is None or self._rows is None or self._rows.grad is None:
            return
        ids, grad = self._ids, self._rows.grad
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            ids, grad = _all_gather(ids), _all_gather(grad)
        unique, inverse = ids.unique(return_inverse=True)
        summed = torch.zeros(len(unique), grad.shape[-1], device=grad.device, dtype=grad.dtype)
        summed.index_add_(0, inverse, grad)
        rows = self.weight[unique]
        rows.mul_(1.0 - lr * weight_decay).add_(torch.sign(summed), alpha=-lr)
        self.weight[unique] = rows
        self._ids = self._rows = None


def _all_gather(t: Tensor) -> Tensor:
    out = [torch.empty_like(t) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(out, t.contiguous())
    return torch.cat(out)


# --- the model --------------------------------------------------------------------------------


@dataclass
class StepOutput:
    """What one supervision step returns (`TRM.forward`)."""
    y: Tensor  # [B, S, D] detached answer state, the carry for the next step
    z: Tensor  # [B, S, D] detached latent state
    logits: Tensor  # [B, L, V] token logits read from y (prefix dropped)
    q_halt: Tensor  # [B] float32 halting logit; > 0 means "my answer is right, stop"
    q_continue: Tensor  # [B] float32; kept for reference checkpoints, unused by the default loss


class TRM(nn.Module):
    """The Tiny Recursive Model: embeddings, one shared network `net`, an answer head and a halting head.

    `forward` runs one supervision step on a carry (y, z) [B, S, D] and inputs [B, L] (token ids);
    `initial_carry` and `reset_carry` start and restart slots. Built from a `TRMConfig`.
    """

    y_init: Tensor  # [D] buffers: the start of the answer and latent states
    z_init: Tensor

    def __init__(self, config: TRMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed_scale = math.sqrt(c.hidden_size)
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        trunc_normal_(self.embed_tokens.weight, std=1.0 / self.embed_scale)
        if c.puzzle_emb_dim:
            self.puzzle_emb = PuzzleEmbedding(c.num_puzzle_ids, c.puzzle_emb_dim)
        elif c.prefix_len:
            self.prefix = nn.Parameter(trunc_normal_(torch.empty(c.prefix_len, c.hidden_size), 1.0 / self.embed_scale))
        if c.positions == "learned":
            self.embed_pos = nn.Embedding(c.total_len, c.hidden_size)
            trunc_normal_(self.embed_pos.weight, std=1.0 / self.embed_scale)
        if c.positions == "rope":
            self.rope: Rotary | None = Rotary(c.head_dim, c.total_len, c.rope_theta)
        elif c.positions == "rope2d":
            width = c.grid_width or int(round(math.sqrt(c.seq_len)))
            self.rope = Rotary(c.head_dim, c.total_len, c.rope_theta, grid=(c.prefix_len, width))
        else:
            self.rope = None
        self.layers = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.lm_head = lecun_linear(c.hidden_size, c.vocab_size)
        self.q_head = nn.Linear(c.hidden_size, 2)  # [q_halt, q_continue]
        nn.init.zeros_(self.q_head.weight)
        nn.init.constant_(self.q_head.bias, -5.0)  # start by never halting
        # Fixed random starting states (not trained): every fresh slot starts from these.
        self.register_buffer("y_init", trunc_normal_(torch.empty(c.hidden_size), std=1.0))
        self.register_buffer("z_init", trunc_normal_(torch.empty(c.hidden_size), std=1.0))

    def num_parameters(self) -> int:
        """Trainable parameters (the puzzle-embedding table, a buffer, is not counted)."""
        return sum(p.numel() for p in self.parameters())

    # --- input ---

    def embed(self, inputs: Tensor, puzzle_ids: Tensor | None = None) -> Tensor:
        """x = sqrt(D) * [prefix, embed(tokens)] (+ learned positions): [B, L] -> [B, S, D]."""
        c = self.config
        x = self.embed_tokens(inputs)  # [B, L, D]
        B = x.shape[0]
        if c.puzzle_emb_dim:
            if puzzle_ids is None:
                puzzle_ids = torch.zeros(B, dtype=torch.long, device=x.device)
            p = self.puzzle_emb(puzzle_ids)  # [B, puzzle_emb_dim]
            p = F.pad(p, (0, c.prefix_len * c.hidden_size - c.puzzle_emb_dim))
            x = torch.cat((p.view(B, c.prefix_len, c.hidden_size).to(x.dtype), x), dim=1)
        elif c.prefix_len:
            x = torch.cat((self.prefix.expand(B, -1, -1), x), dim=1)
        if c.positions == "learned":
            x = (x + self.embed_pos.weight) / math.sqrt(2)
        return self.embed_scale * x

    # --- the recursion, as in the paper ---

    def net(self, h: Tensor, injection: Tensor) -> Tensor:
        """The shared network: h + injection through every block, [B, S, D] -> [B, S, D]."""
        h = h + injection
        for layer in self.layers:
            h = layer(h, self.rope)
        return h

    def latent_recursion(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """n latent updates z = net(z, y + x), then one answer update y = net(y, z)."""
        for _ in range(self.config.n):
            z = self.net(z, y + x)
        y = self.net(y, z)
        return y, z

    def deep_recursion(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """T cycles of latent recursion; only the last one builds a graph."""
        with torch.no_grad():
            for _ in range(self.config.T - 1):
                y, z = self.latent_recursion(x, y, z)
        return self.latent_recursion(x, y, z)

    def forward(self, y: Tensor, z: Tensor, inputs: Tensor, puzzle_ids: Tensor | None = None) -> StepOutput:
        """One supervision step from carry (y, z) on `inputs` [B, L]."""
        x = self.embed(inputs, puzzle_ids)
        y, z = self.deep_recursion(x, y.to(x.dtype), z.to(x.dtype))
        logits = self.lm_head(y[:, self.config.prefix_len :])  # [B, L, V]
        q = self.q_head(y[:, 0]).float()  # [B, 2]
        return StepOutput(y=y.detach(), z=z.detach(), logits=logits, q_halt=q[:, 0], q_continue=q[:, 1])

    # --- the carry ---

    def initial_carry(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(y, z), each [batch_size, S, D]: copies of the init vectors."""
        shape = (batch_size, self.config.total_len, self.config.hidden_size)
        return self.y_init.expand(shape).clone(), self.z_init.expand(shape).clone()

    def reset_carry(self, y: Tensor, z: Tensor, reset: Tensor) -> tuple[Tensor, Tensor]:
        """Slots where `reset` [B] is true start over from the init vectors; the rest keep their state."""
        r = reset.view(-1, 1, 1)
        return torch.where(r, self.y_init.to(y.dtype), y), torch.where(r, self.z_init.to(z.dtype), z)
