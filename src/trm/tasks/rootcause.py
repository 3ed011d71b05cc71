"""Root cause of an alert storm: which service, of up to 32 with their signals and call graph.

Encoding: 32 rows x 10 columns = 320 tokens, row-major; service i in row i (the given order).

    column 0      answer cell. Input: ID_i (the row's own index, 7 + i) for a service, EMPTY 1 for an
                  unused row. Label, one class per service (every row carries information, so the
                  loss is not one ROOT among NOT_ROOTs): ROOT 2; AFFECTED 3 (calls the root,
                  transitively, and the fault reached it); UPSTREAM 4 (calls the root, fault not
                  seen); DOWNSTREAM 5 (called by the root, transitively); OTHER 6.
    column 1      error rate level: ERR_LEVEL + 0 unknown, + 1..8 for < 0.001, 0.005, 0.01, 0.02,
                  0.05, 0.1, 0.3, >= 0.3
    column 2      p99 over the median p99 of all services: LAT_LEVEL + 0 unknown, + 1..8 for
                  < 0.5, 0.8, 1.2, 1.5, 2, 3, 5, >= 5
    column 3      error rate against the own normal window: ERR_DEV + 0 no normal; + 1..8 the excess
                  (rate - normal) < -0.01, 0.002, 0.01, 0.03, 0.1, 0.3, 0.6, >= 0.6 where the window
                  has no spread; + 9..16 the robust z (excess / spread) < -3, 3, 5, 10, 30, 100,
                  1000, >= 1000 where it has one
    column 4      p99 against the own normal: LAT_DEV + 0 no normal; + 1..8 the ratio p99 / normal
                  < 0.8, 1.25, 1.6, 2.5, 4, 8, 16, >= 16 (no spread); + 9..16 the robust z (spread)
    column 5      anomaly flag: FLAG + 0 unknown, + 1 no, + 2 yes
    columns 6..9  the call graph as a compact list: each call edge a -> b is listed once, in row a
                  as CALLEE_b (39 + b) or in row b as CALLER_a (71 + a), whichever end has room
                  (at most 4 per row; `graphs.orient`); NO_LINK 103 fills the rest; sorted per row
    PAD 0         the signal and link cells of unused rows

With the task option `hints` (a model trained on it records `{"hints": true}`), two more columns give
each service's rank in the two classical rankings, 32 x 12 = 384 tokens: column 10 its rank by
personalised PageRank (`pagerank_baseline`), column 11 by robust deviation (`deviation_baseline`),
each as HINT_PAGERANK / HINT_DEVIATION + 0..4 for rank 1, 2, 3, 4-5, 6+ (PAD in unused rows). The
model then starts from what the classical methods conclude and learns where they are wrong (the leaf
rule it can read from the flags and links itself); a model without the option never sees them.

The answer cell's ID token lets attention find a callee's row by content (CALLEE_j matches ID_j),
so the mixer needs no adjacency grid: 32 x 10 tokens instead of 32 x 36. The ranking is P(ROOT)
in each service's answer cell. There is no exact check: the answer is a ranking.

Larger problems (more than 32 services, or a graph too dense for 4 links per row) are outside the
canvas: `solve` answers them with the best classical ranking.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from agent_reasoning.types import RootCauseProblem, RootCauseSolution, TaskType
from trm.tasks.base import Example, OutsideCanvas, Task
from trm.tasks.common import bool_option
from trm.tasks.graphs import descendants, orient, wl_key
from trm.tasks.rootcause_signals import (
    BASELINES,
    callees,
    deviation_baseline,
    deviation_ranking,
    heuristic_baseline,
    pagerank_baseline,
    pagerank_ranking,
    readings,
    solution,
)
from trm.tasks.rootcause_sim import FAMILIES, MIN_SERVICES, TOPOLOGIES, simulate

__all__ = [
    "BASELINES",
    "BUCKETS",
    "FAMILIES",
    "RootCauseTask",
    "canonical_key",
    "deviation_baseline",
    "heuristic_baseline",
    "incidents",
    "pagerank_baseline",
]

MAX_SERVICES = 32
LINKS = 4
SIGNAL_COLS = 5
COLS = 1 + SIGNAL_COLS + LINKS
PAD, EMPTY = 0, 1
ROOT, AFFECTED, UPSTREAM, DOWNSTREAM, OTHER = 2, 3, 4, 5, 6
CLASSES = (ROOT, AFFECTED, UPSTREAM, DOWNSTREAM, OTHER)
ID = 7  # ID + i: the answer cell of row i
CALLEE = ID + MAX_SERVICES  # 39
CALLER = CALLEE + MAX_SERVICES  # 71
NO_LINK = CALLER + MAX_SERVICES  # 103: above every link token, so sorted rows end with the blanks
ERR_LEVEL_BOUNDS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3)
LAT_LEVEL_BOUNDS = (0.5, 0.8, 1.2, 1.5, 2.0, 3.0, 5.0)
ERR_EXCESS_BOUNDS = (-0.01, 0.002, 0.01, 0.03, 0.1, 0.3, 0.6)
LAT_CHANGE_BOUNDS = (0.8, 1.25, 1.6, 2.5, 4.0, 8.0, 16.0)
Z_BOUNDS = (-3.0, 3.0, 5.0, 10.0, 30.0, 100.0, 1000.0)
ERR_LEVEL = NO_LINK + 1  # 104
LAT_LEVEL = ERR_LEVEL + 9  # 113
ERR_DEV = LAT_LEVEL + 9  # 122
LAT_DEV = ERR_DEV + 17  # 139
FLAG = LAT_DEV + 17  # 156
VOCAB = FLAG + 3  # 159
HINT_COLS = 2  # with `hints`: columns 10 (PageRank rank) and 11 (robust-deviation rank)
HINT_RANKS = (1, 2, 3, 5)  # rank buckets: 1, 2, 3, 4-5, 6+
HINT_PAGERANK = VOCAB  # 159..163
HINT_DEVIATION = HINT_PAGERANK + len(HINT_RANKS) + 1  # 164..168
HINT_VOCAB = HINT_DEVIATION + len(HINT_RANKS) + 1  # 169
LINK0 = 1 + SIGNAL_COLS  # the first link column

# Buckets: the training shapes, the unseen shapes, training shapes at 17-32 services, and the demo
# topologies that fit the canvas. Beyond the canvas (no tokens; answered by the baseline):
# OVERSIZE_BUCKETS, for evaluation sets only.
TRAIN_FAMILIES = ("layered", "fanout", "shared_db")
BUCKETS = (*FAMILIES, "large", "boutique", "sockshop", "socialnet")
OVERSIZE_BUCKETS = ("oversize", "trainticket")
SIZES = {"large": (17, 32), "oversize": (33, 64)}  # other families: (4, 32) unless options say otherwise


def _bucket(x: float, bounds: tuple[float, ...]) -> int:
    return 1 + bisect.bisect_right(bounds, x)


def signal_tokens(problem: RootCauseProblem) -> list[tuple[int, int, int, int, int]]:
    """(error level, latency level, error deviation, latency deviation, flag) tokens per service."""
    out = []
    for r in readings(problem):
        err = ERR_LEVEL if r.error_rate is None else ERR_LEVEL + _bucket(r.error_rate, ERR_LEVEL_BOUNDS)
        lat = LAT_LEVEL if r.latency_level is None else LAT_LEVEL + _bucket(r.latency_level, LAT_LEVEL_BOUNDS)
        if r.error_z is not None:
            err_dev = ERR_DEV + 8 + _bucket(r.error_z, Z_BOUNDS)
        elif r.error_excess is not None:
            err_dev = ERR_DEV + _bucket(r.error_excess, ERR_EXCESS_BOUNDS)
        else:
            err_dev = ERR_DEV
        if r.latency_z is not None:
            lat_dev = LAT_DEV + 8 + _bucket(r.latency_z, Z_BOUNDS)
        elif r.latency_change is not None:
            lat_dev = LAT_DEV + _bucket(r.latency_change, LAT_CHANGE_BOUNDS)
        else:
            lat_dev = LAT_DEV
        flag = FLAG if r.flag is None else FLAG + 1 + int(r.flag)
        out.append((err, lat, err_dev, lat_dev, flag))
    return out


def _edges(problem: RootCauseProblem) -> list[tuple[int, int]]:
    return sorted((i, j) for i, out in enumerate(callees(problem)) for j in out)


def classes(problem: RootCauseProblem, root: int, affected: set[int]) -> list[int]:
    """The label class of each service for a fault at `root` that reached `affected`."""
    n = len(problem.services)
    below = descendants(n, _edges(problem))
    out = []
    for i in range(n):
        if i == root:
            out.append(ROOT)
        elif root in below[i]:
            out.append(AFFECTED if i in affected else UPSTREAM)
        elif i in below[root]:
            out.append(DOWNSTREAM)
        else:
            out.append(OTHER)
    return out


def canonical_key(problem: RootCauseProblem) -> str:
    """The same key under service renaming and reordering: a Weisfeiler-Lehman hash of the call
    graph, services labelled by their signal tokens (what the model sees)."""
    return wl_key([repr(t) for t in signal_tokens(problem)], _edges(problem))


def incidents(rng: np.random.Generator, n: int, bucket: str, **options: Any) -> list[tuple[RootCauseProblem, int, dict[str, Any]]]:
    """n simulated incidents of a bucket (also the OVERSIZE_BUCKETS): (problem, root index, facts).

    Options: services (lo, hi) = graph sizes for the random families (default (4, 32); "large"
    17-32, "oversize" 33-64); the rest go to `rootcause_sim.simulate`.
    """
    if bucket not in BUCKETS and bucket not in OVERSIZE_BUCKETS:
        raise ValueError(f"unknown rootcause bucket {bucket!r}; use one of {list(BUCKETS + OVERSIZE_BUCKETS)}")
    lo, hi = options.pop("services", SIZES.get(bucket, (4, MAX_SERVICES)))
    out = []
    for _ in range(n):
        if bucket in TOPOLOGIES:
            shape, size = bucket, None
        else:
            if bucket == "oversize":
                shape = FAMILIES[int(rng.integers(len(FAMILIES)))]
            elif bucket == "large":
                shape = TRAIN_FAMILIES[int(rng.integers(len(TRAIN_FAMILIES)))]
            else:
                shape = bucket
            size = int(rng.integers(max(lo, MIN_SERVICES[shape]), hi + 1))
        out.append(simulate(rng, shape, size, **options))
    return out


class RootCauseTask(Task[RootCauseProblem, RootCauseSolution]):
    """Root cause of an alert storm: up to MAX_SERVICES services, each a row of signal tokens and caller/callee links.

    The model marks each service's class in its answer cell; `decode` ranks by P(ROOT). No exact check (`verify` finds
    nothing); the baseline and `solve` are personalised PageRank over the dependency graph.
    """

    name = "rootcause"
    task_type = TaskType.TROUBLESHOOTING
    version = "2"
    Problem = RootCauseProblem
    Solution = RootCauseSolution
    buckets = BUCKETS  # train on layered, fanout, shared_db; test also on the others
    has_exact_check = False
    needs_probs = True
    description = (
        "Rank the services of an alert storm by how likely each is the root cause, from error rates, "
        "p99 latencies (now and, optionally, in a normal window before the incident), anomaly flags and "
        f"caller -> callee dependencies, with per-service evidence. The model takes up to {MAX_SERVICES} "
        "services; larger problems get the classical ranking."
    )

    def __init__(self, hints: bool = False) -> None:
        self.hints = bool_option("hints", hints)
        self.cols = COLS + (HINT_COLS if self.hints else 0)

    @property
    def seq_len(self) -> int:
        """MAX_SERVICES rows of `cols` tokens: 320, or 384 with hints."""
        return MAX_SERVICES * self.cols

    @property
    def vocab_size(self) -> int:
        """159 tokens, or 169 with hints."""
        return HINT_VOCAB if self.hints else VOCAB

    def options(self) -> dict[str, Any]:
        """{"hints": true} for a model that reads the classical ranks; {} otherwise."""
        return {"hints": True} if self.hints else {}

    # --- problems ---

    def notes(self, problem: RootCauseProblem) -> list[str]:
        """A service listed as calling itself: the graph drops the link (a fault cannot spread from a
        service to itself), which a caller should hear rather than find out."""
        return [
            f"problem.dependencies.{i}: {caller!r} calls itself; a self-call says nothing about where a fault spread, ignored"
            for i, (caller, callee) in enumerate(problem.dependencies)
            if caller == callee
        ]

    def check_canvas(self, problem: RootCauseProblem) -> None:
        """Raises OutsideCanvas for more than MAX_SERVICES services or a graph too dense for LINKS links per service row."""
        n = len(problem.services)
        if n > MAX_SERVICES:
            raise OutsideCanvas("problem.services", f"{n} services; the model takes at most {MAX_SERVICES}")
        if orient(n, _edges(problem), LINKS) is None:
            raise OutsideCanvas("problem.dependencies", f"too dense to list with at most {LINKS} links per service")

    def encode(self, problem: RootCauseProblem) -> np.ndarray:
        """Tokens [320] ([384] with hints); raises OutsideCanvas for a problem beyond the canvas."""
        self.check_canvas(problem)
        n = len(problem.services)
        grid = np.zeros((MAX_SERVICES, self.cols), dtype=np.int64)
        grid[:, 0] = EMPTY
        grid[:n, 0] = ID + np.arange(n)
        grid[:n, 1 : 1 + SIGNAL_COLS] = signal_tokens(problem)
        grid[:n, LINK0 : LINK0 + LINKS] = NO_LINK
        edges = _edges(problem)
        fill = [0] * n
        for (a, b), owner in zip(edges, orient(n, edges, LINKS) or [], strict=True):
            row, token = (a, CALLEE + b) if owner == a else (b, CALLER + a)
            grid[row, LINK0 + fill[row]] = token
            fill[row] += 1
        grid[:n, LINK0 : LINK0 + LINKS] = np.sort(grid[:n, LINK0 : LINK0 + LINKS], axis=1)
        if self.hints:
            # the rankings alone (no evidence: decode builds that once, for the answer)
            for col, (base, ranking) in enumerate(((HINT_PAGERANK, pagerank_ranking), (HINT_DEVIATION, deviation_ranking)), COLS):
                rank = [0] * n
                for r, i in enumerate(ranking(problem)[0], 1):
                    rank[i] = r
                grid[:n, col] = [base + bisect.bisect_left(HINT_RANKS, r) for r in rank]
        return grid.reshape(-1)

    def labels_for(self, problem: RootCauseProblem, root: int, affected: set[int]) -> np.ndarray:
        """Target tokens [320]: the class of each service in its answer cell, 0 elsewhere."""
        labels = np.zeros((MAX_SERVICES, self.cols), dtype=np.int64)
        labels[: len(problem.services), 0] = classes(problem, root, affected)
        return labels.reshape(-1)

    def decode(self, tokens: np.ndarray, problem: RootCauseProblem, probs: np.ndarray | None = None) -> RootCauseSolution:
        """Scores from P(ROOT) in each service's answer cell (without probabilities: 1 where ROOT is
        predicted); evidence from the signals and the graph."""
        rows = np.arange(len(problem.services)) * self.cols
        if probs is not None:
            scores = probs[rows, ROOT].astype(float).tolist()
        else:
            scores = (np.asarray(tokens)[rows] == ROOT).astype(float).tolist()
        return solution(problem, scores)

    def verify(self, problem: RootCauseProblem, solution: RootCauseSolution) -> None:
        """No exact check exists for a ranking: always None."""
        return None

    def render(self, problem: RootCauseProblem, solution: RootCauseSolution) -> str:
        """The top cause with its probability, the top 3, and the evidence of the first 3 services, as text lines."""
        top = ", ".join(f"{name} {solution.scores.get(name, 0.0):.2f}" for name in solution.ranking[:3])
        lines = [f"root cause: {solution.root_cause} (p={solution.scores.get(solution.root_cause, 0.0):.2f})", f"top 3: {top}"]
        if solution.evidence and not any(ev.anomalous for ev in solution.evidence):
            lines.insert(0, "no service shows an anomaly (no flag, no signal off its normal): the ranking is a guess")
        for ev in solution.evidence[:3]:
            moved = ", ".join(ev.moved) or "nothing moved"
            callees_text = f"healthy callees: {', '.join(ev.healthy_callees) or '-'}; unhealthy: {', '.join(ev.unhealthy_callees) or '-'}"
            lines.append(f"  {ev.name}: {moved}; {callees_text}")
        return "\n".join(lines)

    def baseline(self, problem: RootCauseProblem) -> RootCauseSolution:
        """The best classical ranking on the evaluation sets (bench/homelab.py --rootcause-evalsets):
        personalised PageRank, ahead of the leaf rule and, on these simulated incidents, well ahead
        of the graph-free robust deviation (see evalsets/rootcause/README.md for the numbers)."""
        return pagerank_baseline(problem)

    def example(self) -> dict[str, Any]:
        """A sample request problem: five homelab services (traefik, nextcloud, immich-server, postgres, redis) with normal windows."""
        return {
            "services": [
                {
                    "name": "traefik",
                    "error_rate": 0.12,
                    "latency_p99_ms": 2400,
                    "anomalous": True,
                    "normal_error_rate": 0.001,
                    "normal_latency_p99_ms": 45,
                },
                {
                    "name": "nextcloud",
                    "error_rate": 0.18,
                    "latency_p99_ms": 2300,
                    "anomalous": True,
                    "normal_error_rate": 0.002,
                    "normal_latency_p99_ms": 250,
                },
                {
                    "name": "immich-server",
                    "error_rate": 0.002,
                    "latency_p99_ms": 180,
                    "anomalous": False,
                    "normal_error_rate": 0.002,
                    "normal_latency_p99_ms": 170,
                },
                {
                    "name": "postgres",
                    "error_rate": 0.31,
                    "latency_p99_ms": 1900,
                    "anomalous": True,
                    "normal_error_rate": 0.0,
                    "normal_latency_p99_ms": 12,
                },
                {
                    "name": "redis",
                    "error_rate": 0.0,
                    "latency_p99_ms": 2,
                    "anomalous": False,
                    "normal_error_rate": 0.0,
                    "normal_latency_p99_ms": 1.5,
                },
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
        """n simulated incidents of a bucket (`incidents`), with their label classes.

        Options: services (lo, hi), propagation (lo, hi), missing (lo, hi), flag_noise, normal,
        spread, chronic (see `rootcause_sim.simulate`). The OVERSIZE_BUCKETS have no tokens: use
        `incidents` for them."""
        if bucket in OVERSIZE_BUCKETS:
            raise ValueError(f"bucket {bucket!r} is beyond the canvas (no tokens); build it with rootcause.incidents")
        out = []
        for problem, root, facts in incidents(rng, n, bucket, **options):
            labels = self.labels_for(problem, root, set(facts["affected"]))
            out.append(Example(problem, self.encode(problem), labels, bucket, canonical_key(problem), facts | {"root": root}))
        return out

    def augment(self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: the services moved to random rows among all 32, unused rows in between (ID,
        CALLEE and CALLER tokens renumbered to match; each row's links sorted again), so every ID
        token is trained, not only the low ones of small graphs."""
        B, cols = len(inputs), self.cols
        x, y = inputs.reshape(B, MAX_SERVICES, cols), labels.reshape(B, MAX_SERVICES, cols)
        perm = np.argsort(rng.random((B, MAX_SERVICES)), axis=1)  # [B, S] source row of each row
        inverse = np.argsort(perm, axis=1)  # [B, S] new row of each old row
        relabel = np.broadcast_to(np.arange(self.vocab_size), (B, self.vocab_size)).copy()
        for base in (ID, CALLEE, CALLER):
            relabel[:, base : base + MAX_SERVICES] = base + inverse
        x = np.take_along_axis(x, perm[:, :, None], axis=1)
        y = np.take_along_axis(y, perm[:, :, None], axis=1)
        x = np.take_along_axis(relabel, x.reshape(B, -1), axis=1).reshape(B, MAX_SERVICES, cols)
        x[:, :, LINK0 : LINK0 + LINKS] = np.sort(x[:, :, LINK0 : LINK0 + LINKS], axis=2)  # PAD rows stay PAD (all 0)
        return x.reshape(B, -1), y.reshape(B, -1)
