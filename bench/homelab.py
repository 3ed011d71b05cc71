"""Homelab task models against the classical methods, on held-out instances.

    python bench/homelab.py --evalset evalsets/placement --limit 50 [--model models/placement]
    python bench/homelab.py --evalset evalsets/upgrade --limit 50 [--model models/upgrade]
    python bench/homelab.py --model models/placement --data data/placement/test
    python bench/homelab.py --rootcause-evalsets evalsets/rootcause [--model models/rootcause]
    python bench/homelab.py --model models/upgrade --data data/upgrade/test

placement: verified rate (model answer as decoded, and how often the exact repair had to move pods),
           mean nodes used vs first-fit decreasing and vs the optimum, share where the model beats FFD.
rootcause: top-1 / top-3 of the model vs the three baselines (leaf rule, personalised PageRank, robust
           deviation from the normal window), per bucket (shape family or demo topology) and per graph
           size; problems beyond the model's canvas are answered by the baseline, as the service does.
upgrade:   verified rate, mean waves vs greedy and vs the optimum.
--evalset (placement, upgrade; the frozen sets under evalsets/): per bucket, the classical answer
           (FFD / greedy) and, with --model, the model's: verified share and share at the CP-SAT
           optimum (of the instances whose optimum is proven), for a hints model also the draft it reads
           (decoded as if predicted: what copying it scores; <draft / >draft: the model better / worse);
           and the hint speed-up: CP-SAT's time
           to a proven optimum without a start and with one (the model's answer with --model where
           the problem fits its canvas, else the classical one), medians side by side.
Prints tables and writes runs/bench/homelab-<task>.json (scratch; `--out-dir bench/results` publishes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import trm  # noqa: E402
from trm.data import TokenDataset  # noqa: E402
from trm.tasks import InvalidProblem, get_task  # noqa: E402


def rows(data: TokenDataset, limit: int | None) -> list[tuple[dict, str, np.ndarray]]:
    problems = list(data.problems())
    n = len(problems) if limit is None else min(limit, len(problems))
    order = np.unique(np.linspace(0, len(problems) - 1, n).astype(int))
    labels = data.take(order).labels
    return [(problems[i]["problem"], problems[i]["bucket"], labels[k]) for k, i in enumerate(order)]


def placement(solver: trm.Solver, items: list, batch: int) -> dict:
    task = solver.task
    out: dict = defaultdict(lambda: defaultdict(float))
    for lo in range(0, len(items), batch):
        chunk = items[lo : lo + batch]
        answers = solver.solve_many([p for p, _, _ in chunk])
        for (raw, bucket, label), ans in zip(chunk, answers):
            problem = task.parse(raw)
            ffd = task.baseline(problem).nodes_used
            best = task.decode(label, problem).nodes_used
            for key in (bucket, "all"):
                s = out[key]
                s["n"] += 1
                s["verified"] += ans.verified is True
                s["raw_valid"] += ans.verified is True and ans.solution.get("repaired", 0) == 0
                s["model_nodes"] += ans.solution["nodes_used"]
                s["ffd_nodes"] += ffd
                s["optimal_nodes"] += best
                if ans.verified:
                    s["beats_ffd"] += ans.solution["nodes_used"] < ffd
                    s["worse_than_ffd"] += ans.solution["nodes_used"] > ffd
                    s["optimal"] += ans.solution["nodes_used"] == best
                s["steps"] += ans.steps
    table = {}
    for key, s in out.items():
        n = s["n"]
        table[key] = {
            "n": int(n),
            "verified": s["verified"] / n,
            "valid_without_repair": s["raw_valid"] / n,
            "mean_nodes_model": s["model_nodes"] / n,
            "mean_nodes_ffd": s["ffd_nodes"] / n,
            "mean_nodes_optimal": s["optimal_nodes"] / n,
            "beats_ffd": s["beats_ffd"] / n,
            "worse_than_ffd": s["worse_than_ffd"] / n,
            "optimal": s["optimal"] / n,
            "mean_steps": s["steps"] / n,
        }
    print(
        f"{'bucket':<8} {'n':>5} {'verified':>9} {'no repair':>9} {'nodes':>6} {'FFD':>6} {'optimal':>8} {'beats FFD':>9} {'worse':>6} {'=opt':>6} {'steps':>6}"
    )
    for key, r in table.items():
        print(
            f"{key:<8} {r['n']:>5} {100 * r['verified']:>8.1f}% {100 * r['valid_without_repair']:>8.1f}% {r['mean_nodes_model']:>6.2f} {r['mean_nodes_ffd']:>6.2f} "
            f"{r['mean_nodes_optimal']:>8.2f} {100 * r['beats_ffd']:>8.1f}% {100 * r['worse_than_ffd']:>5.1f}% {100 * r['optimal']:>5.1f}% {r['mean_steps']:>6.2f}"
        )
    return table


SIZE_RANGES = ((1, 8), (9, 16), (17, 24), (25, 32), (33, 64), (65, 10**6))


def size_range(n: int) -> str:
    lo, hi = next(r for r in SIZE_RANGES if r[0] <= n <= r[1])
    return f"n={lo}-{hi}"


def rootcause(solver: trm.Solver | None, items: list, batch: int, latency_n: int = 0) -> dict:
    """items: (raw problem, bucket, injected root's name). Top-1/top-3 per bucket and per graph size of
    each classical ranking and (with a model) of the model; a problem beyond the model's canvas is
    answered by the task's solver (the baseline), as the service does, and counted as such. Latency:
    the first `latency_n` problems of each bucket answered one at a time as served (`Solver.solve`:
    parse, encode with its hints, model, decode with evidence), beside the task's solver alone."""
    from trm.tasks import OutsideCanvas, get_task
    from trm.tasks.rootcause import BASELINES

    task = solver.task if solver is not None else get_task("rootcause")
    out: dict = defaultdict(lambda: defaultdict(float))
    for lo in range(0, len(items), batch):
        chunk = items[lo : lo + batch]
        problems = [task.parse(raw, canvas=False) for raw, _, _ in chunk]
        model: list = [None] * len(chunk)
        if solver is not None:
            fits = []
            for k, p in enumerate(problems):
                try:
                    task.check_canvas(p)
                    fits.append(k)
                except OutsideCanvas:
                    model[k] = ("baseline", task.solve(p).solution.ranking, 0)
            for k, ans in zip(fits, solver.solve_many([problems[k] for k in fits]) if fits else [], strict=True):
                model[k] = (ans.solved_by, ans.solution["ranking"], ans.steps)
        for (_, bucket, truth), problem, answer in zip(chunk, problems, model, strict=True):
            rankings = {name: baseline(problem).ranking for name, baseline in BASELINES.items()}
            if answer is not None:
                rankings["model"] = answer[1]
            for key in (bucket, size_range(len(problem.services)), "all"):
                s = out[key]
                s["n"] += 1
                for name, ranking in rankings.items():
                    s[f"{name}_top1"] += ranking[:1] == [truth]
                    s[f"{name}_top3"] += truth in ranking[:3]
                if answer is not None:
                    s["steps"] += answer[2]
                    s["by_baseline"] += answer[0] != "trm"
    table = {key: {"n": int(s["n"])} | {k: v / s["n"] for k, v in s.items() if k != "n"} for key, s in out.items()}
    for bucket, timings in latency(solver, task, items, latency_n).items():
        table[bucket].update(timings)
    names = [*BASELINES] + (["model"] if solver is not None else [])
    for r in table.values():
        best = max(BASELINES, key=lambda b: r[f"{b}_top1"])
        r["best_baseline"] = best
        if solver is not None:
            r["model_minus_best_top1"] = r["model_top1"] - r[f"{best}_top1"]
    print(
        f"{'bucket':<12} {'n':>5} "
        + " ".join(f"{name[:9] + ' top1':>14} {'top3':>6}" for name in names)
        + (f" {'vs best':>8} {'baseline':>8}" if solver else "")
    )
    sizes = sorted((k for k in table if k.startswith("n=")), key=lambda k: int(k[2:].split("-")[0]))
    for key in [*(k for k in table if k != "all" and not k.startswith("n=")), *sizes, "all"]:
        r = table[key]
        cells = " ".join(f"{100 * r[f'{name}_top1']:>13.1f}% {100 * r[f'{name}_top3']:>5.1f}%" for name in names)
        extra = f" {100 * r['model_minus_best_top1']:>+7.1f}p {100 * r['by_baseline']:>7.1f}%" if solver is not None else ""
        print(f"{key:<12} {r['n']:>5} {cells}{extra}")
    if solver is not None and latency_n:
        print(f"\nlatency, one incident at a time as served (first {latency_n} of each set)")
        print(f"{'bucket':<12} {'served p50':>10} {'p95':>8} {'baseline p50':>12}")
        for key in (k for k in table if "served_ms_p50" in table[k]):
            r = table[key]
            print(f"{key:<12} {r['served_ms_p50']:>8.1f}ms {r['served_ms_p95']:>6.1f}ms {r['baseline_ms_p50']:>10.1f}ms")
    return table


def latency(solver: trm.Solver | None, task, items: list, n: int) -> dict[str, dict[str, float]]:
    """Per bucket: p50/p95 milliseconds of `solver.solve(raw)` (what /v1/reason runs for one incident)
    and p50 of the task's classical answer (`task.solve`, the fallback), on the bucket's first n items."""
    if solver is None or n <= 0:
        return {}
    by_bucket: dict[str, list] = defaultdict(list)
    for raw, bucket, _ in items:
        if len(by_bucket[bucket]) < n:
            by_bucket[bucket].append(raw)
    out = {}
    for bucket, raws in by_bucket.items():
        served, base = [], []
        for raw in raws:
            t = time.perf_counter()
            solver.solve(raw)
            served.append(time.perf_counter() - t)
            problem = task.parse(raw, canvas=False)
            t = time.perf_counter()
            task.solve(problem)
            base.append(time.perf_counter() - t)
        out[bucket] = {
            "latency_n": len(raws),
            "served_ms_p50": 1000 * float(np.median(served)),
            "served_ms_p95": 1000 * float(np.percentile(served, 95)),
            "baseline_ms_p50": 1000 * float(np.median(base)),
        }
    return out


def evalset_items(directory: Path, limit: int | None) -> dict[str, list[tuple[dict, str, str]]]:
    """Per evaluation-set file (bucket): (raw problem, bucket, root), `limit` spread evenly."""
    from trm.tasks.rootcause_evalsets import load

    out = {}
    for f in sorted(Path(directory).glob("*.jsonl.gz")):
        lines = list(load(f))
        keep = np.unique(np.linspace(0, len(lines) - 1, min(limit or len(lines), len(lines))).astype(int))
        out[f.name.removesuffix(".jsonl.gz")] = [(lines[i]["problem"], lines[i]["bucket"], lines[i]["root"]) for i in keep]
    return out


def upgrade(solver: trm.Solver, items: list, batch: int) -> dict:
    task = solver.task
    out: dict = defaultdict(lambda: defaultdict(float))
    for lo in range(0, len(items), batch):
        chunk = items[lo : lo + batch]
        answers = solver.solve_many([p for p, _, _ in chunk])
        for (raw, bucket, label), ans in zip(chunk, answers):
            problem = task.parse(raw)
            greedy = len(task.baseline(problem).waves)
            best = len(task.decode(label, problem).waves)
            waves = len(ans.solution["waves"])
            for key in (bucket, "all"):
                s = out[key]
                s["n"] += 1
                s["verified"] += ans.verified is True
                s["raw_valid"] += ans.verified is True and ans.solution.get("repaired", 0) == 0
                s["model_waves"] += waves
                s["greedy_waves"] += greedy
                s["optimal_waves"] += best
                if ans.verified:
                    s["at_most_greedy"] += waves <= greedy
                    s["beats_greedy"] += waves < greedy
                    s["optimal"] += waves == best
                s["steps"] += ans.steps
    table = {key: {"n": int(s["n"])} | {k: v / s["n"] for k, v in s.items() if k != "n"} for key, s in out.items()}
    print(
        f"{'bucket':<8} {'n':>5} {'verified':>9} {'no repair':>9} {'waves':>6} {'greedy':>7} {'optimal':>8} {'<=greedy':>9} {'<greedy':>8} {'=opt':>6} {'steps':>6}"
    )
    for key, r in table.items():
        print(
            f"{key:<8} {r['n']:>5} {100 * r['verified']:>8.1f}% {100 * r['raw_valid']:>8.1f}% {r['model_waves']:>6.2f} {r['greedy_waves']:>7.2f} {r['optimal_waves']:>8.2f} "
            f"{100 * r['at_most_greedy']:>8.1f}% {100 * r['beats_greedy']:>7.1f}% {100 * r['optimal']:>5.1f}% {r['steps']:>6.2f}"
        )
    return table


def evalset_rows(directory: Path, limit: int | None) -> dict[str, list[dict]]:
    """bucket -> records of an evaluation set (evalsets/<task>/<bucket>.jsonl.gz), `limit` spread evenly."""
    import gzip

    out = {}
    for path in sorted(directory.glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            records = [json.loads(line) for line in f]
        n = len(records) if limit is None else min(limit, len(records))
        out[path.name.removesuffix(".jsonl.gz")] = [records[i] for i in np.unique(np.linspace(0, len(records) - 1, n).astype(int))]
    return out


def evalset(
    task_name: str,
    directory: Path,
    limit: int | None,
    time_limit: float,
    model: str | None,
    batch: int,
    hint_limit: int | None,
    latency_n: int,
    attempts: int = 1,
    noise: float = 0.3,
    views: int = 1,
    dtype: str = "auto",
) -> dict:
    """The classical answer and the model's against the stored CP-SAT optimum, and the hint speed-up.

    The model's columns are the TRM alone with its own decoder (`fallback=False`: no classical
    answer substituted); `served_*` is what the service returns (the better verified of the TRM's and
    the classical answer). `model_worse` / `model_better` compare the TRM's objective with the
    classical one's where both are valid. `attempts` > 1: test-time compute, still the TRM alone:
    that many trajectories at once (the first plain, the others with latent noise of std `noise`),
    the exact checker keeping the valid one with the best objective, a vote when none is valid
    (trm.testtime; a request's `"adaptive": false`). Latency: `latency_n` problems one at a time
    through `Solver.solve` with the same options (the TRM, the check, the better of it and the
    classical answer). The hint benchmark (two CP-SAT solves per instance) runs on the first
    `hint_limit` of each bucket. `views` > 1: test-time compute over that many views of each problem
    (upgrade: the nodes re-listed in other orders, each with its own greedy draft), the checker keeping
    the valid plan with the best objective, adaptive as served (more views only where the first is not
    proven optimal); the classical answer over the same views (`baseline_views_*`) is the control that
    says how much of the gain is the views' and how much the network's."""
    task = get_task(task_name)
    solver = trm.load(model, dtype=dtype) if model else None
    if solver is not None and solver.task.name != task_name:
        raise SystemExit(f"the model is for {solver.task.name!r}, the evaluation set for {task_name!r}")
    # a hints model reads a classical draft where its answer goes: the draft decoded as if predicted
    # is what copying it would score, the bar the network's own edits must clear
    hinted = solver.task if solver is not None and solver.task.options().get("hints") else None
    # attempts=1 given explicitly: a model's stored policy (views, attempts) does not change the column's meaning
    compute: dict = {"attempts": 1}
    if views > 1:
        compute = {"attempts": views, "strategy": "views", "select": "checker", "adaptive": True}
    elif attempts > 1:
        compute = {"attempts": attempts, "strategy": "noise", "noise": noise, "select": "checker", "adaptive": False}
    shown = task.views(views) if views > 1 else []
    table = {}
    for bucket, records in evalset_rows(directory, limit).items():
        problems = [task.parse(r["problem"], canvas=False) for r in records]
        model_answers: list = [None] * len(records)
        latencies: list[float] = []
        attempts_made: list[int] = []
        if solver is not None:
            fits = []
            for i, p in enumerate(problems):
                try:
                    task.check_canvas(p)
                    fits.append(i)
                except InvalidProblem:
                    pass
            for lo in range(0, len(fits), batch):
                chunk = fits[lo : lo + batch]
                for i, ans in zip(chunk, solver.solve_many([records[i]["problem"] for i in chunk], fallback=False, **compute)):
                    model_answers[i] = task.Solution.model_validate(ans.solution)
                    attempts_made.append(ans.attempts)
            for i in fits[:latency_n]:
                t = time.perf_counter()
                solver.solve(records[i]["problem"], **compute)  # as served: TRM, check, better of it and the classical answer
                latencies.append(time.perf_counter() - t)
        s: dict = defaultdict(list)
        for k, (r, problem, mine) in enumerate(zip(records, problems, model_answers)):
            proven = r["optimal"]
            base = task.baseline(problem)
            base_ok = task.verify(problem, base) == []
            s["proven"].append(proven)
            s["baseline_verified"].append(base_ok)
            s["baseline_objective"].append(task.objective(problem, base))
            s["optimum"].append(r["objective"])
            s["baseline_at_best"].append(base_ok and task.objective(problem, base) <= r["objective"])
            if proven:
                s["baseline_optimal"].append(base_ok and task.objective(problem, base) == r["objective"])
            base_views = None
            if shown:  # the control: the classical answer of every view, the best valid one kept
                answers = [task.baseline(task.view_problem(problem, v)) for v in shown]
                base_views = min((task.objective(problem, a) for a in answers if task.verify(problem, a) == []), default=None)
                if proven:
                    s["baseline_views_optimal"].append(base_views == r["objective"])
            if mine is not None:
                ok = task.verify(problem, mine) == []
                s["model_verified"].append(ok)
                s["model_without_repair"].append(ok and not getattr(mine, "repaired", 0))
                s["model_at_best"].append(ok and task.objective(problem, mine) <= r["objective"])
                if ok and base_ok:
                    s["model_worse"].append(task.objective(problem, mine) > task.objective(problem, base))
                    s["model_better"].append(task.objective(problem, mine) < task.objective(problem, base))
                if ok and base_views is not None:
                    s["model_worse_than_baseline_views"].append(task.objective(problem, mine) > base_views)
                    s["model_better_than_baseline_views"].append(task.objective(problem, mine) < base_views)
                served = min([task.objective(problem, a) for a, valid in ((mine, ok), (base, base_ok)) if valid], default=None)
                if proven:
                    s["model_optimal"].append(ok and task.objective(problem, mine) == r["objective"])
                    s["served_optimal"].append(served is not None and served == r["objective"])
                if hinted is not None:
                    draft = hinted.decode(hinted.encode(problem), problem)
                    draft_ok = task.verify(problem, draft) == []
                    if proven:
                        s["draft_optimal"].append(draft_ok and task.objective(problem, draft) == r["objective"])
                    if ok and draft_ok:
                        s["model_worse_than_draft"].append(task.objective(problem, mine) > task.objective(problem, draft))
                        s["model_better_than_draft"].append(task.objective(problem, mine) < task.objective(problem, draft))
            if hint_limit is not None and k >= hint_limit:
                continue
            hint = mine if mine is not None and task.verify(problem, mine) == [] else base
            cold = task.solve(problem, time_limit_s=time_limit, cold=True)
            warm = task.solve(problem, time_limit_s=time_limit, hint=hint)
            s["hint_from_model"].append(hint is mine)
            for name, ans in (("cold", cold), ("hinted", warm)):
                s[f"{name}_seconds"].append(ans.info["seconds"])
                s[f"{name}_proven"].append(bool(ans.optimal))
        mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
        both = [i for i in range(len(s["cold_proven"])) if s["cold_proven"][i] and s["hinted_proven"][i]]
        ratios = [s["cold_seconds"][i] / max(s["hinted_seconds"][i], 1e-4) for i in both]
        table[bucket] = {
            "n": len(records),
            "reference_proven": mean(s["proven"]),
            "mean_optimum": mean(s["optimum"]),
            "baseline_verified": mean(s["baseline_verified"]),
            "baseline_optimal": mean(s["baseline_optimal"]),  # of the instances with a proven optimum
            "baseline_at_best": mean(s["baseline_at_best"]),  # of all: no worse than the best known
            "mean_baseline": mean(s["baseline_objective"]),
            "model_n": len(s["model_verified"]),
            "model_attempts": mean(attempts_made),  # trajectories per problem (test-time compute)
            "model_verified": mean(s["model_verified"]),  # valid as decoded (decode repairs)
            "model_without_repair": mean(s["model_without_repair"]),  # valid as the model predicted it
            "model_optimal": mean(s["model_optimal"]),
            "model_at_best": mean(s["model_at_best"]),
            "model_worse": mean(s["model_worse"]),  # of instances where both are valid: TRM uses more than the classical answer
            "model_better": mean(s["model_better"]),  # ... fewer
            "served_optimal": mean(s["served_optimal"]),
            "views": views,
            "baseline_views_optimal": mean(s["baseline_views_optimal"]),  # the control: the classical answer's best over the same views
            "model_worse_than_baseline_views": mean(s["model_worse_than_baseline_views"]),
            "model_better_than_baseline_views": mean(s["model_better_than_baseline_views"]),
            "draft_optimal": mean(s["draft_optimal"]),  # hints models: the draft they read, decoded as if predicted
            "model_worse_than_draft": mean(s["model_worse_than_draft"]),
            "model_better_than_draft": mean(s["model_better_than_draft"]),
            "latency_ms_p50": 1000 * float(np.median(latencies)) if latencies else None,
            "latency_ms_p95": 1000 * float(np.percentile(latencies, 95)) if latencies else None,
            "hint_n": len(s["cold_proven"]),
            "hint_from_model": mean(s["hint_from_model"]),
            "time_limit_s": time_limit,
            "cold_proven": mean(s["cold_proven"]),
            "hinted_proven": mean(s["hinted_proven"]),
            "median_cold_s": float(np.median(s["cold_seconds"])) if s["cold_seconds"] else None,
            "median_hinted_s": float(np.median(s["hinted_seconds"])) if s["hinted_seconds"] else None,
            "median_speedup_both_proven": float(np.median(ratios)) if ratios else None,
        }
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    ms = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    secs = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(
        f"{'bucket':<10} {'n':>5} {'ref opt':>7} {'base ok':>7} {'base=opt':>8} {'model ok':>8} {'mod=opt':>7} {'worse':>6} {'better':>6} "
        f"{'served=opt':>10} {'draft=opt':>9} {'<draft':>6} {'>draft':>6} {'p50 ms':>6} {'hint n':>6} {'cold s':>7} {'hint s':>7} {'speedup':>7} {'cold pr':>7} {'hint pr':>7}"
    )
    for bucket, r in table.items():
        speed = "-" if r["median_speedup_both_proven"] is None else f"{r['median_speedup_both_proven']:.1f}x"
        print(
            f"{bucket:<10} {r['n']:>5} {pct(r['reference_proven']):>7} {pct(r['baseline_verified']):>7} {pct(r['baseline_optimal']):>8} "
            f"{pct(r['model_verified']):>8} {pct(r['model_optimal']):>7} {pct(r['model_worse']):>6} {pct(r['model_better']):>6} "
            f"{pct(r['served_optimal']):>10} {pct(r['draft_optimal']):>9} {pct(r['model_better_than_draft']):>6} "
            f"{pct(r['model_worse_than_draft']):>6} {ms(r['latency_ms_p50']):>6} {r['hint_n']:>6} {secs(r['median_cold_s']):>7} {secs(r['median_hinted_s']):>7} "
            f"{speed:>7} {pct(r['cold_proven']):>7} {pct(r['hinted_proven']):>7}"
        )
    if views > 1:
        print(f"\nthe control, the classical answer over the same {views} views (best valid kept):")
        for bucket, r in table.items():
            print(
                f"{bucket:<10} base x{views} optimal {pct(r['baseline_views_optimal'])}, TRM x{views} optimal {pct(r['model_optimal'])}, "
                f"TRM worse / better than it {pct(r['model_worse_than_baseline_views'])} / {pct(r['model_better_than_baseline_views'])}, "
                f"attempts {r['model_attempts'] or 0:.2f} a problem"
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint directory (rootcause: optional, baselines only without it)")
    parser.add_argument("--data", action="append", default=[], help="test split directory (repeatable)")
    parser.add_argument("--rootcause-evalsets", metavar="DIR", help="the frozen root-cause evaluation sets (evalsets/rootcause)")
    parser.add_argument("--evalset", type=Path, help="a frozen evaluation set, evalsets/placement or evalsets/upgrade")
    parser.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds per solve in the hint benchmark")
    parser.add_argument("--limit", type=int, help="instances per data directory, evaluation-set file or bucket, spread evenly")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench"), help="where homelab-<task>.json goes (bench/results publishes)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hint-limit", type=int, help="--evalset: instances per bucket in the hint benchmark (default: all)")
    parser.add_argument(
        "--latency-n", type=int, default=50, help="with --model (--evalset, --rootcause-evalsets): problems per bucket timed one at a time, as served"
    )
    parser.add_argument(
        "--attempts", type=int, default=1, help="--evalset with --model: trajectories per problem, the best valid one kept (test-time compute)"
    )
    parser.add_argument("--noise", type=float, default=0.3, help="std of the latent noise of attempts after the first")
    parser.add_argument(
        "--views", type=int, default=1, help="--evalset with --model: views of each problem (upgrade: node orders), adaptive, the best valid kept"
    )
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--dtype", choices=("auto", "fp32", "bf16"), default="auto", help="inference precision (auto: bf16 where the CPU has it natively, as served)"
    )
    args = parser.parse_args()
    if not 1 <= args.attempts <= 64:
        parser.error(f"--attempts must be 1-64, got {args.attempts}")
    if args.attempts > 1 and not (args.evalset and args.model):
        parser.error("--attempts needs --evalset and --model")
    if args.views > 1 and (args.attempts > 1 or not (args.evalset and args.model)):
        parser.error("--views needs --evalset and --model, and not --attempts")
    if args.views < 1:
        parser.error(f"--views must be >= 1, got {args.views}")
    if args.attempts > 1 and not 0 < args.noise <= 4:
        parser.error(f"--noise must be in (0, 4] for attempts after the first, got {args.noise}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rootcause_evalsets:
        solver = trm.load(args.model, dtype=args.dtype) if args.model else None
        if solver is not None and solver.task.name != "rootcause":
            parser.error(f"--rootcause-evalsets needs a rootcause model, {args.model} is {solver.task.name}")
        report: dict = {"model": args.model, "evalsets": args.rootcause_evalsets, "results": {}}
        sets = evalset_items(Path(args.rootcause_evalsets), args.limit)
        items = [item for part in sets.values() for item in part]
        print(f"\nrootcause on {args.rootcause_evalsets} ({len(items)} instances in {len(sets)} sets, never trained on)")
        started = time.perf_counter()
        report["results"] = rootcause(solver, items, args.batch, args.latency_n)
        report["seconds"] = time.perf_counter() - started
        write(report, "rootcause", args.out_dir)
        return
    if args.evalset:
        task_name = json.loads((args.evalset / "meta.json").read_text())["task"]
        print(f"{task_name} on {args.evalset} (limit {args.limit} per bucket, CP-SAT {args.time_limit:g} s per solve)")
        started = time.perf_counter()
        report = {
            "model": args.model,
            "evalset": str(args.evalset),
            "limit": args.limit,
            "attempts": args.attempts,
            "noise": args.noise if args.attempts > 1 else None,
            "views": args.views,
            "dtype": args.dtype,
            "results": evalset(
                task_name, args.evalset, args.limit, args.time_limit, args.model, args.batch, args.hint_limit, args.latency_n,
                args.attempts, args.noise, args.views, args.dtype,
            ),
        }
        report["seconds"] = time.perf_counter() - started
        out = args.out_dir / f"homelab-{task_name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        print(f"\nwrote {out}")
        return
    if not (args.model and args.data):
        parser.error("give --evalset DIR, --rootcause-evalsets DIR, or --model and --data")
    solver = trm.load(args.model, dtype=args.dtype)
    run = {"placement": placement, "rootcause": rootcause_data, "upgrade": upgrade}[solver.task.name]
    report = {"model": args.model, "halt_threshold": solver.halt_threshold, "results": {}}
    for data_dir in args.data:
        data = TokenDataset(data_dir)
        items = rows(data, args.limit)
        print(f"\n{solver.task.name} on {data_dir} ({len(items)} instances, never trained on)")
        started = time.perf_counter()
        report["results"][data_dir] = run(solver, items, args.batch)
        report["results"][data_dir]["seconds"] = time.perf_counter() - started
    write(report, solver.task.name, args.out_dir)


def rootcause_data(solver: trm.Solver, items: list, batch: int) -> dict:
    """rootcause on a token dataset: the injected root from each label."""
    task = solver.task
    return rootcause(
        solver, [(raw, bucket, task.decode(label, task.parse(raw, canvas=False)).root_cause) for raw, bucket, label in items], batch
    )


def write(report: dict, task: str, out_dir: Path) -> None:
    out = out_dir / f"homelab-{task}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
