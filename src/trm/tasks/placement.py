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

Labels are optimal (fewest nodes, by exact search) and canonical: the first optimal placement in
the search's order, pods in size order each on the lowest-index node that still allows one, among
node sets that leave no larger node unused (see `_pack`). Levels round in the conservative
direction (nodes down, pods up), so the model sees the problem approximately; decode works on
exact values and repairs what does not fit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from agent_reasoning.types import PlacementNode, PlacementPod, PlacementProblem, PlacementSolution, TaskType
from trm.tasks.base import Example, InvalidProblem, Task

MAX_NODES, MAX_PODS, MAX_GROUPS = 16, 48, 16
LEVELS = 16
COLS = 4
PAD, NODE, POD, EMPTY_SLOT = 0, 1, 2, 3
LEVEL0 = 4  # resource level l -> LEVEL0 + l
NO_GROUP = LEVEL0 + LEVELS + 1  # 21
GROUP0 = NO_GROUP + 1  # 22
NODE_INDEX0 = GROUP0 + MAX_GROUPS  # 38
VOCAB = NODE_INDEX0 + MAX_NODES  # 54
SEARCH_BUDGET = 10_000  # search nodes per instance before the exact search gives up

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


class _OutOfBudget(Exception):
    pass


def _min_nodes(caps: Caps, pods: Pods) -> int:
    """A lower bound on the nodes any placement needs: the fewest nodes, closed under domination
    (see `_pack`), whose free CPU and memory both cover the demand; at least the largest group."""
    n = len(caps)
    sizes: dict[int, int] = {}
    for _, _, g in pods:
        if g >= 0:
            sizes[g] = sizes.get(g, 0) + 1
    floor = max(sizes.values(), default=1)
    sets = np.arange(1 << n, dtype=np.int64)
    members = (sets[:, None] >> np.arange(n)) & 1  # [2^n, n]
    closed = np.ones(1 << n, dtype=bool)
    for j, dom in enumerate(_dominators(caps)):
        closed &= (members[:, j] == 0) | ((sets & dom) == dom)
    fits = closed & (members @ np.array([c for c, _ in caps]) >= sum(p[0] for p in pods))
    fits &= members @ np.array([m for _, m in caps]) >= sum(p[1] for p in pods)
    if not fits.any():
        return n + 1
    return max(floor, int(members[fits].sum(1).min()))


def _dominators(caps: Caps) -> list[int]:
    """Bit mask per node of the nodes at least as large in both resources (equal ones: lower index)."""
    out = []
    for j, (c, m) in enumerate(caps):
        mask = 0
        for i, (c2, m2) in enumerate(caps):
            if i != j and c2 >= c and m2 >= m and ((c2, m2) != (c, m) or i < j):
                mask |= 1 << i
        out.append(mask)
    return out


def _pack(caps: Caps, pods: Pods, k: int, budget: int) -> tuple[list[int] | None, int]:
    """The first placement on at most k nodes, pods in order, each trying the nodes by index.

    The node set is restricted to sets whose closure under domination (add every node at least as
    large in both resources; of equal nodes, the lower index) has at most k nodes: a placement on
    k nodes can always move to such a set, node by node onto a larger free one, so nothing
    feasible is lost, and small nodes are not tried while a larger one stays unused. Of equal pods
    in a row (same size, same group or none), the later goes to a node of no lower index (a higher
    one in a group). A node in the same state as one already tried for this pod is skipped (its
    subtree fails alike); failed states are remembered; a branch is cut when the remaining demand
    exceeds the free capacity the closure and the remaining node slots can offer.
    Raises _OutOfBudget after `budget` expansions.
    """
    n, m = len(caps), len(pods)
    rem_c, rem_m = [c for c, _ in caps], [mm for _, mm in caps]
    held = [0] * n  # bit mask of groups on each node
    dominators = _dominators(caps)
    by_cpu = sorted(range(n), key=lambda j: -caps[j][0])
    by_mem = sorted(range(n), key=lambda j: -caps[j][1])
    suf_c, suf_m = [0] * (m + 1), [0] * (m + 1)
    min_c, min_m = [0] * (m + 1), [0] * (m + 1)  # smallest request among pods i.. (each resource)
    min_c[m] = min_m[m] = 1 << 62
    for i in range(m - 1, -1, -1):
        suf_c[i], suf_m[i] = suf_c[i + 1] + pods[i][0], suf_m[i + 1] + pods[i][1]
        min_c[i], min_m[i] = min(min_c[i + 1], pods[i][0]), min(min_m[i + 1], pods[i][1])
    group_left = [sum(1 for q in pods[i:] if q[2] == p[2]) if p[2] >= 0 else 0 for i, p in enumerate(pods)]
    same_as_previous = [i > 0 and pods[i] == pods[i - 1] for i in range(m)]
    assign = [-1] * m
    failed: set[tuple] = set()
    st = {"open": 0, "closure": 0, "expanded": 0}  # open: bit mask of nodes holding pods

    def capacity(order: list[int], r: int, rem: list[int], spare: int) -> int:
        """Free capacity of resource r: open nodes, unopened nodes of the closure, the `spare` largest others."""
        total = 0
        for j in order:
            bit = 1 << j
            if st["closure"] & bit:
                total += rem[j]
            elif spare:
                total += caps[j][r]
                spare -= 1
        return total

    def promising(i: int) -> bool:
        spare = k - bin(st["closure"]).count("1")
        # free capacity of an open node no remaining pod fits on is lost
        wasted_c = wasted_m = 0
        for j in range(n):
            if st["open"] >> j & 1 and (rem_c[j] < min_c[i] or rem_m[j] < min_m[i]):
                wasted_c += rem_c[j]
                wasted_m += rem_m[j]
        if suf_c[i] + wasted_c > capacity(by_cpu, 0, rem_c, spare) or suf_m[i] + wasted_m > capacity(by_mem, 1, rem_m, spare):
            return False
        g = pods[i][2]
        if g >= 0:
            bit = 1 << g
            free = spare + sum(1 for j in range(n) if st["closure"] >> j & 1 and not held[j] & bit)
            if group_left[i] > free:
                return False
        return True

    def dfs(i: int) -> bool:
        if i == m:
            return True
        st["expanded"] += 1
        if st["expanded"] > budget:
            raise _OutOfBudget
        lowest = 0
        if same_as_previous[i]:
            lowest = assign[i - 1] + (pods[i][2] >= 0)
        key = (i, lowest, st["open"], st["closure"], tuple((rem_c[j], rem_m[j], held[j]) for j in range(n) if st["open"] >> j & 1))
        if key in failed:
            return False
        c, mm, g = pods[i]
        gbit = 1 << g if g >= 0 else 0
        if promising(i):
            tried = set()
            for j in range(lowest, n):
                bit = 1 << j
                was_open = bool(st["open"] & bit)
                if rem_c[j] < c or rem_m[j] < mm or held[j] & gbit:
                    continue
                closure = st["closure"]
                if not was_open:
                    closure |= bit | dominators[j]
                    if bin(closure).count("1") > k:
                        continue
                node_state = (rem_c[j], rem_m[j], held[j], was_open)
                if node_state in tried:
                    continue
                tried.add(node_state)
                saved = st["closure"]
                rem_c[j] -= c
                rem_m[j] -= mm
                held[j] |= gbit
                st["open"] |= bit
                st["closure"] = closure
                assign[i] = j
                if dfs(i + 1):
                    return True
                rem_c[j] += c
                rem_m[j] += mm
                held[j] &= ~gbit
                if not was_open:
                    st["open"] &= ~bit
                st["closure"] = saved
        failed.add(key)
        return False

    found = dfs(0)
    return (assign if found else None), st["expanded"]


def optimal(caps: Caps, pods: Pods, budget: int = SEARCH_BUDGET) -> tuple[list[int] | None, dict[str, int]]:
    """The canonical optimal placement (node per pod, search order) and search facts.

    Tries k = lower bound, lower bound + 1, ... up to first-fit's count; the first k with a
    placement is optimal, and `_pack`'s placement on it is the canonical one. None when the
    budget runs out first. Raises ValueError when no placement exists.
    """
    upper = ffd(caps, pods)
    ffd_used = len(set(upper)) if -1 not in upper else len(caps)
    info = {"ffd_nodes": ffd_used if -1 not in upper else len(caps) + 1, "expanded": 0}
    for k in range(_min_nodes(caps, pods), ffd_used + 1):
        try:
            assign, expanded = _pack(caps, pods, k, budget - info["expanded"])
        except _OutOfBudget:
            info["expanded"] = budget
            return None, info
        info["expanded"] += expanded
        if assign is not None:
            return assign, info
    raise ValueError("the pods fit on no combination of the nodes")


# --- the task --------------------------------------------------------------------------------------


class PlacementTask(Task):
    name = "placement"
    task_type = TaskType.OPTIMIZATION
    Problem = PlacementProblem
    Solution = PlacementSolution
    fallback_by_default = True
    buckets = tuple(BUCKETS)
    description = (
        "Place every pod on the fewest nodes within their free CPU and memory; pods of one anti-affinity "
        f"group never share a node. Up to {MAX_NODES} nodes, {MAX_PODS} pods, {MAX_GROUPS} groups."
    )

    seq_len = (MAX_NODES + MAX_PODS) * COLS  # type: ignore[assignment]
    vocab_size = VOCAB  # type: ignore[assignment]

    # --- problems ---

    def check(self, problem: PlacementProblem) -> None:
        nodes, pods = problem.nodes, problem.pods
        if len(nodes) > MAX_NODES:
            raise InvalidProblem("problem.nodes", f"{len(nodes)} nodes; this model takes at most {MAX_NODES}")
        if len(pods) > MAX_PODS:
            raise InvalidProblem("problem.pods", f"{len(pods)} pods; this model takes at most {MAX_PODS}")
        sizes: dict[str, int] = {}
        for p in pods:
            if p.group is not None:
                sizes[p.group] = sizes.get(p.group, 0) + 1
        if len(sizes) > MAX_GROUPS:
            raise InvalidProblem("problem.pods", f"{len(sizes)} anti-affinity groups; this model takes at most {MAX_GROUPS}")
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

    def encode(self, problem: PlacementProblem) -> np.ndarray:
        grid = np.zeros((MAX_NODES + MAX_PODS, COLS), dtype=np.int64)
        grid[:, 0] = EMPTY_SLOT
        node_lv, pod_lv = levels(problem)
        for j, (c, m) in enumerate(node_lv):
            grid[j, :3] = (NODE, LEVEL0 + c, LEVEL0 + m)
        order = pod_order(problem)
        groups = group_ids(problem, order)
        for r, i in enumerate(order):
            c, m = pod_lv[i]
            grid[MAX_NODES + r] = (POD, LEVEL0 + c, LEVEL0 + m, GROUP0 + groups[i] if i in groups else NO_GROUP)
        return grid.reshape(-1)

    def label(self, problem: PlacementProblem) -> np.ndarray:
        caps, pods, _ = _numbers(problem)
        assign, _ = optimal(caps, pods)
        if assign is None:
            raise ValueError("the exact search ran out of budget")
        return self._label(assign)

    @staticmethod
    def _label(assign: list[int]) -> np.ndarray:
        grid = np.zeros((MAX_NODES + MAX_PODS, COLS), dtype=np.int64)
        for r, j in enumerate(assign):
            grid[MAX_NODES + r, 3] = NODE_INDEX0 + j
        return grid.reshape(-1)

    def decode(self, tokens: np.ndarray, problem: PlacementProblem, probs: np.ndarray | None = None) -> PlacementSolution:
        """Each pod (in size order) on its predicted node if it fits there; else on the first node where
        it fits, nodes already in use first. `repaired` counts the pods not left where predicted."""
        caps, pods, order = _numbers(problem)
        n = len(caps)
        choice = tokens.reshape(MAX_NODES + MAX_PODS, COLS)[MAX_NODES : MAX_NODES + len(pods), 3] - NODE_INDEX0
        rem_c, rem_m = [c for c, _ in caps], [m for _, m in caps]
        held: list[set[int]] = [set() for _ in caps]
        used: list[bool] = [False] * n
        where: dict[int, int] = {}
        repaired = 0

        def fits(j: int, c: int, m: int, g: int) -> bool:
            return rem_c[j] >= c and rem_m[j] >= m and g not in held[j]

        for r, (c, m, g) in enumerate(pods):
            j = int(choice[r])
            if not (0 <= j < n and fits(j, c, m, g)):
                repaired += 1
                candidates = [j for j in range(n) if used[j]] + [j for j in range(n) if not used[j]]
                j = next((j for j in candidates if fits(j, c, m, g)), -1)
                if j < 0:
                    continue
            rem_c[j] -= c
            rem_m[j] -= m
            if g >= 0:
                held[j].add(g)
            used[j] = True
            where[order[r]] = j
        return self._solution(problem, where, repaired=repaired)

    @staticmethod
    def _solution(problem: PlacementProblem, where: dict[int, int], **extra: Any) -> PlacementSolution:
        """Pod index -> node index as a Solution, pods in the given order."""
        assignments = {p.name: problem.nodes[where[i]].name for i, p in enumerate(problem.pods) if i in where}
        unplaced = [p.name for i, p in enumerate(problem.pods) if i not in where]
        return PlacementSolution(assignments=assignments, nodes_used=len(set(where.values())), unplaced=unplaced, **extra)

    def verify(self, problem: PlacementProblem, solution: PlacementSolution) -> list[str]:
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
        """n problems whose pods all fit, with canonical optimal labels.

        Options: nodes (lo, hi), pods (lo, hi), load (lo, hi) = the share of the nodes' total free
        capacity (on the scarcer resource) the pods request, budget (search expansions). Each
        example's info says how many instances the exact search gave up on before it (`skipped`).
        """
        if bucket not in BUCKETS:
            raise ValueError(f"unknown placement bucket {bucket!r}; use one of {sorted(BUCKETS)}")
        node_range = options.get("nodes", BUCKETS[bucket][0])
        pod_range = options.get("pods", BUCKETS[bucket][1])
        load = options.get("load", (0.3, 0.85))
        budget = options.get("budget", SEARCH_BUDGET)
        out: list[Example] = []
        skipped = 0
        while len(out) < n:
            problem = random_problem(rng, int(rng.integers(node_range[0], node_range[1] + 1)), int(rng.integers(pod_range[0], pod_range[1] + 1)), load)
            if problem is None:
                continue
            caps, pods, _ = _numbers(problem)
            assign, facts = optimal(caps, pods, budget)
            if assign is None:
                skipped += 1
                continue
            out.append(
                Example(
                    problem=problem,
                    inputs=self.encode(problem),
                    labels=self._label(assign),
                    bucket=bucket,
                    group=canonical_key(problem),
                    info={
                        "nodes": len(caps),
                        "pods": len(pods),
                        "optimal_nodes": len(set(assign)),
                        **facts,
                        "skipped": skipped,
                    },
                )
            )
            skipped = 0
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
    text = repr((sorted(node_lv), sorted(parts)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
