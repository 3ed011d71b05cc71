"""9x9 Sudoku, encoded as the reference builder does: PAD 0, blank 1, digit d -> d + 1."""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

import numpy as np

from agent_reasoning.types import SudokuProblem, SudokuSolution, TaskType
from trm.tasks.base import Example, InvalidProblem, SolverAnswer, Task, View
from trm.tasks.common import LimitReached
from trm.tasks.sudoku_solver import BOX, COL, ROW, SolveResult, consistent, count_solutions, random_grid, solve

BLANK = 1  # token of an empty cell

# Difficulty buckets: easy and medium by givens; hard = minimal puzzles the baseline must guess on.
GIVENS = {"easy": (36, 45), "medium": (28, 35), "hard": (17, 25)}
HARD_MIN_GUESSES = 20  # branch points the baseline visits to solve and prove uniqueness


def canonical_key(solution: list[int]) -> str:
    """A key shared by every relabelling, transposition and band/row/stack/column permutation.

    For every pair of rows, digit-in-row-a -> digit-in-row-b (column by column) is a permutation
    of 1..9 whose cycle type survives relabelling and column moves; grouping those signatures by
    band and taking both rows and columns (in either order) also survives row moves and transposition.
    Equivalent grids share the key; the converse may fail (two grids share a key by chance), which
    only ever puts more puzzles together on one side of the split.
    """

    def side(lines: list[list[int]]) -> tuple:
        def cycle_type(a: list[int], b: list[int]) -> tuple[int, ...]:
            perm = dict(zip(a, b))
            seen: set[int] = set()
            lengths = []
            for start in perm:
                if start in seen:
                    continue
                k, length = start, 0
                while k not in seen:
                    seen.add(k)
                    k = perm[k]
                    length += 1
                lengths.append(length)
            return tuple(sorted(lengths))

        row_sigs = []
        for a in range(9):
            sig = sorted((a // 3 == b // 3, cycle_type(lines[a], lines[b])) for b in range(9) if b != a)
            row_sigs.append(tuple(sig))
        bands = sorted(tuple(sorted(row_sigs[3 * k : 3 * k + 3])) for k in range(3))
        return tuple(bands)

    rows = [solution[9 * r : 9 * r + 9] for r in range(9)]
    cols = [solution[c::9] for c in range(9)]
    pair = sorted([repr(side(rows)), repr(side(cols))])
    return hashlib.sha256("|".join(pair).encode()).hexdigest()[:16]


def _unique(result: SolveResult) -> bool | None:
    """From a search for two solutions: True (exactly one, search finished), False (two), None (cut short)."""
    if len(result.solutions) >= 2:
        return False
    return True if result.complete and result.solutions else None


def rate(cells: list[int]) -> int:
    """Difficulty: the baseline's branch points to solve and prove uniqueness."""
    return solve(cells, limit=2).guesses


def _puzzle_with_givens(rng: random.Random, target: int) -> tuple[list[int], list[int]] | None:
    """Remove clues from a random grid, keeping the solution unique, down to `target` givens."""
    solution = random_grid(rng)
    cells = list(solution)
    order = list(range(81))
    rng.shuffle(order)
    givens = 81
    for i in order:
        if givens == target:
            return cells, solution
        v, cells[i] = cells[i], 0
        if count_solutions(cells) == 1:
            givens -= 1
        else:
            cells[i] = v
    return (cells, solution) if givens == target else None


def _minimal_puzzle(rng: random.Random) -> tuple[list[int], list[int]]:
    """A minimal puzzle: no given can be removed without losing uniqueness."""
    solution = random_grid(rng)
    cells = list(solution)
    order = list(range(81))
    rng.shuffle(order)
    for i in order:
        v, cells[i] = cells[i], 0
        if count_solutions(cells) != 1:
            cells[i] = v
    return cells, solution


class SudokuTask(Task[SudokuProblem, SudokuSolution]):
    """9x9 Sudoku: 81 tokens (PAD 0, blank 1, digit d -> d + 1), exact check, and the bitmask solver as baseline and exact solver."""

    exact_solver = True
    name = "sudoku"
    task_type = TaskType.LOGIC
    Problem = SudokuProblem
    Solution = SudokuSolution
    buckets = ("easy", "medium", "hard")
    description = "9x9 Sudoku: fill every row, column and 3x3 box with 1-9; the givens stay."

    seq_len = 81
    vocab_size = 11

    # --- problems ---

    def check(self, problem: SudokuProblem) -> None:
        """Raises InvalidProblem (naming `problem.puzzle` or `problem.grid`) when two givens clash."""
        field = "problem.puzzle" if problem.puzzle is not None else "problem.grid"
        clash = consistent(problem.cells())
        if clash:
            raise InvalidProblem(field, f"contradictory givens: {clash}")

    def ensure_solvable(self, problem: SudokuProblem) -> None:
        """Raises InvalidProblem when a bounded search (200,000 nodes) proves the puzzle has no solution; a search cut short passes."""
        result = solve(problem.cells(), limit=1, max_nodes=200_000)
        if not result.solutions and result.nodes <= 200_000:
            field = "problem.puzzle" if problem.puzzle is not None else "problem.grid"
            raise InvalidProblem(field, "the puzzle has no solution")

    def encode(self, problem: SudokuProblem) -> np.ndarray:
        """Tokens [81] int64, row by row: blank 1, digit d -> d + 1."""
        return np.array([v + 1 if v else BLANK for v in problem.cells()], dtype=np.int64)

    def decode(self, tokens: np.ndarray, problem: SudokuProblem, probs: np.ndarray | None = None) -> SudokuSolution:
        """Tokens [81] -> the grid; a token that is no digit (PAD, blank) becomes 0. `probs` is unused."""
        digits = [int(t) - 1 if 2 <= t <= 10 else 0 for t in tokens.tolist()]
        return SudokuSolution(grid=[digits[9 * r : 9 * r + 9] for r in range(9)], solution="".join(map(str, digits)))

    def label(self, problem: SudokuProblem) -> np.ndarray:
        """Target tokens [81] of the puzzle's (first found) solution."""
        solution = solve(problem.cells(), limit=1).solutions[0]
        return np.array([v + 1 for v in solution], dtype=np.int64)

    def verify(self, problem: SudokuProblem, solution: SudokuSolution) -> list[str]:
        """The rules the grid breaks: not 9x9, cells outside 1-9, a digit twice in a row, column or box, a changed given; [] when valid."""
        grid = solution.grid
        if len(grid) != 9 or any(len(r) != 9 for r in grid):
            return ["the grid is not 9x9"]
        cells = [v for row in grid for v in row]
        violations = []
        blanks = [i for i, v in enumerate(cells) if not 1 <= v <= 9]
        if blanks:
            violations.append(f"{len(blanks)} cells are not filled with 1-9 (first: row {blanks[0] // 9 + 1}, column {blanks[0] % 9 + 1})")
        for kind, index in (("row", ROW), ("column", COL), ("box", BOX)):
            for k in range(9):
                values = [cells[i] for i in range(81) if index[i] == k and 1 <= cells[i] <= 9]
                twice = sorted({v for v in values if values.count(v) > 1})
                if twice:
                    violations.append(f"{kind} {k + 1} holds {', '.join(map(str, twice))} more than once")
        for i, given in enumerate(problem.cells()):
            if given and cells[i] != given:
                violations.append(f"the given {given} at row {i // 9 + 1}, column {i % 9 + 1} was changed to {cells[i]}")
        return violations

    def render(self, problem: SudokuProblem, solution: SudokuSolution) -> str:
        """The grid as 9 text lines with '|' between stacks and '------+-------+------' between bands ('.' for 0)."""
        lines = []
        for r, row in enumerate(solution.grid):
            if r and r % 3 == 0:
                lines.append("------+-------+------")
            cells = [str(v) if v else "." for v in row]
            lines.append(" | ".join(" ".join(cells[3 * k : 3 * k + 3]) for k in range(3)))
        return "\n".join(lines)

    def baseline(self, problem: SudokuProblem) -> SudokuSolution:
        """The solver's first solution (search capped at 2,000,000 nodes); raises InvalidProblem when none is found."""
        result = solve(problem.cells(), limit=1)
        if not result.solutions:
            raise InvalidProblem("problem", "the puzzle has no solution")
        digits = result.solutions[0]
        return SudokuSolution(grid=[digits[9 * r : 9 * r + 9] for r in range(9)], solution="".join(map(str, digits)))

    def solve(self, problem: SudokuProblem, *, time_limit_s: float = 10.0, hint: Any = None) -> SolverAnswer:
        """The exact solver (solved_by "solver"): a solution, and whether it is the only one.

        Searches for two solutions within `time_limit_s`: one found and the search finished means
        unique; two found, not unique (the first is answered); a search cut short after one, unknown
        (`unique` None). Raises InvalidProblem when the puzzle has no solution, LimitReached when the
        time ran out before any was found. `hint` is not needed: the search takes milliseconds."""
        result = solve(problem.cells(), limit=2, max_nodes=10_000_000, deadline=time.monotonic() + time_limit_s)
        if not result.solutions:
            if result.complete:
                raise InvalidProblem(self._field(problem), "the puzzle has no solution")
            raise LimitReached(f"the exact search ran out of time ({time_limit_s} s) before finding a solution")
        digits = result.solutions[0]
        solution = SudokuSolution(grid=[digits[9 * r : 9 * r + 9] for r in range(9)], solution="".join(map(str, digits)))
        return self.assess(problem, solution, solved_by="solver", unique=_unique(result), info={"nodes": result.nodes, "guesses": result.guesses})

    def unique(self, problem: SudokuProblem, solution: SudokuSolution, time_limit_s: float = 1.0) -> bool | None:
        """Whether `solution` is the puzzle's only one: True, False, or None when the search for a
        second (bounded by `time_limit_s`; a few milliseconds for a 9x9 grid) did not finish.

        `solution` must be valid (verify() found nothing): then any second solution differs from it,
        and counting solutions to two answers the question."""
        return _unique(solve(problem.cells(), limit=2, max_nodes=10_000_000, deadline=time.monotonic() + time_limit_s))

    @staticmethod
    def _field(problem: SudokuProblem) -> str:
        return "problem.puzzle" if problem.puzzle is not None else "problem.grid"

    def example(self) -> dict[str, Any]:
        """A sample request problem (a classic 30-given puzzle)."""
        return {"puzzle": "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"}

    # --- data ---

    def generate(self, rng: np.random.Generator, n: int, bucket: str, **options: Any) -> list[Example]:
        """n puzzles with a unique solution. Options: min_givens, max_givens, min_guesses (hard)."""
        if bucket not in GIVENS:
            raise ValueError(f"unknown sudoku bucket {bucket!r}; use one of {sorted(GIVENS)}")
        lo, hi = options.get("min_givens", GIVENS[bucket][0]), options.get("max_givens", GIVENS[bucket][1])
        min_guesses = options.get("min_guesses", HARD_MIN_GUESSES if bucket == "hard" else 0)
        prng = random.Random(int(rng.integers(2**63)))
        out: list[Example] = []
        while len(out) < n:
            if bucket == "hard":
                cells, solution = _minimal_puzzle(prng)
                givens = 81 - cells.count(0)
                if not lo <= givens <= hi:
                    continue
            else:
                made = _puzzle_with_givens(prng, int(prng.randint(lo, hi)))
                if made is None:
                    continue
                cells, solution = made
            guesses = rate(cells)
            if guesses < min_guesses:
                continue
            out.append(self.example_of(cells, solution, bucket, guesses))
        return out

    def example_of(self, cells: list[int], solution: list[int], bucket: str, guesses: int) -> Example:
        """A generated puzzle (81 cells, 0 blank) and its solution as an Example, rated `guesses` branch points."""
        problem = SudokuProblem(puzzle="".join(str(v) if v else "." for v in cells))
        return Example(
            problem=problem,
            inputs=self.encode(problem),
            labels=np.array([v + 1 for v in solution], dtype=np.int64),
            bucket=bucket,
            group=canonical_key(solution),
            info={"givens": 81 - cells.count(0), "guesses": guesses},
        )

    def augment(self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: digit relabelling, transposition, band/row and stack/column permutations."""
        B = len(inputs)
        # Token map: PAD and blank stay, digit tokens 2..10 permuted.
        token_map = np.tile(np.arange(11), (B, 1))
        token_map[:, 2:] = 2 + rng.permuted(np.tile(np.arange(9), (B, 1)), axis=1)
        rows = _line_permutations(rng, B)  # [B, 9]
        cols = _line_permutations(rng, B)
        src = _cell_sources(rows, cols, rng.random(B) < 0.5)

        def apply(x: np.ndarray) -> np.ndarray:
            moved = np.take_along_axis(x, src, axis=1)
            return np.take_along_axis(token_map, moved, axis=1)

        return apply(inputs), apply(labels)

    def views(self, n: int) -> list[View]:
        """The identity, then n-1 fixed random symmetries of the kind `augment` draws (digit relabelling,
        transposition, band/row and stack/column permutations); the same ones at every call."""
        rng = np.random.default_rng(0)
        out = [View.identity(self.seq_len, self.vocab_size)]
        for _ in range(max(0, n - 1)):
            values = np.arange(self.vocab_size)
            values[2:11] = 2 + rng.permutation(9)  # PAD and blank stay, the digits move
            rows, cols = _line_permutations(rng, 1), _line_permutations(rng, 1)
            out.append(View(_cell_sources(rows, cols, np.array([rng.random() < 0.5]))[0], values))
        return out


def _cell_sources(rows: np.ndarray, cols: np.ndarray, transpose: np.ndarray) -> np.ndarray:
    """[B, 81] source cell of each target cell, from [B, 9] row and column permutations and [B] transpositions."""
    r, c = np.arange(81) // 9, np.arange(81) % 9
    src = rows[:, r] * 9 + cols[:, c]
    return np.where(transpose[:, None], (src % 9) * 9 + src // 9, src)


def _line_permutations(rng: np.random.Generator, B: int) -> np.ndarray:
    """[B, 9] permutations of 0..8 that move whole bands and rows within a band."""
    bands = rng.permuted(np.tile(np.arange(3), (B, 1)), axis=1)  # [B, 3]
    within = rng.permuted(np.tile(np.arange(3), (B, 3, 1)), axis=2)  # [B, 3, 3]
    return (bands[:, :, None] * 3 + within).reshape(B, 9)
