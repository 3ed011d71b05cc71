"""Build the frozen evaluation sets of the placement and upgrade tasks (see evalsets/README.md).

    PYTHONPATH=src:client/src python evalsets/build.py placement --out evalsets/placement --workers 2
    PYTHONPATH=src:client/src python evalsets/build.py upgrade --out evalsets/upgrade --workers 2
    PYTHONPATH=src:client/src python evalsets/build.py placement --out evalsets/placement --refine 20

Each bucket goes to OUT/<bucket>.jsonl.gz, one instance a line:
    {"problem": <the API form>, "bucket": str, "objective": best found (nodes used / waves),
     "lower_bound": proven bound, "optimal": bool (proven), "status": CP-SAT's, "seconds": float,
     "baseline": FFD's nodes / greedy's waves, "nodes": int, "pods"|"services": int}
and OUT/meta.json says the buckets, seeds, time limits, counts and how many are not proven optimal.

The buckets and seeds below are frozen: the sets are committed, and training data leaves them out
(`trm data build ... --exclude evalsets/<task>`). Changing anything here means a new set under a
new name, never a rebuilt one under the old name.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "client" / "src"))

SEED = 20261129  # never used by a training build (those use --seed 1)

# bucket -> (instances, generator settings, CP-SAT seconds per instance)
BUCKETS: dict[str, dict[str, tuple[int, dict[str, Any], float]]] = {
    "placement": {
        # the canvas, as trained: 4-8 / 9-16 nodes, 8-20 / 21-48 pods, load 30-85% of free capacity
        "small": (1000, {"nodes": (4, 8), "pods": (8, 20), "load": (0.3, 0.85)}, 2.0),
        "large": (1000, {"nodes": (9, 16), "pods": (21, 48), "load": (0.3, 0.85)}, 2.0),
        # unseen shape: nearly full clusters (85-97% of the scarcer resource), never in training
        "tight": (1000, {"nodes": (4, 16), "pods": (8, 48), "load": (0.85, 0.97)}, 2.0),
        # above the canvas: real homelab sizes, 3-16 nodes and 50-200 pods (the solver answers)
        "oversize": (200, {"nodes": (3, 16), "pods": (50, 200), "load": (0.3, 0.85)}, 5.0),
    },
    "upgrade": {
        "small": (1000, {"nodes": (4, 8), "services": (3, 10), "stateless": 0.15}, 2.0),
        "large": (1000, {"nodes": (9, 16), "services": (6, 16), "stateless": 0.15}, 2.0),
        # unseen shape: mostly stateless services (many replicas, larger budgets), never in training
        "stateless": (1000, {"nodes": (4, 16), "services": (3, 16), "stateless": 0.7}, 2.0),
        # above the canvas: 17-40 nodes, 17-60 services (the solver answers)
        "oversize": (200, {"nodes": (17, 40), "services": (17, 60), "stateless": 0.15}, 5.0),
    },
}


def draw(task: str, rng: np.random.Generator, settings: dict[str, Any]) -> Any:
    """One random problem of a bucket (the training generators' own drawing code)."""
    lo, hi = settings["nodes"]
    if task == "placement":
        from trm.tasks.placement import random_problem

        while True:
            n_nodes = int(rng.integers(lo, hi + 1))
            problem = random_problem(rng, n_nodes, int(rng.integers(settings["pods"][0], settings["pods"][1] + 1)), settings["load"])
            if problem is not None:
                return problem
    from trm.tasks.upgrade import random_problem as random_upgrade

    n_nodes = int(rng.integers(lo, hi + 1))
    return random_upgrade(rng, n_nodes, int(rng.integers(settings["services"][0], settings["services"][1] + 1)), settings["stateless"])


def solve_one(args: tuple[str, str, str, float]) -> dict[str, Any]:
    """CP-SAT's answer to one problem (JSON in, a record out); one worker: deterministic per limit."""
    task_name, bucket, raw, time_limit = args
    from trm.tasks import get_task

    task = get_task(task_name)
    problem = task.parse(json.loads(raw), canvas=False)
    answer = task.solve(problem, time_limit_s=time_limit)
    base = task.baseline(problem)
    record = {
        "problem": json.loads(raw),
        "bucket": bucket,
        "objective": int(answer.objective),
        "lower_bound": int(answer.lower_bound),
        "optimal": bool(answer.optimal),
        "status": answer.info["status"],
        "seconds": answer.info["seconds"],
        "baseline": int(task.objective(problem, base)),
        "nodes": len(problem.nodes),
    }
    record["pods" if task_name == "placement" else "services"] = len(problem.pods if task_name == "placement" else problem.services)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(BUCKETS))
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bucket", action="append", help="only these buckets (default: all)")
    parser.add_argument(
        "--seed", type=int, default=SEED, help="a development set's seed (default: the frozen sets' own; data builds use 1 and 2)"
    )
    parser.add_argument("--refine", type=float, metavar="SECONDS", help="instead of building: solve again, with this limit, the instances not proven optimal")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta_file = out / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {"task": args.task, "seed": args.seed, "buckets": {}}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    if args.refine:
        return refine(args, meta, meta_file)
    with ProcessPoolExecutor(args.workers) as pool:
        for b_index, (bucket, (count, settings, time_limit)) in enumerate(BUCKETS[args.task].items()):
            if args.bucket and bucket not in args.bucket:
                continue
            rng = np.random.default_rng([args.seed, b_index])
            raws = [json.dumps(draw(args.task, rng, settings).model_dump(exclude_none=True)) for _ in range(count)]
            started = time.perf_counter()
            records = list(pool.map(solve_one, [(args.task, bucket, r, time_limit) for r in raws], chunksize=8))
            with gzip.GzipFile(out / f"{bucket}.jsonl.gz", "wb", mtime=0) as f:  # mtime 0: same bytes for the same set
                for r in records:
                    f.write((json.dumps(r, separators=(",", ":")) + "\n").encode())
            not_proven = sum(not r["optimal"] for r in records)
            meta["buckets"][bucket] = {
                "instances": count,
                "settings": settings,
                "seed": [args.seed, b_index],
                "time_limit_s": time_limit,
                "not_proven_optimal": not_proven,
                "baseline_optimal": sum(r["baseline"] == r["objective"] and r["optimal"] for r in records),
                "generator_commit": commit,
                "built_seconds": round(time.perf_counter() - started, 1),
            }
            print(f"{args.task} {bucket}: {count} instances, {not_proven} not proven optimal in {time_limit:g} s, {time.perf_counter() - started:.0f} s", flush=True)
            meta_file.write_text(json.dumps(meta, indent=2) + "\n")


def refine(args: argparse.Namespace, meta: dict[str, Any], meta_file: Path) -> None:
    """Solve the unproven instances of built buckets again with a longer limit; keep the better answer."""
    out = Path(args.out)
    with ProcessPoolExecutor(args.workers) as pool:
        for bucket in meta["buckets"]:
            if args.bucket and bucket not in args.bucket:
                continue
            path = out / f"{bucket}.jsonl.gz"
            with gzip.open(path, "rt") as f:
                records = [json.loads(line) for line in f]
            todo = [i for i, r in enumerate(records) if not r["optimal"]]
            started = time.perf_counter()
            again = list(pool.map(solve_one, [(args.task, bucket, json.dumps(records[i]["problem"]), args.refine) for i in todo]))
            for i, r in zip(todo, again, strict=True):
                old = records[i]
                r["lower_bound"] = max(r["lower_bound"], old["lower_bound"])
                if old["objective"] < r["objective"]:  # keep the better answer, and the best bound of either run
                    r.update(objective=old["objective"], status=old["status"])
                r["optimal"] = r["objective"] <= r["lower_bound"]
                r["seconds"] = round(old["seconds"] + r["seconds"], 4)
                records[i] = r
            with gzip.GzipFile(path, "wb", mtime=0) as f:
                for r in records:
                    f.write((json.dumps(r, separators=(",", ":")) + "\n").encode())
            info = meta["buckets"][bucket]
            info["refined"] = {"time_limit_s": args.refine, "instances": len(todo), "seconds": round(time.perf_counter() - started, 1)}
            info["not_proven_optimal"] = sum(not r["optimal"] for r in records)
            info["baseline_optimal"] = sum(r["baseline"] == r["objective"] and r["optimal"] for r in records)
            print(f"{args.task} {bucket}: {len(todo)} solved again in {args.refine:g} s each; {info['not_proven_optimal']} still not proven", flush=True)
            meta_file.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
