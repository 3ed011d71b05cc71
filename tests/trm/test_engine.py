import concurrent.futures
import threading
import time

import numpy as np
import pytest
import torch

from trm.act import unroll
from trm.checkpoint import load_checkpoint
from trm.compute import ComputeThread
from trm.engine import (
    DEFAULT_SLOTS,
    DeadlineExceededError,
    Engine,
    EngineStoppedError,
    QueueFullError,
    auto_slots,
    calibrate,
    device_name,
    step_costs,
)
from trm.inference import recurse
from trm.precision import for_inference


@pytest.fixture(scope="module")
def model(toy_model_dir):
    out, _ = toy_model_dir
    m, _ = load_checkpoint(out)
    return m


def problems(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 5, size=(n, 8))


def test_results_match_a_plain_per_sample_loop(model):
    xs = problems(40)
    # float32 throughout these comparisons: with "auto" on a CPU with native bf16 (avx512_bf16) the
    # engine serves bf16 weights and recurse autocasts float32 ones, which round differently
    with Engine(model, slots=8, halt_threshold=0.0, dtype="fp32") as engine:
        futures = [engine.submit(x, max_steps=6) for x in xs]
        got = [f.result(timeout=30) for f in futures]
    for x, r in zip(xs, got):
        ref = recurse(model, torch.as_tensor(x)[None], max_steps=6, threshold=0.0, dtype="fp32")[0]
        assert np.array_equal(r.tokens, ref.tokens)
        assert (r.steps, r.halted) == (ref.steps, ref.halted)
        assert abs(r.confidence - ref.confidence) < 1e-5
    # fixed mode: every sample runs all steps, as the reference evaluates
    with Engine(model, slots=8, dtype="fp32") as engine:
        fixed = [engine.submit(x, max_steps=5, mode="fixed").result(timeout=30) for x in xs[:8]]
    for x, r in zip(xs[:8], fixed):
        ref = recurse(model, torch.as_tensor(x)[None], max_steps=5, mode="fixed", dtype="fp32")[0]
        assert r.steps == 5 and r.halted and np.array_equal(r.tokens, ref.tokens)


def final_step_probs(model, x, steps):
    """Softmax of one sample's logits at supervision step `steps` [L, V], straight from the unrolled model."""
    for step, out in unroll(model, torch.as_tensor(x)[None], max_steps=steps, dtype="fp32"):
        if step == steps:
            return out.logits[0].detach().float().softmax(-1).numpy()
    raise AssertionError("unroll stopped early")


def test_probabilities_are_those_of_each_samples_own_final_step(model):
    # samples of one batch finish at different steps; only those that ask get probabilities
    xs = problems(6, seed=5)
    with Engine(model, slots=4, dtype="fp32") as engine:
        futures = [engine.submit(x, max_steps=1 + i % 4, mode="fixed", probs=i % 3 != 2) for i, x in enumerate(xs)]
        got = [f.result(timeout=30) for f in futures]
    for i, (x, r) in enumerate(zip(xs, got)):
        assert r.steps == 1 + i % 4
        if i % 3 == 2:
            assert r.probs is None
        else:
            assert r.probs is not None and np.allclose(r.probs, final_step_probs(model, x, r.steps), atol=1e-5)
    # recurse: sample 0 ends at step 1 (its check passes), the others run to step 3
    batch = torch.as_tensor(xs[:3])
    preds = recurse(model, batch, max_steps=3, mode="fixed", probs=True, checks=[lambda t: True, None, None], dtype="fp32")
    assert [p.steps for p in preds] == [1, 3, 3]
    for x, p in zip(xs[:3], preds):
        assert p.probs is not None and np.allclose(p.probs, final_step_probs(model, x, p.steps), atol=1e-5)
    assert all(p.probs is None for p in recurse(model, batch, max_steps=2, mode="fixed"))


def test_bf16_engine_matches_a_plain_loop_over_the_cast_model_and_leaves_the_original_alone(model):
    xs = problems(16, seed=3)
    with Engine(model, slots=4, dtype="bf16") as engine:
        assert next(engine.model.parameters()).dtype == torch.bfloat16
        got = [f.result(timeout=30) for f in [engine.submit(x, max_steps=5, mode="fixed") for x in xs]]
    assert next(model.parameters()).dtype == torch.float32  # the engine cast a copy
    served = for_inference(model, "bf16")
    assert for_inference(served, "bf16") is served and for_inference(model, "fp32") is model
    for x, r in zip(xs, got):
        ref = recurse(served, torch.as_tensor(x)[None], max_steps=5, mode="fixed", dtype="bf16")[0]
        assert np.array_equal(r.tokens, ref.tokens) and r.steps == ref.steps == 5
        assert abs(r.confidence - ref.confidence) < 2e-2


def test_early_halting_sample_leaves_while_others_continue(model):
    xs = problems(2)
    done_at = {}
    with Engine(model, slots=4) as engine:
        slow = engine.submit(xs[0], max_steps=6, mode="fixed")
        fast = engine.submit(xs[1], max_steps=6, threshold=-100.0)  # halts at its first step
        fast.add_done_callback(lambda f: done_at.setdefault("fast", engine.iterations))
        slow.add_done_callback(lambda f: done_at.setdefault("slow", engine.iterations))
        fast_r, slow_r = fast.result(timeout=30), slow.result(timeout=30)
    assert fast_r.steps == 1 and fast_r.halted and fast_r.cut_reason is None
    assert slow_r.steps == 6
    assert done_at["fast"] < done_at["slow"]


def test_freed_slot_is_refilled_before_the_next_iteration(model):
    xs = problems(3)
    compute = ComputeThread(name="held")
    engine = Engine(model, slots=1, worker=compute).start()
    # hold the compute thread until all three are queued, each halting after exactly 2 steps
    gate = threading.Event()
    compute.call(gate.wait, 30)
    futures = [engine.submit(x, min_steps=2, threshold=-100.0) for x in xs]
    gate.set()
    results = [f.result(timeout=30) for f in futures]
    engine.stop()
    compute.stop()
    assert [r.steps for r in results] == [2, 2, 2]
    assert engine.iterations == 6  # no iteration ran with the slot empty


def test_deadline_cuts_and_reports(model):
    x = problems(1)[0]
    with Engine(model, slots=2) as engine:
        r = engine.submit(x, max_steps=10**9, mode="fixed", deadline=time.monotonic() + 0.05).result(timeout=30)
        assert r.cut_reason == "deadline" and not r.halted and r.steps >= 1
        assert len(r.tokens) == 8  # the best answer so far comes back
        late = engine.submit(x, deadline=time.monotonic() - 1)
        with pytest.raises(DeadlineExceededError):
            late.result(timeout=30)


def test_act_cut_at_max_steps_is_reported(model):
    x = problems(1)[0]
    with Engine(model, slots=2) as engine:
        r = engine.submit(x, max_steps=3, threshold=100.0).result(timeout=30)
    assert r.steps == 3 and not r.halted and r.cut_reason == "max_steps"


def test_queue_full_raises_and_cancel_frees_a_place(model):
    x = problems(1)[0]
    with Engine(model, slots=1, queue_size=2) as engine:
        running = engine.submit(x, max_steps=64, mode="fixed")
        waiting = [engine.submit(x, max_steps=64, mode="fixed") for _ in range(2)]
        with pytest.raises(QueueFullError):
            engine.submit(x)
        assert waiting[1].cancel()
        extra = engine.submit(x, max_steps=1)  # the cancelled request's place is free again
        for f in (running, waiting[0]):
            f.cancel()
        assert extra.result(timeout=30).steps == 1


def test_trace_has_one_entry_per_step(model):
    x = problems(1)[0]
    with Engine(model, slots=2) as engine:
        r = engine.submit(x, max_steps=5, mode="fixed", trace=True).result(timeout=30)
    assert [t.step for t in r.trace] == [1, 2, 3, 4, 5]
    assert r.trace[0].changed == 8
    assert all(0 <= t.confidence <= 1 for t in r.trace)
    assert np.array_equal(r.trace[-1].tokens, r.tokens)


def test_thread_safety_under_many_concurrent_submitters(model):
    xs = problems(160, seed=3)
    results: dict[int, object] = {}
    errors = []
    with Engine(model, slots=8, queue_size=512, dtype="fp32") as engine:

        def worker(k):
            try:
                for i in range(k * 10, k * 10 + 10):
                    results[i] = engine.submit(xs[i], max_steps=6).result(timeout=60)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    ref = recurse(model, torch.as_tensor(xs), max_steps=6, dtype="fp32")
    for i in range(160):
        assert np.array_equal(results[i].tokens, ref[i].tokens) and results[i].steps == ref[i].steps


async def test_async_wrapper_and_stop(model):
    x = problems(1)[0]
    engine = Engine(model, slots=2).start()
    r = await engine.run(x, max_steps=3, mode="fixed")
    assert r.steps == 3
    engine.stop()
    with pytest.raises(EngineStoppedError):
        engine.submit(x)


def test_drain_finishes_in_flight_work(model):
    x = problems(1)[0]
    engine = Engine(model, slots=1).start()
    futures = [engine.submit(x, max_steps=4, mode="fixed") for _ in range(3)]
    engine.stop(drain=True, timeout=30)
    assert all(f.result(timeout=1).steps == 4 for f in futures)
    _ = concurrent.futures


def test_drain_ends_when_the_last_request_is_cancelled_in_its_slot(model):
    engine = Engine(model, slots=1).start()
    future = engine.submit(problems(1)[0], max_steps=10**6, mode="fixed")
    deadline = time.monotonic() + 30
    while engine.iterations == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert future.cancel()
    started = time.monotonic()
    engine.stop(drain=True, timeout=30)  # woken when the step runner frees the slot, not at the timeout
    assert time.monotonic() - started < 10 and engine.pending() == 0


class _TimedModel(torch.nn.Module):
    """Stands in for a model whose step takes 4 ms + 2 ms per sample (sleeps; no math)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.w = torch.nn.Parameter(torch.zeros(1))

    def initial_carry(self, batch):
        return torch.zeros(batch, 1), torch.zeros(batch, 1)

    def forward(self, y, z, inputs, puzzle_ids=None):
        time.sleep(0.004 + 0.002 * len(inputs))


def test_step_costs_take_medians_and_stop_growing_at_the_step_limit(model):
    timed = _TimedModel(model.config)
    costs = step_costs(timed, max_slots=64, max_step_seconds=0.015, passes=3)
    # 8 (20 ms a step) is the first past the limit and the last tried; per sample 6, 4, 3, 2.5 ms
    assert sorted(costs) == [1, 2, 4, 8]
    assert costs[1] > costs[2] > costs[4] > costs[8] and 0.0024 < costs[8] < 0.004


def test_auto_slots_come_from_a_stored_curve_for_this_device_never_from_timing(model):
    served = for_inference(model, "fp32")
    # no curve: the device type's default, whatever the host's speed
    with Engine(model, slots="auto", dtype="fp32") as engine:
        assert engine.slots == DEFAULT_SLOTS["cpu"]
        assert engine.submit(problems(1)[0], max_steps=3).result(timeout=30).steps <= 3
    here = {"device": device_name(torch.device("cpu")), "dtype": "float32", "threads": torch.get_num_threads()}
    curve = {"1": 12.0, "2": 8.0, "4": 6.0, "8": 5.0, "16": 4.8, "32": 4.8}
    elsewhere = {**here, "device": "cpu: another CPU", "ms_per_sample": {"1": 1.0, "2": 1.0}}
    assert auto_slots(served, [here | {"ms_per_sample": curve}, elsewhere])[0] == 8
    slots, why = auto_slots(served, [elsewhere, here | {"threads": here["threads"] + 1, "ms_per_sample": curve}])
    assert slots == DEFAULT_SLOTS["cpu"] and "another CPU" in why  # neither fits: the default, and why
    # the latest matching entry wins
    assert auto_slots(served, [here | {"ms_per_sample": curve}, here | {"ms_per_sample": {"1": 3.0, "2": 2.0, "4": 1.0}}])[0] == 4
    with Engine(model, slots="auto", dtype="fp32", calibration=[here | {"ms_per_sample": {"1": 5.0, "2": 2.0, "4": 1.9}}]) as engine:
        assert engine.slots == 2
    with pytest.raises(ValueError, match="slots"):
        Engine(model, slots=0)


def test_calibrate_stores_a_curve_that_auto_slots_then_uses(toy_model_dir, tmp_path):
    import json
    import shutil

    out, _ = toy_model_dir
    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    entry = calibrate(copy, dtype="fp32", max_slots=4)
    assert set(entry["ms_per_sample"]) == {"1", "2", "4"} and entry["slots"] in (1, 2, 4)
    again = calibrate(copy, dtype="fp32", max_slots=2)  # the same device: replaces the first curve
    stored = json.loads((copy / "config.json").read_text())["inference"]["calibration"]
    assert stored == [again]
    loaded, config = load_checkpoint(copy)
    with Engine(loaded, slots="auto", dtype="fp32", threads=torch.get_num_threads(), calibration=config["inference"]["calibration"]) as engine:
        assert engine.slots == again["slots"]
