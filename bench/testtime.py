"""Test-time compute: accuracy against compute and latency for each strategy, as the service runs them.

    python bench/testtime.py --model models/sudoku --data evalsets/sudoku-extreme/validation --sweep     # tune (noise, budgets)
    python bench/testtime.py --model models/sudoku --data evalsets/sudoku-extreme/test \\
        --data data/sudoku/test --latency-n 100                                                        # report

Every strategy runs through trm.testtime.run_attempts on a continuous-batching engine, as
/v1/reason does (no HTTP). Per data split and bucket and per strategy: exact accuracy (the answer
equals the label), the share the exact check passed, mean attempts started, mean sample-steps per
problem (every attempt's supervision steps: the compute spent), how the answers were chosen, and,
with --latency-n, the latency of one problem at a time (all its attempts in parallel slots, nothing
else running: what one caller of an idle service sees), median and p95.

Strategies: `single` (one plain attempt, the service's default before test-time compute), `vote8`
(a vote over 8 symmetric views, what `"views": 8` does), `adaptive-*` (one attempt first, more only
when it fails the check: views, noise of a given std, or both; the checker picks), and the model's
stored default (`default`). `--sweep` adds noise scales and budgets; tune on a validation split only.
Prints a table and writes runs/bench/testtime-<model>.json (scratch; `--out bench/results/...` publishes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "client" / "src"))

from trm.checkpoint import load_checkpoint  # noqa: E402
from trm.compute import ComputeThread  # noqa: E402
from trm.data import TokenDataset  # noqa: E402
from trm.engine import Engine  # noqa: E402
from trm.pipeline import InferenceConfig, plan_attempts  # noqa: E402
from trm.precision import for_inference  # noqa: E402
from trm.progress import bar  # noqa: E402
from trm.tasks import get_task  # noqa: E402
from trm.testtime import Outcome, Policy, run_attempts  # noqa: E402


def strategies(task: Any, stored: InferenceConfig, sweep: bool) -> dict[str, Policy]:
    """The policies compared, by name (checked against the task)."""
    plain = InferenceConfig()
    named: dict[str, dict[str, Any]] = {
        "single": {"attempts": 1},
        "vote8": {"views": 8},
        "adaptive-views-8": {"attempts": 8, "strategy": "views"},
        "adaptive-noise-8": {"attempts": 8, "strategy": "noise", "noise": 0.3},
        "adaptive-views+noise-16": {"attempts": 16, "strategy": "views+noise", "noise": 0.3},
    }
    if sweep:
        for sigma in (0.1, 0.2, 0.5, 1.0):
            named[f"adaptive-noise-8-s{sigma}"] = {"attempts": 8, "strategy": "noise", "noise": sigma}
        named["adaptive-views-4"] = {"attempts": 4, "strategy": "views"}
        named["adaptive-views+noise-8"] = {"attempts": 8, "strategy": "views+noise", "noise": 0.3}
        named["adaptive-views+noise-32"] = {"attempts": 32, "strategy": "views+noise", "noise": 0.3}
        named["halt-views+noise-8"] = {"attempts": 8, "strategy": "views+noise", "noise": 0.3, "select": "halt"}
        named["vote-views+noise-8"] = {"attempts": 8, "strategy": "views+noise", "noise": 0.3, "select": "vote"}
    out = {name: plan_attempts(task, plain, **opts) for name, opts in named.items()}
    if stored.policy.attempts > 1:
        out["default"] = plan_attempts(task, stored)
    return out


async def _solve_all(engine: Engine, task: Any, problems: list[Any], policy: Policy, concurrency: int, progress: Any) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)

    async def one(p: Any) -> Outcome:
        async with gate:
            out = await run_attempts(engine, task, p, policy, deadline=None, submit={})
            progress.update(1)
            return out

    return await asyncio.gather(*(one(p) for p in problems))


async def _latencies(engine: Engine, task: Any, problems: list[Any], policy: Policy) -> list[float]:
    times = []
    for p in problems:
        t = time.perf_counter()
        await run_attempts(engine, task, p, policy, deadline=None, submit={})
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    """Run the strategies over every --data split and bucket; print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/sudoku")
    parser.add_argument("--data", action="append", required=True, help="a data split directory (repeatable)")
    parser.add_argument("--strategies", help="comma-separated names to run (default: all)")
    parser.add_argument("--sweep", action="store_true", help="add noise scales and budgets (tune on a validation split)")
    parser.add_argument("--limit", type=int, help="problems per bucket")
    parser.add_argument("--latency-n", type=int, default=0, help="problems per bucket timed one at a time")
    parser.add_argument("--slots", type=int, default=32, help="engine slots for the accuracy runs (latency runs use the service default)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--out", help="JSON path (default runs/bench/testtime-<model>.json)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    model, config = load_checkpoint(args.model)
    task = get_task(model.config.task, **model.config.task_options)
    stored = InferenceConfig.from_config(config)
    served = for_inference(model, args.dtype)
    policies = strategies(task, stored, args.sweep)
    if args.strategies:
        wanted = args.strategies.split(",")
        policies = {k: v for k, v in policies.items() if k in wanted}
    compute = ComputeThread(args.threads, name="bench")
    results: list[dict[str, Any]] = []
    for directory in args.data:
        data = TokenDataset(directory)
        rows = list(data.problems())
        labels = np.concatenate([np.asarray(s) for s in data.shards["labels"]]).astype(np.int64)
        for bucket in data.bucket_names:
            index = [i for i, r in enumerate(rows) if r["bucket"] == bucket][: args.limit]
            if not index:
                continue
            problems = [task.parse(rows[i]["problem"]) for i in index]
            for name, policy in policies.items():
                row: dict[str, Any] = {"data": directory, "bucket": bucket, "n": len(index), "strategy": name, "policy": policy.as_dict()}
                common = {"halt_threshold": stored.halt_threshold, "min_steps": stored.min_steps, "dtype": args.dtype, "worker": compute}
                started = time.perf_counter()
                with (
                    Engine(served, slots=args.slots, queue_size=len(index) * policy.attempts + 64, **common) as engine,
                    bar(len(index), f"{'/'.join(Path(directory).parts[-2:])}/{bucket} {name}", "problem", show=not args.quiet) as progress,
                ):
                    outcomes = asyncio.run(_solve_all(engine, task, problems, policy, args.slots, progress))
                row["seconds"] = round(time.perf_counter() - started, 2)
                exact = [np.array_equal(o.tokens[labels[i] > 0], labels[i][labels[i] > 0]) for o, i in zip(outcomes, index)]
                verified = [not task.verify(p, task.decode(o.tokens, p)) for o, p in zip(outcomes, problems)]
                row.update(
                    exact=float(np.mean(exact)),
                    verified=float(np.mean(verified)),
                    attempts=float(np.mean([o.attempts for o in outcomes])),
                    sample_steps=float(np.mean([o.sample_steps for o in outcomes])),
                    steps_single_attempt=float(np.mean([o.steps for o in outcomes if o.attempts == 1] or [0])),
                    chosen_by={k: sum(o.chosen_by == k for o in outcomes) for k in ("halt", "vote", "checker")},
                    found_by={k: sum(o.strategy == k for o in outcomes) for k in sorted({o.strategy for o in outcomes})},
                )
                if args.latency_n:
                    with Engine(served, slots="auto", calibration=list(stored.calibration) or None, **common) as engine:
                        asyncio.run(_latencies(engine, task, problems[:1], policy))  # warm-up
                        times = asyncio.run(_latencies(engine, task, problems[: args.latency_n], policy))
                    row.update(latency_n=len(times), p50_ms=1000 * float(np.median(times)), p95_ms=1000 * float(np.percentile(times, 95)))
                results.append(row)
                print(_line(row), flush=True)
    compute.stop()
    out = Path(args.out or f"runs/bench/testtime-{Path(args.model).name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": args.model,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": torch.get_num_threads(),
        "torch": torch.__version__,
        "dtype": args.dtype,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": [round(x, 2) for x in __import__("os").getloadavg()],
    }
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(f"\nwrote {out}")


def _line(row: dict[str, Any]) -> str:
    latency = f"  p50 {row['p50_ms']:7.0f} ms  p95 {row['p95_ms']:7.0f} ms" if "p50_ms" in row else ""
    return (
        f"{'/'.join(Path(row['data']).parts[-2:]):>24} {row['bucket']:>7} {row['strategy']:<28} n={row['n']:<5} exact {100 * row['exact']:5.1f}%"
        f"  attempts {row['attempts']:5.2f}  sample-steps {row['sample_steps']:6.1f}{latency}"
    )


if __name__ == "__main__":
    main()
