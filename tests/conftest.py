import os

import pytest
import torch

# One thread: the models in tests are tiny, and test servers run beside the test process
# (two OpenMP pools spinning on two cores slow each other down by orders of magnitude).
torch.set_num_threads(int(os.environ.get("TRM_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    """A toy dataset (reverse 8 symbols) with train and test splits."""
    import numpy as np

    from trm.data import generate_split, write_split
    from trm.tasks import get_task

    root = tmp_path_factory.mktemp("toy-data")
    task = get_task("toy_reverse")
    for split, n in (("train", 3000), ("test", 300)):
        examples = generate_split(task, split, {"all": n}, seed=0)
        write_split(task, examples, root / split, split, {})
    _ = np
    return root


TOY_MODEL = {"hidden_size": 32, "num_heads": 1, "mixer": "mlp_t", "positions": "none", "ffn_multiple": 32, "T": 1, "n": 2, "halt_max_steps": 6}


def toy_train_config(data, out, **overrides):
    from trm.train import TrainConfig

    values = dict(
        data=str(data), out=str(out), model=dict(TOY_MODEL), steps=300, batch_size=32, lr=3e-3, warmup_steps=20,
        ema_decay=0.9, eval_every=300, eval_samples=300, ckpt_every=1000, log_every=50, seed=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def toy_model_dir(toy_data, tmp_path_factory):
    """A toy model trained for a few hundred CPU steps (a few seconds)."""
    from trm.train import train

    out = tmp_path_factory.mktemp("toy-model")
    result = train(toy_train_config(toy_data, out))
    return out, result
