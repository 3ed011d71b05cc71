import math

import torch

from trm.ema import EMA
from trm.losses import act_loss, log_stablemax, softmax_cross_entropy, stablemax_cross_entropy
from trm.optim import AdamATan2, lr_at


def test_stablemax_matches_hand_computation_in_float64():
    logits = torch.tensor([[[2.0, -1.0, 0.0, 0.5]]])
    labels = torch.tensor([[3]])
    s = [2.0 + 1, 1 / (1 - (-1.0)), 0.0 + 1, 0.5 + 1]
    expected = -math.log(s[3] / sum(s))
    loss = stablemax_cross_entropy(logits, labels)
    assert loss.dtype == torch.float64
    assert abs(loss.item() - expected) < 1e-12


def test_stablemax_gradient_is_finite_at_one():
    x = torch.tensor([[1.0, -1.0, 0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    log_stablemax(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_pad_labels_are_ignored_and_mean_is_per_sequence():
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[1, 2, 0, 0, 0], [3, 4, 5, 6, 1]])
    per_tok = softmax_cross_entropy(logits, labels)
    assert torch.all(per_tok[0, 2:] == 0)
    out = act_loss(logits, labels, torch.zeros(2), kind="softmax")
    expected = per_tok[0, :2].sum() / 2 + per_tok[1].sum() / 5
    assert torch.allclose(out.lm_loss, expected)


def test_token_weights_scale_each_tokens_loss_within_the_per_sequence_mean():
    logits = torch.randn(2, 4, 6)
    labels = torch.tensor([[1, 2, 3, 0], [4, 5, 1, 2]])
    weights = torch.tensor([[1.0, 4.0, 1.0, 4.0], [1.0, 1.0, 1.0, 4.0]])
    per_tok = softmax_cross_entropy(logits, labels)
    out = act_loss(logits, labels, torch.zeros(2), kind="softmax", weights=weights)
    expected = (per_tok[0, 0] + 4 * per_tok[0, 1] + per_tok[0, 2]) / 3 + (per_tok[1, :3].sum() + 4 * per_tok[1, 3]) / 4
    assert torch.allclose(out.lm_loss, expected)
    plain = act_loss(logits, labels, torch.zeros(2), kind="softmax", weights=torch.ones(2, 4))
    assert torch.allclose(plain.lm_loss, act_loss(logits, labels, torch.zeros(2), kind="softmax").lm_loss)


def test_halting_loss_targets_exact_correctness():
    labels = torch.tensor([[1, 2], [1, 2]])
    logits = torch.full((2, 2, 3), -10.0)
    logits[0, 0, 1] = logits[0, 1, 2] = 10  # sample 0 right
    logits[1, 0, 1] = logits[1, 1, 1] = 10  # sample 1 wrong at token 1
    q = torch.tensor([0.3, -0.2])
    out = act_loss(logits, labels, q, kind="softmax")
    assert out.seq_correct.tolist() == [True, False]
    bce = -math.log(torch.sigmoid(torch.tensor(0.3)).item()) - math.log(1 - torch.sigmoid(torch.tensor(-0.2)).item())
    assert abs(out.q_loss.item() - bce) < 1e-5
    assert torch.allclose(out.loss, out.lm_loss + 0.5 * out.q_loss)


def test_adam_atan2_step_matches_formula():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    opt = AdamATan2([p], lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    p0 = p.detach().clone()
    m = torch.zeros(5)
    v = torch.zeros(5)
    for t in (1, 2, 3):
        g = torch.randn(5)
        p.grad = g.clone()
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.95 * v + 0.05 * g * g
        p0 = p0 * (1 - 0.01 * 0.1) - 0.01 * torch.atan2(m / (1 - 0.9**t), torch.sqrt(v / (1 - 0.95**t)))
        assert torch.allclose(p.detach(), p0, atol=1e-6)


def test_lr_schedule():
    assert lr_at(0, 1.0, 10, 100, "constant") == 0.1
    assert lr_at(9, 1.0, 10, 100, "constant") == 1.0
    assert lr_at(50, 1.0, 10, 100, "constant") == 1.0
    assert abs(lr_at(100, 1.0, 10, 100, "cosine", min_ratio=0.1) - 0.1) < 1e-9
    assert abs(lr_at(55, 1.0, 10, 100, "cosine", min_ratio=0.0) - 0.5) < 1e-9
    # a wall-time budget that runs out first drives the cosine: half the time used = half way down
    assert abs(lr_at(11, 1.0, 10, 10_000, "cosine", min_ratio=0.0, time_progress=0.5) - 0.5) < 1e-9
    assert abs(lr_at(11, 1.0, 10, 10_000, "cosine", min_ratio=0.1, time_progress=1.3) - 0.1) < 1e-9
    assert lr_at(50, 1.0, 10, 100, "constant", time_progress=0.9) == 1.0


def test_ema_tracks_and_swaps_back():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update(model, step=1)
    assert torch.allclose(ema.shadow["weight"], torch.full((2, 2), 1.1))
    with ema.applied(model):
        assert torch.allclose(model.weight, torch.full((2, 2), 1.1))
    assert torch.allclose(model.weight, torch.full((2, 2), 2.0))


def test_ema_warmup_ramps_the_decay_to_its_ceiling():
    ema = EMA(torch.nn.Linear(2, 2), decay=0.999, warmup=True)
    assert math.isclose(ema.decay_at(1), 2 / 11)  # the first steps mostly take the new weights
    assert math.isclose(ema.decay_at(100), 101 / 110)
    assert ema.decay_at(100_000) == 0.999
    assert EMA(torch.nn.Linear(2, 2), decay=0.999).decay_at(1) == 0.999  # the reference's flat decay
