"""Shortest path in a grid maze, encoded as the reference builder does.

Characters "# SGo" -> tokens 1..5 (PAD 0) on a size x size canvas (30 in the reference). A smaller
maze sits in the top-left corner and the rest of the canvas is wall. The label is the maze with the
shortest path drawn as 'o' (S and G keep their letters).
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

import numpy as np
from pydantic import BaseModel

from agent_reasoning.types import MazeProblem, MazeSolution, TaskType
from trm.tasks.base import Example, InvalidProblem, OutsideCanvas, SolverAnswer, Task, View

CHARS = "# SGo"
TOKEN = {ch: i + 1 for i, ch in enumerate(CHARS)}  # '#':1 ' ':2 'S':3 'G':4 'o':5
WALL, OPEN, START, GOAL, PATH = (TOKEN[ch] for ch in CHARS)
STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))

Cell = tuple[int, int]


def find(grid: list[str], ch: str) -> Cell:
    """The (row, column) of the first `ch` in the grid, row by row. Raises ValueError if there is none."""
    for r, row in enumerate(grid):
        c = row.find(ch)
        if c >= 0:
            return r, c
    raise ValueError(f"no {ch!r} in the grid")


def bfs(grid: list[str], start: Cell, allowed: set[Cell] | None = None) -> tuple[dict[Cell, int], dict[Cell, Cell], dict[Cell, int]]:
    """Distances, parents and shortest-path counts (capped at 2) from `start` over open cells."""
    h, w = len(grid), len(grid[0])
    dist, parent, count = {start: 0}, {}, {start: 1}
    queue = deque([start])
    while queue:
        r, c = cell = queue.popleft()
        for dr, dc in STEPS:
            nxt = (r + dr, c + dc)
            if not (0 <= nxt[0] < h and 0 <= nxt[1] < w) or grid[nxt[0]][nxt[1]] == "#":
                continue
            if allowed is not None and nxt not in allowed:
                continue
            if nxt not in dist:
                dist[nxt], parent[nxt], count[nxt] = dist[cell] + 1, cell, count[cell]
                queue.append(nxt)
            elif dist[nxt] == dist[cell] + 1:
                count[nxt] = min(2, count[nxt] + count[cell])
    return dist, parent, count


def trace_back(parent: dict[Cell, Cell], start: Cell, end: Cell) -> list[Cell]:
    """The cells from `start` to `end` (both included) along the BFS `parent` links."""
    path = [end]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return path[::-1]


def draw(grid: list[str], path: list[Cell]) -> list[str]:
    """The grid with the open cells of `path` drawn as 'o' (S and G keep their letters)."""
    rows = [list(row) for row in grid]
    for r, c in path:
        if rows[r][c] == " ":
            rows[r][c] = "o"
    return ["".join(row) for row in rows]


# --- generators -----------------------------------------------------------------------------------


def lattice_maze(rng: np.random.Generator, size: int, loop_fraction: float) -> list[list[str]]:
    """A recursive-backtracker maze on the odd lattice of a size x size grid, plus loops."""
    g = [["#"] * size for _ in range(size)]
    inner = size if size % 2 else size - 1  # rooms need an odd extent
    rooms = [(r, c) for r in range(1, inner - 1, 2) for c in range(1, inner - 1, 2)]
    start = rooms[int(rng.integers(len(rooms)))]
    g[start[0]][start[1]] = " "
    stack = [start]
    while stack:
        r, c = stack[-1]
        options = [(dr, dc) for dr, dc in STEPS if 0 < r + 2 * dr < inner - 1 and 0 < c + 2 * dc < inner - 1 and g[r + 2 * dr][c + 2 * dc] == "#"]
        if not options:
            stack.pop()
            continue
        dr, dc = options[int(rng.integers(len(options)))]
        g[r + dr][c + dc] = g[r + 2 * dr][c + 2 * dc] = " "
        stack.append((r + 2 * dr, c + 2 * dc))
    # Knock out some walls between rooms: loops make the shortest path a real search.
    walls = [(r, c) for r in range(1, inner - 1) for c in range(1, inner - 1) if g[r][c] == "#" and (r % 2) != (c % 2)]
    for i in rng.permutation(len(walls))[: int(loop_fraction * len(walls))]:
        r, c = walls[i]
        g[r][c] = " "
    return g


def cave_maze(rng: np.random.Generator, size: int, density: float) -> list[list[str]]:
    """Random obstacles inside a walled border (an open, irregular layout)."""
    g = [["#"] * size for _ in range(size)]
    for r in range(1, size - 1):
        for c in range(1, size - 1):
            if rng.random() >= density:
                g[r][c] = " "
    return g


def place_endpoints(rng: np.random.Generator, g: list[list[str]]) -> list[str] | None:
    """Put S and G far apart with a unique shortest path between them; None if impossible."""
    grid = ["".join(row) for row in g]
    open_cells = [(r, c) for r, row in enumerate(grid) for c, ch in enumerate(row) if ch == " "]
    if len(open_cells) < 2:
        return None
    seed = open_cells[int(rng.integers(len(open_cells)))]
    dist, _, _ = bfs(grid, seed)
    far = max(dist.values())
    candidates = [cell for cell, d in dist.items() if d >= far * 0.8]
    start = candidates[int(rng.integers(len(candidates)))]
    dist, _, count = bfs(grid, start)
    unique = [(d, cell) for cell, d in dist.items() if count[cell] == 1 and d > 0]
    if not unique:
        return None
    best = max(d for d, _ in unique)
    goals = [cell for d, cell in unique if d >= best * 0.9]
    goal = goals[int(rng.integers(len(goals)))]
    g[start[0]][start[1]], g[goal[0]][goal[1]] = "S", "G"
    return ["".join(row) for row in g]


# --- the task -----------------------------------------------------------------------------------


class MazeTask(Task[MazeProblem, MazeSolution]):
    """Shortest path in a maze of at most `size` x `size` cells (a 5..64 canvas; 30 in the reference).

    Tokens: one per canvas cell, row-major ([size * size]); a smaller maze sits top-left, walled in.
    Exact check: the path is a shortest S-G walk over open cells. Baseline: breadth-first search.
    """
    exact_solver = True
    name = "maze"
    task_type = TaskType.PLANNING
    Problem = MazeProblem
    Solution = MazeSolution
    description = "Shortest path from S to G in a grid maze ('#' wall, ' ' open), 4-connected moves."
    buckets = ("small", "full")  # small: mazes of 7..size-2 cells a side; full: size x size

    def __init__(self, size: int = 30) -> None:
        if not 5 <= size <= 64:
            raise ValueError("maze canvas size must be within 5..64")
        self.size = size

    @property
    def seq_len(self) -> int:
        """Canvas cells: size * size."""
        return self.size * self.size

    @property
    def vocab_size(self) -> int:
        """PAD plus the five characters "# SGo"."""
        return len(CHARS) + 1

    def options(self) -> dict[str, Any]:
        """{"size": canvas side}."""
        return {"size": self.size}

    # --- problems ---

    def check_canvas(self, problem: MazeProblem) -> None:
        """Raise OutsideCanvas (field problem.grid) if the maze is larger than this model's canvas."""
        h, w = len(problem.grid), len(problem.grid[0])
        if h > self.size or w > self.size:
            raise OutsideCanvas("problem.grid", f"the maze is {h}x{w}; this model takes at most {self.size}x{self.size}")

    def check(self, problem: MazeProblem) -> None:
        """Raise InvalidProblem (field problem.grid) if G cannot be reached from S."""
        start, goal = find(problem.grid, "S"), find(problem.grid, "G")
        if goal not in bfs(problem.grid, start)[0]:
            raise InvalidProblem("problem.grid", "G cannot be reached from S")

    def _canvas(self, rows: list[str]) -> np.ndarray:
        canvas = np.full((self.size, self.size), WALL, dtype=np.int64)
        for r, row in enumerate(rows):
            canvas[r, : len(row)] = [TOKEN[ch] for ch in row]
        return canvas.reshape(-1)

    def encode(self, problem: MazeProblem) -> np.ndarray:
        """The maze on the canvas: tokens [size * size]."""
        return self._canvas(problem.grid)

    def label(self, problem: MazeProblem) -> np.ndarray:
        """The canvas with the BFS shortest path drawn: tokens [size * size]."""
        return self._canvas(self.baseline(problem).grid)

    def decode(self, tokens: np.ndarray, problem: MazeProblem, probs: np.ndarray | None = None) -> MazeSolution:
        """Follow the cells the model marked 'o' from S; the shortest walk through them to G."""
        grid = problem.grid
        h, w = len(grid), len(grid[0])
        marked = tokens.reshape(self.size, self.size)[:h, :w] == PATH
        start, goal = find(grid, "S"), find(grid, "G")
        allowed = {(r, c) for r, c in zip(*np.nonzero(marked))} | {goal}
        dist, parent, _ = bfs(grid, start, allowed)
        if goal in dist:
            end = goal
        else:  # best effort: the marked cell reached closest to G
            end = min(dist, key=lambda cell: (abs(cell[0] - goal[0]) + abs(cell[1] - goal[1]), -dist[cell]))
        path = trace_back(parent, start, end)
        return MazeSolution(path=path, grid=draw(grid, path))

    def verify(self, problem: MazeProblem, solution: MazeSolution) -> list[str]:
        """Violations: wrong ends, walls or cells outside the maze, jumps, revisits, a longer path than the shortest."""
        grid, path = problem.grid, [tuple(p) for p in solution.path]
        h, w = len(grid), len(grid[0])
        start, goal = find(grid, "S"), find(grid, "G")
        if not path:
            return ["the path is empty"]
        violations = []
        if path[0] != start:
            violations.append(f"the path starts at {list(path[0])}, not at S {list(start)}")
        if path[-1] != goal:
            violations.append(f"the path ends at {list(path[-1])}, not at G {list(goal)}")
        for (r, c) in path:
            if not (0 <= r < h and 0 <= c < w) or grid[r][c] == "#":
                violations.append(f"the path crosses {[r, c]}, which is a wall or outside the maze")
                break
        for a, b in zip(path, path[1:]):
            if abs(a[0] - b[0]) + abs(a[1] - b[1]) != 1:
                violations.append(f"the path jumps from {list(a)} to {list(b)}")
                break
        if len(set(path)) != len(path):
            violations.append("the path visits a cell twice")
        shortest = bfs(grid, start)[0].get(goal)
        if not violations and shortest is not None and len(path) - 1 != shortest:
            violations.append(f"the path takes {len(path) - 1} moves; the shortest takes {shortest}")
        return violations

    def render(self, problem: MazeProblem, solution: MazeSolution) -> str:
        """The grid with the path drawn, then the number of moves."""
        return "\n".join(solution.grid) + f"\n{max(0, len(solution.path) - 1)} moves"

    def baseline(self, problem: MazeProblem) -> MazeSolution:
        """The breadth-first shortest path. Raises InvalidProblem when G cannot be reached."""
        start, goal = find(problem.grid, "S"), find(problem.grid, "G")
        dist, parent, _ = bfs(problem.grid, start)
        if goal not in dist:
            raise InvalidProblem("problem.grid", "G cannot be reached from S")
        path = trace_back(parent, start, goal)
        return MazeSolution(path=path, grid=draw(problem.grid, path))

    def solve(self, problem: MazeProblem, *, time_limit_s: float = 10.0, hint: BaseModel | None = None) -> SolverAnswer:
        """Breadth-first search: a shortest path, exact, for a maze of any size."""
        return SolverAnswer(self.baseline(problem), "solver")

    def example(self) -> dict[str, Any]:
        """A 7 x 7 maze."""
        return {"grid": ["#######", "#S  # #", "# # # #", "# #   #", "# ### #", "#    G#", "#######"]}

    # --- data ---

    def generate(self, rng: np.random.Generator, n: int, bucket: str, **options: Any) -> list[Example]:
        """Options: sizes (maze sides), loop_fraction (lo, hi), cave_share, min_path (moves, default: the side)."""
        if bucket == "full":
            sizes = [self.size]
        elif bucket == "small":
            sizes = list(range(7, max(8, self.size - 1)))
        else:
            raise ValueError(f"unknown maze bucket {bucket!r}; use 'small' or 'full'")
        sizes = options.get("sizes", sizes)
        loop_lo, loop_hi = options.get("loop_fraction", (0.05, 0.25))
        cave_share = options.get("cave_share", 0.2)
        out: list[Example] = []
        while len(out) < n:
            size = int(sizes[int(rng.integers(len(sizes)))])
            if rng.random() < cave_share:
                g = cave_maze(rng, size, density=float(rng.uniform(0.25, 0.4)))
            else:
                g = lattice_maze(rng, size, loop_fraction=float(rng.uniform(loop_lo, loop_hi)))
            grid = place_endpoints(rng, g)
            if grid is None:
                continue
            problem = MazeProblem(grid=grid)
            solution = self.baseline(problem)
            if len(solution.path) - 1 < options.get("min_path", size):
                continue
            out.append(
                Example(
                    problem=problem,
                    inputs=self.encode(problem),
                    labels=self._canvas(solution.grid),
                    bucket=bucket,
                    group=_maze_key(grid),
                    info={"size": size, "path_length": len(solution.path) - 1},
                )
            )
        return out

    def _dihedral(self) -> np.ndarray:
        """[8, s*s] source cell of each cell under the 8 rotations and reflections, identity first."""
        idx = np.arange(self.size**2).reshape(self.size, self.size)
        return np.stack([np.rot90(t, k).reshape(-1) for t in (idx, idx.T) for k in range(4)])

    def augment(self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One of the 8 dihedral transforms of the canvas per sample."""
        src = self._dihedral()[rng.integers(8, size=len(inputs))]
        return np.take_along_axis(inputs, src, axis=1), np.take_along_axis(labels, src, axis=1)

    def views(self, n: int) -> list[View]:
        """The 8 rotations and reflections of the canvas (at most 8)."""
        return [View(src, np.arange(self.vocab_size)) for src in self._dihedral()[: max(1, min(n, 8))]]


def _maze_key(grid: list[str]) -> str:
    """The same key for all 8 dihedral images of a maze."""
    a = np.array([list(row) for row in grid])
    images = [np.rot90(t, k) for t in (a, a.T) for k in range(4)]
    return hashlib.sha256(min("\n".join("".join(r) for r in im).encode() for im in images)).hexdigest()[:16]
