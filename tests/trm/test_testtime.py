"""trm.testtime: noisy trajectories, the adaptive policy and the choice among attempts (toy model; the
shipped Sudoku model's gain is in tests/test_shipped_models.py and bench/testtime.py)."""

import asyncio
import dataclasses

import numpy as np
import pytest
import torch

from trm.act import LatentNoise, perturb
from trm.checkpoint import load_checkpoint
from trm.engine import Engine
from trm.inference import Prediction, recurse
from trm.pipeline import InferenceConfig, InvalidOption, plan_attempts
from trm.tasks import get_task
from trm.tasks.base import View
from trm.testtime import Judged, Policy, accepts_first, run_attempts, select, solve_attempts


@pytest.fixture(scope="module")
def model(toy_model_dir):
    out, _ = toy_model_dir
    m, _ = load_checkpoint(out)
    return m


@pytest.fixture(scope="module")
def task(model):
    return get_task(model.config.task, **model.config.task_options)


def test_latent_noise_is_reproducible_by_seed_and_zero_rows_stay():
    a, b, c = LatentNoise(0.5, 7), LatentNoise(0.5, 7), LatentNoise(0.5, 8)
    assert torch.equal(a.sample((3, 4)), b.sample((3, 4)))
    assert not torch.equal(LatentNoise(0.5, 7).sample((3, 4)), c.sample((3, 4)))
    z = torch.zeros(3, 2, 4)
    out = perturb(z, [None, LatentNoise(1.0, 1), LatentNoise(0.0, 2)])
    assert torch.equal(out[0], z[0]) and torch.equal(out[2], z[2]) and not torch.equal(out[1], z[1])
    assert perturb(z, [None, None, None]) is z  # no noise: no copy
    with pytest.raises(ValueError):
        LatentNoise(-0.1, 0)


def test_a_noisy_trajectory_in_the_engine_equals_the_same_trajectory_in_a_plain_loop(model):
    x = np.array([1, 2, 3, 4, 4, 3, 2, 1])
    # float32 in both: with "auto" on a CPU with native bf16 (avx512_bf16) the engine serves bf16 weights
    # and recurse autocasts float32 ones, which round differently
    with Engine(model, slots=4, dtype="fp32") as engine:
        noisy = engine.submit(x, max_steps=5, mode="fixed", noise=LatentNoise(0.8, 3)).result(timeout=30)
        plain = engine.submit(x, max_steps=5, mode="fixed").result(timeout=30)
    ref = recurse(model, torch.as_tensor(x)[None], max_steps=5, mode="fixed", noise=[LatentNoise(0.8, 3)], dtype="fp32")[0]
    assert np.array_equal(noisy.tokens, ref.tokens)
    assert abs(noisy.q_halt - ref.q_halt) < 1e-4
    assert abs(noisy.q_halt - plain.q_halt) > 1e-4  # the noise reached the recursion


def test_policy_names_the_field_at_fault():
    task = get_task("sudoku")
    config = InferenceConfig()
    with pytest.raises(InvalidOption) as e:
        plan_attempts(task, config, attempts=0)
    assert e.value.field == "attempts"
    with pytest.raises(InvalidOption) as e:
        plan_attempts(task, config, attempts=4, strategy="noise")  # the model stores no noise scale
    assert e.value.field == "noise"
    with pytest.raises(InvalidOption) as e:
        plan_attempts(task, config, attempts=4, views=2)
    assert e.value.field == "views"
    with pytest.raises(InvalidOption) as e:
        plan_attempts(get_task("rootcause"), config, attempts=4, select="checker")
    assert e.value.field == "select"
    # defaults: one plain attempt; a stored views vote; a stored policy; request options over stored ones
    assert plan_attempts(task, config).attempts == 1
    assert plan_attempts(task, InferenceConfig(views=2)) == Policy(attempts=2, strategy="views", select="vote", adaptive=False)
    stored = InferenceConfig(policy=Policy(attempts=8, strategy="noise", noise=0.3))
    policy = plan_attempts(task, stored)
    assert (policy.attempts, policy.strategy, policy.noise, policy.select, policy.adaptive) == (8, "noise", 0.3, "checker", True)
    assert plan_attempts(task, stored, attempts=2, select="halt").select == "halt"
    assert plan_attempts(get_task("rootcause"), stored).select == "vote"  # no exact check: the vote
    # views alone: never more attempts than the task has distinct views (a maze has 8)
    assert plan_attempts(get_task("maze"), InferenceConfig(policy=Policy(attempts=16))).attempts == 8


def test_a_stored_vote_keeps_voting_when_a_request_sets_another_option():
    maze = get_task("maze")
    stored = InferenceConfig(views=8)  # models/maze stores a vote over its 8 views
    assert plan_attempts(maze, stored, select="halt") == Policy(attempts=8, strategy="views", select="halt", adaptive=False)
    assert plan_attempts(maze, stored, adaptive=True).attempts == 8
    assert plan_attempts(maze, stored, attempts=4) == Policy(attempts=4, strategy="views", select="checker")  # attempts: test-time compute
    assert plan_attempts(maze, stored, views=2, select="checker").select == "checker"


def test_stored_policy_round_trips_through_config_json():
    config = InferenceConfig.from_config({"inference": {"attempts": 8, "strategy": "views+noise", "noise": 0.25, "select": "vote", "adaptive": False}})
    assert config.policy == Policy(attempts=8, strategy="views+noise", noise=0.25, select="vote", adaptive=False)
    assert InferenceConfig.from_config({"inference": config.as_dict()}).policy == config.policy
    for bad in ({"attempts": 0}, {"strategy": "guess"}, {"select": "best"}, {"adaptive": "false"}, {"accept_confidence": 2}, {"attempts": 4, "strategy": "noise"}):
        with pytest.raises(ValueError):
            InferenceConfig.from_config({"inference": bad})


def judged(index, tokens, confidence, verified, objective=None):
    key = np.array(tokens).tobytes()
    return Judged(index, Prediction(np.array(tokens), 3, True, confidence, 0.0), None, verified, objective, key=key)  # type: ignore[arg-type]


def test_selection_by_checker_vote_and_halting_head():
    a, b = [1, 1], [2, 2]
    attempts = [judged(0, a, 0.9, False), judged(1, b, 0.2, True), judged(2, a, 0.8, False), judged(3, b, 0.3, True)]
    chosen, how, votes = select(Policy(attempts=4, select="checker"), attempts)
    assert (chosen.index, how, votes) == (1, "checker", 2)  # the first that passes
    chosen, how, votes = select(Policy(attempts=4, select="vote"), [*attempts, judged(4, a, 0.1, False)])
    assert (chosen.index, how, votes) == (0, "vote", 3)
    chosen, how, _ = select(Policy(attempts=4, select="halt"), attempts)
    assert (chosen.index, how) == (0, "halt")
    # none passes the check: the vote decides
    _, how, _ = select(Policy(attempts=2, select="checker"), [judged(0, a, 0.5, False), judged(1, b, 0.6, False)])
    assert how == "vote"
    # an objective: the best among those that pass, not the first
    chosen, _, _ = select(Policy(attempts=3, select="checker"), [judged(0, a, 0.5, True, 3.0), judged(1, b, 0.5, True, 2.0)])
    assert chosen.index == 1
    # adaptive acceptance: the check where there is one, else the confidence
    assert accepts_first(Policy(), judged(0, a, 0.01, True))
    assert not accepts_first(Policy(), judged(0, a, 0.99, False))
    assert accepts_first(Policy(accept_confidence=0.5), judged(0, a, 0.6, None))
    assert not accepts_first(Policy(accept_confidence=0.5), judged(0, a, 0.4, None))
    # an optimisation task: valid is not enough, the first must be proven optimal (its lower bound met)
    assert not accepts_first(Policy(), dataclasses.replace(judged(0, a, 0.99, True, 3.0), proven=False))
    assert accepts_first(Policy(), dataclasses.replace(judged(0, a, 0.01, True, 2.0), proven=True))


def test_undo_probs_maps_columns_and_positions_back():
    view = View(np.array([2, 0, 1]), np.array([0, 2, 1]))
    probs = np.random.default_rng(0).random((3, 3))
    back = view.undo_probs(probs)
    # the answer's token at original position p is values^-1 of the view's token at the view position showing p
    assert np.array_equal(back[view.positions], probs[:, view.values])


def _problems(task, n, seed):
    rng = np.random.default_rng(seed)
    return [task.parse(task.generate(rng, 1, task.buckets[-1])[0].problem.model_dump()) for _ in range(n)]


def test_adaptive_runs_more_attempts_only_where_the_first_fails_and_engine_and_static_agree(model, task):
    problems = _problems(task, 12, seed=5)
    policy = plan_attempts(task, InferenceConfig(policy=Policy(attempts=4, strategy="views+noise", noise=0.5)))

    def run(inputs, noise, checks):
        return recurse(model, inputs, max_steps=4, noise=noise, checks=checks)

    static = solve_attempts(run, task, problems, policy)
    identity = View.identity(task.seq_len, task.vocab_size)
    firsts = recurse(
        model, torch.from_numpy(np.stack([task.encode(p) for p in problems])), max_steps=4, checks=[policy.checker(task, p, identity) for p in problems]
    )
    for outcome, first, problem in zip(static, firsts, problems):
        plain_ok = not task.verify(problem, task.decode(first.tokens, problem))
        if plain_ok:  # the first attempt passed: it is the answer, and the only cost
            assert (outcome.attempts, outcome.strategy, outcome.sample_steps) == (1, "single", first.steps)
        else:
            assert outcome.attempts == 4 and outcome.sample_steps >= first.steps
    assert any(o.attempts == 1 for o in static) and any(o.attempts == 4 for o in static), "the toy model should pass some and fail some"

    async def on_engine():
        with Engine(model, slots=4) as engine:
            return await asyncio.gather(*(run_attempts(engine, task, p, policy, deadline=None, submit={"max_steps": 4}) for p in problems))

    served = asyncio.run(on_engine())
    for a, b in zip(static, served):
        # the same attempts; the checker may stop earlier in the engine (completion order), never later
        assert b.attempts == a.attempts
        assert (b.chosen_by == "checker") == (a.chosen_by == "checker")
        if a.chosen_by != "checker":
            assert np.array_equal(a.tokens, b.tokens)


def test_an_answer_that_passes_the_check_ends_its_attempt_in_the_engine_and_the_plain_loop(model, task):
    problem = _problems(task, 1, seed=2)[0]
    x = task.encode(problem)
    calls = []

    def passes_from_step_2(tokens):
        calls.append(tokens.copy())
        return len(calls) >= 2

    with Engine(model, slots=2) as engine:
        r = engine.submit(x, max_steps=8, threshold=20.0, check=passes_from_step_2).result(timeout=30)  # the halting head never stops it
        raising = engine.submit(x, max_steps=3, threshold=20.0, check=lambda t: 1 / 0).result(timeout=30)  # a broken check: the sample goes on
    assert (r.steps, r.halted, r.cut_reason) == (2, True, None)
    assert (raising.steps, raising.halted) == (3, False)
    calls.clear()
    ref = recurse(model, torch.as_tensor(x)[None], max_steps=8, threshold=20.0, checks=[passes_from_step_2])[0]
    assert (ref.steps, ref.halted) == (2, True) and np.array_equal(ref.tokens, r.tokens)
    raising_ref = recurse(model, torch.as_tensor(x)[None], max_steps=3, threshold=20.0, checks=[lambda t: 1 / 0])[0]
    assert (raising_ref.steps, raising_ref.halted) == (3, False)
    # the policy checks only under test-time compute with the checker, where passing means right (no objective)
    identity = View.identity(task.seq_len, task.vocab_size)
    on = Policy(attempts=4, select="checker")
    assert on.checker(task, problem, identity) is not None
    assert Policy(attempts=1, select="checker").checker(task, problem, identity) is None  # a plain request steps as before
    assert Policy(attempts=4, select="vote").checker(task, problem, identity) is None
    assert Policy(attempts=4, select="checker", stop_on_check=False).checker(task, problem, identity) is None
    assert on.checker(get_task("placement"), None, identity) is None


def test_a_non_adaptive_vote_runs_every_attempt_at_once(model, task):
    problems = _problems(task, 3, seed=9)
    policy = plan_attempts(task, InferenceConfig(), attempts=3, strategy="noise", noise=0.5, select="vote", adaptive=False)

    async def on_engine():
        with Engine(model, slots=4) as engine:
            return [await run_attempts(engine, task, p, policy, deadline=None, submit={"max_steps": 3}) for p in problems]

    for outcome in asyncio.run(on_engine()):
        assert outcome.attempts == 3 and outcome.views == 3 and outcome.chosen_by == "vote"


def test_a_cancelled_request_gives_every_attempt_slot_back(model, task):
    problem = _problems(task, 1, seed=4)[0]
    # never halts, never passes before min_steps: every attempt runs until cancelled
    policy = plan_attempts(task, InferenceConfig(), attempts=4, strategy="noise", noise=0.5, adaptive=False)

    async def go():
        with Engine(model, slots=2, queue_size=8) as engine:
            submit = {"max_steps": 10**6, "min_steps": 10**6, "threshold": 20.0}
            running = asyncio.create_task(run_attempts(engine, task, problem, policy, deadline=None, submit=submit))
            await asyncio.sleep(0.3)
            assert engine.pending() == 4
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            for _ in range(100):
                if engine.pending() == 0:
                    break
                await asyncio.sleep(0.05)
            return engine.pending()

    assert asyncio.run(go()) == 0


def test_upgrade_node_orders_keep_the_fewest_waves_and_engine_and_static_agree(tmp_path):
    # views that re-list the problem (NodeOrder): each attempt reads its own greedy draft, answers are
    # mapped back by node, and the checker keeps the valid plan with the fewest waves
    from tests.bench.untrained import hints_model
    from trm.tasks.upgrade import random_problem

    upgrade, _ = load_checkpoint(hints_model("upgrade", 17, tmp_path))
    task = get_task("upgrade", hints=True)
    rng = np.random.default_rng(3)
    problems = [random_problem(rng, int(rng.integers(9, 17)), int(rng.integers(6, 17)), 0.15) for _ in range(6)]
    policy = plan_attempts(task, InferenceConfig(policy=Policy(attempts=8, strategy="views", adaptive=False)))
    assert (policy.select, policy.attempts) == ("checker", 8)

    def run(inputs, noise, checks):
        return recurse(upgrade, inputs, max_steps=2, noise=noise, checks=checks, probs=True, dtype="fp32")

    static = solve_attempts(run, task, problems, policy)
    single = solve_attempts(run, task, problems, plan_attempts(task, InferenceConfig(policy=Policy(attempts=1))))

    async def on_engine():
        with Engine(upgrade, slots=8, dtype="fp32") as engine:  # float32 in both, as the loop: bf16 weights round otherwise
            return await asyncio.gather(*(run_attempts(engine, task, p, policy, deadline=None, submit={"max_steps": 2, "probs": True}) for p in problems))

    served = asyncio.run(on_engine())
    for problem, a, b, one in zip(problems, static, served, single):
        plans = [task.decode(o.tokens, problem, o.probs) for o in (a, b, one)]
        assert all(task.verify(problem, plan) == [] for plan in plans)
        assert a.attempts == b.attempts == 8 and a.chosen_by == b.chosen_by == "checker"
        assert len(plans[0].waves) == len(plans[1].waves) <= len(plans[2].waves)
        # the same as solving each re-listed cluster by hand and mapping its plan back by node
        views = task.views(8)
        inputs = np.stack([task.view_inputs(problem, v, task.encode(problem)) for v in views])
        by_hand = recurse(upgrade, torch.from_numpy(inputs), max_steps=2, probs=True, dtype="fp32")
        waves = [
            len(task.decode(task.view_undo(problem, v, p.tokens), problem, task.view_undo_probs(problem, v, p.probs)).waves)
            for v, p in zip(views, by_hand)
        ]
        assert len(plans[0].waves) == min(waves)
        # equal plans from two orders count as one answer, though each order numbers its waves anew
        decoded = [task.decode(task.view_undo(problem, v, p.tokens), problem, task.view_undo_probs(problem, v, p.probs)) for v, p in zip(views, by_hand)]
        chosen = plans[0]
        assert a.votes == sum(sorted(map(sorted, d.waves)) == sorted(map(sorted, chosen.waves)) for d in decoded)
    assert any(len({tuple(task.view_inputs(p, v, task.encode(p))) for v in task.views(8)}) > 1 for p in problems)
