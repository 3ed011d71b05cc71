"""Frozen root-cause evaluation sets: build them once, commit them, exclude them from training data.

    python -m trm.tasks.rootcause_evalsets --out evalsets/rootcause --seed 2026

One `<bucket>.jsonl.gz` per bucket; each line is {"problem", "bucket", "root" (the injected
service's name), "info" (generator facts), "group" (canonical-form key), "inputs" (tokens, null
beyond the canvas)}. `trm data build --exclude evalsets/rootcause` leaves out every training
problem whose key or tokens are in a set. Deterministic for a seed and a generator commit.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trm.tasks.rootcause import BUCKETS, MAX_SERVICES, OVERSIZE_BUCKETS, RootCauseTask, canonical_key, incidents

COUNTS = {bucket: 1000 for bucket in BUCKETS} | {bucket: 300 for bucket in OVERSIZE_BUCKETS}


def build(out: Path, seed: int, counts: dict[str, int] = COUNTS) -> dict[str, int]:
    """Write one jsonl.gz per bucket under `out`; returns the count per bucket."""
    task = RootCauseTask()
    out.mkdir(parents=True, exist_ok=True)
    order = list(BUCKETS + OVERSIZE_BUCKETS)
    written = {}
    for bucket, n in counts.items():
        rng = np.random.default_rng([seed, order.index(bucket)])
        with gzip.GzipFile(out / f"{bucket}.jsonl.gz", "wb", mtime=0) as raw:  # mtime 0: the same bytes at every build
            for problem, root, facts in incidents(rng, n, bucket):
                fits = len(problem.services) <= MAX_SERVICES
                row = {
                    "problem": problem.model_dump(exclude_none=True),
                    "bucket": bucket,
                    "root": problem.services[root].name,
                    "info": facts,
                    "group": canonical_key(problem),
                    "inputs": task.encode(problem).tolist() if fits else None,
                }
                raw.write((json.dumps(row, separators=(",", ":")) + "\n").encode())
        written[bucket] = n
    return written


def load(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of one evaluation set file (or of every *.jsonl.gz in a directory, by name)."""
    files = sorted(Path(path).glob("*.jsonl.gz")) if Path(path).is_dir() else [Path(path)]
    for f in files:
        with gzip.open(f, "rt") as lines:
            for line in lines:
                yield json.loads(line)


def main() -> None:
    """Write the frozen evaluation sets (`--out DIR`), one <bucket>.jsonl.gz each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the <bucket>.jsonl.gz files")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--bucket", action="append", help="only these buckets (repeatable; default all)")
    args = parser.parse_args()
    counts = {b: n for b, n in COUNTS.items() if not args.bucket or b in args.bucket}
    started = time.perf_counter()
    written = build(Path(args.out), args.seed, counts)
    print(f"wrote {written} to {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
