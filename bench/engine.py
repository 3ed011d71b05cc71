"""Engine benchmark: ACT halting vs fixed steps, continuous vs static batching, latency under load.

    python bench/engine.py [--model models/sudoku] [--n 300] [--quick] [--device cuda]
    python bench/engine.py --calibrate [--model models/sudoku] [--dtype auto] [--threads N]

--calibrate measures the model's step costs on this machine (medians of several passes) and stores
them in its config.json (inference.calibration), where `slots="auto"` finds them; it writes into the
model directory and nothing else.

Workload: problems of the model's task generated afresh with a fixed seed (the model never saw them:
test side of the split). Sudoku: half easy, half medium puzzles; other tasks: all their buckets in
equal shares. Prints tables and writes runs/bench/engine.json (scratch; `--out bench/results/engine.json`
publishes). Progress bars on stderr when it is a terminal.

Every engine steps on its own compute thread with `--threads` torch threads; the main thread keeps
one torch thread, as the service does (trm/compute.py says why). The host's speed drifts, so the
batching comparison runs its configurations in alternating rounds and reports medians.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from trm.checkpoint import load_checkpoint  # noqa: E402
from trm.compute import ComputeThread  # noqa: E402
from trm.data import generate_split  # noqa: E402
from trm.engine import Engine, auto_slots, calibrate, step_costs  # noqa: E402
from trm.inference import recurse  # noqa: E402
from trm.precision import for_inference  # noqa: E402
from trm.progress import track  # noqa: E402
from trm.scheduler import choose_slots  # noqa: E402
from trm.tasks import get_task  # noqa: E402


def workload(task_name: str, task_options: dict, n: int, seed: int, serving: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Sudoku: easy+medium for the halting comparison; with `serving`, hard puzzles too (a third each),
    the mix where some requests need many steps. Other tasks: every bucket."""
    task = get_task(task_name, **task_options)
    if task_name == "sudoku":
        buckets = ["easy", "medium", "hard"] if serving else ["easy", "medium"]
    else:
        buckets = list(task.buckets)
    counts = {b: n // len(buckets) + (i < n % len(buckets)) for i, b in enumerate(buckets)}
    examples = generate_split(task, "test", counts, seed=seed)
    order = np.random.default_rng(seed).permutation(len(examples))  # interleave the buckets
    examples = [examples[i] for i in order]
    return np.stack([e.inputs for e in examples]), np.stack([e.labels for e in examples]), [e.bucket for e in examples]


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q)) if xs else float("nan")


def run_all(engine: Engine, inputs: np.ndarray, **kw) -> tuple[list, float]:
    started = time.perf_counter()
    futures = [engine.submit(x, **kw) for x in inputs]
    results = [f.result() for f in track(futures, "engine", "puzzle")]
    return results, time.perf_counter() - started


THREADS = os.cpu_count() or 1  # the engines' torch threads (--threads)


def halting_table(model, inputs, labels, slots: int, dtype: str, thresholds: list[float]) -> dict:
    """One fixed run with traces gives every threshold's act answer; act and fixed are then timed for real."""
    with Engine(model, slots=slots, queue_size=len(inputs), dtype=dtype, threads=THREADS) as engine:
        traced, _ = run_all(engine, inputs, mode="fixed", trace=True)
    rows = []
    for thr in thresholds:
        cut = 1 / (1 + np.exp(-thr))
        correct, steps = 0, 0
        for r, lab in zip(traced, labels):
            rec = next((t for t in r.trace if t.confidence > cut), r.trace[-1])
            correct += int(np.array_equal(rec.tokens, lab))
            steps += rec.step
        rows.append({"threshold": thr, "exact_accuracy": correct / len(labels), "mean_steps": steps / len(labels)})
    fixed_acc = float(np.mean([np.array_equal(r.tokens, lab) for r, lab in zip(traced, labels)]))
    return {"fixed_accuracy": fixed_acc, "fixed_steps": float(np.mean([r.steps for r in traced])), "thresholds": rows}


def throughput(model, inputs, labels, slots: int, dtype: str, mode: str, threshold: float) -> dict:
    with Engine(model, slots=slots, queue_size=len(inputs), dtype=dtype, halt_threshold=threshold, threads=THREADS) as engine:
        run_all(engine, inputs[: min(len(inputs), slots)], mode=mode)  # warm-up
        results, seconds = run_all(engine, inputs, mode=mode)
    return {
        "mode": mode,
        "dtype": dtype,
        "threshold": threshold,
        "exact_accuracy": float(np.mean([np.array_equal(r.tokens, lab) for r, lab in zip(results, labels)])),
        "mean_steps": float(np.mean([r.steps for r in results])),
        "puzzles_per_second": len(inputs) / seconds,
    }


class WholeBatchServer:
    """Static batching as the reference evaluates: take up to `slots` waiting requests, step the whole
    batch until every sample is done (finished samples stay in the batch), answer, take the next.
    Same submit/iterations/sample_steps surface as Engine, on a compute thread of its own."""

    def __init__(self, model, slots: int, dtype: str, threshold: float) -> None:
        self.model, self.slots, self.dtype, self.threshold = for_inference(model, dtype), slots, dtype, threshold
        self.compute = ComputeThread(THREADS, name="whole-batch")
        self.queue: list[tuple[np.ndarray, concurrent.futures.Future]] = []
        self.cond = threading.Condition()
        self.iterations = self.sample_steps = 0
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> WholeBatchServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self.cond:
            self.running = False
            self.cond.notify_all()
        self.thread.join()
        self.compute.stop()

    def submit(self, x: np.ndarray) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self.cond:
            self.queue.append((x, future))
            self.cond.notify_all()
        return future

    def _loop(self) -> None:
        while True:
            with self.cond:
                while self.running and not self.queue:
                    self.cond.wait(0.5)
                if not self.running:
                    return
                batch, self.queue = self.queue[: self.slots], self.queue[self.slots :]
            inputs = torch.as_tensor(np.stack([x for x, _ in batch]))
            preds = self.compute.call(recurse, self.model, inputs, threshold=self.threshold, dtype=self.dtype).result()
            steps = max(p.steps for p in preds)
            self.iterations += steps
            self.sample_steps += steps * len(batch)
            for (_, future), pred in zip(batch, preds):
                future.set_result(pred)


def closed_loop(model, inputs, slots: int, dtype: str, threshold: float, batching: str, clients: int, per_client: int) -> dict:
    """`clients` threads, each submitting one puzzle at a time and waiting for it. `batching`:
    continuous or static (the engine), or whole (WholeBatchServer, the reference's loop)."""
    latencies: list[float] = []
    lock = threading.Lock()
    if batching == "whole":
        server = WholeBatchServer(model, slots, dtype, threshold)
    else:
        server = Engine(model, slots=slots, queue_size=4 * clients + 64, dtype=dtype, halt_threshold=threshold, batching=batching, threads=THREADS)
    with server as engine:

        def client(k: int) -> None:
            for i in range(per_client):
                x = inputs[(k * per_client + i) % len(inputs)]
                t = time.perf_counter()
                engine.submit(x).result()
                with lock:
                    latencies.append(time.perf_counter() - t)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        steps_per_iter = engine.sample_steps / max(1, engine.iterations)
        steps_per_request = engine.sample_steps / max(1, len(latencies))
    return {
        "batching": batching,
        "slots": slots,
        "clients": clients,
        "requests": len(latencies),
        "puzzles_per_second": len(latencies) / seconds,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "mean_batch": steps_per_iter,
        "sample_steps_per_request": steps_per_request,
        "latencies": latencies,
    }


def machine_step_costs(model, dtype: str, max_slots: int) -> dict[int, float]:
    """Seconds per sample of one step at batch 1, 2, 4, ... max_slots, on a compute thread as the
    engine runs it (trm.engine.step_costs): what the machine can do, whatever the scheduler."""
    served = for_inference(model, dtype)
    compute = ComputeThread(THREADS, name="step-costs")
    try:
        return compute.call(step_costs, served, max_slots=max_slots, max_step_seconds=float("inf"), passes=3).result()
    finally:
        compute.stop()


def rounds(configs: list[dict], n_rounds: int, between=None, **kw) -> list[dict]:
    """Run each configuration once per round, alternating, so that drift in the host's speed hits
    all alike; per configuration: median throughput over rounds, p50/p99 over all latencies.
    `between()`, if given, runs once per round too (the step costs)."""
    runs: list[list[dict]] = [[] for _ in configs]
    for _ in track(range(n_rounds), f"{len(configs)} configurations", "round"):
        for i, c in enumerate(configs):
            runs[i].append(closed_loop(**kw, **c))
        if between is not None:
            between()
    out = []
    for c, rs in zip(configs, runs):
        pooled = [x for r in rs for x in r["latencies"]]
        out.append(
            c
            | {
                "rounds": n_rounds,
                "requests": sum(r["requests"] for r in rs),
                "puzzles_per_second": statistics.median(r["puzzles_per_second"] for r in rs),
                "puzzles_per_second_rounds": [r["puzzles_per_second"] for r in rs],
                "p50_ms": 1000 * percentile(pooled, 50),
                "p99_ms": 1000 * percentile(pooled, 99),
                "mean_batch": statistics.median(r["mean_batch"] for r in rs),
                "sample_steps_per_request": statistics.median(r["sample_steps_per_request"] for r in rs),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/sudoku")
    parser.add_argument("--n", type=int, default=400, help="puzzles in the workload")
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="runs/bench/engine.json", help="bench/results/ holds the published results")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the batching comparison")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the engine steps the model where its weights are)")
    parser.add_argument("--calibrate", action="store_true", help="only measure the step costs and store them with the model")
    parser.add_argument("--dtype", default="auto", help="with --calibrate: the dtype the service will serve in (auto, bf16, fp32)")
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads or THREADS
    if args.calibrate:
        entry = calibrate(args.model, dtype=args.dtype, device=args.device, threads=THREADS)
        curve = ", ".join(f"{b}: {ms:.1f}" for b, ms in entry["ms_per_sample"].items())
        print(f"{args.model} on {entry['device']} ({entry['dtype']}, {entry['threads']} threads): ms per sample by batch {curve}")
        print(f"slots='auto' will choose {entry['slots']}; stored in {Path(args.model) / 'config.json'}")
        if entry["load_average"] and entry["load_average"][0] > (os.cpu_count() or 1) / 2:
            print(f"warning: load average {entry['load_average'][0]} on {os.cpu_count()} CPUs: this curve measured a busy host; rerun it when the machine is quiet")
        return
    torch.set_num_threads(1)  # before the first op: the main thread gets no OpenMP team of its own
    model, config = load_checkpoint(args.model)
    model = model.to(args.device)
    n = 96 if args.quick else args.n
    task_name, task_options = model.config.task, model.config.task_options
    inputs, labels, _ = workload(task_name, task_options, n, args.seed)
    report: dict = {"model": args.model, "n": n, "slots": args.slots, "threads": THREADS, "device": args.device,
              "machine": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()}  # fmt: skip

    mix = "half easy 36-45 givens, half medium 28-35" if task_name == "sudoku" else "buckets in equal shares"
    print(f"workload: {n} {task_name} problems ({mix}), {report['machine']}, {THREADS} threads, {args.slots} slots")
    halting = halting_table(model, inputs, labels, args.slots, "fp32", [0.0, 1.0, 2.0, 3.0, 4.0, 6.0])
    report["halting"] = halting
    print("\n1a. halting threshold (act answer = first step with q_halt > threshold), from one traced run")
    print(f"{'threshold':>9} {'exact':>8} {'mean steps':>10}")
    print(f"{'fixed 16':>9} {100 * halting['fixed_accuracy']:>7.2f}% {halting['fixed_steps']:>10.2f}")
    for row in halting["thresholds"]:
        print(f"{row['threshold']:>9.1f} {100 * row['exact_accuracy']:>7.2f}% {row['mean_steps']:>10.2f}")
    # the default: the lowest threshold within 0.5 points of fixed
    ok = [r for r in halting["thresholds"] if r["exact_accuracy"] >= halting["fixed_accuracy"] - 0.005]
    chosen = min(ok, key=lambda r: r["mean_steps"])["threshold"] if ok else max(halting["thresholds"], key=lambda r: r["exact_accuracy"])["threshold"]
    report["chosen_threshold"] = chosen

    print(f"\n1b. act (threshold {chosen}) vs fixed, measured; fp32 vs bf16")
    rows = []
    for dtype in ("fp32", "bf16"):
        for mode in ("fixed", "act"):
            rows.append(throughput(model, inputs, labels, args.slots, dtype, mode, chosen))
    report["act_vs_fixed"] = rows
    print(f"{'mode':<6} {'dtype':<5} {'exact':>8} {'mean steps':>10} {'puzzles/s':>10}")
    for r in rows:
        print(f"{r['mode']:<6} {r['dtype']:<5} {100 * r['exact_accuracy']:>7.2f}% {r['mean_steps']:>10.2f} {r['puzzles_per_second']:>10.1f}")
    best_dtype = max((r for r in rows if r["mode"] == "act"), key=lambda r: r["puzzles_per_second"])["dtype"]
    report["best_dtype"] = best_dtype

    per_client = 4 if args.quick else 12
    mixed, _, _ = workload(task_name, task_options, n, args.seed + 1, serving=True)
    serving_mix = "a third each easy, medium, hard" if task_name == "sudoku" else "all buckets"
    print(f"\n2. continuous vs static batching, 32 concurrent submitters ({best_dtype}, act; {n} new problems, {serving_mix}; {args.rounds} alternating rounds)")
    sweep = sorted({8, 16, args.slots})
    configs = [{"batching": b, "slots": s} for s in sweep for b in ("static", "continuous")] + [{"batching": "whole", "slots": args.slots}]
    measured: list[dict[int, float]] = []
    batching = rounds(
        configs, args.rounds, between=lambda: measured.append(machine_step_costs(model, best_dtype, 64)),
        model=model, inputs=mixed, dtype=best_dtype, threshold=chosen, clients=32, per_client=per_client,
    )  # fmt: skip
    report["batching"] = batching
    print("static: the engine fills its slots, steps until all are done (a finished sample leaves the batch), refills;")
    print("whole: the reference's loop, the whole batch steps until its last sample is done; continuous: refill every step")
    print(f"{'slots':>5} {'batching':<11} {'puzzles/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10} {'steps/req':>9}  continuous vs this")
    for r in batching:
        ratio = ""
        if r["batching"] != "continuous":
            cont = next(x for x in batching if x["batching"] == "continuous" and x["slots"] == r["slots"])
            ratio = f"{cont['puzzles_per_second'] / r['puzzles_per_second']:.2f}x throughput, p99 {cont['p99_ms'] / r['p99_ms']:.2f}x"
        print(
            f"{r['slots']:>5} {r['batching']:<11} {r['puzzles_per_second']:>10.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['mean_batch']:>10.1f} {r['sample_steps_per_request']:>9.2f}  {ratio}"
        )
    costs = {b: statistics.median(m[b] for m in measured) for b in measured[0]}  # measured in every round
    best = min(costs, key=costs.get)
    steps = next(r for r in batching if r["batching"] == "continuous")["sample_steps_per_request"]
    ceiling = 1.0 / (costs[best] * steps)
    report["step_cost_ms_per_sample"] = {b: 1000 * c for b, c in costs.items()}
    report["ceiling_puzzles_per_second"] = ceiling
    print("\nper-sample cost of one step by batch size (ms): " + ", ".join(f"{b}: {1000 * c:.1f}" for b, c in costs.items()))
    print(f"ceiling for this mix: {ceiling:.1f} puzzles/s ({1000 * costs[best]:.1f} ms per sample-step at batch {best} x {steps:.2f} steps per puzzle);")
    print("  " + ", ".join(f"{r['batching']} {r['slots']}: {100 * r['puzzles_per_second'] / ceiling:.0f}%" for r in batching))
    auto = report["auto_slots"] = choose_slots(costs)
    compute = ComputeThread(THREADS, name="auto-slots")
    try:
        service, why = compute.call(auto_slots, for_inference(model, best_dtype), config.get("inference", {}).get("calibration")).result()
    finally:
        compute.stop()
    report["service_auto_slots"], report["service_auto_slots_why"] = service, why
    print(f"slots from these step costs (as a stored calibration would choose): {auto}; the service's 'auto' now: {service} ({why})")

    print(f"\n3. latency by concurrency (continuous, act, {auto} slots as chosen from the step costs)")
    latency = [closed_loop(model, mixed, auto, best_dtype, chosen, "continuous", c, per_client if c > 1 else 3 * per_client) for c in (1, 8, 32)]
    for r in latency:
        del r["latencies"]
    for r in batching:
        r.pop("latencies", None)
    report["latency"] = latency
    print(f"{'clients':>7} {'puzzles/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for r in latency:
        print(f"{r['clients']:>7} {r['puzzles_per_second']:>10.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
