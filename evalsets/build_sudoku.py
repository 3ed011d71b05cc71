"""Build the frozen extreme Sudoku set (see evalsets/sudoku-extreme/README.md).

    PYTHONPATH=src:client/src python evalsets/build_sudoku.py --out evalsets/sudoku-extreme --workers 2

A pool of POOL minimal puzzles (no given can be removed without losing uniqueness) is drawn from
SEED, never used by a training build; each is rated by the plain backtracking solver's branch points
to solve it and prove it unique (`trm.tasks.sudoku.rate`); the top 5% by that count are kept, a
harder bucket than the training data's "hard" (minimal puzzles with >= 20 branch points, where an
8-view vote already reached 99.7%). They are split at random into `validation` (for tuning
test-time compute: noise scale, budgets) and `test` (reported in cards, never tuned on), each a data
split as `trm data build` writes it (bucket "hard", with `info.guesses`), so every bench reads it.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "client" / "src"))

SEED = 20261129  # never used by a training build (those use --seed 1)
POOL = 16_000
TOP_PERCENT = 5
VALIDATION = 200  # of the kept puzzles; the rest is the test split


def _chunk(args: tuple[int, int]) -> list[tuple[list[int], list[int], int]]:
    from trm.tasks.sudoku import _minimal_puzzle, rate

    index, n = args
    rng = random.Random(SEED * 1000 + index)
    out = []
    for _ in range(n):
        cells, solution = _minimal_puzzle(rng)
        out.append((cells, solution, rate(cells)))
    return out


def main() -> None:
    """Draw the pool, keep the hardest, write validation/ and test/ under --out with meta.json."""
    from trm.data import write_split
    from trm.progress import bar
    from trm.tasks.sudoku import SudokuTask

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool", type=int, default=POOL, help="minimal puzzles drawn (the frozen set: 16000)")
    args = parser.parse_args()
    if args.pool * TOP_PERCENT // 100 <= VALIDATION:
        # the top TOP_PERCENT must hold the validation split and at least one test puzzle
        parser.error(f"--pool {args.pool} keeps {args.pool * TOP_PERCENT // 100} puzzles; it needs more than {VALIDATION} (--pool > {VALIDATION * 100 // TOP_PERCENT})")
    started = time.time()
    chunk = 100
    jobs = [(i, min(chunk, args.pool - i * chunk)) for i in range((args.pool + chunk - 1) // chunk)]
    pool: list[tuple[list[int], list[int], int]] = []
    with ProcessPoolExecutor(args.workers) as ex, bar(total=args.pool, desc="minimal puzzles", unit="puzzle") as progress:
        for part in ex.map(_chunk, jobs):
            pool.extend(part)
            progress.update(len(part))
    # the hardest TOP_PERCENT by branch points; ties keep the draw order (deterministic)
    order = sorted(range(len(pool)), key=lambda i: (-pool[i][2], i))
    kept = order[: len(pool) * TOP_PERCENT // 100]
    threshold = pool[kept[-1]][2]
    random.Random(SEED).shuffle(kept)
    task = SudokuTask()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    guesses_all = np.array([g for _, _, g in pool])
    for split, members in (("validation", kept[:VALIDATION]), ("test", kept[VALIDATION:])):
        examples = [task.example_of(*pool[i][:2], "hard", pool[i][2]) for i in members]
        g = np.array([e.info["guesses"] for e in examples])
        meta = write_split(
            task,
            examples,
            args.out / split,
            split,
            {
                "set": "sudoku-extreme",
                "seed": SEED,
                "pool": len(pool),
                "top_percent": TOP_PERCENT,
                "min_guesses": int(threshold),
                "guesses": {"median": float(np.median(g)), "min": int(g.min()), "max": int(g.max())},
                "pool_guesses": {"median": float(np.median(guesses_all)), "p95": float(np.percentile(guesses_all, 95))},
                "generator_commit": commit,
                "seconds": round(time.time() - started, 1),
            },
        )
        print(f"{split}: {meta['size']} puzzles, branch points >= {threshold} (median {np.median(g):.0f}; pool median {np.median(guesses_all):.0f})")


if __name__ == "__main__":
    main()
