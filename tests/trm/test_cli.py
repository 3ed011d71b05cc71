"""The `trm` command end to end on the toy task (real subprocesses)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRM = [sys.executable, "-m", "trm.cli"]


# PYTHONPATH passes through: a checkout run with PYTHONPATH=src tests its own code, not an installed copy
ENV = {"TRM_TEST_THREADS": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}


def run(*args, input=None, check=True):
    r = subprocess.run([*TRM, *map(str, args)], input=input, capture_output=True, text=True, timeout=300, env=ENV)
    if check and r.returncode != 0:
        raise AssertionError(f"trm {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


@pytest.mark.parametrize("cmd", [[], ["data", "build"], ["train"], ["eval"], ["solve"], ["import-reference"], ["resize"], ["export"], ["info"]])
def test_help_is_useful(cmd):
    r = run(*cmd, "--help")
    assert "usage: trm" in r.stdout and len(r.stdout.splitlines()) > 3


def test_data_build_writes_shards_and_meta(tmp_path):
    run("data", "build", "toy_reverse", "--n", "50", "--test-n", "10", "--split", "train,test", "--out", tmp_path / "d", "--seed", "3")
    meta = json.loads((tmp_path / "d" / "train" / "meta.json").read_text())
    assert meta["task"] == "toy_reverse" and meta["size"] == 50 and meta["generator"]["seed"] == 3 and len(meta["sha256"]) == 64
    assert (tmp_path / "d" / "train" / "inputs.000.npy").exists() and (tmp_path / "d" / "test" / "problems.jsonl").exists()
    again = tmp_path / "again"
    run("data", "build", "toy_reverse", "--n", "50", "--test-n", "10", "--split", "train,test", "--out", again, "--seed", "3")
    assert json.loads((again / "train" / "meta.json").read_text())["sha256"] == meta["sha256"]  # deterministic


def test_data_build_exclude_keeps_a_separately_built_split_disjoint(tmp_path):
    import numpy as np

    # mazes of 7 and of 8 a side (an 8 is a 7 with a wall row and column) pad to the same canvas
    # tokens under different canonical keys, so the hashed split alone lets them cross
    run("data", "build", "maze", "--task-opt", "size=8", "--test-n", "150", "--bucket", "small", "--opt", "sizes=[7,8]", "--split", "test", "--out", tmp_path / "m", "--seed", "1")
    def rows(split, name="m"):
        return {r.tobytes() for r in np.load(tmp_path / name / split / "inputs.000.npy").astype(np.int64)}
    test = rows("test")
    run("data", "build", "maze", "--task-opt", "size=8", "--n", "300", "--bucket", "small", "--opt", "sizes=[7,8]", "--split", "train", "--out", tmp_path / "free", "--seed", "2")
    run("data", "build", "maze", "--task-opt", "size=8", "--n", "300", "--bucket", "small", "--opt", "sizes=[7,8]", "--split", "train", "--out", tmp_path / "m", "--seed", "2", "--exclude", tmp_path / "m" / "test")
    assert rows("train", "free") & test  # without --exclude the builds share mazes
    assert not rows("train") & test
    meta = json.loads((tmp_path / "m" / "train" / "meta.json").read_text())
    assert meta["size"] == 300 and meta["generator"]["exclude"] == [str(tmp_path / "m" / "test")]


def test_solve_eval_info_on_a_trained_model(toy_model_dir, toy_data, tmp_path):
    out, _ = toy_model_dir
    problem = json.dumps({"sequence": [1, 2, 3, 4, 4, 4, 2, 1]})
    r = run("solve", "--task", "toy_reverse", "--model", out, "-", "--json", input=problem, check=False)
    result = json.loads(r.stdout)
    assert r.returncode == (0 if result["verified"] else 1)
    assert result["steps"] >= 1 and len(result["solution"]["sequence"]) == 8
    (tmp_path / "p.json").write_text(json.dumps({"task": "toy_reverse", "problem": {"sequence": [1] * 8}}))
    r = run("solve", "--model", out, tmp_path / "p.json", "--trace", "--fallback", "--max-steps", "3")
    assert "--- step 1" in r.stdout and "steps" in r.stdout and "verified" in r.stdout
    bom = run("solve", "--model", out, "-", "--json", input="\ufeff" + problem, check=False)  # a UTF-8 BOM on stdin, as the service takes it
    assert bom.returncode in (0, 1) and json.loads(bom.stdout)["steps"] >= 1, bom.stderr
    bad = run("solve", "--model", out, "-", input='{"sequence": [7, 7]}', check=False)
    assert bad.returncode == 2 and "invalid problem" in bad.stderr
    wrong = run("solve", "--task", "sudoku", "--model", out, "-", input=problem, check=False)
    assert wrong.returncode == 2 and "toy_reverse" in wrong.stderr
    r = run("eval", "--model", out, "--data", Path(toy_data) / "test", "--limit", "64", "--json", tmp_path / "e.json")
    assert "act" in r.stdout and "fixed" in r.stdout
    assert json.loads((tmp_path / "e.json").read_text())["results"]["act"]["all"]["n"] == 64
    r = run("info", out)
    assert "toy_reverse" in r.stdout and "parameters" in r.stdout
    r = run("resize", out, "--task-opt", "size=30", "-o", tmp_path / "big", check=False)
    assert r.returncode == 2 and "does not take options" in r.stderr and "Traceback" not in r.stderr


def test_errors_are_messages_not_tracebacks(tmp_path):
    r = run("info", tmp_path, check=False)
    assert r.returncode == 2 and "not a checkpoint directory" in r.stderr and "Traceback" not in r.stderr
    r = run("data", "build", "nope", "--n", "1", "--out", tmp_path, check=False)
    assert r.returncode == 2 and "unknown task" in r.stderr


def test_tools_refuse_to_overwrite_a_model_without_force(toy_model_dir, tmp_path):
    from trm.cli import main  # in-process: the refusals come before any heavy work

    out, _ = toy_model_dir
    shipped = tmp_path / "models" / "sudoku"  # stands for a tracked model directory
    assert main(["export", str(out), "-o", str(shipped)]) == 0
    assert sorted(p.name for p in shipped.iterdir()) == ["config.json", "model.safetensors"]  # not the train state
    before = (shipped / "model.safetensors").read_bytes()
    for args in (
        ["export", str(out), "-o", str(shipped)],
        ["resize", str(out), "--task-opt", "size=30", "-o", str(shipped)],
        ["import-reference", str(tmp_path / "ckpt"), "--config", str(tmp_path / "c.yaml"), "--task", "sudoku", "-o", str(shipped)],
        ["train", f"data={tmp_path}", f"out={shipped}", "steps=1"],
    ):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert "already holds a model" in str(e.value.code) and "--force" in str(e.value.code), args
    assert (shipped / "model.safetensors").read_bytes() == before
    (shipped / "model.safetensors").write_bytes(b"stale")
    run("export", out, "-o", shipped, "--force")  # the real command, through its exit status
    assert (shipped / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    r = run("export", out, "-o", shipped, check=False)
    assert r.returncode != 0 and "already holds a model" in r.stderr and "Traceback" not in r.stderr


def run_on_a_terminal(*args):
    """Run `trm` with stderr on a pseudo-terminal of 120 columns; returns (exit code, what the terminal got)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([*TRM, *map(str, args)], stdout=subprocess.DEVNULL, stderr=slave, env=ENV)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_long_commands_show_a_progress_bar_on_a_terminal_only(toy_model_dir, toy_data, tmp_path):
    code, seen = run_on_a_terminal("data", "build", "toy_reverse", "--n", "400", "--split", "test", "--out", tmp_path / "d")
    assert code == 0 and "toy_reverse data" in seen and "400/400" in seen and "ex/s" in seen, seen
    code, seen = run_on_a_terminal("data", "build", "toy_reverse", "--n", "40", "--split", "test", "--out", tmp_path / "q", "--quiet")
    assert code == 0 and "ex/s" not in seen and "%|" not in seen, seen
    out, _ = toy_model_dir
    code, seen = run_on_a_terminal("eval", "--model", out, "--data", Path(toy_data) / "test", "--limit", "64", "--batch-size", "16")
    assert code == 0 and "eval" in seen and "64/64" in seen and "step " in seen, seen
    # not a terminal (a log, a pipe, CI): no bar at all
    r = run("eval", "--model", out, "--data", Path(toy_data) / "test", "--limit", "64", "--batch-size", "16")
    assert "%|" not in r.stderr and "ex/s" not in r.stderr and "act" in r.stdout


def test_data_build_refuses_to_exclude_a_split_of_another_encoding(tmp_path):
    """A plain placement split (256 tokens a row) left out of a hints build (320) could match no row:
    an error naming both, not a build that silently leaves nothing out."""
    run("data", "build", "placement", "--test-n", "5", "--bucket", "small", "--split", "test", "--out", tmp_path / "plain", "--seed", "1")
    r = run("data", "build", "placement", "--task-opt", "hints=true", "--n", "5", "--bucket", "small", "--split", "train",
            "--out", tmp_path / "hinted", "--seed", "2", "--exclude", tmp_path / "plain" / "test", check=False)
    assert r.returncode != 0 and "256-token rows" in r.stderr and "320 with {'hints': True}" in r.stderr, r.stderr
    assert not (tmp_path / "hinted" / "train" / "meta.json").exists()
