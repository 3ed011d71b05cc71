import json
import time

import pytest
import torch
from safetensors.torch import load_file

from trm.checkpoint import CheckpointError, load_checkpoint
from trm.train import TrainConfig, Trainer, train

from ..conftest import toy_train_config


def test_a_few_hundred_steps_drive_exact_accuracy_up(toy_model_dir):
    out, result = toy_model_dir
    summary = result["eval"]
    # an untrained model gets ~0% of 8-symbol sequences exactly right (chance: 4^-8). The model
    # learns to halt after one step, so `act` is the mode to judge; deeper steps see less training.
    assert summary["act"]["all"]["exact_accuracy"] > 0.6
    assert summary["act"]["all"]["token_accuracy"] > 0.9
    assert summary["fixed"]["all"]["exact_accuracy"] > 0.05
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if "loss" in x]
    assert train_lines[-1]["loss"] < train_lines[0]["loss"]
    assert all("samples_per_second" in x for x in train_lines)


def test_checkpoint_holds_config_task_and_metrics(toy_model_dir):
    out, _ = toy_model_dir
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["name"] == "toy_reverse" and config["model"]["hidden_size"] == 32
    assert config["training"]["steps"] == 300 and config["metrics"]["fixed"]["all"]["n"] == 300
    model, _ = load_checkpoint(out, task="toy_reverse")
    assert not model.training


def test_loading_the_wrong_task_or_shapes_fails_clearly(toy_model_dir, tmp_path):
    out, _ = toy_model_dir
    try:
        load_checkpoint(out, task="sudoku")
        raise AssertionError("expected a CheckpointError")
    except CheckpointError as e:
        assert "toy_reverse" in str(e) and "sudoku" in str(e)
    # a config that does not fit the weights
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes())
    config = json.loads((out / "config.json").read_text())
    config["model"]["hidden_size"] = 64
    (bad / "config.json").write_text(json.dumps(config))
    try:
        load_checkpoint(bad)
        raise AssertionError("expected a CheckpointError")
    except CheckpointError as e:
        assert "shape mismatches" in str(e) and "embed_tokens.weight" in str(e)


def test_safetensors_round_trip_is_bit_identical(toy_model_dir, tmp_path):
    from trm.checkpoint import save_checkpoint

    out, _ = toy_model_dir
    model, _ = load_checkpoint(out)
    save_checkpoint(tmp_path / "copy", model)
    again, _ = load_checkpoint(tmp_path / "copy")
    y, z = model.initial_carry(4)
    inputs = torch.randint(1, 5, (4, 8))
    a, b = model(y, z, inputs), again(y, z, inputs)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.q_halt, b.q_halt)


def test_resume_continues_the_same_run(toy_data, tmp_path):
    """60 steps straight == 30 steps, stop, resume to 60: identical weights and EMA."""
    straight = toy_train_config(toy_data, tmp_path / "a", steps=60, eval_every=0, ckpt_every=60)
    train(straight)
    first = toy_train_config(toy_data, tmp_path / "b", steps=30, eval_every=0, ckpt_every=30)
    train(first)
    second = toy_train_config(toy_data, tmp_path / "b", steps=60, eval_every=0, ckpt_every=60)
    train(second, resume=True)
    a = load_file(str(tmp_path / "a" / "train_state.safetensors"))
    b = load_file(str(tmp_path / "b" / "train_state.safetensors"))
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    info = json.loads((tmp_path / "b" / "train_state.json").read_text())
    assert info["step"] == 60


def test_config_file_and_overrides(tmp_path, toy_data):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"data: {toy_data}\nout: {tmp_path / 'o'}\nsteps: 5\nmodel:\n  hidden_size: 32\n  num_heads: 1\n")
    cfg = TrainConfig.from_sources(str(path), ["steps=7", "model.mixer=mlp_t", "betas=[0.9, 0.99]"])
    assert cfg.steps == 7 and cfg.model == {"hidden_size": 32, "num_heads": 1, "mixer": "mlp_t"} and cfg.betas == (0.9, 0.99)
    try:
        TrainConfig.from_sources(str(path), ["stpes=7"])
        raise AssertionError("expected ValueError")
    except ValueError as e:
        assert "stpes" in str(e)
    trainer = Trainer(TrainConfig.from_sources(str(path), ["model.mixer=mlp_t", "model.positions=none", "model.ffn_multiple=32"]))
    assert trainer.model.config.seq_len == 8 and trainer.model.config.task == "toy_reverse"


def test_time_limit_stops_the_run_even_across_checkpoints(toy_data, tmp_path):
    """The limit counts from the start of the run, not from the last checkpoint (ckpt_every=1 here)."""
    cfg = toy_train_config(toy_data, tmp_path / "t", steps=100_000, eval_every=0, ckpt_every=1, time_limit_minutes=0.02)
    result = train(cfg)
    assert result["stopped_early"] and result["step"] < 100_000
    info = json.loads((tmp_path / "t" / "train_state.json").read_text())
    assert info["step"] == result["step"]  # the last step was checkpointed


def test_cosine_follows_the_time_budget_when_it_ends_before_the_steps(toy_data, tmp_path):
    cfg = toy_train_config(
        toy_data, tmp_path / "c", steps=100_000, eval_every=0, ckpt_every=10_000, log_every=1, time_limit_minutes=0.02,
        schedule="cosine", warmup_steps=1, lr=1e-3, min_lr_ratio=0.1,
    )  # fmt: skip
    train(cfg)
    lrs = [r["lr"] for r in map(json.loads, (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()) if "lr" in r]
    assert lrs[0] > 0.9e-3  # near the top at the start
    assert lrs[-1] < 0.2e-3  # down at the floor (1e-4) when the time runs out, 99,9xx steps early
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_a_resumed_run_spends_what_is_left_of_its_time_budget(toy_data, tmp_path):
    """time_limit_minutes is the run's total: a resume goes on where the cosine stood and stops at the budget."""
    budget = dict(steps=100_000, eval_every=0, ckpt_every=10_000, log_every=1, schedule="cosine", warmup_steps=1, lr=1e-3, min_lr_ratio=0.1)
    first = train(toy_train_config(toy_data, tmp_path / "r", time_limit_minutes=0.01, **budget))
    assert first["stopped_early"]
    state = json.loads((tmp_path / "r" / "train_state.json").read_text())
    started = time.perf_counter()
    second = train(toy_train_config(toy_data, tmp_path / "r", time_limit_minutes=0.015, **budget), resume=True)
    assert second["step"] > first["step"]
    assert time.perf_counter() - started < 0.015 * 60 - state["train_seconds"] + 5  # the rest of the budget, not a new one
    rows = [r for r in map(json.loads, (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) if "lr" in r]
    resumed = [r["lr"] for r in rows if r["step"] > first["step"]]
    # 0.6 of the 0.9 s budget spent: the cosine resumes at about a third of its top, not at the top (1e-3)
    assert resumed and resumed[0] < 0.5e-3 and resumed[-1] < 0.2e-3


def test_checkpoint_metrics_are_the_latest_evaluation_and_resume_keeps_it(toy_data, tmp_path):
    """The checkpoint holds the latest EMA weights, so its metrics are the latest evaluation's."""
    cfg = toy_train_config(toy_data, tmp_path / "e", steps=40, eval_every=20, eval_samples=32, ckpt_every=40)
    result = train(cfg)
    evals = [x for x in map(json.loads, (tmp_path / "e" / "metrics.jsonl").read_text().splitlines()) if "eval" in x]
    assert [x["step"] for x in evals] == [20, 40]
    config = json.loads((tmp_path / "e" / "config.json").read_text())
    assert config["metrics"] == evals[-1]["eval"] == result["eval"]
    state = tmp_path / "e" / "train_state.json"
    info = json.loads(state.read_text())
    assert info["last_eval"] == evals[-1]["eval"]
    # a state written before the rename calls it "best"
    info["best"] = info.pop("last_eval")
    state.write_text(json.dumps(info))
    trainer = Trainer(toy_train_config(toy_data, tmp_path / "e", steps=40))
    trainer.load_state()
    assert trainer.last_eval == evals[-1]["eval"]


def test_sigterm_checkpoints_and_stops_so_resume_loses_nothing(toy_data, tmp_path):
    """A run that is told to stop (a session ending) saves its state at the step it reached and exits 0."""
    import subprocess
    import sys
    import time

    import yaml

    out = tmp_path / "run"
    cfg = toy_train_config(toy_data, out, steps=1_000_000, eval_every=0, ckpt_every=0, log_every=1)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in vars(cfg).items() if k in ("data", "out", "model", "steps", "batch_size", "lr", "eval_every", "ckpt_every", "log_every", "seed")}))
    proc = subprocess.Popen([sys.executable, "-m", "trm.cli", "train", "--config", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().count("\n") >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        proc.terminate()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reached = json.loads((out / "train_state.json").read_text())["step"]
    assert reached >= 3 and (out / "model.safetensors").exists()
    assert "SIGTERM: checkpointing" in (proc.stderr.read() if proc.stderr else "")
    resumed = train(toy_train_config(toy_data, out, steps=reached + 2, eval_every=0, ckpt_every=0), resume=True)
    assert resumed["step"] == reached + 2


def test_edit_weight_stresses_the_answer_tokens_that_differ_from_the_input(toy_data, tmp_path):
    """toy_reverse's answer differs from its input in most cells: with edit_weight 3 the first step's
    token loss (same weights, same batch) is close to 3 times the plain one, and never more."""
    losses = {}
    for w in (1.0, 3.0):
        trainer = Trainer(toy_train_config(toy_data, tmp_path / f"w{w}", steps=1, edit_weight=w))
        losses[w] = trainer.train_step()["lm_loss"]
    assert 1.5 * losses[1.0] < losses[3.0] <= 3 * losses[1.0] + 1e-6
    for bad in (0, float("inf"), "abc"):
        with pytest.raises(ValueError, match="edit_weight"):
            Trainer(toy_train_config(toy_data, tmp_path / "w0", steps=1, edit_weight=bad))
