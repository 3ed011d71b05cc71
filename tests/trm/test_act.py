import torch

from trm.act import empty_carry, halt_decision, refill
from trm.config import TRMConfig
from trm.model import TRM


def test_halting_rule():
    steps = torch.tensor([1, 1, 3, 16])
    q = torch.tensor([1.0, -1.0, -1.0, -1.0])
    assert halt_decision(steps, q, max_steps=16, use_q=True).tolist() == [True, False, False, True]
    # without q (fixed / reference eval): only the step cap
    assert halt_decision(steps, q, max_steps=16, use_q=False).tolist() == [False, False, False, True]
    # min_steps holds off an eager halting head
    assert halt_decision(steps, q, max_steps=16, use_q=True, min_steps=2).tolist() == [False, False, False, True]
    # threshold
    assert halt_decision(steps, q, max_steps=16, use_q=True, threshold=2.0).tolist() == [False, False, False, True]


def test_exploration_forces_a_minimum_in_2_to_max():
    g = torch.Generator().manual_seed(0)
    n = 20000
    steps = torch.ones(n, dtype=torch.long)
    q = torch.full((n,), 5.0)
    halted = halt_decision(steps, q, max_steps=16, use_q=True, exploration_prob=0.1, generator=g)
    # at step 1 a sample halts unless exploration drew a floor >= 2 (all floors are >= 2)
    assert abs((~halted).float().mean().item() - 0.1) < 0.01
    # at max steps everyone halts, exploration or not
    assert halt_decision(torch.full((n,), 16), q, max_steps=16, use_q=True, exploration_prob=0.1, generator=g).all()


def test_refill_resets_halted_slots_only():
    cfg = TRMConfig(vocab_size=5, seq_len=4, hidden_size=16, num_heads=1, ffn_multiple=16)
    model = TRM(cfg)
    carry = empty_carry(model, 3, 4)
    carry = refill(model, carry, torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    assert carry.steps.tolist() == [0, 0, 0] and not carry.halted.any()
    carry.y = torch.randn_like(carry.y)
    carry.steps = torch.tensor([5, 2, 7], dtype=torch.int32)
    carry.halted = torch.tensor([False, True, False])
    kept_y = carry.y.clone()
    new = refill(model, carry, torch.full((1, 4), 3), torch.full((1, 4), 4), torch.zeros(1, dtype=torch.long))
    assert new.steps.tolist() == [5, 0, 7]
    assert new.inputs[1].tolist() == [3, 3, 3, 3] and new.inputs[0].tolist() == [1, 1, 1, 1]
    assert torch.equal(new.y[0], kept_y[0]) and torch.equal(new.y[2], kept_y[2])
    assert torch.equal(new.y[1], model.y_init.expand_as(new.y[1]))
