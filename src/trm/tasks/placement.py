"""Pod placement: put every pod on the fewest nodes, within free CPU and memory and anti-affinity groups.

Encoding: 64 rows x 4 columns = 256 tokens, row-major. Rows 0..15 are node slots (the given node
order), rows 16..63 pod slots in the baseline's size order: largest first by the larger of the
pod's CPU and memory shares of the largest node, ties kept in the given order (decode recomputes
it to map rows back to pods).

    PAD 0; markers NODE 1, POD 2, EMPTY_SLOT 3
    resource level 0..16 -> 4..20     unit = largest node capacity of that resource / 16;
                                      node level = floor(cap / unit), pod level = ceil(req / unit)
    NO_GROUP 21; group k -> 22..37    groups numbered by first appearance in the pod rows
    node i -> 38..53                  the output vocabulary

    node row: [NODE, cpu level, mem level, PAD]
    pod row:  [POD, cpu level, mem level, group]        label: column 3 = node-index token
    unused:   [EMPTY_SLOT, PAD, PAD, PAD]                every other label position is 0

With the task option `hints` (64 x 5 = 320 tokens, same vocabulary) the rows carry a valid packing
on the exact numbers, `hint_placement`: first-fit decreasing's node set (the classical answer's),
filled in node order as the labels are (FFD's own nodes where that leaves a pod over). It sits in
column 3, where the answer goes, so the model's starting point is the hint itself (a draft it
edits, not a column it must learn to copy from; a first run with the hint in column 4 of an mlp_t
network stayed below the hint's own agreement with the labels after 37 minutes):

    node row: [NODE, cpu level, mem level, free level, PAD]   free level: what the hint leaves free
                                                               on the scarcer resource (PAD: unused)
    pod row:  [POD, cpu level, mem level, hint node, group]    hint node: node-index token (PAD: none)
    unused:   [EMPTY_SLOT, PAD, PAD, PAD, PAD]                 label: column 3 = node-index token

Labels are optimal (fewest nodes, by CP-SAT) and canonical: among optimal placements whose node set
leaves no larger node unused (see `_dominators`), the lexicographically first node-per-pod vector,
pods in size order (see `canonical`); with hints, among those the ones leaving the most pods on
their draft node first (`nearest`), so an optimal draft is its own label. The model covers this canvas; any larger problem is answered
by `solve` (CP-SAT under a time limit, with a proven bound). Levels round in the conservative
direction (nodes down, pods up), so the model sees the problem approximately; decode works on
exact values and repairs what does not fit.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from agent_reasoning.types import PlacementNode, PlacementPod, PlacementProblem, PlacementSolution, TaskType
from trm.tasks.base import Example, InvalidProblem, OutsideCanvas, SolverAnswer, Task
from trm.tasks.common import STATUS_NAMES, Budget, CpResult, LimitReached, bool_option, keep_most, short_hash

MAX_NODES, MAX_PODS, MAX_GROUPS = 16, 48, 16
LEVELS = 16
COLS = 4
HINT_COL = 3  # where a hints model reads the draft: the answer's own column (see the module docstring)
PAD, NODE, POD, EMPTY_SLOT = 0, 1, 2, 3
LEVEL0 = 4  # resource level l -> LEVEL0 + l
NO_GROUP = LEVEL0 + LEVELS + 1  # 21
GROUP0 = NO_GROUP + 1  # 22
NODE_INDEX0 = GROUP0 + MAX_GROUPS  # 38
VOCAB = NODE_INDEX0 + MAX_NODES  # 54
# CP-SAT work per training label (deterministic time, about 5 s of one core here; the same on any
# machine and load, so labels and limit hits repeat, see common.Budget); past it: a counted limit hit
LABEL_WORK = 0.5
WALL_FACTOR = 60  # a label's wall-clock safety net: this many seconds per work unit (about 6x the usual rate)

BUCKETS = {"small": ((4, 8), (8, 20)), "large": ((9, 16), (21, 48))}  # (nodes, pods) ranges

Caps = list[tuple[int, int]]  # (cpu, mem) per node
Pods = list[tuple[int, int, int]]  # (cpu, mem, group index or -1) per pod, in search order


# --- the problem as numbers ------------------------------------------------------------------------


def pod_order(problem: PlacementProblem) -> list[int]:
    """Pod indices, largest first by the larger of its CPU and memory shares of the largest node;
    ties by the sum of shares, then equal pods together, in the given order."""
    max_c = max(n.cpu_millicores for n in problem.nodes) or 1
    max_m = max(n.memory_mib for n in problem.nodes) or 1

    first: dict[str, int] = {}
    for i, p in enumerate(problem.pods):
        if p.group is not None:
            first.setdefault(p.group, i)

    def key(i: int) -> tuple[float, float, int, int, int, int]:
        p = problem.pods[i]
        c, m = p.cpu_millicores / max_c, p.memory_mib / max_m
        # equal pods of one group (or of none) next to each other: the search treats them as interchangeable
        return (-max(c, m), -(c + m), -p.cpu_millicores, -p.memory_mib, first[p.group] if p.group is not None else -1, i)

    return sorted(range(len(problem.pods)), key=key)


def group_ids(problem: PlacementProblem, order: list[int]) -> dict[int, int]:
    """Pod index -> group number (0, 1, ... by first appearance in `order`); ungrouped pods are absent."""
    numbers: dict[str, int] = {}
    out = {}
    for i in order:
        g = problem.pods[i].group
        if g is not None:
            out[i] = numbers.setdefault(g, len(numbers))
    return out


def levels(problem: PlacementProblem) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Quantized (cpu, mem) levels of the nodes and the pods (given order), as the model sees them."""
    max_c = max(n.cpu_millicores for n in problem.nodes)
    max_m = max(n.memory_mib for n in problem.nodes)

    def node_level(v: int, top: int) -> int:
        return LEVELS * v // top if top else 0

    def pod_level(v: int, top: int) -> int:
        if v == 0:
            return 0
        return min(LEVELS, -(-LEVELS * v // top)) if top else LEVELS

    nodes = [(node_level(n.cpu_millicores, max_c), node_level(n.memory_mib, max_m)) for n in problem.nodes]
    pods = [(pod_level(p.cpu_millicores, max_c), pod_level(p.memory_mib, max_m)) for p in problem.pods]
    return nodes, pods


def _numbers(problem: PlacementProblem) -> tuple[Caps, Pods, list[int]]:
    order = pod_order(problem)
    groups = group_ids(problem, order)
    caps = [(n.cpu_millicores, n.memory_mib) for n in problem.nodes]
    pods = [(problem.pods[i].cpu_millicores, problem.pods[i].memory_mib, groups.get(i, -1)) for i in order]
    return caps, pods, order


# --- solvers ---------------------------------------------------------------------------------------


def first_fit(caps: Caps, pods: Pods) -> list[int]:
    """Each pod (in order) on the first node where it fits and its group is absent; -1 where none."""
    rem_c, rem_m = [c for c, _ in caps], [m for _, m in caps]
    held: list[set[int]] = [set() for _ in caps]
    out = []
    for c, m, g in pods:
        for j in range(len(caps)):
            if rem_c[j] >= c and rem_m[j] >= m and g not in held[j]:
                rem_c[j] -= c
                rem_m[j] -= m
                if g >= 0:
                    held[j].add(g)
                out.append(j)
                break
        else:
            out.append(-1)
    return out


def ffd(caps: Caps, pods: Pods) -> list[int]:
    """First-fit decreasing (pods come largest first): the nodes tried largest first, since
    opening big nodes first is what keeps the count low. Node per pod (given indices); -1 where none."""
    max_c, max_m = max(c for c, _ in caps) or 1, max(m for _, m in caps) or 1
    nodes = sorted(range(len(caps)), key=lambda j: (-max(caps[j][0] / max_c, caps[j][1] / max_m), -(caps[j][0] / max_c + caps[j][1] / max_m), j))
    return [nodes[j] if j >= 0 else -1 for j in first_fit([caps[j] for j in nodes], pods)]


def groups_first(caps: Caps, pods: Pods) -> list[int]:
    """First-fit decreasing with the pods of anti-affinity groups first, the largest groups first
    (each pod of a group needs a node of its own; plain FFD may have filled those nodes before a
    large group's last pods come). Node per pod (given indices); -1 where none."""
    size = Counter(g for _, _, g in pods if g >= 0)
    order = sorted(range(len(pods)), key=lambda r: -size[pods[r][2]])  # stable: largest first within
    placed = ffd(caps, [pods[r] for r in order])
    out = [-1] * len(pods)
    for k, r in enumerate(order):
        out[r] = placed[k]
    return out


def start_placement(caps: Caps, pods: Pods) -> list[int]:
    """The exact solver's start: FFD's placement, else (FFD leaves pods over) the groups-first one
    where that places every pod. Node per pod; FFD's placement with -1 where neither places all."""
    placed = ffd(caps, pods)
    if -1 not in placed or not any(g >= 0 for _, _, g in pods):
        return placed
    alternative = groups_first(caps, pods)
    return alternative if -1 not in alternative else placed


def hint_placement(caps: Caps, pods: Pods) -> list[int]:
    """A valid placement on as many nodes as FFD, numbered as the labels are: the pods (in order)
    first-fit on FFD's node set taken in index order (FFD's own placement where that leaves a pod
    over), moved onto a node set closed under domination with equal pods on ascending nodes. Node
    per pod; FFD's placement with -1 where FFD leaves a pod over. Measured on data/placement's
    test split (2000 problems): equal to the canonical label on 23% of problems (FFD 5%), the same
    node on 53% of pods (FFD 30%)."""
    placed = ffd(caps, pods)
    if -1 in placed:
        return placed
    used = sorted(set(placed))
    refill = first_fit([caps[j] for j in used], pods)
    # in the form the CP-SAT model admits (`_normalise`: FFD's own numbering leaves equal pods out of
    # order and may skip a larger node), so that an optimal draft is its own `nearest` label
    return _normalise(caps, pods, placed if -1 in refill else [used[j] for j in refill])


def _place(caps: Caps, pods: Pods, order: list[int], prefer: list[list[int]]) -> list[int]:
    """Node per pod (row): pods visited in `order`, each on the first of its `prefer` nodes where it
    fits and its group is absent, else the first such node in use, else the first unused; -1 where none."""
    rem_c, rem_m = [c for c, _ in caps], [m for _, m in caps]
    held: list[set[int]] = [set() for _ in caps]
    used = [False] * len(caps)
    assign = [-1] * len(pods)
    for r in order:
        c, m, g = pods[r]
        rest = [j for j in range(len(caps)) if j not in prefer[r]]
        candidates = prefer[r] + [j for j in rest if used[j]] + [j for j in rest if not used[j]]
        j = next((j for j in candidates if rem_c[j] >= c and rem_m[j] >= m and g not in held[j]), -1)
        if j >= 0:
            rem_c[j] -= c
            rem_m[j] -= m
            if g >= 0:
                held[j].add(g)
            used[j] = True
            assign[r] = j
    return assign


def _min_nodes(caps: Caps, pods: Pods) -> int:
    """A proven lower bound on the nodes any placement needs (cheap; at least 1).

    At least the largest anti-affinity group, and at least the fewest nodes whose free CPU and
    memory both cover the demand. Up to MAX_NODES nodes the node sets are enumerated, restricted to
    sets closed under domination (see `_dominators`): any placement on k nodes moves onto such a
    set of k nodes, so the bound holds for every placement. Larger clusters count each resource
    alone (largest nodes first). n + 1 when even all nodes lack the capacity."""
    n = len(caps)
    sizes: dict[int, int] = {}
    for _, _, g in pods:
        if g >= 0:
            sizes[g] = sizes.get(g, 0) + 1
    floor = max(sizes.values(), default=1)
    need_c, need_m = sum(p[0] for p in pods), sum(p[1] for p in pods)
    if n > MAX_NODES:
        counts = []
        for need, have in ((need_c, sorted((c for c, _ in caps), reverse=True)), (need_m, sorted((m for _, m in caps), reverse=True))):
            total, k = 0, 0
            while total < need and k < n:
                total += have[k]
                k += 1
            counts.append(k if total >= need else n + 1)
        return max(floor, *counts)
    sets = np.arange(1 << n, dtype=np.int64)
    members = (sets[:, None] >> np.arange(n)) & 1  # [2^n, n]
    closed = np.ones(1 << n, dtype=bool)
    for j, dom in enumerate(_dominators(caps)):
        closed &= (members[:, j] == 0) | ((sets & dom) == dom)
    fits = closed & (members @ np.array([c for c, _ in caps]) >= need_c)
    fits &= members @ np.array([m for _, m in caps]) >= need_m
    if not fits.any():
        return n + 1
    return max(floor, int(members[fits].sum(1).min()))


def _dominators(caps: Caps) -> list[int]:
    """Bit mask per node of the nodes at least as large in both resources (equal ones: lower index).

    A placement never needs a node while a node dominating it stays empty: moving the smaller
    node's pods onto the larger empty one keeps every limit and the count. So the solvers only
    consider node sets closed under domination, which prunes symmetric answers without losing any
    optimum, and the canonical label is defined among them."""
    out = []
    for j, (c, m) in enumerate(caps):
        mask = 0
        for i, (c2, m2) in enumerate(caps):
            if i != j and c2 >= c and m2 >= m and ((c2, m2) != (c, m) or i < j):
                mask |= 1 << i
        out.append(mask)
    return out


def _normalise(caps: Caps, pods: Pods, assign: list[int]) -> list[int]:
    """A valid placement moved onto a node set closed under domination, equal pods in a row on
    ascending nodes: the form the CP-SAT model admits (same node count), for use as a hint."""
    assign = list(assign)
    dominators = _dominators(caps)
    changed = True
    while changed:
        changed = False
        used = set(assign)
        for j in sorted(used):
            free = [i for i in range(len(caps)) if dominators[j] >> i & 1 and i not in used]
            if free:
                target = max(free, key=lambda i: (caps[i], -i))  # the largest empty dominator
                assign = [target if a == j else a for a in assign]
                changed = True
                break
    start = 0
    for i in range(1, len(pods) + 1):
        if i == len(pods) or pods[i] != pods[start]:
            assign[start:i] = sorted(assign[start:i])
            start = i
    return assign


@dataclass
class _Model:
    """The CP-SAT model of one placement: x[i, j] = pod i (search order) on node j."""

    model: cp_model.CpModel
    x: dict[tuple[int, int], cp_model.IntVar]
    used: list[cp_model.IntVar]  # node j holds a pod
    index: list[cp_model.LinearExpr]  # node index of pod i
    caps: Caps
    pods: Pods

    def hint(self, assign: list[int]) -> None:
        self.model.ClearHints()
        for (i, j), v in self.x.items():
            self.model.AddHint(v, assign[i] == j)
        on = set(assign)
        for j, u in enumerate(self.used):
            self.model.AddHint(u, j in on)

    def read(self, solver: cp_model.CpSolver) -> list[int]:
        assign = [-1] * len(self.pods)
        for (i, j), v in self.x.items():
            if solver.BooleanValue(v):
                assign[i] = j
        return assign


def _build(caps: Caps, pods: Pods) -> _Model:
    """Every pod on exactly one node it fits; per node CPU and memory within the free capacity and
    at most one pod per anti-affinity group; the used nodes closed under domination (`_dominators`);
    equal pods in a row on ascending node indices (strictly, within a group). Objective: nodes used.
    Both symmetry cuts keep at least one optimum, and the canonical one (see `canonical`)."""
    model = cp_model.CpModel()
    n, m = len(caps), len(pods)
    used = [model.NewBoolVar("") for _ in range(n)]
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    on: list[list[int]] = [[] for _ in range(n)]
    for i, (c, mm, _) in enumerate(pods):
        here = []
        for j, (cap_c, cap_m) in enumerate(caps):
            if c <= cap_c and mm <= cap_m:
                v = x[i, j] = model.NewBoolVar("")
                model.AddImplication(v, used[j])
                here.append(v)
                on[j].append(i)
        model.AddExactlyOne(here)
    members: dict[int, list[int]] = {}
    for i, p in enumerate(pods):
        if p[2] >= 0:
            members.setdefault(p[2], []).append(i)
    for j, (cap_c, cap_m) in enumerate(caps):
        xs = [x[i, j] for i in on[j]]
        if sum(pods[i][0] for i in on[j]) > cap_c:
            model.Add(cp_model.LinearExpr.WeightedSum(xs, [pods[i][0] for i in on[j]]) <= cap_c)
        if sum(pods[i][1] for i in on[j]) > cap_m:
            model.Add(cp_model.LinearExpr.WeightedSum(xs, [pods[i][1] for i in on[j]]) <= cap_m)
        model.AddBoolOr(xs).OnlyEnforceIf(used[j])  # used means holds a pod
        for group in members.values():
            here = [x[i, j] for i in group if (i, j) in x]
            if len(here) > 1:
                model.AddAtMostOne(here)
    for j, dom in enumerate(_dominators(caps)):
        for i in range(n):
            if dom >> i & 1:
                model.AddImplication(used[j], used[i])
    index = []
    for i in range(m):
        js = [j for j in range(n) if (i, j) in x]
        index.append(cp_model.LinearExpr.WeightedSum([x[i, j] for j in js], js))
    for i in range(1, m):
        if pods[i] == pods[i - 1]:
            model.Add(index[i] >= index[i - 1] + (pods[i][2] >= 0))
    model.Minimize(cp_model.LinearExpr.Sum(used))
    return _Model(model, x, used, index, caps, pods)


def _solve_nodes(mdl: _Model, bound: int, hint: list[int] | None, budget: Budget, workers: int) -> tuple[cp_model.CpSolver, int]:
    """Minimise the nodes used on `mdl` (at least `bound`), from `hint` if given."""
    mdl.model.Add(cp_model.LinearExpr.Sum(mdl.used) >= bound)
    if hint is not None:
        mdl.hint(_normalise(mdl.caps, mdl.pods, hint))
    # Presolve costs more than it saves on these small models (about 2x on the large bucket).
    return budget.solve(mdl.model, workers, cp_model_presolve=False)


def exact(caps: Caps, pods: Pods, *, time_limit_s: float, hint: list[int] | None = None, workers: int = 1, cold: bool = False) -> CpResult:
    """The fewest nodes by CP-SAT within `time_limit_s` seconds (wall clock).

    `hint`: a valid placement (node per pod, search order) to start from; else `start_placement`'s
    (first-fit decreasing's, or groups first where FFD leaves pods over), unless `cold` (no start at
    all: the benchmark's "without a hint"). Returns the best placement found (the hint's or the
    start's if CP-SAT found none in time), its node count, the proven lower bound (the cheap `_min_nodes`, raised by CP-SAT's
    bound) and whether they meet. Raises ValueError when CP-SAT proves that no placement exists."""
    return _exact(caps, pods, budget=Budget(time_limit_s), hint=hint, workers=workers, cold=cold)[0]


def _exact(
    caps: Caps, pods: Pods, *, budget: Budget, hint: list[int] | None = None, workers: int = 1, bound: int | None = None, cold: bool = False
) -> tuple[CpResult, _Model | None]:
    started = time.perf_counter()
    bound = _min_nodes(caps, pods) if bound is None else bound
    start = start_placement(caps, pods)
    if hint is not None and (len(hint) != len(pods) or not _valid(caps, pods, hint)):
        hint = None
    if hint is None and -1 not in start and not cold:
        hint = start
    if hint is not None and len(set(hint)) <= bound:  # the start already meets the bound: optimal
        used = len(set(hint))
        return CpResult(list(hint), used, used, True, "OPTIMAL", time.perf_counter() - started, {"proved_by": "bound"}), None
    mdl = _build(caps, pods)
    solver, status = _solve_nodes(mdl, bound, hint, budget, workers)
    seconds = time.perf_counter() - started
    info = {"conflicts": solver.NumConflicts(), "branches": solver.NumBranches()}
    if status == cp_model.INFEASIBLE:
        raise ValueError("the pods fit on no combination of the nodes")
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign = mdl.read(solver)
        objective = len(set(assign))
        bound = min(objective, max(bound, math.ceil(solver.BestObjectiveBound() - 1e-6)))
        return CpResult(assign, objective, bound, status == cp_model.OPTIMAL or objective <= bound, STATUS_NAMES[status], seconds, info), mdl
    if -1 not in start and (hint is None or len(set(start)) < len(set(hint))):
        hint = start  # CP-SAT found nothing in time: the heuristic start is still an answer
    objective = len(set(hint)) if hint is not None else None
    info["fallback"] = "hint" if hint is not None else None
    return CpResult(hint, objective, bound, objective is not None and objective <= bound, STATUS_NAMES[status], seconds, info), mdl


def _valid(caps: Caps, pods: Pods, assign: list[int]) -> bool:
    """A complete placement within every node's capacity and anti-affinity groups."""
    if any(not 0 <= j < len(caps) for j in assign):
        return False
    rem_c, rem_m = [c for c, _ in caps], [m for _, m in caps]
    held: list[set[int]] = [set() for _ in caps]
    for (c, m, g), j in zip(pods, assign, strict=True):
        rem_c[j] -= c
        rem_m[j] -= m
        if g >= 0:
            if g in held[j]:
                return False
            held[j].add(g)
    return min(rem_c) >= 0 and min(rem_m) >= 0


LEX_BITS = 62  # CP-SAT's objective must fit in int64, summed over every x variable's coefficient
LEX_FIRST = 0.05  # work units (about half a second) for a first-solution lexicographic search before the slower, surer route


def _lex_first(caps: Caps, pods: Pods, k: int, budget: Budget, cap: float) -> tuple[list[int] | None, int]:
    """The lexicographically first placement on at most k nodes (closed node set), by CP-SAT's
    fixed search: pods in order, each on its lowest-index node first. Its first solution is the
    lexicographic minimum (a complete depth-first search in that order; propagation and learned
    clauses only cut what cannot be completed). At most `cap` of the budget. Returns (placement or
    None, CP-SAT status)."""
    mdl = _build(caps, pods)
    mdl.model.Add(cp_model.LinearExpr.Sum(mdl.used) <= k)
    mdl.model.ClearObjective()
    mdl.model.AddDecisionStrategy(list(mdl.x.values()), cp_model.CHOOSE_FIRST, cp_model.SELECT_MAX_VALUE)  # x in (pod, node) order
    solver, status = budget.solve(mdl.model, 1, cap, search_branching=cp_model.FIXED_SEARCH, cp_model_presolve=False)
    return (mdl.read(solver) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None), status


def _lex_blocks(
    caps: Caps, pods: Pods, k: int, assign: list[int], budget: Budget, info: dict[str, Any], mdl: _Model | None = None
) -> list[int]:
    """The lexicographically first placement on at most k nodes, from a valid one, by CP-SAT
    minimisations block by block (a block's objective weighs each pod n times its successor, so its
    optimum is the block's lexicographic minimum; the block is then fixed). Slower per instance than
    `_lex_first` but never stuck in one deep branch. `mdl`: the model to minimise in (with the
    caller's extra constraints); else a fresh `_build`. Raises LimitReached when the budget runs out."""
    if mdl is None:
        mdl = _build(caps, pods)
        mdl.model.Add(cp_model.LinearExpr.Sum(mdl.used) <= k)
    n, m = len(caps), len(pods)
    # n^block * n^2 < 2^62: the block's weights summed over all n indices of every pod stay in int64
    per_block = max(1, int(LEX_BITS // math.log2(max(n, 2))) - 2)
    for lo in range(0, m, per_block):
        block = range(lo, min(m, lo + per_block))
        mdl.model.Minimize(cp_model.LinearExpr.WeightedSum([mdl.index[i] for i in block], [n ** (block[-1] - i) for i in block]))
        mdl.hint(assign)
        solver, status = budget.solve(mdl.model, 1, cp_model_presolve=False)
        info["solves"] += 1
        if status == cp_model.MODEL_INVALID:  # pragma: no cover - a bug, not a limit
            raise RuntimeError(f"CP-SAT rejects the tie-break model: {mdl.model.Validate()}")
        if status != cp_model.OPTIMAL:
            raise LimitReached(f"the canonical tie-break ran out of time at pod {lo}", assign)
        assign = mdl.read(solver)
        for i in block:
            mdl.model.Add(mdl.index[i] == assign[i])
    return assign


def canonical(caps: Caps, pods: Pods, work: float = LABEL_WORK) -> tuple[list[int], dict[str, Any]]:
    """The canonical optimal placement (node per pod, search order) and solver facts.

    Canonical: of all placements on the fewest nodes whose node set is closed under domination
    (`_dominators`), the lexicographically first node-per-pod vector, pods in size order.
    First a lexicographic first-solution search on as many nodes as the cheap bound says (when it
    finds one, that is optimal and canonical at once); else CP-SAT proves the optimum k, and the
    first-solution search runs on k nodes, with block-wise minimisation (`_lex_blocks`) when that
    search stalls. Raises LimitReached (`best`: the best placement known) when `work` (CP-SAT's
    deterministic time, see `Budget`; WALL_FACTOR times as many seconds of wall clock) runs
    out first, ValueError when no placement exists. info: ffd_nodes, lower_bound, solves (CP-SAT
    runs), seconds."""
    started = time.perf_counter()
    budget = Budget(WALL_FACTOR * work, work=work)
    bound = _min_nodes(caps, pods)
    info: dict[str, Any] = {"ffd_nodes": _ffd_count(caps, pods), "lower_bound": bound, "solves": 1}
    assign, status = _lex_first(caps, pods, bound, budget, LEX_FIRST)
    if assign is None:
        first, _ = _exact(caps, pods, budget=budget, bound=bound + (status == cp_model.INFEASIBLE))
        info["solves"] += 1
        if not first.optimal:
            raise LimitReached(f"no proven optimum within {work:g} work units (best {first.objective}, bound {first.bound})", first.values)
        k = first.objective
        assign, status = _lex_first(caps, pods, k, budget, LEX_FIRST)
        info["solves"] += 1
        if assign is None:
            assign = _lex_blocks(caps, pods, k, _normalise(caps, pods, first.values), budget, info)
    info["seconds"] = round(time.perf_counter() - started, 4)
    info["work"] = round(budget.spent, 4)
    return assign, info


def _admissible(caps: Caps, pods: Pods, assign: list[int]) -> bool:
    """Whether `_build`'s model admits `assign`: valid, its node set closed under domination, equal
    pods in a row on ascending nodes (strictly within a group)."""
    if len(assign) != len(pods) or not _valid(caps, pods, assign):
        return False
    used = set(assign)
    if any(j in used and any(dom >> i & 1 and i not in used for i in range(len(caps))) for j, dom in enumerate(_dominators(caps))):
        return False
    return all(pods[i] != pods[i - 1] or assign[i] >= assign[i - 1] + (pods[i][2] >= 0) for i in range(1, len(pods)))


def nearest(caps: Caps, pods: Pods, draft: list[int], work: float = LABEL_WORK) -> tuple[list[int], dict[str, Any]]:
    """The optimal placement closest to `draft` (node per pod, search order; -1 for none, e.g.
    `hint_placement`) and solver facts: of the placements `_build` admits (node set closed under
    domination, equal pods in a row on ascending nodes) on the fewest nodes, those leaving the most
    pods on their draft node, and of these the lexicographically first.

    Why: a model that reads the draft learns only the moves an optimum needs. Where the draft is
    optimal (and in that form) the answer is the draft itself; the lexicographically first optimum
    differed from an optimal draft on 28% of small and 10% of large problems (data/placement-hints'
    test split before these labels), and from a non-optimal one in 9 (small) to 22 (large) pods on
    average, edits the model had to learn on top of the moves that save a node. Deterministic like `canonical` (the
    draft is a function of the problem). Raises LimitReached when the optimum is not proven within
    `work` (see `canonical`), or the nearness search and its tie-break not within another `work`.
    info: canonical's, plus `moved` (pods off their draft node)."""
    started = time.perf_counter()
    assign, info = canonical(caps, pods, work)
    k = len(set(assign))
    if len(set(draft)) <= k and _admissible(caps, pods, draft):  # the draft is optimal: its own nearest optimum
        return list(draft), {**info, "moved": 0}
    budget = Budget(WALL_FACTOR * work, work=work)
    mdl = _build(caps, pods)
    mdl.model.Add(cp_model.LinearExpr.Sum(mdl.used) <= k)
    mdl.hint(assign)
    solver, kept = keep_most(mdl.model, [mdl.x[i, j] for i, j in enumerate(draft) if (i, j) in mdl.x], budget, assign)
    info["solves"] += 1
    assign = _lex_blocks(caps, pods, k, mdl.read(solver), budget, info, mdl)
    info["moved"] = len(pods) - kept
    info["seconds"] = round(time.perf_counter() - started, 4)
    info["work"] = round(info["work"] + budget.spent, 4)
    return assign, info


def _ffd_count(caps: Caps, pods: Pods) -> int:
    """Nodes first-fit decreasing uses (len(caps) + 1 when it leaves a pod unplaced)."""
    a = ffd(caps, pods)
    return len(caps) + 1 if -1 in a else len(set(a))


# --- the task --------------------------------------------------------------------------------------


class PlacementTask(Task[PlacementProblem, PlacementSolution]):
    """Pod placement on the fewest nodes: the 64x4 token table of the module docstring (64x5 with hints), CP-SAT labels and exact solve."""

    exact_solver = True
    name = "placement"
    task_type = TaskType.OPTIMIZATION
    Problem = PlacementProblem
    Solution = PlacementSolution
    fallback_by_default = True
    has_objective = True
    needs_probs = True  # decode places the pods it is surest of first
    buckets = tuple(BUCKETS)
    description = (
        "Place every pod on the fewest nodes within their free CPU and memory; pods of one anti-affinity "
        f"group never share a node. Up to {MAX_NODES} nodes, {MAX_PODS} pods, {MAX_GROUPS} groups."
    )

    vocab_size = VOCAB  # type: ignore[assignment]

    def __init__(self, hints: bool = False) -> None:
        self.hints = bool_option("hints", hints)
        self.cols = COLS + (1 if self.hints else 0)

    @property
    def seq_len(self) -> int:
        """64 rows of `cols` tokens: 256, or 320 with hints."""
        return (MAX_NODES + MAX_PODS) * self.cols

    def options(self) -> dict[str, Any]:
        """{"hints": true} for a model that reads a draft packing on FFD's nodes (`hint_placement`); {} otherwise."""
        return {"hints": True} if self.hints else {}

    # --- problems ---

    def check(self, problem: PlacementProblem) -> None:
        """Reject problems no placement can answer, naming the cause (any size is fine here)."""
        nodes, pods = problem.nodes, problem.pods
        sizes: dict[str, int] = {}
        for p in pods:
            if p.group is not None:
                sizes[p.group] = sizes.get(p.group, 0) + 1
        for g, size in sizes.items():
            if size > len(nodes):
                raise InvalidProblem("problem.pods", f"group {g!r} has {size} pods but there are only {len(nodes)} nodes; its pods need distinct nodes")
        for i, p in enumerate(pods):
            if not any(n.cpu_millicores >= p.cpu_millicores and n.memory_mib >= p.memory_mib for n in nodes):
                raise InvalidProblem(f"problem.pods.{i}", f"pod {p.name!r} ({p.cpu_millicores}m, {p.memory_mib} MiB) fits on no node")
        for what, unit, need, have in (
            ("CPU", "m", sum(p.cpu_millicores for p in pods), sum(n.cpu_millicores for n in nodes)),
            ("memory", " MiB", sum(p.memory_mib for p in pods), sum(n.memory_mib for n in nodes)),
        ):
            if need > have:
                raise InvalidProblem("problem.pods", f"the pods request {need}{unit} {what}; the nodes have {have}{unit} free")

    def check_canvas(self, problem: PlacementProblem) -> None:
        """OutsideCanvas naming the field when the problem exceeds the model's rows or group tokens."""
        if len(problem.nodes) > MAX_NODES:
            raise OutsideCanvas("problem.nodes", f"{len(problem.nodes)} nodes; this model takes at most {MAX_NODES}")
        if len(problem.pods) > MAX_PODS:
            raise OutsideCanvas("problem.pods", f"{len(problem.pods)} pods; this model takes at most {MAX_PODS}")
        groups = {p.group for p in problem.pods if p.group is not None}
        if len(groups) > MAX_GROUPS:
            raise OutsideCanvas("problem.pods", f"{len(groups)} anti-affinity groups; this model takes at most {MAX_GROUPS}")

    def ensure_solvable(self, problem: PlacementProblem, time_limit_s: float = 2.0) -> None:
        """InvalidProblem when CP-SAT proves within `time_limit_s` that no placement exists (the
        cheap checks in `check` passed, yet the pods do not pack); silent when undecided."""
        caps, pods, _ = _numbers(problem)
        if -1 not in start_placement(caps, pods):
            return
        try:
            exact(caps, pods, time_limit_s=time_limit_s)
        except ValueError:
            raise InvalidProblem("problem.pods", "the pods fit on no combination of the nodes (each fits alone, not all together)") from None

    # --- objective and exact solver ---

    def objective(self, problem: PlacementProblem, solution: PlacementSolution) -> float:
        """Nodes used."""
        return float(solution.nodes_used)

    def lower_bound(self, problem: PlacementProblem) -> float:
        """Cheap proven bound: the largest anti-affinity group, and the fewest nodes whose free CPU
        and memory cover the demand (see `_min_nodes`)."""
        caps, pods, _ = _numbers(problem)
        return float(_min_nodes(caps, pods))

    def solve(
        self, problem: PlacementProblem, *, time_limit_s: float = 10.0, hint: PlacementSolution | None = None, workers: int = 1, cold: bool = False
    ) -> SolverAnswer:
        """CP-SAT's fewest-node placement within `time_limit_s` seconds, any size.

        `hint` (e.g. the model's answer) seeds the search when it is a complete valid placement.
        The answer carries nodes_used, the proven lower bound and whether it is proven optimal;
        `info`: status (CP-SAT's), seconds, hint_used. `workers`: CP-SAT threads (1 is
        deterministic); `cold`: give CP-SAT no start at all (the hint benchmark's baseline).
        Raises InvalidProblem when no placement exists, LimitReached when CP-SAT neither found
        one nor proved there is none in time and neither first-fit decreasing nor its groups-first
        variant places every pod (rare: the problem is nearly infeasible)."""
        caps, pods, order = _numbers(problem)
        start = None
        if hint is not None and not hint.unplaced:
            index = {nd.name: j for j, nd in enumerate(problem.nodes)}
            where = [index.get(hint.assignments.get(problem.pods[i].name, ""), -1) for i in order]
            start = where if -1 not in where and _valid(caps, pods, where) else None
        try:
            result = exact(caps, pods, time_limit_s=time_limit_s, hint=start, workers=workers, cold=cold)
        except ValueError:
            raise InvalidProblem("problem.pods", "the pods fit on no combination of the nodes (each fits alone, not all together)") from None
        if result.values is None:  # not the caller's fault: no answer found yet, none proven impossible
            raise LimitReached(f"no placement found within {time_limit_s:g} s and first-fit decreasing leaves pods over; a longer time limit may find one")
        solution = self._solution(problem, {order[r]: j for r, j in enumerate(result.values)})
        info = {"status": result.status, "seconds": round(result.seconds, 4), "hint_used": start is not None, **result.info}
        return SolverAnswer(solution, "solver", float(result.objective), float(result.bound), result.optimal, info=info)

    def encode(self, problem: PlacementProblem) -> np.ndarray:
        """Problem -> tokens [256] ([320] with hints): node rows (levels of free CPU and memory), pod
        rows in size order (levels, group), with hints a draft placement in column 3 and the group
        in column 4 (module docstring)."""
        grid = np.zeros((MAX_NODES + MAX_PODS, self.cols), dtype=np.int64)
        grid[:, 0] = EMPTY_SLOT
        node_lv, pod_lv = levels(problem)
        for j, (c, m) in enumerate(node_lv):
            grid[j, :3] = (NODE, LEVEL0 + c, LEVEL0 + m)
        caps, pods, order = _numbers(problem)  # pods in size order, with their group numbers
        group_col = self.cols - 1  # 3; 4 with hints, whose draft takes column 3
        for r, (i, (_, _, g)) in enumerate(zip(order, pods, strict=True)):
            c, m = pod_lv[i]
            grid[MAX_NODES + r, :3] = (POD, LEVEL0 + c, LEVEL0 + m)
            grid[MAX_NODES + r, group_col] = GROUP0 + g if g >= 0 else NO_GROUP
        if self.hints:
            self._hint(caps, pods, grid)
        return grid.reshape(-1)

    @staticmethod
    def _hint(caps: Caps, pods: Pods, grid: np.ndarray) -> None:
        """Fill column 3 of `grid` [64, 5] with `hint_placement` (node per pod row, free level per used node row)."""
        assign = hint_placement(caps, pods)
        rem = [list(cap) for cap in caps]
        for r, ((c, m, _), j) in enumerate(zip(pods, assign, strict=True)):
            if j >= 0:
                grid[MAX_NODES + r, HINT_COL] = NODE_INDEX0 + j
                rem[j][0] -= c
                rem[j][1] -= m
        max_c = max(c for c, _ in caps) or 1
        max_m = max(m for _, m in caps) or 1
        for j in set(assign) - {-1}:
            grid[j, HINT_COL] = LEVEL0 + min(LEVELS * rem[j][0] // max_c, LEVELS * rem[j][1] // max_m)

    def target(self, caps: Caps, pods: Pods, work: float = LABEL_WORK) -> tuple[list[int], dict[str, Any]]:
        """The placement the model learns (node per pod, search order) and solver facts: the
        canonical optimum (`canonical`); with hints, the optimum nearest the draft it reads
        (`nearest` to `hint_placement`), so an optimal draft is its own label. Raises LimitReached past `work`."""
        if self.hints:
            return nearest(caps, pods, hint_placement(caps, pods), work)
        return canonical(caps, pods, work)

    def label(self, problem: PlacementProblem, work: float = LABEL_WORK) -> np.ndarray:
        """The target placement (`target`) as tokens. Raises LimitReached past `work` (see `canonical`)."""
        caps, pods, _ = _numbers(problem)
        assign, _ = self.target(caps, pods, work)
        return self._label(assign)

    def _label(self, assign: list[int]) -> np.ndarray:
        grid = np.zeros((MAX_NODES + MAX_PODS, self.cols), dtype=np.int64)
        for r, j in enumerate(assign):
            grid[MAX_NODES + r, 3] = NODE_INDEX0 + j
        return grid.reshape(-1)

    def decode(self, tokens: np.ndarray, problem: PlacementProblem, probs: np.ndarray | None = None) -> PlacementSolution:
        """The model's placement made valid, by the model's own preferences (no classical solver).

        Size order: each pod (largest first) on its predicted node if it fits there; else on the first
        node where it fits, nodes already in use first. With `probs` [seq_len, vocab_size] (the service
        passes them: `needs_probs`) also the confidence order: pods by the model's top node
        probability (surest first), each on its most probable node where it fits, the nodes the model
        planned (some pod's top node) before others; of the two the placement leaving fewer pods
        over, then on fewer nodes (a tie: the confidence order's). `repaired` counts the pods not
        left where predicted.

        Why two orders: a pod the model is unsure of is where its placement overfills a node; placed
        last it is the one moved, so the pods it is sure of (mostly its draft's) stay. On 600 large
        dev problems (run 3's weights) that halved the placements on more nodes than FFD's (5.2% ->
        2.8%) and kept all 600 placed."""
        caps, pods, order = _numbers(problem)
        n = len(caps)
        rows = slice(MAX_NODES, MAX_NODES + len(pods))
        predicted = [int(j) for j in tokens.reshape(MAX_NODES + MAX_PODS, self.cols)[rows, 3] - NODE_INDEX0]
        plans: list[list[int]] = []
        if probs is not None:
            p = np.nan_to_num(probs.reshape(MAX_NODES + MAX_PODS, self.cols, -1)[rows, 3, NODE_INDEX0 : NODE_INDEX0 + n])  # [pods, nodes]
            planned = {int(j) for j in p.argmax(1)}
            prefer = [[int(j) for j in np.argsort(-p[r], kind="stable") if int(j) in planned] for r in range(len(pods))]
            plans.append(_place(caps, pods, sorted(range(len(pods)), key=lambda r: -float(p[r].max())), prefer))
        plans.append(_place(caps, pods, list(range(len(pods))), [[j] if 0 <= j < n else [] for j in predicted]))
        assign = min(plans, key=lambda a: (a.count(-1), len({j for j in a if j >= 0})))
        where = {order[r]: j for r, j in enumerate(assign) if j >= 0}
        return self._solution(problem, where, repaired=sum(j < 0 or j != predicted[r] for r, j in enumerate(assign)))

    @staticmethod
    def _solution(problem: PlacementProblem, where: dict[int, int], **extra: Any) -> PlacementSolution:
        """Pod index -> node index as a Solution, pods in the given order."""
        assignments = {p.name: problem.nodes[where[i]].name for i, p in enumerate(problem.pods) if i in where}
        unplaced = [p.name for i, p in enumerate(problem.pods) if i not in where]
        return PlacementSolution(assignments=assignments, nodes_used=len(set(where.values())), unplaced=unplaced, **extra)

    def verify(self, problem: PlacementProblem, solution: PlacementSolution) -> list[str]:
        """Violations: unknown or unplaced pods, CPU or memory over a node's free capacity, two pods of a group on a node, a wrong nodes_used."""
        nodes = {n.name: n for n in problem.nodes}
        pods = {p.name: p for p in problem.pods}
        violations = []
        unknown_pods = sorted(set(solution.assignments) - set(pods))
        if unknown_pods:
            violations.append(f"unknown pods assigned: {', '.join(unknown_pods)}")
        unknown_nodes = sorted({n for n in solution.assignments.values() if n not in nodes})
        if unknown_nodes:
            violations.append(f"pods assigned to unknown nodes: {', '.join(unknown_nodes)}")
        if solution.unplaced:
            violations.append(f"{len(solution.unplaced)} pods are not placed: {', '.join(solution.unplaced)}")
        missing = [p for p in pods if p not in solution.assignments and p not in solution.unplaced]
        if missing:
            violations.append(f"{len(missing)} pods are missing from the answer: {', '.join(missing)}")
        twice = [p for p in solution.unplaced if p in solution.assignments]
        if twice:
            violations.append(f"pods both placed and unplaced: {', '.join(twice)}")
        on_node: dict[str, list[PlacementPod]] = {}
        for pod, node in solution.assignments.items():
            if pod in pods and node in nodes:
                on_node.setdefault(node, []).append(pods[pod])
        for name, node in nodes.items():
            placed = on_node.get(name, [])
            cpu, mem = sum(p.cpu_millicores for p in placed), sum(p.memory_mib for p in placed)
            if cpu > node.cpu_millicores:
                violations.append(f"node {name}: the pods request {cpu}m CPU, {node.cpu_millicores}m is free")
            if mem > node.memory_mib:
                violations.append(f"node {name}: the pods request {mem} MiB memory, {node.memory_mib} MiB is free")
            members: dict[str, list[str]] = {}
            for p in placed:
                if p.group is not None:
                    members.setdefault(p.group, []).append(p.name)
            for g, names in members.items():
                if len(names) > 1:
                    violations.append(f"node {name} holds {len(names)} pods of anti-affinity group {g!r}: {', '.join(names)}")
        used = len({n for n in solution.assignments.values() if n in nodes})
        if solution.nodes_used != used:
            violations.append(f"nodes_used is {solution.nodes_used}, the assignments use {used} nodes")
        return violations

    def render(self, problem: PlacementProblem, solution: PlacementSolution) -> str:
        """One line per used node (its pods, CPU and memory used of free), then the node count and any unplaced pods."""
        pods = {p.name: p for p in problem.pods}
        lines = []
        for node in problem.nodes:
            placed = [p for p, n in solution.assignments.items() if n == node.name]
            if placed:
                cpu = sum(pods[p].cpu_millicores for p in placed if p in pods)
                mem = sum(pods[p].memory_mib for p in placed if p in pods)
                lines.append(f"{node.name}: {', '.join(placed)} ({cpu}/{node.cpu_millicores}m CPU, {mem}/{node.memory_mib} MiB)")
        lines.append(f"{solution.nodes_used} of {len(problem.nodes)} nodes used")
        if solution.unplaced:
            lines.append(f"unplaced: {', '.join(solution.unplaced)}")
        return "\n".join(lines)

    def baseline(self, problem: PlacementProblem) -> PlacementSolution:
        """First-fit decreasing: pods largest first, each on the first node where it fits, the
        nodes tried largest first (opening big nodes first is what keeps the count low)."""
        caps, pods, order = _numbers(problem)
        return self._solution(problem, {order[r]: j for r, j in enumerate(ffd(caps, pods)) if j >= 0})

    def example(self) -> dict[str, Any]:
        """Three homelab nodes and six pods, two of them anti-affine."""
        return {
            "nodes": [
                {"name": "nuc-01", "cpu_millicores": 4000, "memory_mib": 16384},
                {"name": "nuc-02", "cpu_millicores": 4000, "memory_mib": 16384},
                {"name": "pi-01", "cpu_millicores": 2000, "memory_mib": 4096},
            ],
            "pods": [
                {"name": "immich-ml-0", "cpu_millicores": 2000, "memory_mib": 4096},
                {"name": "postgres-0", "cpu_millicores": 500, "memory_mib": 2048},
                {"name": "traefik-0", "cpu_millicores": 250, "memory_mib": 256, "group": "traefik"},
                {"name": "traefik-1", "cpu_millicores": 250, "memory_mib": 256, "group": "traefik"},
                {"name": "grafana-0", "cpu_millicores": 250, "memory_mib": 512},
                {"name": "home-assistant-0", "cpu_millicores": 1000, "memory_mib": 1024},
            ],
        }

    # --- data ---

    def generate(self, rng: np.random.Generator, n: int, bucket: str, **options: Any) -> list[Example]:
        """n problems whose pods all fit, with their target placements (`target`: optimal, by CP-SAT).

        Options: nodes (lo, hi), pods (lo, hi), load (lo, hi) = the share of the nodes' total free
        capacity (on the scarcer resource) the pods request, work (CP-SAT's deterministic time
        per label, default LABEL_WORK; see `canonical`; with hints up to twice that, see `nearest`). Nothing is dropped silently: an instance
        whose label is not proven within it is left out and counted in the next example's
        info["dropped"]["limit_hits"] (a label that may be wrong would teach a wrong answer), as are
        draws first-fit cannot place ("unplaceable", redrawn: every kept problem is feasible).
        `trm data build` sums these counts into the dataset's meta.json.
        """
        if bucket not in BUCKETS:
            raise ValueError(f"unknown placement bucket {bucket!r}; use one of {sorted(BUCKETS)}")
        node_range = options.get("nodes", BUCKETS[bucket][0])
        pod_range = options.get("pods", BUCKETS[bucket][1])
        load = options.get("load", (0.3, 0.85))
        work = float(options.get("work", LABEL_WORK))
        out: list[Example] = []
        reasons = ("limit_hits", "unplaceable")
        dropped = dict.fromkeys(reasons, 0)
        while len(out) < n:
            problem = random_problem(rng, int(rng.integers(node_range[0], node_range[1] + 1)), int(rng.integers(pod_range[0], pod_range[1] + 1)), load)
            if problem is None:
                dropped["unplaceable"] += 1
                continue
            caps, pods, _ = _numbers(problem)
            try:
                assign, facts = self.target(caps, pods, work)
            except LimitReached:
                dropped["limit_hits"] += 1
                continue
            info = {"nodes": len(caps), "pods": len(pods), "optimal_nodes": len(set(assign)), **facts, "dropped": dropped}
            out.append(Example(problem, self.encode(problem), self._label(assign), bucket, canonical_key(problem), info))
            dropped = dict.fromkeys(reasons, 0)
        return out

    def augment(self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: a random renaming of the group tokens.

        Node and pod order are not permuted: the canonical label depends on them (lowest-index nodes
        first), so a permuted copy would teach a second, conflicting answer for the same problem.
        """
        B = len(inputs)
        token_map = np.tile(np.arange(VOCAB), (B, 1))
        token_map[:, GROUP0:NODE_INDEX0] = GROUP0 + rng.permuted(np.tile(np.arange(MAX_GROUPS), (B, 1)), axis=1)
        return np.take_along_axis(token_map, inputs, axis=1), labels


def canonical_key(problem: PlacementProblem) -> str:
    """The same key under node and pod reordering and renaming: multisets of levels and groups.

    Built on the quantized levels (what the model sees), so problems that encode alike share a split.
    """
    node_lv, pod_lv = levels(problem)
    members: dict[str, list[tuple[int, int]]] = {}
    parts = []
    for p, lv in zip(problem.pods, pod_lv, strict=True):
        if p.group is None:
            parts.append((lv,))
        else:
            members.setdefault(p.group, []).append(lv)
    parts.extend(tuple(sorted(v)) for v in members.values())
    return short_hash((sorted(node_lv), sorted(parts)))


# --- generator -------------------------------------------------------------------------------------

# Homelab machines (free CPU millicores, free MiB before other workloads) and workloads
# (name, CPU millicores, MiB) with their usual shapes.
MACHINES = (
    ("pi", 4000, 8192),
    ("pi", 4000, 4096),
    ("nuc", 8000, 32768),
    ("nuc", 8000, 16384),
    ("mini", 4000, 16384),
    ("vm", 2000, 4096),
    ("vm", 2000, 8192),
    ("server", 8000, 32768),
)
WORKLOADS = (
    ("traefik", (250, 500), (256, 512)),
    ("authelia", (100, 250), (128, 256)),
    ("nextcloud", (500, 1000, 1500), (1024, 2048)),
    ("postgres", (500, 1000, 2000), (1024, 2048, 4096)),
    ("redis", (100, 250), (256, 512, 1024)),
    ("grafana", (250, 500), (256, 512)),
    ("prometheus", (500, 1000), (2048, 3072, 4096)),
    ("loki", (250, 500, 1000), (512, 1024, 2048)),
    ("immich-ml", (1000, 1500, 2000), (2048, 3072, 4096)),
    ("immich-server", (500, 1000), (1024, 2048)),
    ("jellyfin", (1000, 2000), (1024, 2048, 4096)),
    ("paperless", (250, 500), (512, 1024)),
    ("gitea", (250, 500), (512, 1024)),
    ("minio", (500, 1000), (1024, 2048)),
    ("mosquitto", (100,), (128,)),
    ("home-assistant", (500, 1000), (1024, 2048)),
    ("vaultwarden", (100, 250), (128, 256)),
    ("api", (250, 500, 750, 1000), (256, 512, 1024)),
    ("worker", (500, 750, 1000, 1500), (512, 1024, 2048)),
)


def random_problem(rng: np.random.Generator, n_nodes: int, n_pods: int, load: tuple[float, float]) -> PlacementProblem | None:
    """Homelab-shaped nodes and workloads (replicas share requests, some are anti-affine).

    The pods request a random share `load` of the nodes' free capacity on the scarcer resource;
    None when first-fit cannot place them all (the caller draws again).
    """
    nodes = []
    counts: dict[str, int] = {}
    for _ in range(n_nodes):
        kind, cpu, mem = MACHINES[int(rng.integers(len(MACHINES)))]
        if rng.random() < 0.5:  # other workloads already take some of it
            cpu -= 500 * int(rng.integers(0, cpu // 1000 + 1))
            mem -= 1024 * int(rng.integers(0, mem // 2048 + 1))
        counts[kind] = counts.get(kind, 0) + 1
        nodes.append(PlacementNode(name=f"{kind}-{counts[kind]:02d}", cpu_millicores=cpu, memory_mib=mem))
    target = float(rng.uniform(*load))
    cap_c, cap_m = sum(n.cpu_millicores for n in nodes), sum(n.memory_mib for n in nodes)
    pods: list[PlacementPod] = []
    groups = 0
    used_names: dict[str, int] = {}
    while len(pods) < n_pods:
        name, cpus, mems = WORKLOADS[int(rng.integers(len(WORKLOADS)))]
        cpu, mem = int(rng.choice(cpus)), int(rng.choice(mems))
        replicas = min(n_pods - len(pods), int(rng.choice([1, 1, 1, 2, 2, 3, 4])))
        anti = replicas > 1 and groups < MAX_GROUPS and rng.random() < 0.7
        k = used_names.get(name, 0)
        used_names[name] = k + 1
        base = name if k == 0 else f"{name}-{k + 1}"
        groups += anti
        for r in range(replicas):
            pods.append(PlacementPod(name=f"{base}-{r}", cpu_millicores=cpu, memory_mib=mem, group=base if anti else None))
    # Meet the target load: less free capacity on the nodes (other workloads take it), or smaller
    # requests; both stay on round values, and replicas keep equal requests.
    share = max(sum(p.cpu_millicores for p in pods) / cap_c, sum(p.memory_mib for p in pods) / cap_m)
    if share < target:
        f = share / target
        nodes = [n.model_copy(update={"cpu_millicores": int(n.cpu_millicores * f) // 100 * 100, "memory_mib": int(n.memory_mib * f) // 256 * 256}) for n in nodes]
    else:
        f = target / share
        pods = [
            p.model_copy(update={"cpu_millicores": max(50, round(p.cpu_millicores * f / 50) * 50), "memory_mib": max(64, round(p.memory_mib * f / 64) * 64)})
            for p in pods
        ]
    # the given order carries no hint
    problem = PlacementProblem(nodes=[nodes[j] for j in rng.permutation(n_nodes)], pods=[pods[i] for i in rng.permutation(n_pods)])
    caps, numbers, _ = _numbers(problem)
    return None if -1 in ffd(caps, numbers) else problem
