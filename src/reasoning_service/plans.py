"""Consolidation plans: the running pods on the fewest nodes, then with the fewest moves, in steps that keep
every PodDisruptionBudget (OR-Tools CP-SAT).

The problem is a PlacementProblem whose capacities are what the movable pods may use (allocatable minus the
pods that stay: DaemonSet and static pods), with each pod's current node beside it. Phase 1 minimises the
nodes used, starting from first-fit decreasing (the answer is never worse); phase 2 fixes that count and
minimises the pods that change node. Pods that a budget allows no disruption for stay where they are. The
moves are then ordered into steps: in a step each budget loses at most the pods it allows, and after every
step each node fits its pods and keeps anti-affinity. Sizes are exact integers (millicores, MiB), as the
placement task has them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from agent_reasoning.types import PlacementProblem
from trm.tasks.placement import PlacementTask


@dataclass(frozen=True)
class Move:
    """One pod moved from the node it runs on to another."""

    pod: str  # "namespace/name"
    source: str  # node it runs on now
    target: str  # node it goes to


@dataclass(frozen=True)
class Budget:
    """A PodDisruptionBudget: `allowed` of its `pods` may be disrupted at once."""

    name: str
    pods: tuple[str, ...]
    allowed: int


@dataclass
class ConsolidationPlan:
    """Where every pod runs after consolidation, the moves that get there, in PDB-safe steps.

    `assignments`: pod -> node for every pod of the problem; `nodes_used`; `drain`: the problem's nodes left
    without a movable pod (drainable: DaemonSet and static pods do not count); `steps`: the moves in order;
    `optimal_nodes` / `optimal_moves`: CP-SAT proved each phase within its time limit (given the held pods);
    `lower_bound`: the proven lower bound on the node count; `held`: pods kept in place because a budget allows
    no disruption, or because their moves could not be ordered within the budgets.
    """

    assignments: dict[str, str]
    nodes_used: int
    drain: list[str]
    steps: list[list[Move]]
    lower_bound: int
    optimal_nodes: bool
    optimal_moves: bool
    held: list[str] = field(default_factory=list)

    @property
    def moves(self) -> list[Move]:
        """Every move of the plan, step by step."""
        return [m for step in self.steps for m in step]


class NoPlan(ValueError):
    """No consolidation exists (the pods do not fit the nodes as they stand) or CP-SAT found none in time."""


class Unordered(NoPlan):
    """The moves of `pods` cannot be put in steps within the nodes' capacity and the budgets."""

    def __init__(self, message: str, pods: set[str]) -> None:
        super().__init__(message)
        self.pods = pods


def consolidate(
    problem: PlacementProblem,
    current: Mapping[str, str],
    budgets: Sequence[Budget] = (),
    *,
    time_limit_s: float = 10.0,
    max_nodes: int | None = None,
) -> ConsolidationPlan:
    """The plan for `problem` (pods with their `current` node, a node of the problem; every pod has one).

    `max_nodes`: a node count known to be reachable (e.g. a placement answer's), as an upper bound. Raises
    NoPlan when CP-SAT proves there is no placement or finds none within `time_limit_s` per phase.
    Pods whose budget allows no disruption stay. If the moves of the best placement cannot be ordered
    within the budgets (pods that would have to be down together), those pods stay too and the plan is
    solved again, at most three times: a plan that can be carried out beats a better one that cannot.
    """
    names = {n.name for n in problem.nodes}
    for p in problem.pods:
        if current.get(p.name) not in names:
            raise ValueError(f"pod {p.name}: its current node {current.get(p.name)!r} is not a node of the problem")
    frozen = {name for b in budgets if b.allowed <= 0 for name in b.pods}
    for _ in range(3):
        try:
            return _plan(problem, current, budgets, frozen, time_limit_s, max_nodes)
        except Unordered as e:
            frozen |= e.pods
    return _plan(problem, current, budgets, frozen | set(current), time_limit_s, max_nodes)  # nothing moves


def _plan(
    problem: PlacementProblem,
    current: Mapping[str, str],
    budgets: Sequence[Budget],
    frozen: set[str],
    time_limit_s: float,
    max_nodes: int | None,
) -> ConsolidationPlan:
    nodes = [n.name for n in problem.nodes]
    index = {n: j for j, n in enumerate(nodes)}
    pods = problem.pods
    held = sorted(p.name for p in pods if p.name in frozen)

    model = cp_model.CpModel()
    x = {(i, j): model.new_bool_var(f"x{i}_{j}") for i in range(len(pods)) for j in range(len(nodes))}
    used = [model.new_bool_var(f"used{j}") for j in range(len(nodes))]
    for i, p in enumerate(pods):
        model.add_exactly_one(x[i, j] for j in range(len(nodes)))
        if p.name in frozen:
            model.add(x[i, index[current[p.name]]] == 1)
    for j, node in enumerate(problem.nodes):
        model.add(sum(p.cpu_millicores * x[i, j] for i, p in enumerate(pods)) <= node.cpu_millicores)
        model.add(sum(p.memory_mib * x[i, j] for i, p in enumerate(pods)) <= node.memory_mib)
        for i in range(len(pods)):
            model.add_implication(x[i, j], used[j])
        model.add_bool_or([x[i, j] for i in range(len(pods))]).only_enforce_if(used[j])
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(pods):
        if p.group is not None:
            groups.setdefault(p.group, []).append(i)
    for members in groups.values():
        if len(members) > 1:
            for j in range(len(nodes)):
                model.add_at_most_one(x[i, j] for i in members)
    # the pods' sizes bound the node count from below: fewer nodes than this cannot hold them
    if max_nodes is not None:
        model.add(sum(used) <= max_nodes)
    stays = [x[i, index[current[p.name]]] for i, p in enumerate(pods)]
    # First-fit decreasing as the starting point and the bound to beat, unless it breaks a held pod's place.
    ffd = PlacementTask().baseline(problem)
    start = ffd.assignments if not ffd.unplaced and all(ffd.assignments[p] == current[p] for p in frozen) else dict(current)
    if start is ffd.assignments:
        model.add(sum(used) <= ffd.nodes_used)
    for i, p in enumerate(pods):
        for j in range(len(nodes)):
            model.add_hint(x[i, j], j == index[start[p.name]])

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 2
    model.minimize(sum(used))
    status = solver.solve(model)
    if status == cp_model.INFEASIBLE:
        raise NoPlan("no placement of the running pods fits the nodes")
    bound = max(_size_bound(problem), round(solver.best_objective_bound) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else 0)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        chosen = {pods[i].name: nodes[j] for (i, j), var in x.items() if solver.value(var)}
    elif start is ffd.assignments or not _overfull({n.name: n for n in problem.nodes}, {p.name: p for p in pods}, start):
        chosen = dict(start)  # CP-SAT found nothing in time (a large cluster on a busy CPU): the start stands
    else:
        raise NoPlan(f"no plan within {time_limit_s:g} s")
    best = len(set(chosen.values()))
    optimal_nodes = status == cp_model.OPTIMAL or best <= bound

    model.add(sum(used) <= best)
    model.clear_hints()
    for (i, j), var in x.items():
        model.add_hint(var, chosen[pods[i].name] == nodes[j])
    model.minimize(len(pods) - sum(stays))
    status = solver.solve(model)
    optimal_moves = status == cp_model.OPTIMAL
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assignments = {pods[i].name: nodes[j] for (i, j), var in x.items() if solver.value(var)}
    else:
        assignments = chosen

    moves = [Move(p.name, current[p.name], assignments[p.name]) for p in pods if assignments[p.name] != current[p.name]]
    steps = order_moves(problem, current, moves, budgets)
    occupied = set(assignments.values())
    return ConsolidationPlan(
        assignments=assignments,
        nodes_used=len(occupied),
        drain=[n for n in nodes if n not in occupied],
        steps=steps,
        lower_bound=bound,
        optimal_nodes=optimal_nodes,
        optimal_moves=optimal_moves,
        held=held,
    )


def order_moves(
    problem: PlacementProblem, current: Mapping[str, str], moves: Sequence[Move], budgets: Sequence[Budget]
) -> list[list[Move]]:
    """The moves in steps (greedy, largest pods first): in a step each budget loses at most `allowed` pods, and
    after the step (its pods evicted from their sources and started on their targets) every node fits its pods
    and keeps anti-affinity. A move whose target is still full waits for a later step, after the pods leaving
    that node have gone. Where moves can only happen together (two full nodes exchanging pods), the step takes
    every move the budgets allow at once if the state after it fits; raises Unordered if even that is stuck.
    """
    size = {p.name: (p.cpu_millicores, p.memory_mib) for p in problem.pods}
    group = {p.name: p.group for p in problem.pods}
    free = {n.name: [n.cpu_millicores, n.memory_mib] for n in problem.nodes}
    members: dict[str, set[str]] = {n.name: set() for n in problem.nodes}
    for pod, node in current.items():
        if pod in size:
            free[node][0] -= size[pod][0]
            free[node][1] -= size[pod][1]
            members[node].add(pod)
    of_budget: dict[str, list[Budget]] = {}
    for b in budgets:
        for pod in b.pods:
            of_budget.setdefault(pod, []).append(b)
    waiting = sorted(moves, key=lambda m: (-max(size[m.pod]), m.pod))
    steps: list[list[Move]] = []

    def apply(m: Move, sign: int) -> None:
        c, mem = size[m.pod]
        free[m.source][0] += sign * c
        free[m.source][1] += sign * mem
        free[m.target][0] -= sign * c
        free[m.target][1] -= sign * mem
        (members[m.source].discard if sign > 0 else members[m.source].add)(m.pod)
        (members[m.target].add if sign > 0 else members[m.target].discard)(m.pod)

    def fits(node: str) -> bool:
        groups = [group[q] for q in members[node] if group[q] is not None]
        return free[node][0] >= 0 and free[node][1] >= 0 and len(groups) == len(set(groups))

    def allowed(m: Move, spent: dict[str, int]) -> bool:
        return all(spent.get(b.name, 0) < b.allowed for b in of_budget.get(m.pod, ()))

    def take(m: Move, step: list[Move], spent: dict[str, int]) -> None:
        for b in of_budget.get(m.pod, ()):
            spent[b.name] = spent.get(b.name, 0) + 1
        step.append(m)
        waiting.remove(m)

    while waiting:
        step: list[Move] = []
        spent: dict[str, int] = {}
        progress = True
        while progress:  # a move frees its source, which may let a move rejected earlier in this step in
            progress = False
            for m in list(waiting):
                if not allowed(m, spent):
                    continue
                apply(m, +1)
                if fits(m.target):
                    take(m, step, spent)
                    progress = True
                else:
                    apply(m, -1)
        if not step:  # moves that wait on each other: all the budgets allow, together
            for m in list(waiting):
                if allowed(m, spent):
                    apply(m, +1)
                    take(m, step, spent)
            if not all(fits(n) for n in members):
                stuck = waiting + step
                raise Unordered(
                    f"the moves of {', '.join(m.pod for m in stuck)} cannot be ordered within the nodes' capacity and budgets",
                    {m.pod for m in stuck},
                )
        steps.append(step)
    return steps


def check_plan(problem: PlacementProblem, current: Mapping[str, str], plan: ConsolidationPlan, budgets: Sequence[Budget] = ()) -> list[str]:
    """Violations of a plan, checked from scratch (empty = valid): the final placement fits and keeps
    anti-affinity, the moves take every pod from its current node to its assigned one, no step disrupts more
    pods of a budget than it allows, and no node is overfull after any step (sources freed at the step's end)."""
    out: list[str] = []
    nodes = {n.name: n for n in problem.nodes}
    size = {p.name: p for p in problem.pods}
    if set(plan.assignments) != set(size):
        out.append("the assignments do not cover exactly the problem's pods")
    where = dict(current)
    for k, step in enumerate(plan.steps, 1):
        for b in budgets:
            n = sum(1 for m in step if m.pod in b.pods)
            if n > b.allowed:
                out.append(f"step {k}: {n} pods of budget {b.name} move, it allows {b.allowed}")
        for m in step:
            if where.get(m.pod) != m.source:
                out.append(f"step {k}: {m.pod} is not on {m.source}")
            where[m.pod] = m.target
        out += [f"after step {k}: {v}" for v in _overfull(nodes, size, where)]
    if any(where.get(p) != n for p, n in plan.assignments.items()):
        out.append("the moves do not lead to the assignments")
    out += _overfull(nodes, size, plan.assignments)
    return out


def _size_bound(problem: PlacementProblem) -> int:
    """Nodes needed by size alone: the fewest of the largest nodes whose CPU, and memory, cover the pods'."""
    need = 0
    for demand, caps in (
        (sum(p.cpu_millicores for p in problem.pods), sorted((n.cpu_millicores for n in problem.nodes), reverse=True)),
        (sum(p.memory_mib for p in problem.pods), sorted((n.memory_mib for n in problem.nodes), reverse=True)),
    ):
        k, total = 0, 0
        while total < demand and k < len(caps):
            total += caps[k]
            k += 1
        need = max(need, k)
    return max(need, 1 if problem.pods else 0)


def _overfull(nodes: Mapping[str, Any], pods: Mapping[str, Any], where: Mapping[str, str]) -> list[str]:
    out = []
    for name, node in nodes.items():
        placed = [pods[p] for p, n in where.items() if n == name and p in pods]
        if sum(p.cpu_millicores for p in placed) > node.cpu_millicores or sum(p.memory_mib for p in placed) > node.memory_mib:
            out.append(f"node {name} is overfull")
        groups = [p.group for p in placed if p.group is not None]
        if len(groups) != len(set(groups)):
            out.append(f"node {name} holds two pods of one anti-affinity group")
    return out
