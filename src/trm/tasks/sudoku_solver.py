"""A fast exact Sudoku solver: bitmasks, most-constrained cell first (the task's baseline).

It also counts solutions (for uniqueness) and guesses (branch points with more than one candidate),
which rate a puzzle's difficulty.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

ALL = 0x1FF
ROW = [i // 9 for i in range(81)]
COL = [i % 9 for i in range(81)]
BOX = [(i // 27) * 3 + (i % 9) // 3 for i in range(81)]
POPCOUNT = [bin(m).count("1") for m in range(512)]
BITS = [[d for d in range(9) if m >> d & 1] for m in range(512)]  # digits - 1 present in a mask


@dataclass
class SolveResult:
    """What `solve` found: up to `limit` solutions (81 ints each), branch points and search nodes visited, and whether the search finished."""

    solutions: list[list[int]]  # up to `limit` solutions, 81 ints each
    guesses: int  # branch points visited (cells with more than one candidate)
    nodes: int
    complete: bool = True  # False: the node budget or the deadline ended the search early



def consistent(cells: list[int]) -> str | None:
    """None if no two givens clash; else a description of the first clash."""
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    for i, v in enumerate(cells):
        if v:
            bit = 1 << (v - 1)
            for kind, masks, k in (("row", rows, ROW[i]), ("column", cols, COL[i]), ("box", boxes, BOX[i])):
                if masks[k] & bit:
                    return f"digit {v} appears twice in {kind} {k + 1} (cell {i}: row {ROW[i] + 1}, column {COL[i] + 1})"
                masks[k] |= bit
    return None


def solve(
    cells: list[int], limit: int = 1, rng: random.Random | None = None, max_nodes: int = 2_000_000, deadline: float | None = None
) -> SolveResult:
    """Find up to `limit` solutions of a puzzle (81 ints, 0 = blank). Givens must be consistent.

    With `rng`, candidate digits are tried in random order (used to draw random full grids).
    `deadline` (time.monotonic() seconds) ends the search like the node budget does; either sets
    `complete=False` unless `limit` solutions were found first (fewer then proves nothing).
    """
    grid = list(cells)
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    empties = []
    for i, v in enumerate(grid):
        if v:
            bit = 1 << (v - 1)
            rows[ROW[i]] |= bit
            cols[COL[i]] |= bit
            boxes[BOX[i]] |= bit
        else:
            empties.append(i)
    solutions: list[list[int]] = []
    stats = [0, 0]  # guesses, nodes
    cut = [False]  # the budget or the deadline stopped the search

    def search() -> bool:  # True = stop (enough solutions or node budget spent)
        if not empties:
            solutions.append(list(grid))
            return len(solutions) >= limit
        stats[1] += 1
        # the clock is read every 1024 nodes only: a node costs about a microsecond
        if stats[1] > max_nodes or (deadline is not None and not stats[1] & 1023 and time.monotonic() > deadline):
            cut[0] = True
            return True
        best_pos, best_mask, best_count = -1, 0, 10
        for pos, i in enumerate(empties):
            mask = ALL & ~(rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]])
            count = POPCOUNT[mask]
            if count < best_count:
                best_pos, best_mask, best_count = pos, mask, count
                if count <= 1:
                    break
        if best_count == 0:
            return False
        if best_count > 1:
            stats[0] += 1
        i = empties[best_pos]
        empties[best_pos] = empties[-1]
        empties.pop()
        r, c, b = ROW[i], COL[i], BOX[i]
        digits = BITS[best_mask]
        if rng is not None and len(digits) > 1:
            digits = digits[:]
            rng.shuffle(digits)
        for d in digits:
            bit = 1 << d
            grid[i] = d + 1
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            stop = search()
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            if stop:
                grid[i] = 0
                empties.append(i)
                empties[best_pos], empties[-1] = empties[-1], empties[best_pos]
                return True
        grid[i] = 0
        empties.append(i)
        empties[best_pos], empties[-1] = empties[-1], empties[best_pos]
        return False

    if consistent(cells) is None:
        search()
    return SolveResult(solutions=solutions, guesses=stats[0], nodes=stats[1], complete=not cut[0])


def count_solutions(cells: list[int], limit: int = 2) -> int:
    """Number of solutions of a puzzle (81 ints, 0 = blank), counted up to `limit`; a search cut by the node budget may count fewer."""
    return len(solve(cells, limit=limit).solutions)


def random_grid(rng: random.Random) -> list[int]:
    """A uniformly-ish random full grid (random digit order in the search)."""
    return solve([0] * 81, limit=1, rng=rng).solutions[0]
