"""Root cause of an alert storm: which service, of up to 16 with their signals and call graph.

Encoding: 16 rows x 20 columns = 320 tokens, row-major; service i in row i (the given order).

    column 0        answer cell: QUERY 1 for a service, EMPTY 2 for an unused row
                    label: ROOT 3 for the root cause, NOT_ROOT 4 for the other services
    column 1        error rate: ERR_UNKNOWN 5, then 6..13 for < 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, >= 0.3
    column 2        p99 latency relative to the median of the known ones: LAT_UNKNOWN 14, then
                    15..22 for ratio < 0.5, 0.8, 1.2, 1.5, 2, 3, 5, >= 5
    column 3        anomalous flag: FLAG_UNKNOWN 23, FLAG_NO 24, FLAG_YES 25
    columns 4..19   column 4 + j: CALLS 27 if service i calls service j, else NO_EDGE 26
    PAD 0           every cell of an unused row, and adjacency cells of unused services

Only column 0 of service rows has a target. There is no exact check: the answer is a ranking,
scored from the probability of ROOT in each service's answer cell.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from typing import Any

import numpy as np

from agent_reasoning.types import RootCauseProblem, RootCauseSolution, ServiceSignal, TaskType
from trm.tasks.base import Example, InvalidProblem, Task

MAX_SERVICES = 16
COLS = 4 + MAX_SERVICES
PAD, QUERY, EMPTY, ROOT, NOT_ROOT = 0, 1, 2, 3, 4
ERR_BOUNDS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3)
LAT_BOUNDS = (0.5, 0.8, 1.2, 1.5, 2.0, 3.0, 5.0)
ERR_UNKNOWN = 5  # bucket b -> ERR_UNKNOWN + 1 + b
LAT_UNKNOWN = ERR_UNKNOWN + len(ERR_BOUNDS) + 2  # 14
FLAG_UNKNOWN = LAT_UNKNOWN + len(LAT_BOUNDS) + 2  # 23
FLAG_NO, FLAG_YES = FLAG_UNKNOWN + 1, FLAG_UNKNOWN + 2
NO_EDGE, CALLS = FLAG_YES + 1, FLAG_YES + 2  # 26, 27
VOCAB = CALLS + 1  # 28

FAMILIES = ("layered", "fanout", "shared_db", "chain", "mixed")


# --- signals ---------------------------------------------------------------------------------------


def latency_ratios(problem: RootCauseProblem) -> list[float | None]:
    """Each service's p99 latency over the median of the known ones (None where unknown)."""
    known = sorted(s.latency_p99_ms for s in problem.services if s.latency_p99_ms is not None)
    if not known:
        return [None] * len(problem.services)
    mid = len(known) // 2
    median = known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2
    out: list[float | None] = []
    for s in problem.services:
        if s.latency_p99_ms is None:
            out.append(None)
        elif median > 0:
            out.append(s.latency_p99_ms / median)
        else:
            out.append(1.0 if s.latency_p99_ms == 0 else math.inf)
    return out


def signal_tokens(problem: RootCauseProblem) -> list[tuple[int, int, int]]:
    """(error, latency, flag) tokens of each service."""
    out = []
    for s, ratio in zip(problem.services, latency_ratios(problem), strict=True):
        err = ERR_UNKNOWN if s.error_rate is None else ERR_UNKNOWN + 1 + bisect.bisect_right(ERR_BOUNDS, s.error_rate)
        lat = LAT_UNKNOWN if ratio is None else LAT_UNKNOWN + 1 + bisect.bisect_right(LAT_BOUNDS, ratio)
        flag = FLAG_UNKNOWN if s.anomalous is None else (FLAG_YES if s.anomalous else FLAG_NO)
        out.append((err, lat, flag))
    return out


def _callees(problem: RootCauseProblem) -> list[set[int]]:
    index = {s.name: i for i, s in enumerate(problem.services)}
    out: list[set[int]] = [set() for _ in problem.services]
    for caller, callee in problem.dependencies:
        if caller != callee:
            out[index[caller]].add(index[callee])
    return out


def anomaly_scores(problem: RootCauseProblem) -> list[float]:
    """0 (healthy) .. 2.5: error rate on a log scale from 0.1% to 30%, latency ratio from 1x to 5x, the flag."""
    out = []
    for s, ratio in zip(problem.services, latency_ratios(problem), strict=True):
        score = 0.0
        if s.error_rate is not None and s.error_rate > 0.001:
            score += min(1.0, math.log(s.error_rate / 0.001) / math.log(300))
        if ratio is not None and ratio > 1:
            score += min(1.0, math.log(ratio) / math.log(5))
        score += 0.5 if s.anomalous else 0.0
        out.append(score)
    return out


def is_anomalous(problem: RootCauseProblem) -> list[bool]:
    """The flag where known; else error rate >= 5% or latency >= 2x the median."""
    out = []
    for s, ratio in zip(problem.services, latency_ratios(problem), strict=True):
        if s.anomalous is not None:
            out.append(s.anomalous)
        else:
            out.append((s.error_rate or 0) >= 0.05 or (ratio or 0) >= 2)
    return out


def _solution(problem: RootCauseProblem, scores: list[float]) -> RootCauseSolution:
    """Scores (any scale, >= 0) -> normalized probabilities and the ranking (ties: the given order)."""
    total = sum(scores)
    probs = [s / total for s in scores] if total > 0 else [1 / len(scores)] * len(scores)
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    names = [s.name for s in problem.services]
    return RootCauseSolution(root_cause=names[order[0]], ranking=[names[i] for i in order], scores={names[i]: round(probs[i], 6) for i in order})


def _by_rank(problem: RootCauseProblem, order: list[int]) -> RootCauseSolution:
    """A ranking as a solution, with scores halving down the ranks."""
    scores = [0.0] * len(order)
    for rank, i in enumerate(order):
        scores[i] = 0.5**rank
    return _solution(problem, scores)


def heuristic_baseline(problem: RootCauseProblem) -> RootCauseSolution:
    """Anomalous services none of whose callees is anomalous first (highest error rate, then latency),
    then the other anomalous ones, then the rest."""
    anomalous = is_anomalous(problem)
    callees = _callees(problem)
    ratios = latency_ratios(problem)

    def strength(i: int) -> tuple[float, float]:
        s = problem.services[i]
        return (s.error_rate if s.error_rate is not None else -1.0, ratios[i] if ratios[i] is not None else -1.0)

    def tier(i: int) -> int:
        if not anomalous[i]:
            return 2
        return 1 if any(anomalous[j] for j in callees[i]) else 0

    order = sorted(range(len(problem.services)), key=lambda i: (tier(i), -strength(i)[0], -strength(i)[1], i))
    return _by_rank(problem, order)


def pagerank_baseline(problem: RootCauseProblem, damping: float = 0.85, iterations: int = 100) -> RootCauseSolution:
    """Personalised PageRank on the anomalous services, walking caller -> callee.

    Walks start at services in proportion to their anomaly score and follow calls towards more
    anomalous callees, so they flow from symptoms to causes; a service with no anomalous callee
    keeps its walkers. Services outside the anomaly subgraph follow, ranked by anomaly score.
    """
    n = len(problem.services)
    anomalous = is_anomalous(problem)
    nodes = [i for i in range(n) if anomalous[i]] or list(range(n))
    where = {i: k for k, i in enumerate(nodes)}
    score = anomaly_scores(problem)
    weight = np.array([score[i] + 0.05 for i in nodes])
    step = np.zeros((len(nodes), len(nodes)))
    for k, i in enumerate(nodes):
        targets = [where[j] for j in _callees(problem)[i] if j in where]
        if targets:
            step[k, targets] = weight[targets] / weight[targets].sum()
        else:
            step[k, k] = 1.0
    start = weight / weight.sum()
    x = start.copy()
    for _ in range(iterations):
        x = damping * (x @ step) + (1 - damping) * start
    order = sorted(nodes, key=lambda i: (-x[where[i]], i)) + sorted((i for i in range(n) if i not in where), key=lambda i: (-score[i], i))
    scores = [0.0] * n
    for i in nodes:
        scores[i] = float(x[where[i]])
    solution = _solution(problem, scores)
    names = [s.name for s in problem.services]
    return solution.model_copy(update={"ranking": [names[i] for i in order], "root_cause": names[order[0]]})


# --- the task --------------------------------------------------------------------------------------


class RootCauseTask(Task):
    name = "rootcause"
    task_type = TaskType.TROUBLESHOOTING
    Problem = RootCauseProblem
    Solution = RootCauseSolution
    fallback_by_default = True
    buckets = FAMILIES  # graph shape families: train on some, test on the others
    has_exact_check = False
    needs_probs = True
    description = (
        "Rank the services of an alert storm by how likely each is the root cause, from error rates, "
        f"p99 latencies, anomaly flags and caller -> callee dependencies. Up to {MAX_SERVICES} services."
    )

    seq_len = MAX_SERVICES * COLS  # type: ignore[assignment]
    vocab_size = VOCAB  # type: ignore[assignment]

    # --- problems ---

    def check(self, problem: RootCauseProblem) -> None:
        if len(problem.services) > MAX_SERVICES:
            raise InvalidProblem("problem.services", f"{len(problem.services)} services; this model takes at most {MAX_SERVICES}")

    def encode(self, problem: RootCauseProblem) -> np.ndarray:
        n = len(problem.services)
        grid = np.zeros((MAX_SERVICES, COLS), dtype=np.int64)
        grid[:, 0] = EMPTY
        grid[:n, 0] = QUERY
        grid[:n, 1:4] = signal_tokens(problem)
        grid[:n, 4 : 4 + n] = NO_EDGE
        for i, callees in enumerate(_callees(problem)):
            for j in callees:
                grid[i, 4 + j] = CALLS
        return grid.reshape(-1)

    def decode(self, tokens: np.ndarray, problem: RootCauseProblem, probs: np.ndarray | None = None) -> RootCauseSolution:
        """Scores from P(ROOT) in each service's answer cell (without probabilities: 1 where ROOT is predicted)."""
        rows = np.arange(len(problem.services)) * COLS
        if probs is not None:
            scores = probs[rows, ROOT].astype(float).tolist()
        else:
            scores = (tokens[rows] == ROOT).astype(float).tolist()
        return _solution(problem, scores)

    def verify(self, problem: RootCauseProblem, solution: RootCauseSolution) -> None:
        return None

    def render(self, problem: RootCauseProblem, solution: RootCauseSolution) -> str:
        top = ", ".join(f"{name} {solution.scores.get(name, 0.0):.2f}" for name in solution.ranking[:3])
        return f"root cause: {solution.root_cause} (p={solution.scores.get(solution.root_cause, 0.0):.2f})\ntop 3: {top}"

    def baseline(self, problem: RootCauseProblem) -> RootCauseSolution:
        return heuristic_baseline(problem)

    def example(self) -> dict[str, Any]:
        return {
            "services": [
                {"name": "traefik", "error_rate": 0.12, "latency_p99_ms": 2400, "anomalous": True},
                {"name": "nextcloud", "error_rate": 0.18, "latency_p99_ms": 2300, "anomalous": True},
                {"name": "immich-server", "error_rate": 0.002, "latency_p99_ms": 180, "anomalous": False},
                {"name": "postgres", "error_rate": 0.31, "latency_p99_ms": 1900, "anomalous": True},
                {"name": "redis", "error_rate": 0.0, "latency_p99_ms": 2, "anomalous": False},
            ],
            "dependencies": [
                ["traefik", "nextcloud"],
                ["traefik", "immich-server"],
                ["nextcloud", "postgres"],
                ["nextcloud", "redis"],
                ["immich-server", "redis"],
            ],
        }

    # --- data ---

    def generate(self, rng: np.random.Generator, n: int, bucket: str, **options: Any) -> list[Example]:
        """n simulated incidents on service graphs of one shape family (the bucket).

        Options: propagation (lo, hi) = probability that a fault spreads over a call edge,
        missing (lo, hi) = share of unknown signals, flag_noise = chance a flag is wrong.
        """
        if bucket not in FAMILIES:
            raise ValueError(f"unknown rootcause bucket {bucket!r}; use one of {list(FAMILIES)}")
        out = []
        for _ in range(n):
            problem, root, facts = simulate(rng, bucket, **options)
            labels = np.zeros((MAX_SERVICES, COLS), dtype=np.int64)
            labels[: len(problem.services), 0] = NOT_ROOT
            labels[root, 0] = ROOT
            out.append(Example(problem, self.encode(problem), labels.reshape(-1), bucket, canonical_key(problem), facts))
        return out

    def augment(self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: a random order of the services (rows, and adjacency columns alike)."""
        B = len(inputs)
        x, y = inputs.reshape(B, MAX_SERVICES, COLS), labels.reshape(B, MAX_SERVICES, COLS)
        perm = _permutations(rng, x[:, :, 0] == QUERY)
        index = np.arange(COLS)[None, None, :].repeat(MAX_SERVICES, 1).repeat(B, 0)  # [B, 16, 20] source columns
        index[:, :, 4:] = 4 + perm[:, None, :]

        def apply(a: np.ndarray) -> np.ndarray:
            rows = np.take_along_axis(a, perm[:, :, None], axis=1)
            return np.take_along_axis(rows, index, axis=2).reshape(B, -1)

        return apply(x), apply(y)


def _permutations(rng: np.random.Generator, present: np.ndarray) -> np.ndarray:
    """[B, S] source row of each row: present rows (a prefix) shuffled among themselves, the rest in place."""
    keys = np.where(present, rng.random(present.shape), 2.0 + np.arange(present.shape[1]))
    return np.argsort(keys, axis=1)


def canonical_key(problem: RootCauseProblem) -> str:
    """The same key under service renaming and reordering: a Weisfeiler-Lehman hash of the call
    graph, services labelled by their signal tokens (what the model sees)."""
    callees = _callees(problem)
    callers: list[set[int]] = [set() for _ in callees]
    for i, out in enumerate(callees):
        for j in out:
            callers[j].add(i)
    labels = [repr(t) for t in signal_tokens(problem)]
    for _ in range(3):
        labels = [
            hashlib.sha256(repr((labels[i], sorted(labels[j] for j in callees[i]), sorted(labels[j] for j in callers[i]))).encode()).hexdigest()[:16]
            for i in range(len(labels))
        ]
    return hashlib.sha256(repr(sorted(labels)).encode()).hexdigest()[:16]


# --- simulation ------------------------------------------------------------------------------------

NAMES = {
    "gateway": ("traefik", "nginx", "envoy", "caddy", "haproxy"),
    "frontend": ("web", "homepage", "grafana", "immich-web", "jellyfin", "nextcloud", "home-assistant"),
    "service": (
        "auth", "authelia", "api", "search", "thumbnailer", "immich-server", "paperless", "gitea", "notifier",
        "scheduler", "immich-ml", "media", "syncthing", "backup", "users", "orders", "catalog", "webhooks",
    ),
    "db": ("postgres", "mariadb", "mongodb", "influxdb"),
    "cache": ("redis", "memcached", "valkey"),
    "queue": ("rabbitmq", "mosquitto", "nats"),
    "storage": ("minio", "nfs"),
}
# p99 latency (ms) of a healthy service of each role: log-uniform between these
BASE_LATENCY = {"gateway": (10, 60), "frontend": (40, 300), "service": (15, 200), "db": (2, 30), "cache": (0.3, 3), "queue": (1, 10), "storage": (5, 60)}
STORES = ("db", "db", "cache", "queue", "storage")


class _Graph:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.roles: list[str] = []
        self.names: list[str] = []
        self.edges: set[tuple[int, int]] = set()

    def add(self, role: str) -> int:
        pool = NAMES[role]
        base = pool[int(self.rng.integers(len(pool)))]
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}-{k}"
        self.roles.append(role)
        self.names.append(name)
        return len(self.names) - 1

    def store(self) -> int:
        return self.add(STORES[int(self.rng.integers(len(STORES)))])

    def call(self, a: int, b: int) -> None:
        if a != b:
            self.edges.add((a, b))

    def pick(self, items: list[int], lo: int, hi: int) -> list[int]:
        k = min(len(items), int(self.rng.integers(lo, hi + 1)))
        return [items[i] for i in self.rng.choice(len(items), size=k, replace=False)]


def _layered(g: _Graph) -> None:
    rng = g.rng
    gateway = g.add("gateway")
    fronts = [g.add("frontend") for _ in range(int(rng.integers(1, 3)))]
    services = [g.add("service") for _ in range(int(rng.integers(2, 7)))]
    stores = [g.store() for _ in range(int(rng.integers(1, 5)))]
    for f in fronts:
        g.call(gateway, f)
        for s in g.pick(services, 1, 3):
            g.call(f, s)
    for k, s in enumerate(services):
        if not any(b == s for _, b in g.edges):
            g.call(fronts[int(rng.integers(len(fronts)))], s)
        for t in services[k + 1 :]:
            if rng.random() < 0.15:
                g.call(s, t)
        for d in g.pick(stores, 1, 2):
            g.call(s, d)
    for d in stores:
        if not any(b == d for _, b in g.edges):
            g.call(services[int(rng.integers(len(services)))], d)


def _fanout(g: _Graph) -> None:
    rng = g.rng
    gateway = g.add("gateway")
    count = int(rng.integers(5, 12))
    stores = MAX_SERVICES - 1 - count  # room left for a service's own store
    for _ in range(count):
        s = g.add("service")
        g.call(gateway, s)
        if stores and rng.random() < 0.3:
            g.call(s, g.store())
            stores -= 1


def _shared_db(g: _Graph) -> None:
    rng = g.rng
    gateway = g.add("gateway")
    services = [g.add("service") for _ in range(int(rng.integers(3, 9)))]
    db = g.add("db")
    second = g.add(STORES[2 + int(rng.integers(3))]) if rng.random() < 0.6 else None
    for k, s in enumerate(services):
        g.call(gateway, s)
        if k < 2 or rng.random() < 0.85:
            g.call(s, db)
        if second is not None and (k == 0 or rng.random() < 0.4):
            g.call(s, second)


def _chain(g: _Graph) -> None:
    rng = g.rng
    chain = [g.add("gateway")] + [g.add("service") for _ in range(int(rng.integers(3, 9)))] + [g.store()]
    for a, b in zip(chain, chain[1:], strict=False):
        g.call(a, b)
    for _ in range(int(rng.integers(0, 4))):
        g.call(chain[int(rng.integers(1, len(chain) - 1))], g.store())


def _mixed(g: _Graph) -> None:
    """A random layered DAG: every service has 1-2 callers among the earlier ones, plus a few shortcuts."""
    rng = g.rng
    n = int(rng.integers(6, MAX_SERVICES + 1))
    g.add("gateway")
    for k in range(1, n):
        g.add("service" if k < n * 0.65 else STORES[int(rng.integers(len(STORES)))])
        for a in g.pick(list(range(k)), 1, 2):
            g.call(a, k)
    for _ in range(int(rng.integers(0, 3))):
        a, b = sorted(int(v) for v in rng.choice(n, size=2, replace=False))
        g.call(a, b)


SHAPES = {"layered": _layered, "fanout": _fanout, "shared_db": _shared_db, "chain": _chain, "mixed": _mixed}


def simulate(
    rng: np.random.Generator,
    family: str,
    propagation: tuple[float, float] = (0.5, 0.9),
    missing: tuple[float, float] = (0.0, 0.2),
    flag_noise: float = 0.05,
) -> tuple[RootCauseProblem, int, dict[str, Any]]:
    """A fault in one service of a random graph of `family`; returns the problem, the root's index, facts.

    The fault raises errors, latency or both; it spreads to callers (transitively) with a per-edge
    probability, attenuated or amplified (retries) on the way. Noise: unrelated anomalous services,
    unknown signals, wrong or missing flags, and sometimes a root whose own signals are weaker than
    its callers'.
    """
    g = _Graph(rng)
    SHAPES[family](g)
    n = len(g.names)
    base_lat = np.array([math.exp(rng.uniform(*np.log(BASE_LATENCY[r]))) for r in g.roles])
    base_err = 10 ** rng.uniform(-4, -2.5, size=n)
    add_err, add_lat = np.zeros(n), np.zeros(n)
    root = int(rng.integers(n))
    kind = ("errors", "latency", "both")[int(rng.integers(3))]
    add_err[root] = {"errors": rng.uniform(0.05, 0.9), "latency": rng.uniform(0, 0.02), "both": rng.uniform(0.03, 0.5)}[kind]
    add_lat[root] = base_lat[root] * {"errors": rng.uniform(0, 0.5), "latency": rng.uniform(2, 30), "both": rng.uniform(1, 10)}[kind]
    p_edge = rng.uniform(*propagation)
    callers: list[list[int]] = [[] for _ in range(n)]
    for a, b in g.edges:
        callers[b].append(a)
    affected, frontier = {root}, [root]
    while frontier:
        v = frontier.pop()
        for u in callers[v]:
            if rng.random() < p_edge:
                add_err[u] = max(add_err[u], min(1.0, add_err[v] * rng.uniform(0.3, 1.2)))
                add_lat[u] = max(add_lat[u], add_lat[v] * rng.uniform(0.5, 1.1))
                if u not in affected:
                    affected.add(u)
                    frontier.append(u)
    weak_root = bool(rng.random() < 0.15 and len(affected) > 1)
    if weak_root:  # its exporter half-dead, or callers amplifying by retries
        add_err[root] *= rng.uniform(0.15, 0.5)
        add_lat[root] *= rng.uniform(0.15, 0.5)
    bystanders = [i for i in rng.permutation(n) if i not in affected][: int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
    for i in bystanders:
        if rng.random() < 0.5:
            add_err[i] = rng.uniform(0.01, 0.15)
        else:
            add_lat[i] = base_lat[i] * rng.uniform(0.8, 3)
    err = np.clip(base_err + add_err, 0, 1)
    lat = base_lat + add_lat
    flags = (err >= 0.02) | (lat >= 2 * base_lat)
    flags ^= rng.random(n) < flag_noise
    q = rng.uniform(*missing)
    order = rng.permutation(n)  # the given order carries no hint
    services = []
    for i in order:
        services.append(
            ServiceSignal(
                name=g.names[i],
                error_rate=None if rng.random() < q else round(float(err[i]), 5),
                latency_p99_ms=None if rng.random() < q else round(float(lat[i]), 1),
                anomalous=None if rng.random() < q else bool(flags[i]),
            )
        )
    position = {int(i): k for k, i in enumerate(order)}
    edges = sorted((position[a], position[b]) for a, b in g.edges)
    problem = RootCauseProblem(services=services, dependencies=[(services[a].name, services[b].name) for a, b in edges])
    facts = {"services": n, "fault": kind, "affected": len(affected), "bystanders": len(bystanders), "weak_root": weak_root}
    return problem, position[root], facts
