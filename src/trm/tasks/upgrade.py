"""Rolling node upgrades: the fewest waves such that no wave takes down more replicas of a service
than its max_unavailable (its PodDisruptionBudget).

Encoding: 17 rows x 17 columns = 289 tokens, row-major.

    row 0           [HEADER 1, then per node slot j: NODE_SLOT 2 for a node (given order), EMPTY 3]
                    label: node j's wave, WAVE_k = 12 + k for k = 1..8
    rows 1..16      one per service (given order): [max_unavailable, replicas on node 1..16]
                    max_unavailable m -> MU 4 + min(m, 4) (4 means "4 or more")
                    replicas r on a node -> 9 + min(r, 3) (3 means "3 or more"); PAD 0 for unused node slots
    unused rows     [EMPTY 3, PAD ...]

Only row 0's node cells have targets. Labels are optimal (fewest waves, by exact search) and
canonical: waves numbered by their first node, and of all optimal plans the lexicographically
first wave sequence in node order. Decode repairs budget breaks exactly; plans needing more than
8 waves are beyond the model's output (the baseline still plans them).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from agent_reasoning.types import TaskType, UpgradeProblem, UpgradeService, UpgradeSolution
from trm.tasks.base import Example, InvalidProblem, Task

MAX_NODES, MAX_SERVICES, MAX_WAVES = 16, 16, 8
SIZE = 1 + MAX_NODES  # rows and columns
PAD, HEADER, NODE_SLOT, EMPTY = 0, 1, 2, 3
MU0, MU_CAP = 4, 4  # max_unavailable m -> MU0 + min(m, MU_CAP)
REPLICA0, REPLICA_CAP = MU0 + MU_CAP + 1, 3  # 9; replica count r -> REPLICA0 + min(r, REPLICA_CAP)
WAVE0 = REPLICA0 + REPLICA_CAP + 1  # 13 = wave 1
VOCAB = WAVE0 + MAX_WAVES  # 21
SEARCH_BUDGET = 20_000  # search nodes per instance before the exact search gives up

BUCKETS = {"small": ((4, 8), (3, 10)), "large": ((9, 16), (6, 16))}  # (nodes, services) ranges

Counts = list[tuple[int, ...]]  # per node: replicas of each service


def replica_counts(problem: UpgradeProblem) -> Counts:
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


class _OutOfBudget(Exception):
    pass


def _plan(counts: Counts, budget: tuple[int, ...], k: int, limit: int) -> tuple[list[int] | None, int]:
    """The lexicographically first wave sequence (nodes in order, waves numbered by first node) in at
    most k waves. Waves with equal usage are tried once per node; failed states are remembered up to
    wave renaming; a branch is cut when some service's remaining replicas exceed its remaining
    allowance over the open waves and the waves still to open. Raises _OutOfBudget past `limit`.
    """
    n, s = len(counts), len(budget)
    left = [[0] * s for _ in range(n + 1)]  # replicas of each service on nodes i..
    for i in range(n - 1, -1, -1):
        left[i] = [a + b for a, b in zip(left[i + 1], counts[i], strict=True)]
    usage: list[list[int]] = []
    wave = [0] * n
    failed: set[tuple] = set()
    expanded = [0]

    def dfs(i: int) -> bool:
        if i == n:
            return True
        expanded[0] += 1
        if expanded[0] > limit:
            raise _OutOfBudget
        key = (i, tuple(sorted(tuple(u) for u in usage)))
        if key in failed:
            return False
        spare = k - len(usage)
        if all(left[i][t] <= sum(budget[t] - u[t] for u in usage) + spare * budget[t] for t in range(s)):
            tried = set()
            for w in range(len(usage) + (spare > 0)):
                new = w == len(usage)
                state = (0,) * s if new else tuple(usage[w])
                if state in tried or not (new or _fits(usage[w], counts[i], budget)):
                    continue
                tried.add(state)
                if new:
                    usage.append([0] * s)
                usage[w] = [u + r for u, r in zip(usage[w], counts[i], strict=True)]
                wave[i] = w
                if dfs(i + 1):
                    return True
                if new:
                    usage.pop()
                else:
                    usage[w] = [u - r for u, r in zip(usage[w], counts[i], strict=True)]
        failed.add(key)
        return False

    found = dfs(0)
    return (wave if found else None), expanded[0]


def optimal(counts: Counts, budget: tuple[int, ...], limit: int = SEARCH_BUDGET) -> tuple[list[int] | None, dict[str, int]]:
    """The canonical optimal plan (wave per node) and search facts; None when the budget runs out."""
    ub = max(greedy(counts, budget)) + 1
    lb = max([1] + [-(-sum(row[t] for row in counts) // budget[t]) for t in range(len(budget)) if budget[t] > 0])
    info = {"greedy_waves": ub, "expanded": 0}
    for k in range(lb, ub + 1):
        try:
            wave, expanded = _plan(counts, budget, k, limit - info["expanded"])
        except _OutOfBudget:
            info["expanded"] = limit
            return None, info
        info["expanded"] += expanded
        if wave is not None:
            return wave, info
    raise AssertionError("the greedy plan is a plan")  # pragma: no cover


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
    order: dict[int, int] = {}
    return [order.setdefault(w, len(order)) for w in wave]


# --- the task --------------------------------------------------------------------------------------


class UpgradeTask(Task):
    name = "upgrade"
    task_type = TaskType.PLANNING
    Problem = UpgradeProblem
    Solution = UpgradeSolution
    fallback_by_default = True
    buckets = tuple(BUCKETS)
    description = (
        "Upgrade (drain) nodes in the fewest waves so that no wave takes down more replicas of a service than "
        f"its max_unavailable. Up to {MAX_NODES} nodes and {MAX_SERVICES} services; the model plans up to {MAX_WAVES} waves."
    )

    seq_len = SIZE * SIZE  # type: ignore[assignment]
    vocab_size = VOCAB  # type: ignore[assignment]

    # --- problems ---

    def check(self, problem: UpgradeProblem) -> None:
        if len(problem.nodes) > MAX_NODES:
            raise InvalidProblem("problem.nodes", f"{len(problem.nodes)} nodes; this model takes at most {MAX_NODES}")
        if len(problem.services) > MAX_SERVICES:
            raise InvalidProblem("problem.services", f"{len(problem.services)} services; this model takes at most {MAX_SERVICES}")
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

    def encode(self, problem: UpgradeProblem) -> np.ndarray:
        n, m = len(problem.nodes), len(problem.services)
        grid = np.zeros((SIZE, SIZE), dtype=np.int64)
        grid[0, 0] = HEADER
        grid[0, 1:] = EMPTY
        grid[0, 1 : 1 + n] = NODE_SLOT
        grid[1:, 0] = EMPTY
        for s, service in enumerate(problem.services):
            grid[1 + s, 0] = MU0 + min(service.max_unavailable, MU_CAP)
        if m:
            counts = np.array(replica_counts(problem), dtype=np.int64).T  # [services, nodes]
            grid[1 : 1 + m, 1 : 1 + n] = REPLICA0 + np.minimum(counts, REPLICA_CAP)
        return grid.reshape(-1)

    @staticmethod
    def _label(wave: list[int]) -> np.ndarray:
        labels = np.zeros((SIZE, SIZE), dtype=np.int64)
        labels[0, 1 : 1 + len(wave)] = WAVE0 + np.array(canonical_waves(wave))
        return labels.reshape(-1)

    def label(self, problem: UpgradeProblem) -> np.ndarray:
        counts, budget = replica_counts(problem), tuple(s.max_unavailable for s in problem.services)
        wave, _ = optimal(counts, budget)
        if wave is None:
            raise ValueError("the exact search ran out of budget")
        if max(wave) >= MAX_WAVES:
            raise ValueError(f"the best plan takes {max(wave) + 1} waves; the model's output holds {MAX_WAVES}")
        return self._label(wave)

    def decode(self, tokens: np.ndarray, problem: UpgradeProblem, probs: np.ndarray | None = None) -> UpgradeSolution:
        """Each node (in order) stays in its predicted wave if the budgets hold there; else it moves to the
        first wave where they do, or a new one. `repaired` counts the nodes moved."""
        counts, budget = replica_counts(problem), tuple(s.max_unavailable for s in problem.services)
        predicted = tokens.reshape(SIZE, SIZE)[0, 1 : 1 + len(problem.nodes)] - WAVE0
        usage: dict[int, list[int]] = {}
        wave = []
        repaired = 0
        for j, row in enumerate(counts):
            w = int(predicted[j])
            if not (0 <= w < MAX_WAVES and _fits(usage.get(w, [0] * len(budget)), row, budget)):
                repaired += 1
                w = next((v for v in sorted(usage) if _fits(usage[v], row, budget)), max([MAX_WAVES - 1, *usage]) + 1)
            usage[w] = [u + r for u, r in zip(usage.get(w, [0] * len(budget)), row, strict=True)]
            wave.append(w)
        return UpgradeSolution(waves=_waves(problem, wave), repaired=repaired)

    def verify(self, problem: UpgradeProblem, solution: UpgradeSolution) -> list[str]:
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
        lines = [f"wave {k}: {', '.join(wave)}" for k, wave in enumerate(solution.waves, 1)]
        lines.append(f"{len(solution.waves)} waves for {len(problem.nodes)} nodes")
        return "\n".join(lines)

    def baseline(self, problem: UpgradeProblem) -> UpgradeSolution:
        """Greedy: nodes hosting the most replicas first, each into the first wave where the budgets hold."""
        wave = greedy(replica_counts(problem), tuple(s.max_unavailable for s in problem.services))
        waves: list[list[str]] = [[] for _ in range(max(wave) + 1)]
        for name, w in zip(problem.nodes, wave, strict=True):
            waves[w].append(name)
        return UpgradeSolution(waves=waves)

    def example(self) -> dict[str, Any]:
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
        """n clusters with canonical optimal plans of at most 8 waves.

        Options: nodes (lo, hi), services (lo, hi), budget (search expansions). Each example's info
        says how many instances were skipped before it: search out of budget (`skipped`), or more
        than 8 waves (`too_many_waves`).
        """
        if bucket not in BUCKETS:
            raise ValueError(f"unknown upgrade bucket {bucket!r}; use one of {sorted(BUCKETS)}")
        node_range = options.get("nodes", BUCKETS[bucket][0])
        service_range = options.get("services", BUCKETS[bucket][1])
        limit = options.get("budget", SEARCH_BUDGET)
        out: list[Example] = []
        skipped = too_many = 0
        while len(out) < n:
            problem = random_problem(rng, int(rng.integers(node_range[0], node_range[1] + 1)), int(rng.integers(service_range[0], service_range[1] + 1)))
            wave, facts = optimal(replica_counts(problem), tuple(s.max_unavailable for s in problem.services), limit)
            if wave is None:
                skipped += 1
                continue
            if max(wave) >= MAX_WAVES:
                too_many += 1
                continue
            info = {"nodes": len(problem.nodes), "services": len(problem.services), "optimal_waves": max(wave) + 1, **facts}
            info.update(skipped=skipped, too_many_waves=too_many)
            out.append(Example(problem, self.encode(problem), self._label(wave), bucket, canonical_key(problem), info))
            skipped = too_many = 0
        return out

    def augment(self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: a random order of the services (rows 1..16); the label stays as it is.

        Node order is not permuted: the canonical plan depends on it (lexicographically first in
        node order), and for most generated problems several optimal plans exist, so a permuted
        copy would mostly teach a second answer for the same problem.
        """
        B = len(inputs)
        x = inputs.reshape(B, SIZE, SIZE)
        rows = np.concatenate([np.zeros((B, 1), dtype=np.int64), 1 + _permutations(rng, x[:, 1:, 0] != EMPTY)], axis=1)
        return np.take_along_axis(x, rows[:, :, None], axis=1).reshape(B, -1), labels


def _permutations(rng: np.random.Generator, present: np.ndarray) -> np.ndarray:
    """[B, S] source slot of each slot: present slots (a prefix) shuffled among themselves, the rest in place."""
    keys = np.where(present, rng.random(present.shape), 2.0 + np.arange(present.shape[1]))
    return np.argsort(keys, axis=1)


def canonical_key(problem: UpgradeProblem) -> str:
    """The same key under node and service renaming and reordering: a Weisfeiler-Lehman hash of the
    node-service graph (replica counts on the edges, budgets on the services), on capped values as
    the model sees them."""
    counts = replica_counts(problem)
    node_labels = ["node"] * len(problem.nodes)
    service_labels = [f"mu{min(s.max_unavailable, MU_CAP)}" for s in problem.services]

    def h(x: object) -> str:
        return hashlib.sha256(repr(x).encode()).hexdigest()[:16]

    for _ in range(3):
        node_labels, service_labels = (
            [h((node_labels[j], sorted((service_labels[s], min(c, REPLICA_CAP)) for s, c in enumerate(row) if c))) for j, row in enumerate(counts)],
            [h((service_labels[s], sorted((node_labels[j], min(row[s], REPLICA_CAP)) for j, row in enumerate(counts) if row[s]))) for s in range(len(service_labels))],
        )
    return h((sorted(node_labels), sorted(service_labels)))


# --- generator -------------------------------------------------------------------------------------

SERVICES = (
    "postgres", "mariadb", "redis", "traefik", "coredns", "authelia", "nextcloud", "immich-server", "grafana",
    "prometheus", "loki", "minio", "gitea", "vaultwarden", "home-assistant", "mosquitto", "longhorn-manager",
    "paperless", "jellyfin", "cert-manager", "metallb-speaker", "api", "worker", "frontend",
)


def random_problem(rng: np.random.Generator, n_nodes: int, n_services: int) -> UpgradeProblem:
    """Stateful services (2-5 replicas, max_unavailable mostly 1, some 2) spread one per node or stacked
    within their budget, and some stateless ones with more replicas and larger budgets."""
    prefix = ("k3s", "node", "nuc", "pi")[int(rng.integers(4))]
    nodes = [f"{prefix}-{j + 1:02d}" for j in range(n_nodes)]
    names = [str(v) for v in rng.choice(SERVICES, size=n_services, replace=False)]
    services = []
    for name in names:
        if rng.random() < 0.15:  # stateless: many replicas, a large budget
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
