import gzip
import itertools
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest

from agent_reasoning.types import PlacementNode, PlacementPod, PlacementProblem
from trm.data import generate_splits
from trm.tasks import InvalidProblem, get_task, placement
from trm.tasks.base import OutsideCanvas
from trm.tasks.common import LimitReached
from trm.tasks.placement import (
    EMPTY_SLOT,
    GROUP0,
    LEVEL0,
    MAX_NODES,
    MAX_PODS,
    NO_GROUP,
    NODE_INDEX0,
    POD,
    _dominators,
    _numbers,
    canonical,
    canonical_key,
    exact,
    ffd,
    hint_placement,
    levels,
    nearest,
    random_problem,
    start_placement,
)

task = get_task("placement")


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(0)
    return task.generate(rng, 30, "small") + task.generate(rng, 4, "large")


def problem(nodes, pods):
    return task.parse(
        {
            "nodes": [{"name": n, "cpu_millicores": c, "memory_mib": m} for n, c, m in nodes],
            "pods": [{"name": p, "cpu_millicores": c, "memory_mib": m, "group": g} for p, c, m, g in pods],
        }
    )


SMALL = problem(
    [("nuc-01", 4000, 8192), ("nuc-02", 4000, 8192), ("pi-01", 2000, 4096)],
    [("db-0", 2000, 4096, None), ("web-0", 1000, 1024, "web"), ("web-1", 1000, 1024, "web"), ("cache-0", 500, 512, None)],
)


def test_encoding_layout():
    grid = task.encode(SMALL).reshape(-1, 4)
    assert grid.shape == (64, 4)
    assert grid[0].tolist() == [1, LEVEL0 + 16, LEVEL0 + 16, 0]
    assert grid[2].tolist() == [1, LEVEL0 + 8, LEVEL0 + 8, 0]
    assert (grid[3:MAX_NODES, 0] == EMPTY_SLOT).all()
    # pods largest first: db (1/2 of the largest node), then the two web pods, then cache
    assert grid[MAX_NODES].tolist() == [POD, LEVEL0 + 8, LEVEL0 + 8, NO_GROUP]
    assert grid[MAX_NODES + 1].tolist() == [POD, LEVEL0 + 4, LEVEL0 + 2, GROUP0]
    assert grid[MAX_NODES + 2, 3] == GROUP0
    assert grid[MAX_NODES + 3].tolist() == [POD, LEVEL0 + 2, LEVEL0 + 1, NO_GROUP]
    assert (grid[MAX_NODES + 4 :, 0] == EMPTY_SLOT).all()


def test_levels_round_conservatively():
    p = problem([("a", 1600, 1600), ("b", 1599, 100)], [("x", 0, 1, None), ("y", 101, 1600, None)])
    nodes, pods = levels(p)
    assert nodes == [(16, 16), (15, 1)]
    assert pods == [(0, 1), (2, 16)]


def test_label_is_optimal_and_decodes_to_a_valid_placement(examples):
    for ex in examples:
        solution = task.decode(ex.labels, ex.problem)
        assert task.verify(ex.problem, solution) == []
        assert solution.repaired == 0 and solution.nodes_used == ex.info["optimal_nodes"]
        assert task.label(ex.problem).tolist() == ex.labels.tolist()


def test_label_of_a_small_problem():
    # the web pods must split; db and one web pod fill one nuc, the other web pod and cache share the second
    solution = task.decode(task.label(SMALL), SMALL)
    assert solution.nodes_used == 2 and task.verify(SMALL, solution) == []
    assert solution.assignments == {"db-0": "nuc-01", "web-0": "nuc-01", "web-1": "nuc-02", "cache-0": "nuc-01"}


def test_baseline_is_valid_and_never_better_than_the_label(examples):
    worse = 0
    for ex in examples:
        base = task.baseline(ex.problem)
        assert task.verify(ex.problem, base) == []
        assert base.nodes_used >= ex.info["optimal_nodes"]
        assert base.nodes_used == ex.info["ffd_nodes"]
        worse += base.nodes_used > ex.info["optimal_nodes"]
    assert worse > 0  # FFD is not optimal on these instances: a model has something to beat


def test_verify_catches_each_kind_of_wrong_answer():
    ok = {"db-0": "nuc-01", "web-0": "nuc-01", "web-1": "nuc-02", "cache-0": "nuc-02"}
    Solution = task.Solution
    assert task.verify(SMALL, Solution(assignments=ok, nodes_used=2)) == []

    def errors(assignments, nodes_used=2, unplaced=()):
        return " | ".join(task.verify(SMALL, Solution(assignments=assignments, nodes_used=nodes_used, unplaced=list(unplaced))))

    assert "CPU" in errors({**ok, "db-0": "pi-01", "cache-0": "pi-01"}, 3)
    assert "memory" in errors({**ok, "db-0": "pi-01", "cache-0": "pi-01"}, 3)
    assert "anti-affinity group 'web'" in errors({**ok, "web-1": "nuc-01"}, 2)
    assert "missing" in errors({k: v for k, v in ok.items() if k != "cache-0"})
    assert "not placed" in errors({k: v for k, v in ok.items() if k != "cache-0"}, unplaced=["cache-0"])
    assert "unknown nodes: nuc-09" in errors({**ok, "cache-0": "nuc-09"})
    assert "unknown pods" in errors({**ok, "ghost-0": "nuc-01"})
    assert "nodes_used is 3" in errors(ok, 3)
    assert "both placed and unplaced" in errors(ok, unplaced=["db-0"])


def test_decode_repairs_what_does_not_fit():
    tokens = task.encode(SMALL).copy()
    grid = tokens.reshape(-1, 4)
    grid[MAX_NODES : MAX_NODES + 4, 3] = NODE_INDEX0 + 2  # everything on the pi: only db fits there
    solution = task.decode(tokens, SMALL)
    assert task.verify(SMALL, solution) == []
    assert solution.repaired == 3 and solution.assignments["db-0"] == "pi-01"
    grid[MAX_NODES : MAX_NODES + 4, 3] = 5  # not a node token at all
    solution = task.decode(tokens, SMALL)
    assert task.verify(SMALL, solution) == [] and solution.repaired == 4


def test_decode_with_probabilities_moves_the_pod_the_model_is_least_sure_of():
    # four equal pods, two to a node; c and d may not share one. The model puts a, b, c on node n0 (sure
    # of b and c, not of a, whose second choice is n1) and d on n1
    p = problem(
        [("n0", 1000, 1000), ("n1", 1000, 1000), ("n2", 1000, 1000)],
        [("a", 500, 10, None), ("b", 500, 10, None), ("c", 500, 10, "quorum"), ("d", 500, 10, "quorum")],
    )
    probs = np.zeros((MAX_NODES + MAX_PODS, 4, task.vocab_size), dtype=np.float32)
    probs[MAX_NODES, 3, NODE_INDEX0 : NODE_INDEX0 + 2] = [0.5, 0.4]
    probs[MAX_NODES + 1 : MAX_NODES + 3, 3, NODE_INDEX0] = 0.9
    probs[MAX_NODES + 3, 3, NODE_INDEX0 + 1] = 0.9
    tokens = probs.argmax(-1).reshape(-1)
    in_order = task.decode(tokens, p)  # a and b fill n0, c goes to n1, so d (c's group) opens n2
    assert task.verify(p, in_order) == [] and in_order.nodes_used == 3 and in_order.repaired == 2
    surest_first = task.decode(tokens, p, probs.reshape(-1, task.vocab_size))  # b, c on n0; a to its second choice
    assert task.verify(p, surest_first) == [] and surest_first.nodes_used == 2 and surest_first.repaired == 1
    assert surest_first.assignments == {"a": "n1", "b": "n0", "c": "n0", "d": "n1"}
    assert task.needs_probs  # so the service passes them


def test_decode_with_any_probabilities_is_valid_and_never_worse_than_the_size_order():
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 40:
        p = random_problem(rng, int(rng.integers(2, 17)), int(rng.integers(4, 49)), (0.5, 0.95))
        if p is None:
            continue
        checked += 1
        probs = rng.random((task.seq_len, task.vocab_size)).astype(np.float32) ** 4
        if checked % 3 == 0:
            probs[rng.random(probs.shape) < 0.3] = np.nan  # a broken model is still decoded, not a crash
        tokens = np.nan_to_num(probs).argmax(-1)
        plain, surest = task.decode(tokens, p), task.decode(tokens, p, probs)
        for answer in (plain, surest):  # placed pods break nothing; the ones left over are listed
            assert [v for v in task.verify(p, answer) if "not placed" not in v] == []
            assert answer.repaired >= len(answer.unplaced)
        assert (len(surest.unplaced), surest.nodes_used) <= (len(plain.unplaced), plain.nodes_used)


def test_decode_leaves_pods_that_fit_nowhere_unplaced():
    # passes the cheap checks, yet no placement exists: decode says which pod is left over
    p = problem([("a", 1000, 1000), ("b", 1000, 1000)], [("x-0", 600, 10, None), ("y-0", 600, 10, None), ("z-0", 500, 10, None)])
    tokens = task.encode(p)
    tokens.reshape(-1, 4)[MAX_NODES : MAX_NODES + 3, 3] = NODE_INDEX0  # all on node a
    solution = task.decode(tokens, p)
    assert solution.assignments == {"x-0": "a", "y-0": "b"} and solution.unplaced == ["z-0"] and solution.repaired == 2
    tokens.reshape(-1, 4)[MAX_NODES + 2, 3] = NODE_INDEX0 - 1  # z's token is no node: left over, still counted
    assert task.decode(tokens, p).repaired == 2
    assert any("not placed" in v for v in task.verify(p, solution))


@pytest.mark.parametrize(
    ("nodes", "pods", "field", "words"),
    [
        (17, 4, "problem.nodes", "17 nodes; this model takes at most 16"),
        (4, 49, "problem.pods", "49 pods; this model takes at most 48"),
    ],
)
def test_size_limits(nodes, pods, field, words):
    raw = {
        "nodes": [{"name": f"n{i}", "cpu_millicores": 10_000, "memory_mib": 10_000} for i in range(nodes)],
        "pods": [{"name": f"p{i}", "cpu_millicores": 10, "memory_mib": 10} for i in range(pods)],
    }
    with pytest.raises(OutsideCanvas) as e:
        task.parse(raw)
    assert e.value.field == field and words in e.value.message
    assert len(task.parse(raw, canvas=False).nodes) == nodes  # a solver takes it


def test_unsolvable_problems_are_rejected():
    nodes = [("a", 1000, 1000), ("b", 1000, 1000)]
    with pytest.raises(OutsideCanvas, match="17 anti-affinity groups; this model takes at most 16"):
        problem(nodes, [(f"p{i}", 1, 1, f"g{i // 2}") for i in range(34)])
    with pytest.raises(InvalidProblem, match="only 2 nodes"):
        problem(nodes, [(f"w-{i}", 10, 10, "web") for i in range(3)])
    with pytest.raises(InvalidProblem, match="fits on no node") as e:
        problem(nodes, [("big-0", 2000, 10, None)])
    assert e.value.field == "problem.pods.0"
    with pytest.raises(InvalidProblem, match="1000m free"):
        problem(nodes[:1], [("a-0", 600, 10, None), ("b-0", 600, 10, None)])


def test_augment_renames_groups_only(examples):
    rng = np.random.default_rng(1)
    inputs = np.stack([ex.inputs for ex in examples])
    labels = np.stack([ex.labels for ex in examples])
    new_inputs, new_labels = task.augment(rng, inputs, labels)
    assert (new_labels == labels).all()
    is_group = (inputs >= GROUP0) & (inputs < NODE_INDEX0)
    assert (new_inputs[~is_group] == inputs[~is_group]).all()
    assert ((new_inputs >= GROUP0) & (new_inputs < NODE_INDEX0))[is_group].all()
    for a, b in zip(inputs, new_inputs, strict=True):  # the same partition of pods into groups
        pairs = {(int(x), int(y)) for x, y in zip(a, b, strict=True) if GROUP0 <= x < NODE_INDEX0}
        assert len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})
    assert (new_inputs != inputs).any()


def test_group_key_ignores_names_and_order(examples):
    rng = np.random.default_rng(2)
    for ex in examples[:10]:
        p = ex.problem
        renamed = {g: f"grp-{k}" for k, g in enumerate(sorted({q.group for q in p.pods if q.group}))}
        shuffled = p.model_copy(
            update={
                "nodes": [p.nodes[j].model_copy(update={"name": f"node-{j}"}) for j in rng.permutation(len(p.nodes))],
                "pods": [
                    p.pods[i].model_copy(update={"name": f"pod-{i}", "group": renamed.get(p.pods[i].group)}) for i in rng.permutation(len(p.pods))
                ],
            }
        )
        assert canonical_key(shuffled) == ex.group
    assert len({ex.group for ex in examples}) == len(examples)


def test_generate_is_deterministic_for_a_seed():
    a = task.generate(np.random.default_rng(7), 5, "small")
    b = task.generate(np.random.default_rng(7), 5, "small")
    assert [x.problem for x in a] == [x.problem for x in b]
    assert all((x.labels == y.labels).all() and x.group == y.group for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("bucket", "n"), [("small", 20), ("large", 4)])
def test_generation_counts_limit_hits_and_keeps_them_rare(bucket, n):
    """Instances whose label hits the work limit are counted, not dropped silently, and stay rare
    (the hand-written search gave up on 18 of 48 large instances)."""
    examples = task.generate(np.random.default_rng(3), n, bucket)
    hits = sum(ex.info["dropped"]["limit_hits"] for ex in examples)
    assert len(examples) == n and hits <= n // 2 + 1, hits
    lo, hi = {"small": (4, 8), "large": (9, 16)}[bucket]
    assert all(lo <= len(ex.problem.nodes) <= hi for ex in examples)


def _valid(caps, pods, a):
    for j, (cpu, mem) in enumerate(caps):
        on = [p for p, node in zip(pods, a, strict=True) if node == j]
        groups = [p[2] for p in on if p[2] >= 0]
        if sum(p[0] for p in on) > cpu or sum(p[1] for p in on) > mem or len(groups) != len(set(groups)):
            return False
    return True


def _closure_size(dominators, a):
    mask = 0
    for j in set(a):
        mask |= 1 << j | dominators[j]
    return bin(mask).count("1")


def _placements(caps, pods):
    """Every valid placement of a tiny problem (brute force), node per pod."""
    return [a for a in itertools.product(range(len(caps)), repeat=len(pods)) if _valid(caps, pods, a)]


def _tiny(rng):
    n, m = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    caps = [(int(rng.choice([2, 3, 4, 6])), int(rng.choice([2, 3, 4, 6]))) for _ in range(n)]
    pods = sorted(
        ((int(rng.choice([1, 2])), int(rng.choice([1, 2])), int(rng.choice([-1, -1, 0]))) for _ in range(m)),
        key=lambda p: (-max(p[0], p[1]), -(p[0] + p[1]), -p[0], -p[1], p[2]),
    )
    return caps, pods


def test_cpsat_finds_the_canonical_optimum_of_tiny_problems():
    """Against brute force: the fewest nodes, and the lexicographically first placement among those
    whose node set leaves no larger node unused (what `canonical` promises)."""
    rng = np.random.default_rng(1)
    infeasible = 0
    for _ in range(60):
        caps, pods = _tiny(rng)
        placements = _placements(caps, pods)
        if not placements:
            infeasible += 1
            with pytest.raises(ValueError):
                canonical(caps, pods)
            continue
        k = min(len(set(a)) for a in placements)
        dominators = _dominators(caps)
        assign, info = canonical(caps, pods)
        assert tuple(assign) == min(a for a in placements if len(set(a)) == k and _closure_size(dominators, a) <= k)
        assert info["lower_bound"] <= k <= info["ffd_nodes"]
    assert 0 < infeasible < 30  # both kinds were checked


def test_nearest_is_the_optimum_closest_to_the_draft_against_brute_force():
    """The hints model's labels: of the optimal placements the model admits (closed node set, equal
    pods ascending), those with the most pods on their draft node, then the lexicographically
    first; an optimal draft in that form is its own label."""
    rng = np.random.default_rng(2)
    moved_some = optimal_drafts = 0
    for _ in range(60):
        caps, pods = _tiny(rng)
        placements = _placements(caps, pods)
        if not placements:
            continue
        k = min(len(set(a)) for a in placements)
        dominators = _dominators(caps)
        optima = [
            a
            for a in placements
            if len(set(a)) == k
            and _closure_size(dominators, a) <= k
            and all(pods[i] != pods[i - 1] or a[i] >= a[i - 1] + (pods[i][2] >= 0) for i in range(1, len(pods)))
        ]
        spread = list(max(placements, key=lambda a: len(set(a))))
        hinted = hint_placement(caps, pods)
        for draft in (hinted, spread, spread[:-1] + [-1]):  # -1: a pod the draft left over
            off = {a: sum(x != y for x, y in zip(a, draft, strict=True)) for a in optima}
            want = min(optima, key=lambda a: (off[a], a))
            assign, info = nearest(caps, pods, draft)
            assert tuple(assign) == want and info["moved"] == off[want]
            moved_some += off[want] > 0
            if draft is hinted and len(set(hinted)) == k:  # an optimal draft is in the model's form: its own label
                assert assign == hinted
                optimal_drafts += 1
    assert moved_some > 10 and optimal_drafts > 10  # both the search and the optimal-draft shortcut were exercised


def test_exact_optimum_and_bound_against_brute_force():
    """`exact` (what `solve` runs): the fewest nodes, a bound no higher, proven optimal; from any
    valid hint (a worst one: every pod alone where possible) the same optimum."""
    rng = np.random.default_rng(5)
    for _ in range(40):
        caps, pods = _tiny(rng)
        placements = _placements(caps, pods)
        if not placements:
            continue
        k = min(len(set(a)) for a in placements)
        for hint in (None, max(placements, key=lambda a: len(set(a)))):
            result = exact(caps, pods, time_limit_s=5, hint=None if hint is None else list(hint))
            assert result.objective == len(set(result.values)) == k and result.bound == k and result.optimal
            assert _valid(caps, pods, result.values)


def test_solve_beyond_the_canvas_returns_a_verified_answer_with_a_bound():
    rng = np.random.default_rng(0)
    big = random_problem(rng, 16, 200, (0.5, 0.8))
    assert big is not None
    with pytest.raises(OutsideCanvas):
        task.parse(big.model_dump())
    big = task.parse(big.model_dump(), canvas=False)
    started = time.perf_counter()
    answer = task.solve(big, time_limit_s=3)
    assert time.perf_counter() - started < 10  # the limit holds, apart from building the model
    assert answer.solved_by == "solver" and task.verify(big, answer.solution) == []
    assert answer.objective == answer.solution.nodes_used and answer.lower_bound <= answer.objective
    assert answer.lower_bound >= task.lower_bound(big) and answer.optimal == (answer.objective <= answer.lower_bound)
    assert answer.info["status"] in ("OPTIMAL", "FEASIBLE") and not answer.info["hint_used"]
    hinted = task.solve(big, time_limit_s=3, hint=task.baseline(big))
    assert hinted.info["hint_used"] and task.verify(big, hinted.solution) == [] and hinted.objective <= task.baseline(big).nodes_used


def test_solve_small_problem_is_optimal_and_an_invalid_hint_is_ignored():
    answer = task.solve(SMALL, time_limit_s=5, hint=task.Solution(assignments={"db-0": "pi-01"}, nodes_used=1))
    assert answer.optimal and answer.objective == 2 == answer.lower_bound and not answer.info["hint_used"]
    assert task.verify(SMALL, answer.solution) == []


def test_infeasible_packing_is_a_clear_invalid_problem():
    # every pod fits alone and the totals fit, yet no packing exists: solve and ensure_solvable say so
    p = problem([("a", 1000, 1000), ("b", 1000, 1000)], [("x-0", 600, 10, None), ("y-0", 600, 10, None), ("z-0", 600, 10, None)])
    for call in (lambda: task.solve(p, time_limit_s=5), lambda: task.ensure_solvable(p)):
        with pytest.raises(InvalidProblem) as e:
            call()
        assert e.value.field == "problem.pods" and "fit on no combination" in e.value.message


def test_generator_counts_labels_past_the_time_limit(monkeypatch):
    """A label not proven in time is left out and counted, never dropped silently; the data build
    sums the counts. (The limit is hit on purpose: every third label search stops as if out of time.)"""
    calls = {"n": 0}

    def sometimes_out_of_time(caps, pods, work):
        calls["n"] += 1
        if calls["n"] % 3 == 1:
            raise LimitReached("out of time", None)
        return canonical(caps, pods, work)

    monkeypatch.setattr(placement, "canonical", sometimes_out_of_time)
    examples = task.generate(np.random.default_rng(3), 4, "small")
    assert [ex.info["dropped"]["limit_hits"] for ex in examples] == [1, 0, 1, 0]  # calls 1 and 4 ran out of time
    dropped: dict[str, int] = {}
    generate_splits(task, {"train": {"small": 2}, "test": {"small": 1}}, 3, chunk=4, dropped=dropped)
    assert dropped["limit_hits"] == sum(1 for k in range(1, calls["n"] + 1) if k % 3 == 1) - 2  # all of this build's hits


def test_a_hard_instance_hits_the_label_time_limit():
    """The real limit: an evaluation instance CP-SAT could not prove in 2 s gives LimitReached within 0.005 work units (deterministic)."""
    with gzip.open(Path(__file__).resolve().parents[3] / "evalsets" / "placement" / "large.jsonl.gz", "rt") as f:
        hard = next(r for r in map(json.loads, f) if not r["optimal"])
    caps, pods, _ = _numbers(task.parse(hard["problem"]))
    with pytest.raises(LimitReached) as e:
        canonical(caps, pods, work=0.005)
    assert e.value.best is None or len(set(e.value.best)) >= hard["lower_bound"]


def test_lower_bound_is_cheap_and_proven(examples):
    for ex in examples:
        assert task.lower_bound(ex.problem) == ex.info["lower_bound"] <= ex.info["optimal_nodes"]
    caps, pods, _ = _numbers(SMALL)
    assert task.lower_bound(SMALL) == 2  # the CPU demand (4500m) needs both nucs


def test_data_build_leaves_out_an_evaluation_set_and_reports_drops(tmp_path, capsys):
    """`trm data build --exclude DIR` with an evaluation set (*.jsonl.gz problems, as under
    evalsets/): none of its problems is trained on, and meta.json says what was left out."""
    from trm.cli import main

    # the problems the build's first chunk draws (seed 4: rng [4, bucket 0, chunk 0]), as an evaluation set
    drawn = task.generate(np.random.default_rng([4, 0, 0]), 200, "small")
    (tmp_path / "eval").mkdir()
    with gzip.open(tmp_path / "eval" / "small.jsonl.gz", "wt") as f:
        for ex in drawn:
            f.write(json.dumps({"problem": ex.problem.model_dump(exclude_none=True)}) + "\n")
    assert main(["data", "build", "placement", "--n", "30", "--bucket", "small", "--out", str(tmp_path / "d"), "--seed", "4", "--exclude", str(tmp_path / "eval")]) == 0
    assert "left out while generating" in capsys.readouterr().out
    meta = json.loads((tmp_path / "d" / "train" / "meta.json").read_text())
    dropped = meta["generator"]["dropped"]
    assert dropped["excluded"] >= 30 and dropped["unplaceable"] > 0 and "limit_hits" in dropped
    evaluated = {ex.inputs.astype(np.int64).tobytes() for ex in drawn}
    trained = {row.tobytes() for row in np.load(tmp_path / "d" / "train" / "inputs.000.npy").astype(np.int64)}
    assert len(trained) == 30 and not trained & evaluated


def test_hints_put_a_packing_on_ffds_nodes_where_the_answer_goes(examples):
    """Task option hints: hint_placement's node per pod row (FFD's node set, filled in node order)
    and the free level it leaves per used node row in column 3 (the answer's column), the group in
    column 4, the rest as the plain encoding; labels keep their column; augmentation renames groups."""
    hinted = get_task("placement", hints=True)
    assert hinted.options() == {"hints": True} and task.options() == {}
    assert (hinted.seq_len, hinted.vocab_size) == (320, task.vocab_size)
    for ex in examples[:12]:
        p = ex.problem
        plain, grid = task.encode(p).reshape(-1, 4), hinted.encode(p).reshape(-1, 5)
        assert np.array_equal(grid[:, :3], plain[:, :3]) and np.array_equal(grid[:, 4], plain[:, 3])
        caps, pods, _ = _numbers(p)
        hint = grid[MAX_NODES : MAX_NODES + len(pods), 3]
        placed = placement.hint_placement(caps, pods)
        assert list(hint - NODE_INDEX0) == placed
        used = set(placed)
        assert used <= set(placement.ffd(caps, pods))  # never more nodes than FFD
        for j in range(len(caps)):  # a used node row: the free level left on its scarcer resource
            free_c = caps[j][0] - sum(c for (c, _, _), k in zip(pods, placed) if k == j)
            free_m = caps[j][1] - sum(m for (_, m, _), k in zip(pods, placed) if k == j)
            top_c, top_m = max(c for c, _ in caps), max(m for _, m in caps)
            want = LEVEL0 + min(16 * free_c // top_c, 16 * free_m // top_m) if j in used else 0
            assert grid[j, 3] == want
        assert not grid[len(caps) : MAX_NODES, 3:].any() and not grid[MAX_NODES + len(pods) :, 1:].any()
        # the input read as an answer is the draft: valid, no worse than FFD's
        read = hinted.decode(grid.reshape(-1), p)
        assert read.repaired == 0 and hinted.verify(p, read) == [] and read.nodes_used <= task.baseline(p).nodes_used
        # labels round-trip in the wider layout
        assign, _ = canonical(caps, pods)
        label = hinted._label(assign)
        assert np.array_equal(label.reshape(-1, 5)[:, :4], task._label(assign).reshape(-1, 4))
        assert hinted.verify(p, hinted.decode(label, p)) == []
    rng = np.random.default_rng(1)
    inputs = np.stack([hinted.encode(ex.problem) for ex in examples[:8]])
    augmented, _ = hinted.augment(rng, inputs, inputs)
    x, y = augmented.reshape(8, -1, 5), inputs.reshape(8, -1, 5)
    assert np.array_equal(x[:, :, :4], y[:, :, :4])  # the draft and the levels stay
    assert not np.array_equal(x[:, :, 4], y[:, :, 4])  # the group tokens are renamed


def test_the_solver_starts_from_groups_first_where_ffd_leaves_pods_over():
    # FFD (largest first): x, y fill node 0, g1 takes node 1, g2 (same group) fits nowhere;
    # the group's pods first leave room for x and y beside them
    caps = [(1000, 1000), (1000, 1000)]
    pods = [(500, 10, -1), (500, 10, -1), (400, 10, 0), (400, 10, 0)]
    assert ffd(caps, pods).count(-1) == 1
    start = start_placement(caps, pods)
    assert -1 not in start and placement._valid(caps, pods, start)
    # a homelab-sized problem where FFD leaves 25 of 700 pods over: an answer even when CP-SAT has no time
    rng = random.Random(4)
    nodes = [PlacementNode(name=f"n{i}", cpu_millicores=rng.choice([4000, 8000, 16000]), memory_mib=rng.choice([8192, 16384, 65536])) for i in range(64)]
    pods_700 = [
        PlacementPod(name=f"p{i}", cpu_millicores=rng.randint(50, 1200), memory_mib=rng.randint(64, 2000), group=f"g{i % 40}" if i % 4 == 0 else None)
        for i in range(700)
    ]
    big = PlacementProblem(nodes=nodes, pods=pods_700)
    caps, numbers, _ = placement._numbers(big)
    assert -1 in ffd(caps, numbers)
    answer = task.solve(big, time_limit_s=0.01)
    assert not answer.solution.unplaced and task.verify(big, answer.solution) == []
    assert answer.objective is not None and answer.lower_bound is not None and answer.objective >= answer.lower_bound
