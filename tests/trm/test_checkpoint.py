import json
import os
import stat

import pytest
import torch

from trm.checkpoint import CheckpointError, load_checkpoint, resize_checkpoint, save_checkpoint
from trm.cli import main
from trm.config import TRMConfig
from trm.model import TRM
from trm.tasks import get_task


def maze_model(mixer: str, size: int = 7) -> TRM:
    task = get_task("maze", size=size)
    cfg = TRMConfig(
        vocab_size=task.vocab_size, seq_len=task.seq_len, hidden_size=32, num_heads=2, T=1, n=1, halt_max_steps=2,
        ffn_multiple=32, mixer=mixer, positions="none", task="maze", task_options=task.options(),
    )
    return TRM(cfg)


def test_resize_moves_a_conv_model_to_a_larger_canvas(tmp_path):
    model = maze_model("conv")
    src = save_checkpoint(tmp_path / "m7", model, training={"steps": 3}, metrics={"act": {}})
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "inference": {"halt_threshold": 1.5}}))

    resize_checkpoint(src, tmp_path / "m11", {"size": 11}, halt_max_steps=5)
    big, config = load_checkpoint(tmp_path / "m11", task="maze")
    assert big.config.seq_len == 121 and big.config.task_options == {"size": 11} and big.config.halt_max_steps == 5
    assert config["task"]["options"] == {"size": 11} and config["metrics"] == {}
    assert config["inference"] == {"halt_threshold": 1.5}
    assert config["training"]["steps"] == 3 and config["training"]["resized_from"]["task_options"] == {"size": 7}
    for name, tensor in model.state_dict().items():
        assert torch.equal(big.state_dict()[name], tensor)
    # the task at the new size takes a maze the old canvas could not
    task = get_task("maze", size=11)
    grid = ["#" * 11] + ["#S" + " " * 7 + "G#"] + ["#" * 11] * 9
    tokens = torch.as_tensor(task.encode(task.parse({"grid": grid})))[None]
    y, z = big.initial_carry(1)
    assert big(y, z, tokens).logits.shape == (1, 121, task.vocab_size)


def test_resize_refuses_a_network_whose_weights_depend_on_the_canvas(tmp_path):
    src = save_checkpoint(tmp_path / "m7", maze_model("mlp_t"))
    with pytest.raises(CheckpointError, match="depend on the canvas"):
        resize_checkpoint(src, tmp_path / "m11", {"size": 11})
    assert not (tmp_path / "m11").exists()


def test_resize_refuses_to_add_hints(tmp_path):
    """Placement hints keep the vocabulary and (with no positions) no weight depends on the length,
    so only this check stops a model from silently reading a column it never trained on."""
    task = get_task("placement")
    cfg = TRMConfig(
        vocab_size=task.vocab_size, seq_len=task.seq_len, hidden_size=32, num_heads=2, T=1, n=1, halt_max_steps=2,
        ffn_multiple=32, mixer="attention", positions="none", task="placement", task_options={},
    )
    src = save_checkpoint(tmp_path / "plain", TRM(cfg))
    with pytest.raises(CheckpointError, match="init_from"):
        resize_checkpoint(src, tmp_path / "hinted", {"hints": True})


@pytest.mark.parametrize("name", ["placement", "upgrade", "rootcause"])
def test_hints_takes_a_boolean_only(name):
    assert get_task(name, hints=True).options() == {"hints": True}
    with pytest.raises(TypeError, match="hints"):
        get_task(name, hints="False")  # a command line's unparsed word would otherwise switch it on


def test_weights_are_readable_as_the_umask_allows(tmp_path):
    # safetensors writes 0600; an image that copies models/ and runs as another user must still read them
    old = os.umask(0o027)
    try:
        d = save_checkpoint(tmp_path / "m", maze_model("conv"))
        assert stat.S_IMODE((d / "model.safetensors").stat().st_mode) == 0o640
        (d / "model.safetensors").chmod(0o600)  # a run written by an older version
        assert main(["export", str(d), "-o", str(tmp_path / "exported")]) == 0
        assert stat.S_IMODE((tmp_path / "exported" / "model.safetensors").stat().st_mode) == 0o640
    finally:
        os.umask(old)
    assert not list(d.glob("*.tmp"))
    d2 = save_checkpoint(tmp_path / "m2", maze_model("conv"))  # under the test's own umask again
    assert stat.S_IMODE((d2 / "model.safetensors").stat().st_mode) == 0o666 & ~old
