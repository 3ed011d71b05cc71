"""torchrun DDP on CPU (gloo): two ranks train on disjoint data shards with all-reduced gradients."""

import json
import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

from ..conftest import TOY_MODEL


def test_two_rank_training_keeps_weights_in_sync(toy_data, tmp_path):
    out = tmp_path / "run"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}", "-m", "trm.cli", "train",
        f"data={toy_data}", f"out={out}", "steps=12", "batch_size=16", "eval_every=12", "eval_samples=32", "ckpt_every=12",
        "log_every=4", "threads=1", f"model={json.dumps(TOY_MODEL)}",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [load_file(str(out / f"train_state.rank{k}.safetensors")) for k in (0, 1)]
    params = [k for k in ranks[0] if k.startswith("model.") and "init" not in k]
    assert params and all(torch.equal(ranks[0][k], ranks[1][k]) for k in params)  # gradients were all-reduced
    assert not torch.equal(ranks[0]["carry.inputs"], ranks[1]["carry.inputs"])  # each rank saw its own shard
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["world_size"] == 2 and config["training"]["steps"] == 12
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len([x for x in lines if '"loss"' in x]) == 3  # rank 0 alone logs
