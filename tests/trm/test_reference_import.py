"""Reference import on synthetic state dicts laid out exactly like the reference code's."""

import pytest
import torch
import yaml

from trm.checkpoint import CheckpointError, load_checkpoint
from trm.config import TRMConfig
from trm.model import TRM
from trm.reference_import import import_reference


def reference_state_dict(model: TRM, prefix: str = "_orig_mod.model.inner.") -> dict[str, torch.Tensor]:
    """Our weights under the reference's key names (the inverse of the importer's map)."""
    out = {}
    for k, v in model.state_dict().items():
        ref = (
            k.replace("y_init", "H_init")
            .replace("z_init", "L_init")
            .replace("embed_tokens.weight", "embed_tokens.embedding_weight")
            .replace("embed_pos.weight", "embed_pos.embedding_weight")
            .replace("puzzle_emb.weight", "puzzle_emb.weights")
        )
        if ref.startswith("layers."):
            ref = "L_level." + ref
        if ref in ("H_init", "L_init"):
            v = v.to(torch.bfloat16)  # the reference keeps these buffers in its forward dtype
        out[prefix + ref] = v.clone()
    return out


CASES = {
    "sudoku-mlp_t-puzzle-emb": dict(
        task="sudoku",
        arch=dict(hidden_size=64, num_heads=1, expansion=4, L_layers=2, H_cycles=2, L_cycles=2, mlp_t=True, pos_encodings="none", puzzle_emb_ndim=64, puzzle_emb_len=4, halt_max_steps=16),
        config=dict(vocab_size=11, seq_len=81, hidden_size=64, num_heads=1, mixer="mlp_t", positions="none", prefix_len=4, puzzle_emb_dim=64, num_puzzle_ids=1, T=2, n=2),
    ),
    "maze-attention-rope": dict(
        task="maze",
        task_options={"size": 7},
        arch=dict(hidden_size=64, num_heads=2, expansion=4, L_layers=2, H_cycles=2, L_cycles=2, mlp_t=False, pos_encodings="rope", puzzle_emb_ndim=64, puzzle_emb_len=0, halt_max_steps=16),
        config=dict(vocab_size=6, seq_len=49, hidden_size=64, num_heads=2, mixer="attention", positions="rope", prefix_len=1, puzzle_emb_dim=64, num_puzzle_ids=3, T=2, n=2),
    ),
    "sudoku-attention-learned-no-emb": dict(
        task="sudoku",
        arch=dict(hidden_size=64, num_heads=2, expansion=2, L_layers=1, H_cycles=1, L_cycles=3, mlp_t=False, pos_encodings="learned", puzzle_emb_ndim=0, halt_max_steps=8),
        config=dict(vocab_size=11, seq_len=81, hidden_size=64, num_heads=2, expansion=2, num_layers=1, mixer="attention", positions="learned", prefix_len=0, T=1, n=3, halt_max_steps=8),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_import_reproduces_outputs_of_the_same_weights(name, tmp_path):
    case = CASES[name]
    torch.manual_seed(1)
    source = TRM(TRMConfig(**case["config"], task=case["task"]))
    with torch.no_grad():  # non-trivial heads and embeddings, bf16-representable init vectors
        source.q_head.weight.normal_()
        source.y_init.copy_(source.y_init.to(torch.bfloat16).float())
        source.z_init.copy_(source.z_init.to(torch.bfloat16).float())
        if case["config"].get("puzzle_emb_dim"):
            source.puzzle_emb.weight.normal_()
    ckpt = tmp_path / "step_1000"
    torch.save(reference_state_dict(source), ckpt)
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump({"arch": case["arch"], "global_batch_size": 768}))
    out = import_reference(ckpt, tmp_path / "all_config.yaml", case["task"], tmp_path / "out", case.get("task_options"))
    imported, config = load_checkpoint(out, task=case["task"])
    assert config["training"]["imported_from"] == str(ckpt)
    B, seq_len = 3, case["config"]["seq_len"]
    inputs = torch.randint(1, case["config"]["vocab_size"], (B, seq_len))
    ids = torch.zeros(B, dtype=torch.long)
    y, z = source.initial_carry(B)
    source.eval()
    a = source(y, z, inputs, ids)
    b = imported(*imported.initial_carry(B), inputs, ids)
    assert torch.allclose(a.logits, b.logits, atol=1e-5) and torch.allclose(a.q_halt, b.q_halt, atol=1e-5)


def test_unprefixed_keys_import_too(tmp_path):
    case = CASES["sudoku-mlp_t-puzzle-emb"]
    source = TRM(TRMConfig(**case["config"], task="sudoku"))
    torch.save(reference_state_dict(source, prefix=""), tmp_path / "ckpt")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"arch": case["arch"]}))
    out = import_reference(tmp_path / "ckpt", tmp_path / "c.yaml", "sudoku", tmp_path / "out")
    imported, _ = load_checkpoint(out, task="sudoku")
    # Every weight arrived under its own name (H_init/L_init went through bf16, as in the reference).
    expected = {k: v.to(torch.bfloat16).float() if k in ("y_init", "z_init") else v for k, v in source.state_dict().items()}
    got = imported.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key].float(), value.float()), key


def test_wrong_shapes_and_unknown_keys_are_refused(tmp_path):
    case = CASES["sudoku-mlp_t-puzzle-emb"]
    source = TRM(TRMConfig(**case["config"], task="sudoku"))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"arch": case["arch"] | {"hidden_size": 128, "puzzle_emb_ndim": 128}}))
    torch.save(reference_state_dict(source), tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="shape"):
        import_reference(tmp_path / "ckpt", tmp_path / "c.yaml", "sudoku", tmp_path / "out")
    state = reference_state_dict(source)
    state["_orig_mod.model.inner.H_level.layers.0.mlp.down_proj.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "hrm")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"arch": case["arch"]}))
    with pytest.raises(CheckpointError, match="HRM"):
        import_reference(tmp_path / "hrm", tmp_path / "c.yaml", "sudoku", tmp_path / "out")
    with pytest.raises(CheckpointError, match="vocabulary"):
        import_reference(tmp_path / "ckpt", tmp_path / "c.yaml", "maze", tmp_path / "out", {"size": 9})


def test_pickled_objects_are_not_loaded(tmp_path, capfd):
    """weights_only=True: a checkpoint carrying arbitrary objects is rejected, not executed."""

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"arch": CASES["sudoku-mlp_t-puzzle-emb"]["arch"]}))
    with pytest.raises(Exception, match="(?i)weights only|unsupported|not allowed"):
        import_reference(tmp_path / "evil", tmp_path / "c.yaml", "sudoku", tmp_path / "out")
    assert "pwned" not in capfd.readouterr().out  # the payload never ran
    assert not (tmp_path / "out").exists()
