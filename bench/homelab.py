"""Homelab task models against the classical methods, on held-out instances.

    python bench/homelab.py --model models/placement --data data/placement/test
    python bench/homelab.py --model models/rootcause --data data/rootcause-unseen/test --data data/rootcause/test
    python bench/homelab.py --model models/upgrade --data data/upgrade/test

placement: verified rate (model answer as decoded, and how often the exact repair had to move pods),
           mean nodes used vs first-fit decreasing and vs the optimum, share where the model beats FFD.
rootcause: top-1 / top-3 of the model vs the two baselines (anomalous-without-anomalous-dependency,
           personalised PageRank), per graph-shape family.
upgrade:   verified rate, mean waves vs greedy and vs the optimum.
Prints tables and writes runs/bench/homelab-<task>.json (scratch; copy it to bench/results/ to publish).
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
    print(f"{'bucket':<8} {'n':>5} {'verified':>9} {'no repair':>9} {'nodes':>6} {'FFD':>6} {'optimal':>8} {'beats FFD':>9} {'worse':>6} {'=opt':>6} {'steps':>6}")
    for key, r in table.items():
        print(
            f"{key:<8} {r['n']:>5} {100 * r['verified']:>8.1f}% {100 * r['valid_without_repair']:>8.1f}% {r['mean_nodes_model']:>6.2f} {r['mean_nodes_ffd']:>6.2f} "
            f"{r['mean_nodes_optimal']:>8.2f} {100 * r['beats_ffd']:>8.1f}% {100 * r['worse_than_ffd']:>5.1f}% {100 * r['optimal']:>5.1f}% {r['mean_steps']:>6.2f}"
        )
    return table


def rootcause(solver: trm.Solver, items: list, batch: int) -> dict:
    from trm.tasks.rootcause import pagerank_baseline

    task = solver.task
    out: dict = defaultdict(lambda: defaultdict(float))
    for lo in range(0, len(items), batch):
        chunk = items[lo : lo + batch]
        answers = solver.solve_many([p for p, _, _ in chunk])
        for (raw, bucket, label), ans in zip(chunk, answers):
            problem = task.parse(raw)
            truth = task.decode(label, problem).root_cause
            rankings = {"model": ans.solution["ranking"], "heuristic": task.baseline(problem).ranking, "pagerank": pagerank_baseline(problem).ranking}
            for key in (bucket, "all"):
                s = out[key]
                s["n"] += 1
                for name, ranking in rankings.items():
                    s[f"{name}_top1"] += ranking[:1] == [truth]
                    s[f"{name}_top3"] += truth in ranking[:3]
                s["steps"] += ans.steps
    table = {key: {"n": int(s["n"])} | {k: v / s["n"] for k, v in s.items() if k != "n"} for key, s in out.items()}
    print(f"{'family':<10} {'n':>5} {'model top1':>10} {'top3':>6} {'heur top1':>9} {'top3':>6} {'PR top1':>8} {'top3':>6} {'steps':>6}")
    for key, r in table.items():
        print(
            f"{key:<10} {r['n']:>5} {100 * r['model_top1']:>9.1f}% {100 * r['model_top3']:>5.1f}% {100 * r['heuristic_top1']:>8.1f}% {100 * r['heuristic_top3']:>5.1f}% "
            f"{100 * r['pagerank_top1']:>7.1f}% {100 * r['pagerank_top3']:>5.1f}% {r['steps']:>6.2f}"
        )
    return table


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
    print(f"{'bucket':<8} {'n':>5} {'verified':>9} {'no repair':>9} {'waves':>6} {'greedy':>7} {'optimal':>8} {'<=greedy':>9} {'<greedy':>8} {'=opt':>6} {'steps':>6}")
    for key, r in table.items():
        print(
            f"{key:<8} {r['n']:>5} {100 * r['verified']:>8.1f}% {100 * r['raw_valid']:>8.1f}% {r['model_waves']:>6.2f} {r['greedy_waves']:>7.2f} {r['optimal_waves']:>8.2f} "
            f"{100 * r['at_most_greedy']:>8.1f}% {100 * r['beats_greedy']:>7.1f}% {100 * r['optimal']:>5.1f}% {r['steps']:>6.2f}"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", action="append", required=True, help="test split directory (repeatable)")
    parser.add_argument("--limit", type=int, help="instances per data directory, spread evenly")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    solver = trm.load(args.model)
    run = {"placement": placement, "rootcause": rootcause, "upgrade": upgrade}[solver.task.name]
    report = {"model": args.model, "halt_threshold": solver.halt_threshold, "results": {}}
    for data_dir in args.data:
        data = TokenDataset(data_dir)
        items = rows(data, args.limit)
        print(f"\n{solver.task.name} on {data_dir} ({len(items)} instances, never trained on)")
        started = time.perf_counter()
        report["results"][data_dir] = run(solver, items, args.batch)
        report["results"][data_dir]["seconds"] = time.perf_counter() - started
    out = Path("runs/bench") / f"homelab-{solver.task.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
