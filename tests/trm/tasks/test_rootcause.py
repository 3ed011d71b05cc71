import gzip
import json

import numpy as np
import pytest

from trm.data import excluded_inputs, generate_splits
from trm.tasks import InvalidProblem, OutsideCanvas, get_task
from trm.tasks.graphs import orient
from trm.tasks.rootcause import (
    AFFECTED,
    BASELINES,
    BUCKETS,
    CALLEE,
    CALLER,
    COLS,
    DOWNSTREAM,
    EMPTY,
    ERR_DEV,
    ID,
    LAT_DEV,
    MAX_SERVICES,
    NO_LINK,
    OTHER,
    OVERSIZE_BUCKETS,
    PAD,
    ROOT,
    SIGNAL_COLS,
    UPSTREAM,
    canonical_key,
    deviation_baseline,
    heuristic_baseline,
    incidents,
    pagerank_baseline,
)
from trm.tasks.rootcause_sim import TOPOLOGIES

task = get_task("rootcause")
LINK0 = 1 + SIGNAL_COLS


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(0)
    return {bucket: task.generate(rng, 30, bucket) for bucket in BUCKETS}


def grid(tokens):
    return np.asarray(tokens).reshape(MAX_SERVICES, COLS)


def edges_of(tokens):
    """The (caller, callee) row pairs the link columns list."""
    g = grid(tokens)
    out = []
    for i in range(MAX_SERVICES):
        for t in g[i, LINK0:]:
            if CALLEE <= t < CALLER:
                out.append((i, int(t) - CALLEE))
            elif CALLER <= t < NO_LINK:
                out.append((int(t) - CALLER, i))
    return sorted(out)


def problem_edges(problem):
    index = {s.name: i for i, s in enumerate(problem.services)}
    return sorted({(index[a], index[b]) for a, b in problem.dependencies if a != b})


def root_of(ex):
    return ex.problem.services[int(np.flatnonzero(grid(ex.labels)[:, 0] == ROOT)[0])].name


def test_encoding_layout_and_round_trip(examples):
    assert task.seq_len == 320 and task.vocab_size < 256
    problem = task.parse(task.example())
    g = grid(task.encode(problem))
    n = len(problem.services)
    assert (g[:n, 0] == ID + np.arange(n)).all() and (g[n:, 0] == EMPTY).all() and (g[n:, 1:] == PAD).all()
    assert edges_of(task.encode(problem)) == problem_edges(problem)
    # every edge listed exactly once, at most 4 per row, sorted with the blanks last
    for exs in examples.values():
        for ex in exs:
            links = grid(ex.inputs)[:, LINK0:]
            listed = edges_of(ex.inputs)
            assert listed == problem_edges(ex.problem) and len(set(listed)) == len(listed)
            n = len(ex.problem.services)
            assert (np.diff(links[:n], axis=1) >= 0).all()


def test_signal_columns_use_the_normal_window_where_given():
    raw = task.example()
    with_normal = grid(task.encode(task.parse(raw)))
    for s in raw["services"]:
        for key in ("normal_error_rate", "normal_latency_p99_ms"):
            s.pop(key)
    without = grid(task.encode(task.parse(raw)))
    n = len(raw["services"])
    assert (without[:n, 3] == ERR_DEV).all() and (without[:n, 4] == LAT_DEV).all()  # "no normal"
    assert (with_normal[:n, 3] != ERR_DEV).all() and (with_normal[:n, 4] != LAT_DEV).all()
    assert (with_normal[:n, 1:3] == without[:n, 1:3]).all()  # raw levels are there either way
    # a spread switches the deviation to the robust-z range
    spread = task.example()
    spread["services"][3] |= {"normal_error_rate_spread": 0.001, "normal_latency_p99_spread_ms": 2}
    z = grid(task.encode(task.parse(spread)))
    assert z[3, 3] >= ERR_DEV + 9 and z[3, 4] >= LAT_DEV + 9 and with_normal[3, 3] < ERR_DEV + 9


def test_labels_give_every_service_a_class(examples):
    for bucket, exs in examples.items():
        for ex in exs:
            answer = grid(ex.labels)[:, 0]
            n = len(ex.problem.services)
            assert (answer == ROOT).sum() == 1 and set(answer[:n]) <= {ROOT, AFFECTED, UPSTREAM, DOWNSTREAM, OTHER}
            assert (answer[n:] == 0).all() and (grid(ex.labels)[:, 1:] == 0).all() and ex.bucket == bucket
            assert set(np.flatnonzero(answer == AFFECTED)) <= set(ex.info["affected"])
    # dense targets: on average far more than one non-trivial cell per problem
    informative = np.mean(
        [((grid(ex.labels)[:, 0] != OTHER) & (grid(ex.labels)[:, 0] != 0)).sum() for exs in examples.values() for ex in exs]
    )
    assert informative > 3


def test_decode_of_the_label_ranks_the_root_first(examples):
    for ex in examples["mixed"]:
        solution = task.decode(ex.labels, ex.problem)
        assert solution.root_cause == root_of(ex) == solution.ranking[0]
        assert sorted(solution.ranking) == sorted(s.name for s in ex.problem.services)
        assert [e.name for e in solution.evidence] == solution.ranking
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
    assert "postgres: error_rate, latency_p99, flag; healthy callees: -" in text


def test_evidence_says_what_moved_and_which_callees_are_healthy():
    problem = task.parse(task.example())
    evidence = {e.name: e for e in heuristic_baseline(problem).evidence}
    pg, nc, immich, redis = evidence["postgres"], evidence["nextcloud"], evidence["immich-server"], evidence["redis"]
    assert pg.anomalous and pg.moved == ["error_rate", "latency_p99", "flag"] and pg.healthy_callees == pg.unhealthy_callees == []
    assert pg.normal_error_rate == 0.0 and pg.latency_ratio == round(1900 / 12, 3) and pg.anomalous_callers == ["nextcloud"]
    assert nc.unhealthy_callees == ["postgres"] and nc.healthy_callees == ["redis"] and nc.anomalous_callers == ["traefik"]
    assert not immich.anomalous and immich.moved == [] and abs(immich.latency_ratio - 180 / 170) < 1e-3
    assert not redis.anomalous and redis.error_rate_z is None  # no spread given: no z-score
    spread = task.example()
    spread["services"][3] |= {"normal_error_rate_spread": 0.004}
    pg = {e.name: e for e in deviation_baseline(task.parse(spread)).evidence}["postgres"]
    assert pg.error_rate_z == round(0.31 / 0.004, 2)


def test_every_baseline_ranks_every_service_and_finds_clear_faults(examples):
    lines = []
    for bucket, exs in examples.items():
        hits = {name: [0, 0] for name in BASELINES}
        for ex in exs:
            for name, baseline in BASELINES.items():
                solution = baseline(ex.problem)
                assert sorted(solution.ranking) == sorted(s.name for s in ex.problem.services)
                assert solution.root_cause == solution.ranking[0] and len(solution.evidence) == len(solution.ranking)
                assert abs(sum(solution.scores.values()) - 1) < 1e-4
                hits[name][0] += solution.ranking[0] == root_of(ex)
                hits[name][1] += root_of(ex) in solution.ranking[:3]
        for name, (top1, top3) in hits.items():
            assert top1 / len(exs) >= 0.3 and top3 / len(exs) >= 0.6, (bucket, name, top1, top3)  # far above chance (1-3 of 4-32)
        lines.append(f"{bucket:>9}: " + ", ".join(f"{k} {v[0] / len(exs):.2f}/{v[1] / len(exs):.2f}" for k, v in hits.items()))
    print("\ntop-1/top-3\n" + "\n".join(lines))


def clear_chain(**normal):
    """gateway -> api -> db; the db fails hard, the api and the gateway see some of it."""
    services = [
        {"name": "gateway", "error_rate": 0.08, "latency_p99_ms": 300},
        {"name": "api", "error_rate": 0.12, "latency_p99_ms": 280},
        {"name": "db", "error_rate": 0.4, "latency_p99_ms": 250},
        {"name": "cache", "error_rate": 0.0, "latency_p99_ms": 1},
    ]
    if normal:
        for s, (err, lat) in zip(services, [(0.001, 40), (0.002, 60), (0.0, 5), (0.0, 1)], strict=True):
            s |= {"normal_error_rate": err, "normal_latency_p99_ms": lat}
    return task.parse({"services": services, "dependencies": [["gateway", "api"], ["api", "db"], ["api", "cache"]]})


@pytest.mark.parametrize("normal", [False, True])
def test_baselines_put_the_failing_leaf_first(normal):
    problem = clear_chain(normal=True) if normal else clear_chain()
    for name, baseline in BASELINES.items():
        assert baseline(problem).root_cause == "db", name
    assert task.baseline(problem) == pagerank_baseline(problem)  # the best of the three on the evaluation sets


def test_deviation_baseline_sees_through_a_chronically_noisy_service():
    """A service always at 8% errors looks worst by raw level; against its own normal it is calm."""
    services = [
        {"name": "web", "error_rate": 0.03, "latency_p99_ms": 90, "normal_error_rate": 0.001, "normal_latency_p99_ms": 80},
        {"name": "legacy", "error_rate": 0.08, "latency_p99_ms": 50, "normal_error_rate": 0.08, "normal_latency_p99_ms": 50},
        {"name": "auth", "error_rate": 0.04, "latency_p99_ms": 30, "normal_error_rate": 0.0005, "normal_latency_p99_ms": 25},
    ]
    problem = task.parse({"services": services, "dependencies": [["web", "legacy"], ["web", "auth"]]})
    assert deviation_baseline(problem).root_cause == "auth"
    without = task.parse({"services": [{k: v for k, v in s.items() if not k.startswith("normal")} for s in services]})
    assert deviation_baseline(without).root_cause == "legacy"  # raw levels alone point at the noisy one


def test_problems_without_normal_windows_still_work():
    raw = {
        "services": [{"name": "a", "error_rate": 0.2, "anomalous": True}, {"name": "b", "latency_p99_ms": 900}, {"name": "c"}],
        "dependencies": [["a", "b"]],
    }
    problem = task.parse(raw)
    tokens = task.encode(problem)
    assert edges_of(tokens) == [(0, 1)] and (grid(tokens)[:3, 3] == ERR_DEV).all()
    for baseline in BASELINES.values():
        assert sorted(baseline(problem).ranking) == ["a", "b", "c"]
    answer = task.solve(problem)
    assert answer.solved_by == "baseline" and answer.solution.root_cause in {"a", "b"}


def test_outside_the_canvas_the_baseline_answers():
    big = {"services": [{"name": f"svc-{i}", "error_rate": 0.5 if i == 20 else 0.001} for i in range(33)]}
    big["dependencies"] = [[f"svc-{i}", f"svc-{i + 1}"] for i in range(32)]
    with pytest.raises(OutsideCanvas) as e:
        task.parse(big)
    assert e.value.field == "problem.services" and "33 services; the model takes at most 32" in e.value.message
    assert isinstance(e.value, InvalidProblem)
    problem = task.parse(big, canvas=False)
    answer = task.solve(problem)
    assert answer.solved_by == "baseline" and answer.solution.root_cause == "svc-20" and len(answer.solution.ranking) == 33
    with pytest.raises(OutsideCanvas):
        task.encode(problem)
    # 32 services fit; a graph too dense for 4 links per service does not
    task.parse({**big, "services": big["services"][:32], "dependencies": big["dependencies"][:31]})
    dense = {
        "services": [{"name": f"s{i}"} for i in range(12)],
        "dependencies": [[f"s{i}", f"s{j}"] for i in range(12) for j in range(i + 1, 12)],
    }
    with pytest.raises(OutsideCanvas) as e:
        task.parse(dense)
    assert e.value.field == "problem.dependencies"


def test_orient_respects_the_capacity():
    star = [(0, i) for i in range(1, 40)]
    owners = orient(40, star, 1)
    assert owners == list(range(1, 40))
    # a wheel: the cheap rule overloads the hub's neighbours; the flow fixes it
    ring = [(i, (i % 9) + 1) for i in range(1, 10)] + [(0, i) for i in range(1, 10)]
    owners = orient(10, ring, 2)
    assert owners is not None and max(np.bincount(owners, minlength=10)) <= 2
    assert all(o in edge for o, edge in zip(owners, ring, strict=True))
    assert orient(4, [(a, b) for a in range(4) for b in range(a + 1, 4)], 1) is None  # K4: 6 edges > 4 x 1


def signature(inputs, labels):
    """Each service row's signals, label and neighbours' signals: the same under a consistent reordering."""
    x, y = grid(inputs), grid(labels)
    used = np.flatnonzero(x[:, 0] != EMPTY)
    assert (x[used, 0] == ID + used).all() and (x[x[:, 0] == EMPTY, 1:] == PAD).all() and (y[x[:, 0] == EMPTY] == 0).all()
    rows = {i: tuple(x[i, 1:LINK0]) + (y[i, 0],) for i in used}
    edges = edges_of(inputs)
    return sorted((rows[i], sorted(rows[b] for a, b in edges if a == i), sorted(rows[a] for a, b in edges if b == i)) for i in used)


def test_augment_reorders_services_consistently(examples):
    exs = examples["layered"] + examples["fanout"] + examples["socialnet"]
    inputs, labels = np.stack([ex.inputs for ex in exs]), np.stack([ex.labels for ex in exs])
    new_inputs, new_labels = task.augment(np.random.default_rng(1), inputs, labels)
    assert new_inputs.shape == inputs.shape and (new_inputs != inputs).any()
    for a, b, c, d in zip(inputs, labels, new_inputs, new_labels, strict=True):
        assert signature(a, b) == signature(c, d)
        assert (np.diff(grid(c)[:, LINK0:], axis=1) >= 0).all()
    # services spread over all rows: high ID tokens appear even for small graphs
    small = [k for k, ex in enumerate(exs) if len(ex.problem.services) <= 8]
    assert small and any((grid(new_inputs[k])[16:, 0] != EMPTY).any() for k in small)


def test_group_key_ignores_names_and_order(examples):
    rng = np.random.default_rng(2)
    for ex in examples["layered"][:10]:
        p = ex.problem
        names = {s.name: f"svc-{k}" for k, s in enumerate(p.services)}
        shuffled = p.model_copy(
            update={
                "services": [
                    p.services[i].model_copy(update={"name": names[p.services[i].name]}) for i in rng.permutation(len(p.services))
                ],
                "dependencies": [(names[a], names[b]) for a, b in reversed(p.dependencies)],
            }
        )
        assert canonical_key(shuffled) == ex.group
    assert len({ex.group for exs in examples.values() for ex in exs}) == sum(len(exs) for exs in examples.values())


def test_generate_is_deterministic_and_sizes_are_as_documented():
    for bucket in BUCKETS:
        a = task.generate(np.random.default_rng(5), 3, bucket)
        b = task.generate(np.random.default_rng(5), 3, bucket)
        assert [x.problem for x in a] == [x.problem for x in b] and [x.group for x in a] == [x.group for x in b]
    with pytest.raises(ValueError):
        task.generate(np.random.default_rng(0), 1, "ring")
    with pytest.raises(ValueError, match="beyond the canvas"):
        task.generate(np.random.default_rng(0), 1, "oversize")
    sizes = {b: {len(p.services) for p, _, _ in incidents(np.random.default_rng(1), 40, b)} for b in (*BUCKETS, *OVERSIZE_BUCKETS)}
    assert sizes["boutique"] == {11} and sizes["sockshop"] == {15} and sizes["socialnet"] == {28} and sizes["trainticket"] == {64}
    assert min(sizes["large"]) >= 17 and max(sizes["large"]) <= 32 and min(sizes["oversize"]) >= 33 and max(sizes["oversize"]) <= 64
    assert max(max(sizes[b]) for b in ("layered", "fanout", "shared_db", "chain", "mixed")) <= 32
    small = incidents(np.random.default_rng(1), 20, "layered", services=(5, 8))
    assert all(5 <= len(p.services) <= 8 for p, _, _ in small)
    for name, topology in TOPOLOGIES.items():  # every call names a service of the topology
        assert {b for bs in topology["calls"].values() for b in bs} | set(topology["calls"]) <= set(topology["roles"]), name


def test_exclude_reads_a_frozen_jsonl_gz_set(tmp_path):
    first = generate_splits(task, {"train": {"boutique": 5}}, seed=3)["train"]
    with gzip.open(tmp_path / "boutique.jsonl.gz", "wt") as f:
        for ex in first[:3]:
            f.write(json.dumps({"problem": ex.problem.model_dump(exclude_none=True), "group": ex.group, "inputs": None}) + "\n")
        f.write(json.dumps({"problem": {}, "group": "nothing", "inputs": first[3].inputs.tolist()}) + "\n")
    exclude = excluded_inputs(tmp_path)
    again = generate_splits(task, {"train": {"boutique": 5}}, seed=3, exclude=exclude)["train"]
    kept = {ex.group for ex in again}
    assert len(again) == 5 and not kept & {ex.group for ex in first[:4]} and first[4].group in kept


def test_generation_gives_the_bucket_asked_for():
    """Every bucket yields the count asked for, of its shape (timings live in bench/, not here)."""
    for bucket, sizes in (("layered", range(4, 33)), ("large", range(17, 33)), ("socialnet", range(1, 33))):
        examples = task.generate(np.random.default_rng(3), 20, bucket)
        assert len(examples) == 20 and all(ex.bucket == bucket for ex in examples)
        assert all(len(ex.problem.services) in sizes for ex in examples)


def test_the_frozen_evaluation_sets_are_what_the_generator_makes():
    """evalsets/rootcause was built by rootcause_evalsets with seed 2026: the generator (and the keys
    that keep these problems out of training data) must not drift from it."""
    from pathlib import Path

    from trm.tasks.rootcause_evalsets import COUNTS, load

    root = Path(__file__).resolve().parents[3] / "evalsets" / "rootcause"
    order = list(BUCKETS + OVERSIZE_BUCKETS)
    assert sorted(p.name for p in root.glob("*.jsonl.gz")) == sorted(f"{b}.jsonl.gz" for b in order)
    for bucket in order:
        lines = list(load(root / f"{bucket}.jsonl.gz"))
        assert len(lines) == COUNTS[bucket] and {line["bucket"] for line in lines} == {bucket}
        fresh = incidents(np.random.default_rng([2026, order.index(bucket)]), 3, bucket)
        for (problem, root_index, facts), line in zip(fresh, lines, strict=False):
            assert json.loads(json.dumps(problem.model_dump(exclude_none=True))) == line["problem"]
            assert problem.services[root_index].name == line["root"] and canonical_key(problem) == line["group"]
            assert json.loads(json.dumps(facts)) == line["info"]
            if line["inputs"] is not None:
                assert task.encode(problem).tolist() == line["inputs"]


def test_hints_add_each_services_classical_ranks_and_survive_augmentation(examples):
    """Task option hints: columns 10 and 11 hold the PageRank and robust-deviation rank buckets; the
    first ten columns are those of the plain encoding, so a plain model's weights carry over."""
    from trm.tasks.rootcause import HINT_COLS, HINT_DEVIATION, HINT_PAGERANK, HINT_VOCAB

    hinted = get_task("rootcause", hints=True)
    assert hinted.options() == {"hints": True} and task.options() == {}
    assert hinted.seq_len == MAX_SERVICES * (COLS + HINT_COLS) == 384 and hinted.vocab_size == HINT_VOCAB
    exs = examples["layered"] + examples["boutique"]
    for ex in exs:
        x = hinted.encode(ex.problem).reshape(MAX_SERVICES, COLS + HINT_COLS)
        assert (x[:, :COLS] == grid(ex.inputs)).all()
        n = len(ex.problem.services)
        assert (x[n:, COLS:] == PAD).all()
        for col, (base, ranking) in enumerate(((HINT_PAGERANK, pagerank_baseline), (HINT_DEVIATION, deviation_baseline)), COLS):
            first = ranking(ex.problem).ranking[0]
            names = [s.name for s in ex.problem.services]
            assert x[names.index(first), col] == base  # rank 1
            assert ((x[:n, col] >= base) & (x[:n, col] < base + 5)).all()
        label = hinted.labels_for(ex.problem, names.index(root_of(ex)), set())
        assert hinted.decode(label, ex.problem).root_cause == root_of(ex)
    inputs = np.stack([hinted.encode(ex.problem) for ex in exs])
    labels = np.stack([hinted.labels_for(ex.problem, 0, set()) for ex in exs])
    new_inputs, new_labels = hinted.augment(np.random.default_rng(3), inputs, labels)
    for a, c in zip(inputs, new_inputs, strict=True):
        a, c = a.reshape(MAX_SERVICES, -1), c.reshape(MAX_SERVICES, -1)
        used = lambda g: sorted(map(tuple, g[g[:, 0] != EMPTY][:, COLS:].tolist()))  # noqa: E731
        assert used(a) == used(c)  # each service's ranks moved with its row
        assert (np.diff(c[:, LINK0 : LINK0 + 4], axis=1) >= 0).all()


def test_init_from_a_plain_model_grows_the_vocabulary_for_hints():
    import torch

    from trm.checkpoint import CheckpointError, check_state_dict, grow_vocabulary
    from trm.config import TRMConfig
    from trm.model import TRM

    fields = dict(
        hidden_size=16,
        num_heads=2,
        num_layers=1,
        mixer="attention",
        positions="rope2d",
        prefix_len=2,
        T=1,
        n=1,
        halt_max_steps=2,
        task="rootcause",
    )
    torch.manual_seed(0)
    plain = TRM(TRMConfig.from_dict({**fields, "grid_width": 10, "seq_len": task.seq_len, "vocab_size": task.vocab_size}))
    hinted_task = get_task("rootcause", hints=True)
    hinted = TRM(
        TRMConfig.from_dict(
            {
                **fields,
                "grid_width": 12,
                "seq_len": hinted_task.seq_len,
                "vocab_size": hinted_task.vocab_size,
                "task_options": {"hints": True},
            }
        )
    )
    fresh = {k: v.clone() for k, v in hinted.state_dict().items()}
    state = grow_vocabulary(hinted, plain.state_dict(), task.vocab_size)
    check_state_dict(hinted, state, "plain")
    hinted.load_state_dict(state)
    old, new = task.vocab_size, hinted_task.vocab_size
    for name in ("embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(hinted.state_dict()[name][:old], plain.state_dict()[name])
        assert torch.equal(hinted.state_dict()[name][old:new], fresh[name][old:new])
    with pytest.raises(CheckpointError):
        grow_vocabulary(plain, hinted.state_dict(), new)
