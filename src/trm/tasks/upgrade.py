"""Rolling node upgrades: the fewest waves such that no wave takes down more replicas of a service
than its max_unavailable (its PodDisruptionBudget).

Encoding: 17 rows x 17 columns = 289 tokens, row-major.

    row 0           [HEADER 1, then per node slot j: NODE_SLOT 2 for a node (given order), EMPTY 3]
                    label: node j's wave, WAVE_k = 12 + k for k = 1..8
    rows 1..16      one per service (given order): [max_unavailable, replicas on node 1..16]
                    max_unavailable m -> MU 4 + min(m, 4) (4 means "4 or more")
                    replicas r on a node -> 9 + min(r, 3) (3 means "3 or more"); PAD 0 for unused node slots
    unused rows     [EMPTY 3, PAD ...]

With the task option `hints` (same 289 tokens and vocabulary) row 0 carries the greedy's plan
(`greedy`, the classical answer) where the answer goes: node j's cell holds its greedy wave as WAVE_k,
waves numbered by their first node as the labels are (NODE_SLOT past wave 8). The model's starting
point is that valid plan, a draft it edits rather than a row it must learn to copy (the placement
model's lesson), and it learns where the optimum differs.

Only row 0's node cells have targets. Labels are optimal (fewest waves, by CP-SAT) and canonical:
waves numbered by their first node, and of all optimal plans the lexicographically first wave
sequence in node order (see `canonical`); with hints, of all optimal plans those nearest the draft
(fewest nodes off their draft wave), then the lexicographically first (`nearest`). Decode repairs budget breaks exactly; plans needing more
than 8 waves are beyond the model's output, and clusters beyond the canvas beyond its input:
`solve` (CP-SAT under a time limit, with a proven bound) answers both.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from ortools.sat.python import cp_model

from agent_reasoning.types import TaskType, UpgradeProblem, UpgradeService, UpgradeSolution
from trm.tasks.base import Example, InvalidProblem, OutsideCanvas, SolverAnswer, Task, View
from trm.tasks.common import STATUS_NAMES, Budget, CpResult, LimitReached, bool_option, keep_most, permutations, wl_hash

MAX_NODES, MAX_SERVICES, MAX_WAVES = 16, 16, 8
SIZE = 1 + MAX_NODES  # rows and columns
PAD, HEADER, NODE_SLOT, EMPTY = 0, 1, 2, 3
MU0, MU_CAP = 4, 4  # max_unavailable m -> MU0 + min(m, MU_CAP)
REPLICA0, REPLICA_CAP = MU0 + MU_CAP + 1, 3  # 9; replica count r -> REPLICA0 + min(r, REPLICA_CAP)
WAVE0 = REPLICA0 + REPLICA_CAP + 1  # 13 = wave 1
VOCAB = WAVE0 + MAX_WAVES  # 21

BUCKETS = {"small": ((4, 8), (3, 10)), "large": ((9, 16), (6, 16))}  # (nodes, services) ranges
MAX_VIEWS, VIEW_SEED = 8, 20261201  # node orders for test-time compute (views), fixed once for every call

Counts = list[tuple[int, ...]]  # per node: replicas of each service


def replica_counts(problem: UpgradeProblem) -> Counts:
    """Per node (given order): how many replicas of each service (given order) it hosts."""
    index = {n: j for j, n in enumerate(problem.nodes)}
    counts = [[0] * len(problem.services) for _ in problem.nodes]
    for s, service in enumerate(problem.services):
        for node in service.replicas_on:
            counts[index[node]][s] += 1
    return [tuple(row) for row in counts]


def _fits(usage: list[int], row: tuple[int, ...], budget: tuple[int, ...]) -> bool:
    return all(u + r <= b for u, r, b in zip(usage, row, budget, strict=True))


# --- solvers ---------------------------------------------------------------------------------------


def greedy(counts: Counts, budget: tuple[int, ...]) -> list[int]:
    """Nodes by replicas hosted (most first), each into the first wave its replicas fit; wave per node."""
    order = sorted(range(len(counts)), key=lambda j: (-sum(counts[j]), j))
    usage: list[list[int]] = []
    wave = [0] * len(counts)
    for j in order:
        w = next((v for v, used in enumerate(usage) if _fits(used, counts[j], budget)), len(usage))
        if w == len(usage):
            usage.append([0] * len(budget))
        usage[w] = [u + r for u, r in zip(usage[w], counts[j], strict=True)]
        wave[j] = w
    return wave


# CP-SAT work per training label (deterministic time, about 5 s of one core here; the same on any
# machine and load, so labels and limit hits repeat, see common.Budget); past it: a counted limit hit
LABEL_WORK = 0.5
WALL_FACTOR = 60  # a label's wall-clock safety net: this many seconds per work unit (about 6x the usual rate)
LEX_FIRST = 0.05  # work units (about half a second) for a first-solution lexicographic search before the surer route


def lower_bound(counts: Counts, budget: tuple[int, ...]) -> int:
    """Cheap proven bound on the waves: for each service, its replicas over its budget (rounded up)."""
    return max([1] + [-(-sum(row[t] for row in counts) // budget[t]) for t in range(len(budget)) if budget[t] > 0])


@dataclass
class _Model:
    """The CP-SAT model of one upgrade: y[j, w] = node j in wave w (w < the greedy plan's waves)."""

    model: cp_model.CpModel
    y: list[list[cp_model.IntVar]]
    last: cp_model.IntVar  # the highest wave number (waves numbered by their first node)

    def hint(self, wave: list[int]) -> None:
        self.model.ClearHints()
        for j, row in enumerate(self.y):
            for w, v in enumerate(row):
                self.model.AddHint(v, wave[j] == w)

    def read(self, solver: cp_model.CpSolver) -> list[int]:
        return [next(w for w, v in enumerate(row) if solver.BooleanValue(v)) for row in self.y]


def _build(counts: Counts, budget: tuple[int, ...], waves: int) -> _Model:
    """Each node in one of `waves` waves; per wave, each service loses at most its budget; waves
    numbered by their first node (node 0 in wave 0, each node at most one past the highest wave
    before it), which leaves one plan per partition. Objective: the highest wave number."""
    model = cp_model.CpModel()
    n = len(counts)
    y = [[model.NewBoolVar("") for _ in range(waves)] for _ in range(n)]
    for row in y:
        model.AddExactlyOne(row)
    for t, b in enumerate(budget):
        hosts = [j for j in range(n) if counts[j][t]]
        if sum(counts[j][t] for j in hosts) <= b:
            continue
        for w in range(waves):
            model.Add(cp_model.LinearExpr.WeightedSum([y[j][w] for j in hosts], [counts[j][t] for j in hosts]) <= b)
    z = [cp_model.LinearExpr.WeightedSum(row, list(range(waves))) for row in y]
    top = model.NewIntVar(0, 0, "")
    model.Add(z[0] == 0)
    for j in range(1, n):
        model.Add(z[j] <= top + 1)
        new_top = model.NewIntVar(0, min(j, waves - 1), "")
        model.AddMaxEquality(new_top, [top, z[j]])
        top = new_top
    model.Minimize(top)
    return _Model(model, y, top)


def _exact(
    counts: Counts, budget: tuple[int, ...], limits: Budget, *, hint: list[int] | None = None, workers: int = 1, cold: bool = False
) -> CpResult:
    started = time.perf_counter()
    bound = lower_bound(counts, budget)
    start = greedy(counts, budget)
    if hint is not None and not _valid(counts, budget, hint):
        hint = None
    given = hint is not None
    start = canonical_waves(start)
    hint = start if hint is None else canonical_waves(hint)
    best = hint if max(hint) <= max(start) else start  # the answer if CP-SAT finds nothing in time
    if max(best) + 1 <= bound and not cold:  # it already meets the cheap bound: optimal
        return CpResult(best, max(best) + 1, max(best) + 1, True, "OPTIMAL", time.perf_counter() - started, {"proved_by": "bound"})
    mdl = _build(counts, budget, max(best) + 1)  # wave slots: no optimum needs more than the best start
    mdl.model.Add(mdl.last >= bound - 1)
    if not cold:
        mdl.hint(best)  # the caller's hint, unless the greedy plan is better
    # presolve costs more than it saves on models this small
    solver, status = limits.solve(mdl.model, workers, cp_model_presolve=False)
    seconds = time.perf_counter() - started
    info = {"conflicts": solver.NumConflicts(), "branches": solver.NumBranches(), "start": "none" if cold else ("hint" if best is hint and given else "greedy")}
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        wave = mdl.read(solver)
        objective = max(wave) + 1
        bound = min(objective, max(bound, math.ceil(solver.BestObjectiveBound() - 1e-6) + 1))
        return CpResult(wave, objective, bound, status == cp_model.OPTIMAL or objective <= bound, STATUS_NAMES[status], seconds, info)
    return CpResult(best, max(best) + 1, bound, max(best) + 1 <= bound, STATUS_NAMES[status], seconds, {**info, "fallback": "start"})


def exact(
    counts: Counts, budget: tuple[int, ...], *, time_limit_s: float, hint: list[int] | None = None, workers: int = 1, cold: bool = False
) -> CpResult:
    """The fewest waves by CP-SAT within `time_limit_s` seconds (wall clock).

    `hint`: a valid plan (wave per node) to start from; else the greedy plan, which also sets the
    model's number of wave slots; `cold`: no start given to CP-SAT (the benchmark's "without a
    hint"). Returns the best plan found (waves numbered by first node; the start's when CP-SAT
    found none in time), its number of waves, the proven lower bound (the cheap one, raised by
    CP-SAT's) and whether they meet."""
    return _exact(counts, budget, Budget(time_limit_s), hint=hint, workers=workers, cold=cold)


def _valid(counts: Counts, budget: tuple[int, ...], wave: list[int]) -> bool:
    if len(wave) != len(counts) or min(wave, default=0) < 0:
        return False
    usage: dict[int, list[int]] = {}
    for row, w in zip(counts, wave, strict=True):
        used = usage.setdefault(w, [0] * len(budget))
        if not _fits(used, row, budget):
            return False
        usage[w] = [u + r for u, r in zip(used, row, strict=True)]
    return True


def _lex_first(counts: Counts, budget: tuple[int, ...], k: int, limits: Budget, cap: float) -> tuple[list[int] | None, int]:
    """The lexicographically first plan (waves numbered by first node) in at most k waves, by
    CP-SAT's fixed search: nodes in order, each in its lowest wave first; its first solution is the
    lexicographic minimum. Returns (plan or None, CP-SAT status)."""
    mdl = _build(counts, budget, k)
    mdl.model.ClearObjective()
    mdl.model.AddDecisionStrategy([v for row in mdl.y for v in row], cp_model.CHOOSE_FIRST, cp_model.SELECT_MAX_VALUE)
    solver, status = limits.solve(mdl.model, 1, cap, search_branching=cp_model.FIXED_SEARCH, cp_model_presolve=False)
    return (mdl.read(solver) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None), status


def _lex_min(
    counts: Counts, budget: tuple[int, ...], k: int, wave: list[int], limits: Budget, info: dict[str, Any], mdl: _Model | None = None
) -> list[int]:
    """The lexicographically first plan in at most k waves, from a valid one, by CP-SAT
    minimisations block by block (weights k^i make a block's optimum its lexicographic minimum).
    `mdl`: the model to minimise in (with the caller's extra constraints); else a fresh `_build`."""
    n = len(counts)
    mdl = _build(counts, budget, k) if mdl is None else mdl
    z = [cp_model.LinearExpr.WeightedSum(row, list(range(k))) for row in mdl.y]
    per_block = max(1, int(62 // math.log2(max(k, 2))) - 2)  # the weights times k stay in int64
    for lo in range(0, n, per_block):
        block = range(lo, min(n, lo + per_block))
        mdl.model.Minimize(cp_model.LinearExpr.WeightedSum([z[j] for j in block], [k ** (block[-1] - j) for j in block]))
        mdl.hint(wave)
        solver, status = limits.solve(mdl.model, 1, cp_model_presolve=False)
        info["solves"] += 1
        if status != cp_model.OPTIMAL:
            raise LimitReached(f"the canonical tie-break ran out of time at node {lo}", wave)
        wave = mdl.read(solver)
        for j in block:
            mdl.model.Add(z[j] == wave[j])
    return wave


def canonical(counts: Counts, budget: tuple[int, ...], work: float = LABEL_WORK) -> tuple[list[int], dict[str, Any]]:
    """The canonical optimal plan (wave per node) and solver facts.

    Canonical: of all plans with the fewest waves, waves numbered by their first node, the
    lexicographically first wave sequence in node order. A first-solution search in that order on
    as many waves as the cheap bound says (when it finds one, that is optimal and canonical at
    once); else CP-SAT proves the optimum k and the search runs on k waves, with block-wise
    minimisation when it stalls. Raises LimitReached (`best`: the best plan known) when `work`
    (CP-SAT's deterministic time, see common.Budget; WALL_FACTOR times as many seconds of wall
    clock) runs out first. info: greedy_waves, lower_bound, solves, seconds."""
    started = time.perf_counter()
    limits = Budget(WALL_FACTOR * work, work=work)
    bound = lower_bound(counts, budget)
    info: dict[str, Any] = {"greedy_waves": max(greedy(counts, budget)) + 1, "lower_bound": bound, "solves": 1}
    wave, status = _lex_first(counts, budget, bound, limits, LEX_FIRST)
    if wave is None:
        first = _exact(counts, budget, limits)
        info["solves"] += 1
        if not first.optimal:
            raise LimitReached(f"no proven optimum within {work:g} work units (best {first.objective}, bound {first.bound})", first.values)
        k = first.objective
        wave, status = _lex_first(counts, budget, k, limits, LEX_FIRST)
        info["solves"] += 1
        if wave is None:
            wave = _lex_min(counts, budget, k, first.values, limits, info)
    info["seconds"] = round(time.perf_counter() - started, 4)
    info["work"] = round(limits.spent, 4)
    return wave, info


def nearest(counts: Counts, budget: tuple[int, ...], draft: list[int], work: float = LABEL_WORK) -> tuple[list[int], dict[str, Any]]:
    """The optimal plan closest to `draft` (a valid plan, e.g. the greedy's) and solver facts: of all
    plans with the fewest waves (waves numbered by their first node, as the draft is renumbered),
    those leaving the most nodes in their draft wave, and of these the lexicographically first.

    Why: a model that reads the draft learns only the edits an optimum needs. Where the draft is
    optimal the answer is the draft itself; the lexicographically first optimum (`canonical`) differs
    from an optimal greedy plan on most large clusters (79% of them in `make data-upgrade-hints`),
    which taught the model to rewrite plans that were already best. Deterministic like `canonical`
    (the draft is a function of the problem). Raises LimitReached past `work` for the optimum
    (see `canonical`) or for this search (another `work`), ValueError for an invalid draft. Past
    MAX_WAVES waves the canonical plan, unsearched. info: canonical's, plus `moved` (nodes off
    their draft wave)."""
    started = time.perf_counter()
    if not _valid(counts, budget, draft):
        raise ValueError("the draft is not a valid plan")
    wave, info = canonical(counts, budget, work)
    k = max(wave) + 1
    draft = canonical_waves(draft)
    if max(draft) + 1 <= k:  # the draft is optimal: it is its own nearest optimum
        return draft, {**info, "moved": 0}
    if k > MAX_WAVES:  # beyond the model's output: the example is left out (too_many_waves), no search
        return wave, {**info, "moved": None}
    limits = Budget(WALL_FACTOR * work, work=work)
    mdl = _build(counts, budget, k)
    mdl.hint(wave)
    solver, kept = keep_most(mdl.model, [mdl.y[j][w] for j, w in enumerate(draft) if w < k], limits, wave)
    info["solves"] += 1
    wave = _lex_min(counts, budget, k, mdl.read(solver), limits, info, mdl)
    info["moved"] = len(draft) - kept
    info["seconds"] = round(time.perf_counter() - started, 4)
    info["work"] = round(info["work"] + limits.spent, 4)
    return wave, info


def _place(counts: Counts, budget: tuple[int, ...], order: list[int], prefer: list[list[int]]) -> list[int]:
    """Wave per node: nodes in `order`, each into the first of its `prefer` waves where the budgets
    hold, else the first wave in use where they do (lowest number first), else a new wave."""
    usage: dict[int, list[int]] = {}
    wave = [0] * len(counts)
    for j in order:
        candidates = prefer[j] + [v for v in sorted(usage) if v not in prefer[j]]
        w = next((v for v in candidates if _fits(usage.get(v, [0] * len(budget)), counts[j], budget)), max([MAX_WAVES - 1, *usage]) + 1)
        usage[w] = [u + r for u, r in zip(usage.get(w, [0] * len(budget)), counts[j], strict=True)]
        wave[j] = w
    return wave


def _waves(problem: UpgradeProblem, wave: list[int]) -> list[list[str]]:
    """Wave per node -> lists of node names, waves numbered by their first node."""
    order: dict[int, int] = {}
    for w in wave:
        order.setdefault(w, len(order))
    out: list[list[str]] = [[] for _ in order]
    for name, w in zip(problem.nodes, wave, strict=True):
        out[order[w]].append(name)
    return out


def canonical_waves(wave: list[int]) -> list[int]:
    """Wave per node renumbered 0, 1, ... in order of each wave's first node (the labels' canonical numbering)."""
    order: dict[int, int] = {}
    return [order.setdefault(w, len(order)) for w in wave]


@dataclass(frozen=True)
class NodeOrder(View):
    """A view of an upgrade: the cluster with its nodes listed in another order. `slots` is a fixed
    permutation of the 16 node slots; a cluster of n nodes lists them in the order 0..n-1 take in it.

    Not a token map (its positions and values are the identity): the greedy's draft (task option
    hints) is drawn up again for that order, where ties between equally loaded nodes and the waves'
    numbering change, so the task encodes the re-listed cluster (`UpgradeTask.view_inputs`) and maps
    the answer's node columns back (`view_undo`)."""

    slots: np.ndarray = field(default_factory=lambda: np.arange(MAX_NODES))

    def order(self, n: int) -> list[int]:
        """The original index of the node in each of the view's first n columns (nodes past the 16
        slots, in a cluster beyond the canvas, keep their places after them)."""
        return [int(j) for j in self.slots if j < n] + list(range(len(self.slots), n))


@functools.cache
def _node_orders(seq_len: int, vocab_size: int) -> tuple[NodeOrder, ...]:
    """The MAX_VIEWS node orders of `UpgradeTask.views`, the given order first; drawn once."""
    rng = np.random.default_rng(VIEW_SEED)
    identity = View.identity(seq_len, vocab_size)
    orders = [np.arange(MAX_NODES)] + [rng.permutation(MAX_NODES) for _ in range(MAX_VIEWS - 1)]
    return tuple(NodeOrder(identity.positions, identity.values, slots) for slots in orders)


# --- the task --------------------------------------------------------------------------------------


class UpgradeTask(Task[UpgradeProblem, UpgradeSolution]):
    """Rolling node upgrades in the fewest waves within every PodDisruptionBudget: the 17x17 table of the module docstring."""

    exact_solver = True
    name = "upgrade"
    task_type = TaskType.PLANNING
    Problem = UpgradeProblem
    Solution = UpgradeSolution
    fallback_by_default = True
    has_objective = True
    needs_probs = True  # decode places the nodes it is surest of first
    buckets = tuple(BUCKETS)
    description = (
        "Upgrade (drain) nodes in the fewest waves so that no wave takes down more replicas of a service than "
        f"its max_unavailable. Up to {MAX_NODES} nodes and {MAX_SERVICES} services; the model plans up to {MAX_WAVES} waves."
    )

    seq_len = SIZE * SIZE  # type: ignore[assignment]
    vocab_size = VOCAB  # type: ignore[assignment]

    def __init__(self, hints: bool = False) -> None:
        self.hints = bool_option("hints", hints)

    def options(self) -> dict[str, Any]:
        """{"hints": true} for a model that reads the greedy's plan; {} otherwise."""
        return {"hints": True} if self.hints else {}

    # --- views: the nodes in other orders ---

    def views(self, n: int) -> list[View]:
        """Up to `n` (at most 8) node orders, the given order first; the same at every call. Each sees
        the cluster as another order lists it (`NodeOrder`): test-time compute keeps the plan with the
        fewest waves among the attempts that pass the check."""
        return list(_node_orders(self.seq_len, self.vocab_size)[: max(1, min(n, MAX_VIEWS))])

    @staticmethod
    def _order(problem: UpgradeProblem, view: View) -> list[int] | None:
        """The problem's node index in each of the view's columns; None where the view lists the nodes as given."""
        if not isinstance(view, NodeOrder):
            return None
        order = view.order(len(problem.nodes))
        return None if order == sorted(order) else order

    def view_problem(self, problem: UpgradeProblem, view: View) -> UpgradeProblem:
        """The cluster with its nodes in the view's order (the same services and replicas)."""
        order = self._order(problem, view)
        return problem if order is None else problem.model_copy(update={"nodes": [problem.nodes[j] for j in order]})

    def view_inputs(self, problem: UpgradeProblem, view: View, encoded: np.ndarray) -> np.ndarray:
        """The re-listed cluster's tokens (its own greedy draft); `encoded` where the order is the given one."""
        shown = self.view_problem(problem, view)
        return encoded if shown is problem else self.encode(shown)

    def answer_key(self, problem: UpgradeProblem, solution: UpgradeSolution, tokens: np.ndarray) -> bytes:
        """The plan as a set of waves: views number the waves by their own first node, so equal plans
        from two node orders have different tokens."""
        return repr(sorted(sorted(wave) for wave in solution.waves)).encode()

    def view_undo(self, problem: UpgradeProblem, view: View, tokens: np.ndarray) -> np.ndarray:
        """Tokens [289] answered for the re-listed cluster -> each node's column in the given order."""
        return self._unlist(problem, view, tokens)

    def view_undo_probs(self, problem: UpgradeProblem, view: View, probs: np.ndarray) -> np.ndarray:
        """Probabilities [289, 21] answered for the re-listed cluster -> the given order's columns."""
        return self._unlist(problem, view, probs)

    def _unlist(self, problem: UpgradeProblem, view: View, values: np.ndarray) -> np.ndarray:
        """[289, ...] per position of the re-listed cluster -> the same with its node columns back in the given order."""
        order = self._order(problem, view)
        if order is None:
            return values
        grid = values.reshape(SIZE, SIZE, *values.shape[1:])
        out = grid.copy()
        out[:, 1 + np.array(order, dtype=np.int64)] = grid[:, 1 : 1 + len(order)]
        return out.reshape(values.shape)

    # --- problems ---

    def check(self, problem: UpgradeProblem) -> None:
        """Reject plans no one can make, naming the cause (any size is fine here)."""
        for i, s in enumerate(problem.services):
            if s.replicas_on and s.max_unavailable == 0:
                raise InvalidProblem(
                    f"problem.services.{i}.max_unavailable", f"service {s.name!r} has replicas but max_unavailable 0: no node of it can ever be drained"
                )
            per_node: dict[str, int] = {}
            for node in s.replicas_on:
                per_node[node] = per_node.get(node, 0) + 1
            for node, count in per_node.items():
                if count > s.max_unavailable:
                    raise InvalidProblem(
                        f"problem.services.{i}",
                        f"service {s.name!r} has {count} replicas on node {node!r} but max_unavailable {s.max_unavailable}: draining that node alone breaks its budget",
                    )

    def check_canvas(self, problem: UpgradeProblem) -> None:
        """OutsideCanvas naming the field when the cluster exceeds the model's columns or rows."""
        if len(problem.nodes) > MAX_NODES:
            raise OutsideCanvas("problem.nodes", f"{len(problem.nodes)} nodes; this model takes at most {MAX_NODES}")
        if len(problem.services) > MAX_SERVICES:
            raise OutsideCanvas("problem.services", f"{len(problem.services)} services; this model takes at most {MAX_SERVICES}")

    # --- objective and exact solver ---

    def objective(self, problem: UpgradeProblem, solution: UpgradeSolution) -> float:
        """Number of waves."""
        return float(len(solution.waves))

    def lower_bound(self, problem: UpgradeProblem) -> float:
        """Cheap proven bound: for each service, its replicas over its max_unavailable (rounded up)."""
        return float(lower_bound(replica_counts(problem), tuple(s.max_unavailable for s in problem.services)))

    def solve(
        self, problem: UpgradeProblem, *, time_limit_s: float = 10.0, hint: UpgradeSolution | None = None, workers: int = 1, cold: bool = False
    ) -> SolverAnswer:
        """CP-SAT's fewest-wave plan within `time_limit_s` seconds, any size and any number of waves.

        `hint` (e.g. the model's answer) seeds the search when it is a valid plan. The answer carries
        the number of waves, the proven lower bound and whether it is proven optimal; `info`: status
        (CP-SAT's), seconds, hint_used. `workers`: CP-SAT threads (1 is deterministic); `cold`: give
        CP-SAT no start at all (the hint benchmark's baseline)."""
        counts, budget = replica_counts(problem), tuple(s.max_unavailable for s in problem.services)
        start = None
        if hint is not None:
            index = {name: w for w, names in enumerate(hint.waves) for name in names}
            wave = [index.get(name, -1) for name in problem.nodes]
            start = wave if -1 not in wave and _valid(counts, budget, wave) else None
        result = exact(counts, budget, time_limit_s=time_limit_s, hint=start, workers=workers, cold=cold)
        info = {"status": result.status, "seconds": round(result.seconds, 4), "hint_used": start is not None, **result.info}
        solution = UpgradeSolution(waves=_waves(problem, result.values))
        return SolverAnswer(solution, "solver", float(result.objective), float(result.bound), result.optimal, info=info)

    def encode(self, problem: UpgradeProblem) -> np.ndarray:
        """Problem -> tokens [289]: a header row of node slots (with hints: the greedy's wave per node),
        then per service its budget and replicas per node (module docstring)."""
        n, m = len(problem.nodes), len(problem.services)
        grid = np.zeros((SIZE, SIZE), dtype=np.int64)
        grid[0, 0] = HEADER
        grid[0, 1:] = EMPTY
        grid[0, 1 : 1 + n] = NODE_SLOT
        grid[1:, 0] = EMPTY
        for s, service in enumerate(problem.services):
            grid[1 + s, 0] = MU0 + min(service.max_unavailable, MU_CAP)
        per_node = replica_counts(problem)
        if m:
            counts = np.array(per_node, dtype=np.int64).T  # [services, nodes]
            grid[1 : 1 + m, 1 : 1 + n] = REPLICA0 + np.minimum(counts, REPLICA_CAP)
        if self.hints and n:
            plan = canonical_waves(greedy(per_node, tuple(s.max_unavailable for s in problem.services)))
            grid[0, 1 : 1 + n] = [WAVE0 + w if w < MAX_WAVES else NODE_SLOT for w in plan]
        return grid.reshape(-1)

    @staticmethod
    def _label(wave: list[int]) -> np.ndarray:
        labels = np.zeros((SIZE, SIZE), dtype=np.int64)
        labels[0, 1 : 1 + len(wave)] = WAVE0 + np.array(canonical_waves(wave))
        return labels.reshape(-1)

    def target(self, problem: UpgradeProblem, work: float = LABEL_WORK) -> tuple[list[int], dict[str, Any]]:
        """The plan the model learns (wave per node) and solver facts: the canonical optimum
        (`canonical`); with hints, the optimum nearest the greedy's draft (`nearest`), so an optimal
        draft is its own label. Raises LimitReached past `work`."""
        counts, budget = replica_counts(problem), tuple(s.max_unavailable for s in problem.services)
        if self.hints:
            return nearest(counts, budget, greedy(counts, budget), work)
        return canonical(counts, budget, work)

    def label(self, problem: UpgradeProblem, work: float = LABEL_WORK) -> np.ndarray:
        """The target plan (`target`) as tokens. Raises LimitReached past `work` (see `canonical`),
        ValueError when the plan needs more waves than the model's output holds."""
        wave, _ = self.target(problem, work)
        if max(wave) >= MAX_WAVES:
            raise ValueError(f"the best plan takes {max(wave) + 1} waves; the model's output holds {MAX_WAVES}")
        return self._label(wave)

    def decode(self, tokens: np.ndarray, problem: UpgradeProblem, probs: np.ndarray | None = None) -> UpgradeSolution:
        """The model's plan made valid, by the model's own preferences (no classical solver).

        Given order: each node (in order) into its predicted wave if the budgets hold there, else the
        first wave where they do, or a new one. With `probs` [seq_len, vocab_size] (the service passes them:
        `needs_probs`) also the confidence order: nodes by the model's top wave probability (surest
        first), each into its most probable wave where the budgets hold, the waves the model planned
        (some node's top wave) before the other waves in use, and a wave of its own only where
        none holds; of the two plans the one with fewer waves (a tie: the confidence order's).
        `repaired` counts the nodes not in their predicted wave.

        Why two orders: a node the model is unsure of is where its plan breaks a budget; placed last
        it is the one moved, so the plans the draft had right keep their waves. In the given order
        the later of two clashing nodes moved, sure or not, and 1.0% of large dev clusters came out
        worse than the greedy's. The given order still finds some of the model's shorter plans the
        other misses."""
        counts, budget = replica_counts(problem), tuple(s.max_unavailable for s in problem.services)
        n = len(counts)
        predicted = [int(w) for w in tokens.reshape(SIZE, SIZE)[0, 1 : 1 + n] - WAVE0]
        plans: list[list[int]] = []
        if probs is not None:
            p = np.nan_to_num(probs.reshape(SIZE, SIZE, -1)[0, 1 : 1 + n, WAVE0 : WAVE0 + MAX_WAVES])  # [nodes, waves]
            planned = {int(w) for w in p.argmax(1)}
            prefer = [[int(w) for w in np.argsort(-p[j], kind="stable") if int(w) in planned] for j in range(n)]
            plans.append(_place(counts, budget, sorted(range(n), key=lambda j: -float(p[j].max())), prefer))
        plans.append(_place(counts, budget, list(range(n)), [[w] if 0 <= w < MAX_WAVES else [] for w in predicted]))
        wave = min(plans, key=lambda plan: len(set(plan)))
        repaired = sum(w != predicted[j] for j, w in enumerate(wave))
        return UpgradeSolution(waves=_waves(problem, wave), repaired=repaired)

    def verify(self, problem: UpgradeProblem, solution: UpgradeSolution) -> list[str]:
        """Violations: unknown, missing or repeated nodes, empty waves, a wave taking down more replicas of a service than its max_unavailable."""
        known = set(problem.nodes)
        violations = []
        seen: dict[str, int] = {}
        for k, wave in enumerate(solution.waves, 1):
            if not wave:
                violations.append(f"wave {k} is empty")
            for node in wave:
                if node not in known:
                    violations.append(f"wave {k} names {node!r}, which is not in nodes")
                elif node in seen:
                    violations.append(f"node {node!r} is in wave {seen[node]} and again in wave {k}")
                else:
                    seen[node] = k
        missing = [n for n in problem.nodes if n not in seen]
        if missing:
            violations.append(f"{len(missing)} nodes are in no wave: {', '.join(missing)}")
        for k, wave in enumerate(solution.waves, 1):
            down = set(wave)
            for s in problem.services:
                hit = [n for n in s.replicas_on if n in down]
                if len(hit) > s.max_unavailable:
                    violations.append(
                        f"wave {k} takes down {len(hit)} replicas of {s.name} (on {', '.join(sorted(set(hit)))}); max_unavailable is {s.max_unavailable}"
                    )
        return violations

    def render(self, problem: UpgradeProblem, solution: UpgradeSolution) -> str:
        """One line per wave with its nodes, then the wave count."""
        lines = [f"wave {k}: {', '.join(wave)}" for k, wave in enumerate(solution.waves, 1)]
        waves, nodes = len(solution.waves), len(problem.nodes)
        lines.append(f"{waves} wave{'s' * (waves != 1)} for {nodes} node{'s' * (nodes != 1)}")
        return "\n".join(lines)

    def baseline(self, problem: UpgradeProblem) -> UpgradeSolution:
        """Greedy: nodes hosting the most replicas first, each into the first wave where the budgets hold."""
        wave = greedy(replica_counts(problem), tuple(s.max_unavailable for s in problem.services))
        waves: list[list[str]] = [[] for _ in range(max(wave) + 1)]
        for name, w in zip(problem.nodes, wave, strict=True):
            waves[w].append(name)
        return UpgradeSolution(waves=waves)

    def example(self) -> dict[str, Any]:
        """Five k3s nodes and four services with their PodDisruptionBudgets."""
        return {
            "nodes": ["k3s-01", "k3s-02", "k3s-03", "k3s-04", "k3s-05"],
            "services": [
                {"name": "postgres", "replicas_on": ["k3s-01", "k3s-02", "k3s-03"], "max_unavailable": 1},
                {"name": "traefik", "replicas_on": ["k3s-01", "k3s-04"], "max_unavailable": 1},
                {"name": "nextcloud", "replicas_on": ["k3s-02", "k3s-04", "k3s-05", "k3s-05"], "max_unavailable": 2},
                {"name": "redis", "replicas_on": ["k3s-03", "k3s-05"], "max_unavailable": 1},
            ],
        }

    # --- data ---

    def generate(self, rng: np.random.Generator, n: int, bucket: str, **options: Any) -> list[Example]:
        """n clusters with their target plans (`target`: optimal, at most 8 waves, by CP-SAT).

        Options: nodes (lo, hi), services (lo, hi), stateless (share of stateless services, default
        0.15), work (CP-SAT's deterministic time per label, default LABEL_WORK; see `canonical`; with
        hints up to twice that, see `nearest`), keep_optimal_draft (with hints: the share of clusters
        whose greedy plan is already optimal that are kept, default 1; the rest are drawn again).
        Why keep_optimal_draft: the greedy is optimal on 86% of large and 99% of small training
        clusters, so a hints model sees few of the edits it must learn; a lower share gives it more
        of them per CPU-minute (at the price of a prior shifted towards editing).
        Nothing is dropped silently: each example's info["dropped"] counts the instances left out
        before it, labels not proven within that work (`limit_hits`, a label that may be wrong would
        teach a wrong answer), plans of more than 8 waves (`too_many_waves`, beyond the model's
        output) and optimal drafts left out by keep_optimal_draft (`optimal_draft`). `trm data build`
        sums these counts into the dataset's meta.json.
        """
        if bucket not in BUCKETS:
            raise ValueError(f"unknown upgrade bucket {bucket!r}; use one of {sorted(BUCKETS)}")
        node_range = options.get("nodes", BUCKETS[bucket][0])
        service_range = options.get("services", BUCKETS[bucket][1])
        stateless = float(options.get("stateless", 0.15))
        work = float(options.get("work", LABEL_WORK))
        keep = float(options.get("keep_optimal_draft", 1.0))
        if not 0 < keep <= 1:
            raise ValueError(f"generator option keep_optimal_draft must be in (0, 1], got {keep}")
        if keep < 1 and not self.hints:
            raise ValueError("generator option keep_optimal_draft needs the task option hints=true (there is no draft without it)")
        out: list[Example] = []
        reasons = ("limit_hits", "too_many_waves", "optimal_draft")
        dropped = dict.fromkeys(reasons, 0)
        while len(out) < n:
            nodes, services = int(rng.integers(node_range[0], node_range[1] + 1)), int(rng.integers(service_range[0], service_range[1] + 1))
            problem = random_problem(rng, nodes, services, stateless)
            try:
                wave, facts = self.target(problem, work)
            except LimitReached:
                dropped["limit_hits"] += 1
                continue
            if max(wave) >= MAX_WAVES:
                dropped["too_many_waves"] += 1
                continue
            if keep < 1 and facts["moved"] == 0 and rng.random() >= keep:  # rng only drawn when asked: default data unchanged
                dropped["optimal_draft"] += 1
                continue
            info = {"nodes": len(problem.nodes), "services": len(problem.services), "optimal_waves": max(wave) + 1, **facts, "dropped": dropped}
            out.append(Example(problem, self.encode(problem), self._label(wave), bucket, canonical_key(problem), info))
            dropped = dict.fromkeys(reasons, 0)
        return out

    def augment(self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: a random order of the services (rows 1..16); the label (and a draft in row 0) stays as it is.

        Node order is not permuted: the canonical plan depends on it (lexicographically first in
        node order), and for most generated problems several optimal plans exist, so a permuted
        copy would mostly teach a second answer for the same problem.
        """
        B = len(inputs)
        x = inputs.reshape(B, SIZE, SIZE)
        rows = np.concatenate([np.zeros((B, 1), dtype=np.int64), 1 + permutations(rng, x[:, 1:, 0] != EMPTY)], axis=1)
        return np.take_along_axis(x, rows[:, :, None], axis=1).reshape(B, -1), labels


def canonical_key(problem: UpgradeProblem) -> str:
    """The same key under node and service renaming and reordering: a Weisfeiler-Lehman hash
    (networkx) of the node-service graph, replica counts on the edges and budgets on the services,
    on capped values as the model sees them."""
    graph = nx.Graph()
    graph.add_nodes_from((("n", j), {"label": "node"}) for j in range(len(problem.nodes)))
    graph.add_nodes_from((("s", t), {"label": f"mu{min(s.max_unavailable, MU_CAP)}"}) for t, s in enumerate(problem.services))
    for j, row in enumerate(replica_counts(problem)):
        graph.add_edges_from((("n", j), ("s", t), {"count": str(min(c, REPLICA_CAP))}) for t, c in enumerate(row) if c)
    return wl_hash(graph, edge_attr="count")


# --- generator -------------------------------------------------------------------------------------

SERVICES = (
    "postgres", "mariadb", "redis", "traefik", "coredns", "authelia", "nextcloud", "immich-server", "grafana",
    "prometheus", "loki", "minio", "gitea", "vaultwarden", "home-assistant", "mosquitto", "longhorn-manager",
    "paperless", "jellyfin", "cert-manager", "metallb-speaker", "api", "worker", "frontend",
)


def random_problem(rng: np.random.Generator, n_nodes: int, n_services: int, stateless: float = 0.15) -> UpgradeProblem:
    """Stateful services (2-5 replicas, max_unavailable mostly 1, some 2) spread one per node or stacked
    within their budget, and a share `stateless` of stateless ones with more replicas and larger budgets."""
    prefix = ("k3s", "node", "nuc", "pi")[int(rng.integers(4))]
    nodes = [f"{prefix}-{j + 1:02d}" for j in range(n_nodes)]
    names = [str(v) for v in rng.choice(SERVICES, size=min(n_services, len(SERVICES)), replace=False)]
    names += [f"{names[i % len(names)]}-{i // len(names) + 1}" for i in range(len(names), n_services)]  # clusters beyond the name list
    services = []
    for name in names:
        if rng.random() < stateless:  # many replicas, a large budget
            replicas = int(rng.integers(3, 9))
            budget = max(2, int(replicas * rng.uniform(0.25, 0.5)))
        else:
            replicas = int(rng.integers(2, 6))
            budget = 1 if rng.random() < 0.65 else 2
        if rng.random() < 0.6 and replicas <= n_nodes:  # anti-affine: one per node
            on = [nodes[j] for j in rng.choice(n_nodes, size=replicas, replace=False)]
        else:  # stacked where the scheduler put them, at most `budget` on one node
            on, load = [], [0] * n_nodes
            while len(on) < replicas:
                open_nodes = [j for j in range(n_nodes) if load[j] < budget]
                if not open_nodes:
                    break
                j = open_nodes[int(rng.integers(len(open_nodes)))]
                load[j] += 1
                on.append(nodes[j])
        services.append(UpgradeService(name=name, replicas_on=sorted(on), max_unavailable=budget))
    return UpgradeProblem(nodes=nodes, services=services)
