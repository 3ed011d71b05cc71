import itertools

import numpy as np
import pytest

from trm.tasks import InvalidProblem, get_task, upgrade
from trm.tasks.base import OutsideCanvas
from trm.tasks.common import LimitReached
from trm.tasks.upgrade import (
    EMPTY,
    HEADER,
    MU0,
    NODE_SLOT,
    REPLICA0,
    SIZE,
    WAVE0,
    canonical,
    canonical_key,
    canonical_waves,
    exact,
    greedy,
    nearest,
    random_problem,
)

task = get_task("upgrade")


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(0)
    return task.generate(rng, 20, "small") + task.generate(rng, 30, "large")


EXAMPLE = task.parse(task.example())


def test_encoding_layout():
    grid = task.encode(EXAMPLE).reshape(SIZE, SIZE)
    assert grid[0, 0] == HEADER and (grid[0, 1:6] == NODE_SLOT).all() and (grid[0, 6:] == EMPTY).all()
    assert grid[1, :7].tolist() == [MU0 + 1, REPLICA0 + 1, REPLICA0 + 1, REPLICA0 + 1, REPLICA0, REPLICA0, 0]
    assert grid[3, 5] == REPLICA0 + 2  # nextcloud has two replicas on k3s-05
    assert (grid[5:, 0] == EMPTY).all() and (grid[5:, 1:] == 0).all()
    capped = task.parse({"nodes": ["a", "b"], "services": [{"name": "web", "replicas_on": ["a"] * 5, "max_unavailable": 7}]})
    assert task.encode(capped).reshape(SIZE, SIZE)[1, :3].tolist() == [MU0 + 4, REPLICA0 + 3, REPLICA0]


def test_label_of_the_example():
    solution = task.decode(task.label(EXAMPLE), EXAMPLE)
    assert solution.waves == [["k3s-01", "k3s-05"], ["k3s-02", "k3s-04"], ["k3s-03"]]
    assert task.verify(EXAMPLE, solution) == [] and solution.repaired == 0


def test_label_is_optimal_and_decodes_to_a_valid_plan(examples):
    for ex in examples:
        solution = task.decode(ex.labels, ex.problem)
        assert task.verify(ex.problem, solution) == []
        assert solution.repaired == 0 and len(solution.waves) == ex.info["optimal_waves"]
        waves = ex.labels.reshape(SIZE, SIZE)[0, 1 : 1 + len(ex.problem.nodes)] - WAVE0
        assert waves[0] == 0 and all(w <= max(waves[:j], default=0) + 1 for j, w in enumerate(waves))  # numbered by first node


def test_baseline_is_valid_and_never_better_than_the_label(examples):
    worse = 0
    for ex in examples:
        base = task.baseline(ex.problem)
        assert task.verify(ex.problem, base) == []
        assert len(base.waves) >= ex.info["optimal_waves"]
        worse += len(base.waves) > ex.info["optimal_waves"]
    assert worse > 0  # the greedy is not optimal on these instances: a model has something to beat


def test_verify_catches_each_kind_of_wrong_answer():
    Solution = task.Solution

    def errors(waves):
        return " | ".join(task.verify(EXAMPLE, Solution(waves=waves)))

    assert errors([["k3s-01", "k3s-05"], ["k3s-02", "k3s-04"], ["k3s-03"]]) == ""
    assert "takes down 2 replicas of postgres" in errors([["k3s-01", "k3s-02"], ["k3s-04", "k3s-05"], ["k3s-03"]])
    assert "in no wave: k3s-03" in errors([["k3s-01", "k3s-05"], ["k3s-02", "k3s-04"]])
    assert "in wave 1 and again in wave 3" in errors([["k3s-01", "k3s-05"], ["k3s-02", "k3s-04"], ["k3s-03", "k3s-01"]])
    assert "wave 3 is empty" in errors([["k3s-01", "k3s-05"], ["k3s-02", "k3s-04"], [], ["k3s-03"]])
    assert "not in nodes" in errors([["k3s-01", "k3s-05"], ["k3s-02", "k3s-04"], ["k3s-03", "k3s-99"]])


def test_decode_repairs_budget_breaks():
    tokens = task.encode(EXAMPLE).copy()
    tokens.reshape(SIZE, SIZE)[0, 1:6] = WAVE0  # everything in wave 1
    solution = task.decode(tokens, EXAMPLE)
    assert task.verify(EXAMPLE, solution) == [] and solution.repaired == 3
    tokens.reshape(SIZE, SIZE)[0, 1:6] = 0  # no wave tokens at all
    solution = task.decode(tokens, EXAMPLE)
    assert task.verify(EXAMPLE, solution) == [] and solution.repaired == 5


def test_decode_with_probabilities_moves_the_node_the_model_is_least_sure_of():
    # a and b share "db" (one at a time), b and c share "web": the model puts a and b in wave 1 (sure
    # of b, not of a, whose second choice is wave 2) and c in wave 2
    problem = task.parse(
        {
            "nodes": ["a", "b", "c"],
            "services": [{"name": "db", "replicas_on": ["a", "b"], "max_unavailable": 1}, {"name": "web", "replicas_on": ["b", "c"], "max_unavailable": 1}],
        }
    )
    probs = np.zeros((SIZE, SIZE, upgrade.VOCAB), dtype=np.float32)
    probs[0, 1, WAVE0 : WAVE0 + 2] = [0.5, 0.4]
    probs[0, 2, WAVE0] = 0.9
    probs[0, 3, WAVE0 + 1] = 0.9
    tokens = probs.argmax(-1).reshape(-1)
    in_order = task.decode(tokens, problem)  # a keeps wave 1, b is moved to a wave of its own
    assert task.verify(problem, in_order) == [] and in_order.waves == [["a"], ["b"], ["c"]] and in_order.repaired == 1
    surest_first = task.decode(tokens, problem, probs.reshape(SIZE * SIZE, -1))  # b first; a to its second choice
    assert task.verify(problem, surest_first) == [] and surest_first.waves == [["a", "c"], ["b"]] and surest_first.repaired == 1
    assert task.needs_probs  # so the service passes them


def test_decode_with_any_probabilities_is_valid_and_never_longer_than_the_given_order():
    rng = np.random.default_rng(7)
    for k in range(60):
        problem = task.parse(random_problem(rng, int(rng.integers(1, 17)), int(rng.integers(0, 17))).model_dump())
        probs = rng.random((SIZE * SIZE, upgrade.VOCAB)).astype(np.float32) ** 4
        if k % 3 == 0:
            probs[rng.random(probs.shape) < 0.3] = np.nan  # a broken model is still decoded, not a crash
        tokens = np.nan_to_num(probs).argmax(-1)
        plain, surest = task.decode(tokens, problem), task.decode(tokens, problem, probs)
        assert task.verify(problem, plain) == [] and task.verify(problem, surest) == []
        assert len(surest.waves) <= len(plain.waves)
    nodes = [f"n{i}" for i in range(12)]  # twelve waves: past the model's eight, probabilities or not
    quorum = task.parse({"nodes": nodes, "services": [{"name": "quorum", "replicas_on": nodes, "max_unavailable": 1}]})
    probs = rng.random((SIZE * SIZE, upgrade.VOCAB)).astype(np.float32)
    answer = task.decode(probs.argmax(-1), quorum, probs)
    assert task.verify(quorum, answer) == [] and len(answer.waves) == 12


def test_limits_and_infeasible_budgets():
    def raises(raw, field, words, kind=InvalidProblem):
        with pytest.raises(kind) as e:
            task.parse(raw)
        assert e.value.field == field and words in e.value.message
        return e.value

    nodes = [f"n{i}" for i in range(17)]
    raises({"nodes": nodes}, "problem.nodes", "17 nodes; this model takes at most 16", OutsideCanvas)
    services = [{"name": f"s{i}", "replicas_on": [], "max_unavailable": 1} for i in range(17)]
    raises({"nodes": ["a"], "services": services}, "problem.services", "17 services; this model takes at most 16", OutsideCanvas)
    assert len(task.parse({"nodes": nodes}, canvas=False).nodes) == 17  # size alone is never invalid
    zero = [{"name": "etcd", "replicas_on": ["a", "b"], "max_unavailable": 0}]
    assert not isinstance(raises({"nodes": ["a", "b"], "services": zero}, "problem.services.0.max_unavailable", "'etcd' has replicas but max_unavailable 0"), OutsideCanvas)
    stacked = [{"name": "ok", "replicas_on": ["a"], "max_unavailable": 1}, {"name": "db", "replicas_on": ["a", "b", "b"], "max_unavailable": 1}]
    raises({"nodes": ["a", "b"], "services": stacked}, "problem.services.1", "'db' has 2 replicas on node 'b' but max_unavailable 1")


def test_plans_beyond_eight_waves_fall_to_the_baseline():
    nodes = [f"n{i}" for i in range(10)]
    problem = task.parse({"nodes": nodes, "services": [{"name": "quorum", "replicas_on": nodes, "max_unavailable": 1}]})
    assert len(task.baseline(problem).waves) == 10
    with pytest.raises(ValueError, match="10 waves"):
        task.label(problem)
    tokens = task.encode(problem)
    tokens.reshape(SIZE, SIZE)[0, 1:11] = WAVE0 + np.arange(10) % 8
    solution = task.decode(tokens, problem)
    assert task.verify(problem, solution) == [] and len(solution.waves) == 10 and solution.repaired == 2
    answer = task.solve(problem, time_limit_s=5)  # the solver plans it, proven optimal by the bound
    assert answer.objective == answer.lower_bound == 10 and answer.optimal and task.verify(problem, answer.solution) == []


def problem_from_tokens(inputs):
    """The problem the tokens describe (exact where no value is capped)."""
    grid = inputs.reshape(SIZE, SIZE)
    nodes = [f"n{j}" for j in range(int((grid[0, 1:] == NODE_SLOT).sum()))]
    services = []
    for s in range(1, SIZE):
        if grid[s, 0] == EMPTY:
            break
        on = [n for j, n in enumerate(nodes) for _ in range(int(grid[s, 1 + j] - REPLICA0))]
        services.append({"name": f"s{s}", "replicas_on": on, "max_unavailable": int(grid[s, 0] - MU0)})
    return task.parse({"nodes": nodes, "services": services})


def test_augment_reorders_services_and_keeps_the_canonical_plan(examples):
    exact = [ex for ex in examples if all(s.max_unavailable < 4 for s in ex.problem.services)]  # no capped tokens
    inputs, labels = np.stack([ex.inputs for ex in exact]), np.stack([ex.labels for ex in exact])
    new_inputs, new_labels = task.augment(np.random.default_rng(1), inputs, labels)
    assert (new_inputs != inputs).any() and (new_labels == labels).all()
    for x, y in zip(new_inputs[:10], new_labels[:10], strict=True):
        assert (task.label(problem_from_tokens(x)) == y).all()


def test_reordering_nodes_changes_the_canonical_plan(examples):
    """Why augment leaves node order alone: the canonical pick for a reordered problem differs."""
    rng = np.random.default_rng(4)
    changed = 0
    for ex in examples:
        p = ex.problem
        order = rng.permutation(len(p.nodes))
        reordered = p.model_copy(update={"nodes": [p.nodes[j] for j in order]})
        moved = task.decode(task.label(reordered), reordered).waves
        plan = task.decode(ex.labels, p).waves
        changed += sorted(map(sorted, moved)) != sorted(map(sorted, plan))
    assert changed > 0, "a node permutation would be a safe augmentation if no plan ever changed"


def test_group_key_ignores_names_and_order(examples):
    rng = np.random.default_rng(2)
    for ex in examples[:10]:
        p = ex.problem
        names = {n: f"node-{k}" for k, n in enumerate(rng.permutation(p.nodes))}
        shuffled = p.model_copy(
            update={
                "nodes": [names[n] for n in rng.permutation(p.nodes)],
                "services": [
                    p.services[i].model_copy(update={"name": f"svc-{i}", "replicas_on": [names[n] for n in reversed(p.services[i].replicas_on)]})
                    for i in rng.permutation(len(p.services))
                ],
            }
        )
        assert canonical_key(shuffled) == ex.group
    assert len({ex.group for ex in examples}) == len(examples)


def test_generate_is_deterministic_for_a_seed():
    a = task.generate(np.random.default_rng(7), 5, "large")
    b = task.generate(np.random.default_rng(7), 5, "large")
    assert [x.problem for x in a] == [x.problem for x in b]
    assert all((x.labels == y.labels).all() and x.group == y.group for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("bucket", ["small", "large"])
def test_generation_counts_what_it_leaves_out_and_keeps_it_rare(bucket):
    """Instances left out (label past the work limit, more waves than the canvas) are counted, and rare."""
    n = 20
    examples = task.generate(np.random.default_rng(3), n, bucket)
    skipped = sum(ex.info["dropped"]["limit_hits"] + ex.info["dropped"]["too_many_waves"] for ex in examples)
    assert len(examples) == n and skipped <= n // 2, skipped
    lo, hi = {"small": (4, 8), "large": (9, 16)}[bucket]
    assert all(lo <= len(ex.problem.nodes) <= hi for ex in examples)


def _tiny(rng):
    n, s = int(rng.integers(2, 7)), int(rng.integers(1, 4))
    budget = tuple(int(rng.integers(1, 3)) for _ in range(s))
    counts = [tuple(int(rng.integers(0, b + 1)) for b in budget) for _ in range(n)]
    plans = [
        a
        for a in itertools.product(range(n), repeat=n)
        if list(a) == canonical_waves(list(a)) and all(sum(counts[i][t] for i in range(n) if a[i] == w) <= budget[t] for w in set(a) for t in range(s))
    ]
    return counts, budget, plans


def test_cpsat_finds_the_canonical_optimum_of_tiny_problems():
    """Against brute force: the fewest waves, and the lexicographically first plan numbered by first node."""
    rng = np.random.default_rng(1)
    for _ in range(60):
        counts, budget, plans = _tiny(rng)
        k = min(max(a) + 1 for a in plans)
        wave, info = canonical(counts, budget)
        assert tuple(wave) == min(a for a in plans if max(a) + 1 == k)
        assert info["lower_bound"] <= k <= info["greedy_waves"]


def test_nearest_is_the_optimum_closest_to_the_draft_against_brute_force():
    """The hints model's labels: of the fewest-wave plans, those with the most nodes in their draft
    wave, then the lexicographically first; an optimal draft is its own label."""
    rng = np.random.default_rng(2)
    moved_some = 0
    for _ in range(80):
        counts, budget, plans = _tiny(rng)
        k = min(max(a) + 1 for a in plans)
        for draft in (greedy(counts, budget), list(max(plans, key=max))):  # the greedy's own numbering, and a canonical one
            optima = [a for a in plans if max(a) + 1 == k]
            numbered = canonical_waves(draft)
            off = {a: sum(x != y for x, y in zip(a, numbered, strict=True)) for a in optima}
            want = min(optima, key=lambda a: (off[a], a))
            wave, info = nearest(counts, budget, draft)
            assert tuple(wave) == want and info["moved"] == off[want]
            if max(draft) + 1 == k:
                assert wave == numbered
            moved_some += off[want] > 0
    assert moved_some > 10  # the search, not only the optimal-draft shortcut, was exercised


def test_hints_labels_keep_an_optimal_greedy_plan(examples):
    hinted = get_task("upgrade", hints=True)
    kept = 0
    for ex in examples:
        counts, budget = upgrade.replica_counts(ex.problem), tuple(s.max_unavailable for s in ex.problem.services)
        draft = canonical_waves(greedy(counts, budget))
        n = len(ex.problem.nodes)
        label = (hinted.label(ex.problem).reshape(SIZE, SIZE)[0, 1 : 1 + n] - WAVE0).tolist()
        assert max(label) + 1 == ex.info["optimal_waves"]  # as few waves as the canonical optimum
        if max(draft) + 1 == ex.info["optimal_waves"]:
            assert label == draft
            kept += 1
    assert kept >= len(examples) // 2


def test_exact_optimum_and_bound_against_brute_force():
    """`exact` (what `solve` runs): the fewest waves and a proven bound, from any valid hint."""
    rng = np.random.default_rng(5)
    for _ in range(40):
        counts, budget, plans = _tiny(rng)
        k = min(max(a) + 1 for a in plans)
        for hint in (None, list(max(plans, key=max))):
            result = exact(counts, budget, time_limit_s=5, hint=hint)
            assert result.objective == max(result.values) + 1 == k == result.bound and result.optimal
            assert tuple(result.values) in plans


def test_solve_beyond_the_canvas_returns_a_verified_answer_with_a_bound():
    big = random_problem(np.random.default_rng(0), 40, 60)
    with pytest.raises(OutsideCanvas):
        task.parse(big.model_dump())
    big = task.parse(big.model_dump(), canvas=False)
    answer = task.solve(big, time_limit_s=3)
    assert answer.solved_by == "solver" and task.verify(big, answer.solution) == []
    assert answer.objective == len(answer.solution.waves) and task.lower_bound(big) <= answer.lower_bound <= answer.objective
    assert answer.optimal == (answer.objective <= answer.lower_bound) and answer.info["status"] in ("OPTIMAL", "FEASIBLE")
    hinted = task.solve(big, time_limit_s=3, hint=task.baseline(big))
    assert hinted.info["hint_used"] and task.verify(big, hinted.solution) == [] and hinted.objective <= len(task.baseline(big).waves)


def test_generator_counts_what_it_leaves_out(monkeypatch):
    """Labels not proven in time and plans beyond 8 waves are left out and counted, never dropped
    silently. (On purpose: the 1st, 4th, ... label search stops as if out of time, the 2nd, 5th, ...
    answers with a ninth wave.)"""
    calls = {"n": 0}

    def stubborn(counts, budget, work):
        calls["n"] += 1
        if calls["n"] % 3 == 1:
            raise LimitReached("out of time", None)
        wave, info = canonical(counts, budget, work)
        return (wave[:-1] + [8] if calls["n"] % 3 == 2 else wave), info

    monkeypatch.setattr(upgrade, "canonical", stubborn)
    examples = task.generate(np.random.default_rng(3), 3, "small")
    assert [ex.info["dropped"] for ex in examples] == [{"limit_hits": 1, "too_many_waves": 1, "optimal_draft": 0}] * 3


def test_keep_optimal_draft_leaves_out_and_counts_optimal_drafts():
    """Generator option keep_optimal_draft (hints only): clusters whose greedy plan is already
    optimal are kept at that share, the others counted as dropped; a kept edit is never dropped."""
    hinted = get_task("upgrade", hints=True)
    examples = hinted.generate(np.random.default_rng(5), 40, "large", keep_optimal_draft=0.2)
    optimal_drafts = sum(ex.info["moved"] == 0 for ex in examples)
    dropped = sum(ex.info["dropped"]["optimal_draft"] for ex in examples)
    # Each optimal draft is kept with probability 0.2: about 4 dropped per one kept.
    assert dropped > 0 and 2 * optimal_drafts <= dropped <= 8 * max(optimal_drafts, 1)
    # A kept edit is never dropped: about 14% of large clusters need one, here most of the kept ones do.
    assert len(examples) - optimal_drafts >= 12
    for ex in examples:  # labels are still the nearest optimum: an optimal draft is its own label
        x, y = hinted.encode(ex.problem).reshape(SIZE, SIZE)[0], ex.labels.reshape(SIZE, SIZE)[0]
        assert (ex.info["moved"] == 0) == bool((x[y != 0] == y[y != 0]).all())
    with pytest.raises(ValueError, match="keep_optimal_draft"):
        hinted.generate(np.random.default_rng(0), 1, "small", keep_optimal_draft=0)
    with pytest.raises(ValueError, match="hints"):
        task.generate(np.random.default_rng(0), 1, "small", keep_optimal_draft=0.5)


def test_hints_put_the_greedys_plan_where_the_answer_goes(examples):
    """Task option hints: row 0's node cells hold the greedy's waves (canonically numbered), the
    rest is the plain encoding; read as an answer it is the greedy's plan; augmentation reorders
    services and leaves row 0 alone."""
    hinted = get_task("upgrade", hints=True)
    assert hinted.options() == {"hints": True} and task.options() == {}
    assert (hinted.seq_len, hinted.vocab_size) == (task.seq_len, task.vocab_size)
    for ex in examples[:15]:
        p = ex.problem
        grid, plain = hinted.encode(p).reshape(SIZE, SIZE), task.encode(p).reshape(SIZE, SIZE)
        n = len(p.nodes)
        assert np.array_equal(grid[1:], plain[1:]) and grid[0, 0] == HEADER and (grid[0, 1 + n :] == EMPTY).all()
        plan = canonical_waves(upgrade.greedy(upgrade.replica_counts(p), tuple(s.max_unavailable for s in p.services)))
        assert list(grid[0, 1 : 1 + n]) == [WAVE0 + w if w < 8 else NODE_SLOT for w in plan]
        if max(plan) < 8:  # the input read as an answer is the greedy's plan
            read = hinted.decode(grid.reshape(-1), p)
            assert read.repaired == 0 and sorted(map(sorted, read.waves)) == sorted(map(sorted, task.baseline(p).waves))
    rng = np.random.default_rng(1)
    inputs = np.stack([hinted.encode(ex.problem) for ex in examples[:6]])
    augmented, _ = hinted.augment(rng, inputs, inputs)
    x, y = augmented.reshape(6, SIZE, SIZE), inputs.reshape(6, SIZE, SIZE)
    assert np.array_equal(x[:, 0], y[:, 0]) and not np.array_equal(x, y)


def test_render_counts_waves_and_nodes_in_words():
    one = task.parse({"nodes": ["k3s-01"], "services": []})
    assert task.render(one, task.baseline(one)) == "wave 1: k3s-01\n1 wave for 1 node"
    two = task.parse({"nodes": ["a", "b"], "services": [{"name": "db", "replicas_on": ["a", "b"], "max_unavailable": 1}]})
    assert task.render(two, task.baseline(two)).endswith("\n2 waves for 2 nodes")


def test_node_order_views_re_list_the_cluster_and_map_answers_back():
    hinted = get_task("upgrade", hints=True)
    views = hinted.views(64)
    assert len(views) == 8 and hinted.describe()["max_views"] == 8
    assert [v.slots.tolist() for v in hinted.views(3)] == [v.slots.tolist() for v in views[:3]]  # a prefix: the same at every call
    rng = np.random.default_rng(11)
    problem = random_problem(rng, 12, 9, 0.15)
    encoded = hinted.encode(problem)
    drafts = set()
    for view in views:
        shown = hinted.view_problem(problem, view)
        assert sorted(shown.nodes) == sorted(problem.nodes) and shown.services == problem.services
        inputs = hinted.view_inputs(problem, view, encoded)
        assert np.array_equal(inputs, hinted.encode(shown))  # its own greedy draft, not the given order's moved
        # the draft read as the view's answer decodes to the same plan in either frame
        back = hinted.view_undo(problem, view, inputs)
        in_view = hinted.decode(inputs, shown)
        mapped = hinted.decode(back, problem)
        assert hinted.verify(problem, mapped) == []
        assert sorted(map(sorted, mapped.waves)) == sorted(map(sorted, in_view.waves))
        probs = np.eye(hinted.vocab_size)[inputs]  # [289, 21] one-hot
        assert np.array_equal(hinted.view_undo_probs(problem, view, probs).argmax(-1), back)
        drafts.add(tuple(map(tuple, sorted(map(sorted, mapped.waves)))))
    assert views[0].order(12) == list(range(12)) and hinted.view_problem(problem, views[0]) is problem
    big = random_problem(rng, 20, 9, 0.15)  # beyond the canvas: every node still listed once
    assert all(sorted(hinted.view_problem(big, v).nodes) == sorted(big.nodes) for v in views)
    assert len(drafts) > 1, "other orders should break the greedy's ties differently on a 12-node cluster"
