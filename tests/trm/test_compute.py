import threading

import numpy as np
import pytest
import torch

from trm.checkpoint import load_checkpoint
from trm.compute import ComputeThread
from trm.engine import Engine
from trm.inference import recurse


@pytest.fixture(scope="module")
def model(toy_model_dir):
    out, _ = toy_model_dir
    m, _ = load_checkpoint(out)
    return m


def test_call_runs_on_the_compute_thread_and_returns_its_result():
    compute = ComputeThread(name="test-compute")
    try:
        assert compute.call(lambda: threading.current_thread().name).result(timeout=10) == "test-compute"
        # a call made from the compute thread runs at once instead of waiting on itself
        nested = compute.call(lambda: compute.call(lambda: 41 + 1).result(timeout=1)).result(timeout=10)
        assert nested == 42
        with pytest.raises(ZeroDivisionError):
            compute.call(lambda: 1 / 0).result(timeout=10)
    finally:
        compute.stop()


def test_engines_sharing_one_thread_both_answer_correctly(model):
    compute = ComputeThread(name="shared")
    xs = np.random.default_rng(5).integers(1, 5, size=(24, 8))
    a = Engine(model, slots=4, worker=compute, name="a").start()
    b = Engine(model, slots=3, worker=compute, name="b").start()
    try:
        futures = [(x, (a if i % 2 else b).submit(x, max_steps=6)) for i, x in enumerate(xs)]
        for x, f in futures:
            ref = recurse(model, torch.as_tensor(x)[None], max_steps=6)[0]
            got = f.result(timeout=30)
            assert np.array_equal(got.tokens, ref.tokens) and got.steps == ref.steps
        assert a.completed == 12 and b.completed == 12
        # one engine stopping leaves the shared thread serving the other
        a.stop()
        assert b.submit(xs[0], max_steps=3).result(timeout=30).steps <= 3
    finally:
        b.stop()
        compute.stop()


def test_a_failing_engine_fails_its_own_requests_only(model):
    compute = ComputeThread(name="shared")
    good = Engine(model, slots=2, worker=compute, name="good").start()
    bad = Engine(model, slots=2, worker=compute, name="bad").start()

    def broken(*args):
        raise RuntimeError("boom")

    bad._forward = broken
    x = np.ones(8, dtype=np.int64)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            bad.submit(x).result(timeout=30)
        assert good.submit(x, max_steps=2).result(timeout=30).steps <= 2
    finally:
        good.stop()
        bad.stop()
        compute.stop()
