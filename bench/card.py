"""Measure a model for its model card: exact accuracy per bucket in act and fixed halting, mean
steps, and latency (one puzzle at a time, and per puzzle in a full engine batch) on the CPU or,
with --device cuda, a GPU.

    python bench/card.py --model models/sudoku --data data/sudoku/test [--limit 3000] [--latency-n 100]

Writes the markdown table to stdout and the numbers to runs/bench/card-<model>.json (scratch;
`--out bench/results/...` publishes them). With `--write-inference`, also stores the chosen halting
threshold in the model's config.json. Progress bars on stderr when it is a terminal (`--quiet`: none).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from trm.checkpoint import load_checkpoint  # noqa: E402
from trm.compute import ComputeThread  # noqa: E402
from trm.data import TokenDataset  # noqa: E402
from trm.engine import Engine  # noqa: E402
from trm.evaluate import evaluate  # noqa: E402
from trm.inference import recurse, vote  # noqa: E402
from trm.precision import for_inference  # noqa: E402
from trm.progress import track  # noqa: E402
from trm.tasks import get_task  # noqa: E402
from trm.tasks.base import Task  # noqa: E402


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def latency(compute: ComputeThread, served, data: TokenDataset, bucket: int, n: int, threshold: float, dtype: str, slots: int, progress: bool = False) -> dict:
    """Batch-1 solves on the compute thread, then the same puzzles through an engine on it."""
    index = np.nonzero(np.concatenate([np.asarray(s) for s in data.shards["buckets"]]) == bucket)[0][:n]
    batch = data.take(index)
    inputs = torch.from_numpy(batch.inputs)
    name = data.bucket_names[bucket]

    def singles() -> list[float]:
        recurse(served, inputs[:1], threshold=threshold, dtype=dtype)  # warm-up
        times = []
        for x in track(inputs, f"latency {name}, batch 1", "puzzle", show=progress):
            t = time.perf_counter()
            recurse(served, x[None], threshold=threshold, dtype=dtype)
            _sync()
            times.append(time.perf_counter() - t)
        return times

    single = compute.call(singles).result()
    with Engine(served, slots=slots, queue_size=len(inputs), halt_threshold=threshold, dtype=dtype, worker=compute) as engine:
        t = time.perf_counter()
        for f in track([engine.submit(x) for x in inputs], f"latency {name}, engine", "puzzle", show=progress):
            f.result()
        batched = (time.perf_counter() - t) / len(inputs)
    return {"batch1_ms_median": 1000 * float(np.median(single)), "batch1_ms_p99": 1000 * float(np.percentile(single, 99)), "engine_ms_per_item": 1000 * batched}


def voted(compute: ComputeThread, served, task, data: TokenDataset, n_views: int, threshold: float, dtype: str, slots: int, limit: int | None, latency_n: int) -> dict:
    """Act with a vote over `n_views` symmetric views (Task.views, trm.inference.vote), through an
    engine as the service runs it: exact accuracy per bucket, steps of all views together, the views
    agreeing, and the latency of one problem whose views are solved together."""
    if type(task).view_inputs is not Task.view_inputs:
        # views that re-list the problem (upgrade's node orders) need the problem, not a test split's tokens
        raise SystemExit(f"--views: the {task.name} task's views re-list the problem; measure them with bench/homelab.py --views")
    views = task.views(n_views)
    buckets = np.concatenate([np.asarray(s) for s in data.shards["buckets"]])
    out: dict = {"views": len(views)}
    with Engine(served, slots=slots, queue_size=len(buckets) * len(views) + 64, halt_threshold=threshold, dtype=dtype, worker=compute) as engine:
        for b, name in enumerate(data.bucket_names):
            index = np.nonzero(buckets == b)[0][: limit // len(data.bucket_names) if limit else None]
            if not len(index):
                continue
            batch = data.take(index)
            futures = [[engine.submit(v.apply(x)) for v in views] for x in batch.inputs]
            results = [[f.result() for f in row] for row in futures]
            answers = [vote(views, row) for row in results]
            times = []
            for x in batch.inputs[:latency_n]:
                t = time.perf_counter()
                for f in [engine.submit(v.apply(x)) for v in views]:
                    f.result()
                times.append(time.perf_counter() - t)
            out[name] = {
                "n": len(index),
                "exact_accuracy": float(np.mean([np.array_equal(a.tokens, y) for a, y in zip(answers, batch.labels)])),
                "mean_steps_all_views": float(np.mean([sum(r.steps for r in row) for row in results])),  # the work done
                "mean_steps_slowest_view": float(np.mean([max(r.steps for r in row) for row in results])),  # the wait
                "mean_votes": float(np.mean([a.votes for a in answers])),
                "latency_ms_median": 1000 * float(np.median(times)),
                "latency_ms_p99": 1000 * float(np.percentile(times, 99)),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="a test split directory")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threshold", type=float, help="act halting threshold (default: the model's)")
    parser.add_argument("--latency-n", type=int, default=100)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", help="JSON path (default runs/bench/card-<model>[-<device>].json; bench/results/ holds the published ones)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--write-inference", action="store_true", help="store --threshold in config.json")
    parser.add_argument("--views", type=int, default=1, help="also measure act with a vote over this many symmetric views")
    args = parser.parse_args()
    # all torch work on one compute thread, as the service runs it (trm/compute.py says why)
    torch.set_num_threads(1)
    compute = ComputeThread(args.threads, name="card")
    model, config = load_checkpoint(args.model)
    served = compute.call(lambda: for_inference(model.to(args.device), args.dtype)).result()  # as the service runs it
    threshold = args.threshold if args.threshold is not None else config.get("inference", {}).get("halt_threshold", 0.0)
    data = TokenDataset(args.data)
    result = compute.call(evaluate, served, data, threshold=threshold, limit=args.limit, dtype=args.dtype, batch_size=64, progress=not args.quiet).result().summary()
    buckets = [b for b in data.bucket_names if b in result["act"]]
    lat = {b: latency(compute, served, data, data.bucket_names.index(b), args.latency_n, threshold, args.dtype, args.slots, not args.quiet) for b in buckets}
    task = get_task(model.config.task, **model.config.task_options)
    vote_result = voted(compute, served, task, data, args.views, threshold, args.dtype, args.slots, args.limit, args.latency_n) if args.views > 1 else None
    compute.stop()
    print(f"| bucket | n | act exact | act mean steps | fixed ({served.config.halt_max_steps}) exact | token acc (act) | latency batch 1 (median / p99) | latency in a {args.slots}-slot batch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for b in buckets:
        a, f = result["act"][b], result["fixed"][b]
        print(
            f"| {b} | {a['n']} | {100 * a['exact_accuracy']:.1f}% | {a['mean_steps']:.2f} | {100 * f['exact_accuracy']:.1f}% | {100 * a['token_accuracy']:.2f}% "
            f"| {lat[b]['batch1_ms_median']:.1f} / {lat[b]['batch1_ms_p99']:.1f} ms | {lat[b]['engine_ms_per_item']:.1f} ms |"
        )
    if vote_result:
        k = vote_result["views"]
        print(f"\nact with a vote over {k} symmetric views (the {k} views of one problem solved together):")
        print("| bucket | n | exact | steps, all views | views agreeing | latency batch 1 (median / p99) |")
        print("|---|---:|---:|---:|---:|---:|")
        for b in buckets:
            v = vote_result[b]
            print(
                f"| {b} | {v['n']} | {100 * v['exact_accuracy']:.1f}% | {v['mean_steps_all_views']:.2f} | {v['mean_votes']:.2f} "
                f"| {v['latency_ms_median']:.1f} / {v['latency_ms_p99']:.1f} ms |"
            )
    meta = {"machine": platform.processor() or platform.machine(), "threads": args.threads or "default", "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu", "torch": torch.__version__, "threshold": threshold, "dtype": args.dtype}
    print(f"\n{meta}")
    name = Path(args.model).name
    suffix = "" if args.device == "cpu" else f"-{args.device.split(':')[0]}"
    out = Path(args.out) if args.out else Path("runs/bench") / f"card-{name}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "data": args.data, "meta": meta, "results": result, "latency": lat} | ({"voted": vote_result} if vote_result else {}), indent=2))
    if args.write_inference:
        path = Path(args.model) / "config.json"
        cfg = json.loads(path.read_text())
        cfg["inference"] = cfg.get("inference", {}) | {"halt_threshold": threshold}
        cfg["metrics"] = result
        path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
