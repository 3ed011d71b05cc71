import time

import numpy as np
import pytest

from trm.tasks import InvalidProblem, get_task
from trm.tasks.rootcause import (
    CALLS,
    COLS,
    EMPTY,
    FAMILIES,
    MAX_SERVICES,
    NO_EDGE,
    NOT_ROOT,
    PAD,
    QUERY,
    ROOT,
    canonical_key,
    heuristic_baseline,
    pagerank_baseline,
)

task = get_task("rootcause")


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(0)
    return {family: task.generate(rng, 40, family) for family in FAMILIES}


def root_of(ex):
    return ex.problem.services[int(np.flatnonzero(ex.labels.reshape(MAX_SERVICES, COLS)[:, 0] == ROOT)[0])].name


def test_encoding_layout():
    problem = task.parse(task.example())
    grid = task.encode(problem).reshape(MAX_SERVICES, COLS)
    n = len(problem.services)
    assert (grid[:n, 0] == QUERY).all() and (grid[n:, 0] == EMPTY).all() and (grid[n:, 1:] == PAD).all()
    assert (grid[:n, 4 + n :] == PAD).all()
    names = [s.name for s in problem.services]
    for i, caller in enumerate(names):
        for j, callee in enumerate(names):
            expected = CALLS if [caller, callee] in task.example()["dependencies"] else NO_EDGE
            assert grid[i, 4 + j] == expected
    assert task.vocab_size == 28 and task.seq_len == 320


def test_labels_mark_one_root_per_problem(examples):
    for family, exs in examples.items():
        for ex in exs:
            answer = ex.labels.reshape(MAX_SERVICES, COLS)[:, 0]
            n = len(ex.problem.services)
            assert (answer == ROOT).sum() == 1 and (answer[:n] != 0).all() and (answer[n:] == 0).all()
            assert (ex.labels.reshape(MAX_SERVICES, COLS)[:, 1:] == 0).all()
            assert n <= MAX_SERVICES and ex.bucket == family


def test_decode_of_the_label_ranks_the_root_first(examples):
    for ex in examples["mixed"]:
        solution = task.decode(ex.labels, ex.problem)
        assert solution.root_cause == root_of(ex) == solution.ranking[0]
        assert sorted(solution.ranking) == sorted(s.name for s in ex.problem.services)
        assert task.verify(ex.problem, solution) is None


def test_decode_scores_from_probabilities():
    problem = task.parse(task.example())
    probs = np.full((task.seq_len, task.vocab_size), 0.01)
    probs[np.arange(5) * COLS, ROOT] = [0.1, 0.2, 0.0, 0.6, 0.1]
    solution = task.decode(np.zeros(task.seq_len, dtype=np.int64), problem, probs)
    assert solution.ranking == ["postgres", "nextcloud", "traefik", "redis", "immich-server"]
    assert abs(sum(solution.scores.values()) - 1) < 1e-4 and abs(solution.scores["postgres"] - 0.6) < 1e-6
    text = task.render(problem, solution)
    assert text.startswith("root cause: postgres (p=0.60)") and "nextcloud 0.20" in text


def test_decode_without_a_root_prediction_is_uniform():
    problem = task.parse(task.example())
    tokens = np.full(task.seq_len, NOT_ROOT)
    solution = task.decode(tokens, problem)
    assert solution.root_cause == "traefik" and set(solution.scores.values()) == {0.2}


def test_both_baselines_rank_every_service(examples):
    lines = []
    for family, exs in examples.items():
        hits = {"heuristic": [0, 0], "pagerank": [0, 0]}
        for ex in exs:
            for name, baseline in (("heuristic", heuristic_baseline), ("pagerank", pagerank_baseline)):
                solution = baseline(ex.problem)
                assert sorted(solution.ranking) == sorted(s.name for s in ex.problem.services)
                assert solution.root_cause == solution.ranking[0]
                assert abs(sum(solution.scores.values()) - 1) < 1e-4
                hits[name][0] += solution.ranking[0] == root_of(ex)
                hits[name][1] += root_of(ex) in solution.ranking[:3]
        lines.append(f"{family:>9}: " + ", ".join(f"{k} top-1 {v[0] / len(exs):.2f} top-3 {v[1] / len(exs):.2f}" for k, v in hits.items()))
    print("\n" + "\n".join(lines))
    assert task.baseline(examples["chain"][0].problem) == heuristic_baseline(examples["chain"][0].problem)


def test_heuristic_baseline_picks_the_anomalous_service_with_healthy_callees():
    problem = task.parse(task.example())
    assert heuristic_baseline(problem).root_cause == "postgres"
    assert pagerank_baseline(problem).root_cause == "postgres"


def test_size_limit():
    raw = {"services": [{"name": f"svc-{i}"} for i in range(17)]}
    with pytest.raises(InvalidProblem) as e:
        task.parse(raw)
    assert e.value.field == "problem.services" and "17 services; this model takes at most 16" in e.value.message


def signature(inputs, labels):
    """Each service row's signals, label and callees' signals: the same under a consistent reordering."""
    x, y = inputs.reshape(MAX_SERVICES, COLS), labels.reshape(MAX_SERVICES, COLS)
    n = int((x[:, 0] == QUERY).sum())
    assert (x[:n, 0] == QUERY).all()
    rows = [tuple(x[i, 1:4]) + (y[i, 0],) for i in range(n)]
    return sorted((rows[i], sorted(rows[j] for j in range(n) if x[i, 4 + j] == CALLS)) for i in range(n))


def test_augment_reorders_services_consistently(examples):
    exs = examples["layered"] + examples["fanout"]
    inputs, labels = np.stack([ex.inputs for ex in exs]), np.stack([ex.labels for ex in exs])
    new_inputs, new_labels = task.augment(np.random.default_rng(1), inputs, labels)
    assert new_inputs.shape == inputs.shape and (new_inputs != inputs).any()
    for a, b, c, d in zip(inputs, labels, new_inputs, new_labels, strict=True):
        assert signature(a, b) == signature(c, d)
        assert (np.sort(a) == np.sort(c)).all()


def test_group_key_ignores_names_and_order(examples):
    rng = np.random.default_rng(2)
    for ex in examples["layered"][:10]:
        p = ex.problem
        names = {s.name: f"svc-{k}" for k, s in enumerate(p.services)}
        shuffled = p.model_copy(
            update={
                "services": [p.services[i].model_copy(update={"name": names[p.services[i].name]}) for i in rng.permutation(len(p.services))],
                "dependencies": [(names[a], names[b]) for a, b in reversed(p.dependencies)],
            }
        )
        assert canonical_key(shuffled) == ex.group
    assert len({ex.group for exs in examples.values() for ex in exs}) > 190


def test_generate_is_deterministic_and_every_family_stands_alone():
    for family in FAMILIES:
        a = task.generate(np.random.default_rng(5), 3, family)
        b = task.generate(np.random.default_rng(5), 3, family)
        assert [x.problem for x in a] == [x.problem for x in b] and [x.group for x in a] == [x.group for x in b]
    with pytest.raises(ValueError):
        task.generate(np.random.default_rng(0), 1, "ring")


def test_generation_speed():
    parts = []
    for family in FAMILIES:
        started = time.perf_counter()
        task.generate(np.random.default_rng(3), 50, family)
        parts.append(f"{family} {(time.perf_counter() - started) / 50 * 200:.2f} s")
    print("\nrootcause, 200 instances: " + ", ".join(parts))
