import math

import pytest
import torch

from trm.config import TRMConfig, swiglu_width
from trm.model import TRM, apply_rope, rms_norm, trunc_normal_


def tiny(**kw) -> TRMConfig:
    base = dict(vocab_size=11, seq_len=16, hidden_size=32, num_heads=2, T=2, n=2, halt_max_steps=4, ffn_multiple=32)
    base.update(kw)
    return TRMConfig(**base)


VARIANTS = [
    dict(mixer="attention", positions="rope"),
    dict(mixer="attention", positions="learned"),
    dict(mixer="attention", positions="none"),
    dict(mixer="attention", positions="rope2d", grid_width=4),
    dict(mixer="mlp_t", positions="none"),
    dict(mixer="attention", positions="rope", prefix_len=2, puzzle_emb_dim=48, num_puzzle_ids=5),
    dict(mixer="mlp_t", positions="none", prefix_len=0),
    dict(mixer="conv", positions="none"),
    dict(mixer="conv", positions="none", prefix_len=0, conv_kernel=5),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_shapes_and_dtypes(variant):
    cfg = tiny(**variant)
    model = TRM(cfg)
    B = 3
    y, z = model.initial_carry(B)
    assert y.shape == z.shape == (B, cfg.total_len, cfg.hidden_size)
    inputs = torch.randint(0, cfg.vocab_size, (B, cfg.seq_len))
    ids = torch.tensor([0, 1, 2]) if cfg.num_puzzle_ids else None
    out = model(y, z, inputs, ids)
    assert out.logits.shape == (B, cfg.seq_len, cfg.vocab_size)
    assert out.q_halt.shape == out.q_continue.shape == (B,)
    assert out.q_halt.dtype == torch.float32
    assert out.y.shape == y.shape and not out.y.requires_grad and not out.z.requires_grad
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16 = model(y, z, inputs, ids)
    assert out16.logits.dtype == torch.bfloat16
    assert out16.q_halt.dtype == torch.float32


def test_q_head_starts_never_halting():
    model = TRM(tiny())
    assert torch.all(model.q_head.weight == 0) and torch.all(model.q_head.bias == -5)
    y, z = model.initial_carry(2)
    out = model(y, z, torch.randint(0, 11, (2, 16)))
    assert torch.allclose(out.q_halt, torch.full((2,), -5.0))


def test_swiglu_width_matches_reference_rounding():
    assert swiglu_width(512, 4, 256) == 1536
    assert swiglu_width(128, 4, 128) == 384
    assert swiglu_width(83, 4, 128) == 256


def test_trunc_normal_has_requested_std_and_cut():
    t = trunc_normal_(torch.empty(200_000), std=0.5)
    assert abs(t.std().item() - 0.5) < 0.01
    assert t.abs().max().item() <= 2 * 0.5 / 0.87962566103423978 + 1e-6


def test_rms_norm_is_weightless_and_float32_inside():
    x = torch.randn(4, 8, dtype=torch.bfloat16) * 10
    out = rms_norm(x, 1e-5)
    assert out.dtype == torch.bfloat16
    ref = x.float() / torch.sqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5)
    assert torch.allclose(out.float(), ref, atol=1e-2)


def test_rope_rotates_pairs_and_keeps_norm():
    from trm.model import Rotary

    rope = Rotary(8, 5, 10000.0)
    x = torch.randn(1, 5, 2, 8)
    out = apply_rope(x, rope.cos, rope.sin)
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.allclose(out[:, 0], x[:, 0])  # position 0: no rotation
    # pair (i, i + hd/2) at position 1 rotates by angle 1 * theta^(-2i/hd)
    angle = 1.0 * 10000.0 ** (-0 / 8)
    c, s = math.cos(angle), math.sin(angle)
    assert torch.allclose(out[0, 1, 0, 0], x[0, 1, 0, 0] * c - x[0, 1, 0, 4] * s, atol=1e-5)


def test_gradients_reach_only_the_last_cycle(monkeypatch):
    """The T-1 early cycles run without a graph: backward only sees the last n+1 net calls."""
    cfg = tiny(T=3, n=2)
    model = TRM(cfg)
    grad_enabled_calls = []
    original = model.net

    def spy(h, inj):
        grad_enabled_calls.append(torch.is_grad_enabled())
        return original(h, inj)

    monkeypatch.setattr(model, "net", spy)
    y, z = model.initial_carry(2)
    out = model(y, z, torch.randint(0, 11, (2, 16)))
    # T * (n + 1) calls, only the last n + 1 with gradients
    assert grad_enabled_calls == [False] * (2 * 3) + [True] * 3
    out.logits.sum().backward()
    assert model.embed_tokens.weight.grad is not None


def test_carry_is_detached_so_no_gradient_crosses_steps():
    model = TRM(tiny())
    y, z = model.initial_carry(2)
    inputs = torch.randint(0, 11, (2, 16))
    out1 = model(y, z, inputs)
    out2 = model(out1.y, out1.z, inputs)
    assert out1.y.grad_fn is None and out1.z.grad_fn is None
    out2.logits.sum().backward()  # must not fail or reach step 1's graph


def test_reset_carry_resets_exactly_the_flagged_slots():
    model = TRM(tiny())
    y, z = torch.randn(4, 18, 32), torch.randn(4, 18, 32)
    reset = torch.tensor([True, False, True, False])
    y2, z2 = model.reset_carry(y, z, reset)
    for i in range(4):
        if reset[i]:
            assert torch.equal(y2[i], model.y_init.expand(18, 32)) and torch.equal(z2[i], model.z_init.expand(18, 32))
        else:
            assert torch.equal(y2[i], y[i]) and torch.equal(z2[i], z[i])


def test_puzzle_embedding_sign_sgd_updates_only_used_rows():
    cfg = tiny(prefix_len=2, puzzle_emb_dim=48, num_puzzle_ids=6)
    model = TRM(cfg).train()
    assert "puzzle_emb.weight" not in dict(model.named_parameters())  # outside the optimizer and EMA
    y, z = model.initial_carry(3)
    ids = torch.tensor([1, 3, 1])
    out = model(y, z, torch.randint(0, 11, (3, 16)), ids)
    (out.logits.float().pow(2).mean() + out.q_halt.sum()).backward()
    before = model.puzzle_emb.weight.clone()
    model.puzzle_emb.sign_sgd_step(lr=0.1, weight_decay=0.5)
    after = model.puzzle_emb.weight
    changed = (after != before).any(-1)
    assert changed.tolist() == [False, True, False, True, False, False]
    # zero-initialised rows move by exactly lr in the direction of -sign(grad)
    assert torch.allclose(after[1].abs()[after[1] != 0], torch.full_like(after[1][after[1] != 0], 0.1))


def test_config_round_trip_and_validation():
    cfg = tiny(mixer="mlp_t", positions="none", task="sudoku")
    assert TRMConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown TRMConfig fields"):
        TRMConfig.from_dict(cfg.to_dict() | {"bogus": 1})
    with pytest.raises(ValueError, match="mixer"):
        tiny(mixer="bogus")
    with pytest.raises(ValueError, match="square"):
        tiny(mixer="conv", seq_len=15)


def test_rope2d_scores_depend_only_on_the_grid_offset():
    from trm.model import Rotary

    width, prefix = 5, 2
    rope = Rotary(8, prefix + 25, 10000.0, grid=(prefix, width))
    q = torch.randn(8).expand(1, prefix + 25, 1, 8)
    k = torch.randn(8).expand(1, prefix + 25, 1, 8)
    rq, rk = rope(q)[0, :, 0], rope(k)[0, :, 0]

    def score(a, b):  # cells (row, col) of the grid
        return rq[prefix + a[0] * width + a[1]] @ rk[prefix + b[0] * width + b[1]]

    # one row down, same column: the same score wherever it happens, also across row ends
    assert torch.allclose(score((0, 4), (1, 4)), score((3, 0), (4, 0)), atol=1e-5)
    # one column right: the same score in every row; unlike 1-D RoPE, (0,4)->(1,0) is not "one right"
    assert torch.allclose(score((0, 1), (0, 2)), score((4, 3), (4, 4)), atol=1e-5)
    assert not torch.allclose(score((0, 4), (1, 0)), score((0, 1), (0, 2)), atol=1e-3)


def test_conv_mixer_is_local_and_the_prefix_sees_the_grid_mean():
    from trm.model import GridConv

    cfg = tiny(mixer="conv", positions="none", seq_len=36, prefix_len=2)
    mix = GridConv(cfg)
    h = torch.randn(1, cfg.total_len, cfg.hidden_size)
    out = mix(h)
    assert torch.allclose(out[:, :2], out[:, 2:].mean(1, keepdim=True).expand(1, 2, -1), atol=1e-6)
    far = h.clone()
    far[0, 2 + 5 * 6 + 5] += 1.0  # cell (5, 5)
    changed = (mix(far)[0, 2:] - out[0, 2:]).abs().sum(-1).view(6, 6) > 0
    assert changed[4:, 4:].all() and changed.sum() == 4  # its 3x3 neighbourhood inside the grid only


def test_conv_weights_run_on_any_square_canvas():
    small, large = tiny(mixer="conv", positions="none", seq_len=16), tiny(mixer="conv", positions="none", seq_len=49)
    a = TRM(small)
    b = TRM(large)
    b.load_state_dict(a.state_dict())  # no weight depends on seq_len
    y, z = b.initial_carry(2)
    out = b(y, z, torch.randint(0, large.vocab_size, (2, 49)))
    assert out.logits.shape == (2, 49, large.vocab_size)
