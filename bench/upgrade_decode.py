"""How much of an upgrade model's answer is the network and how much its decoder, on held-out clusters.

    python bench/upgrade_decode.py --model checkpoints/upgrade-edits --problems data/upgrade-hints/test/problems.jsonl

One forward pass per cluster (the model's final-step probabilities), then several decoders of it,
side by side against the greedy and the CP-SAT optimum stored with each problem (`info.optimal_waves`
of a `trm data build` split, or `objective` of an evaluation set):

  given order    each node in the given order into its predicted wave, else the first that holds (the
                 decoder without probabilities)
  surest first   what the service does: also the confidence order, the shorter plan of the two
                 (`UpgradeTask.decode` with probabilities)
  beam, model    a beam search over the nodes (surest first) within the waves the network planned,
                 scored by its log-probabilities; not in the product
  beam, uniform  the same search with every wave equally likely within one wave fewer than the
                 greedy's plan: no network at all. Where it matches the model's beam, the search
                 is doing the work, not the network.

Also what the network intends: clusters whose top-wave plan has fewer waves than the greedy's, how
many of those can be shorter (the optimum is), and how many decode to a shorter valid plan.
Prints a table and writes runs/bench/upgrade-decode.json (`--out-dir bench/results` publishes).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import trm  # noqa: E402
from trm.inference import recurse  # noqa: E402
from trm.tasks import upgrade  # noqa: E402


def beam(p: np.ndarray, counts: upgrade.Counts, budget: tuple[int, ...], waves: list[int], width: int) -> list[int] | None:
    """Best-scoring valid plan within `waves` by beam search (nodes surest first); None if the beam dies.
    `p` [nodes, MAX_WAVES] wave probabilities."""
    logp = np.log(np.maximum(p, 1e-9))
    states: list[tuple[float, list[int], dict[int, list[int]]]] = [(0.0, [-1] * len(counts), {})]
    for j in sorted(range(len(counts)), key=lambda j: -float(p[j].max())):
        grown = []
        for score, wave, usage in states:
            for w in waves:
                used = usage.get(w, [0] * len(budget))
                if upgrade._fits(used, counts[j], budget):
                    plan = list(wave)
                    plan[j] = w
                    grown.append((score + float(logp[j, w]), plan, usage | {w: [u + r for u, r in zip(used, counts[j], strict=True)]}))
        if not grown:
            return None
        states = sorted(grown, key=lambda s: -s[0])[:width]
    return states[0][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="an upgrade checkpoint with hints")
    ap.add_argument("--problems", required=True, help="problems.jsonl of a data split, or an evaluation set's .jsonl.gz")
    ap.add_argument("--bucket", default="large")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--width", type=int, default=16, help="beam width")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-dir", default="runs/bench")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    solver = trm.load(args.model)
    task = solver.task
    if task.name != "upgrade":
        raise SystemExit(f"the model is for {task.name!r}, not upgrade")
    opener = gzip.open if args.problems.endswith(".gz") else open
    with opener(args.problems, "rt") as f:
        records = [r for r in map(json.loads, f) if r.get("bucket", args.bucket) == args.bucket][: args.limit]
    problems = [task.parse(r["problem"], canvas=False) for r in records]
    optimum = np.array([r["info"]["optimal_waves"] if "info" in r else r["objective"] for r in records])
    rng = np.random.default_rng(0)
    waves: dict[str, list[int]] = {k: [] for k in ("greedy", "given order", "surest first", "beam, model", "beam, uniform")}
    intends = possible = realised = 0
    for lo in range(0, len(problems), 64):
        chunk = problems[lo : lo + 64]
        predictions = recurse(solver.model, torch.tensor(np.stack([task.encode(p) for p in chunk])), probs=True)
        for i, (problem, pred) in enumerate(zip(chunk, predictions), lo):
            assert pred.probs is not None
            counts, budget = upgrade.replica_counts(problem), tuple(s.max_unavailable for s in problem.services)
            n = len(counts)
            greedy = len(set(upgrade.greedy(counts, budget)))
            p = pred.probs.reshape(upgrade.SIZE, upgrade.SIZE, -1)[0, 1 : 1 + n, upgrade.WAVE0 : upgrade.WAVE0 + upgrade.MAX_WAVES]
            given, surest = len(task.decode(pred.tokens, problem).waves), len(task.decode(pred.tokens, problem, pred.probs).waves)
            by_model = beam(p, counts, budget, sorted({int(w) for w in p.argmax(1)}), args.width)
            fewer = list(range(max(greedy - 1, 1)))
            uniform = np.ones_like(p) + 1e-4 * rng.random(p.shape)  # ties broken at random, reproducibly
            by_search = beam(uniform, counts, budget, fewer, args.width) if greedy > 1 else None
            for key, k in (("greedy", greedy), ("given order", given), ("surest first", surest)):
                waves[key].append(k)
            waves["beam, model"].append(min(surest, len(set(by_model))) if by_model else surest)
            waves["beam, uniform"].append(min(greedy, len(set(by_search))) if by_search else greedy)
            if len(set(p.argmax(1).tolist())) < greedy:
                intends += 1
                possible += int(optimum[i] < greedy)
                realised += int(surest < greedy)
    g = np.array(waves["greedy"])
    rows = {}
    print(f"{args.model} on {args.problems} ({args.bucket}, {len(g)} clusters)")
    print(f"{'decoder':<14} {'optimal':>8} {'worse':>7} {'better':>7}")
    for key, values in waves.items():
        k = np.array(values)
        rows[key] = {"optimal": float((k == optimum).mean()), "worse": float((k > g).mean()), "better": float((k < g).mean())}
        print(f"{key:<14} {100 * rows[key]['optimal']:>7.1f}% {100 * rows[key]['worse']:>6.1f}% {100 * rows[key]['better']:>6.1f}%")
    shorter = int((optimum < g).sum())
    print(
        f"the network's top-wave plan is shorter than the greedy's on {intends} clusters, {possible} of them where a shorter plan "
        f"exists (of {shorter}); {realised} decode to a shorter valid plan"
    )
    report = {
        "model": args.model,
        "problems": args.problems,
        "bucket": args.bucket,
        "n": len(g),
        "beam_width": args.width,
        "decoders": rows,
        "intends_shorter": intends,
        "intends_shorter_where_possible": possible,
        "shorter_possible": shorter,
        "decoded_shorter": realised,
        "seconds": time.perf_counter() - start,
    }
    out = Path(args.out_dir) / "upgrade-decode.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
