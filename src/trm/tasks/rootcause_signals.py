"""Root cause: what each service's signals say, the three classical rankings, and the evidence.

A signal "moved" when it is off the service's own normal (the normal window: median and robust
spread before the incident) where the problem gives one, else when its raw level looks bad (error
rate >= 5%, p99 >= 2x the median p99 of all services). The classical rankings:

    heuristic_baseline   the leaf rule: anomalous services none of whose callees is anomalous first
    pagerank_baseline    personalised PageRank from the symptoms down the calls (MicroRCA style)
    deviation_baseline   robust deviation from the own normal, graph-free (BARO / NSigma style):
                         the largest |x - median| / spread over the service's signals

All take any problem size (they back problems beyond a model's canvas).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

from agent_reasoning.types import RootCauseProblem, RootCauseSolution, ServiceEvidence

# Floors under a normal window's spread: a window of identical samples (spread 0) must not make
# every wobble infinitely significant.
ERR_SPREAD_FLOOR = 0.002  # error rate (share)
LAT_SPREAD_FLOOR_MS = 0.5
LAT_SPREAD_FLOOR_REL = 0.05  # of the normal p99
# Without a spread, a normal value alone is taken to wobble this much.
ERR_DEFAULT_SPREAD_REL, LAT_DEFAULT_SPREAD_REL = 0.25, 0.15

# When a signal counts as moved
ERR_MOVED_EXCESS = 0.01  # error rate at least 1 point above normal...
LAT_MOVED_RATIO = 1.5  # ...or p99 at least 1.5x normal...
MOVED_Z = 3.0  # ...and, where the spread is known, >= 3 spreads off
ERR_RAW_BAD, LAT_RAW_BAD = 0.05, 2.0  # without a normal: 5% errors, 2x the median p99


@dataclass(frozen=True)
class Reading:
    """One service's signals, measured against its normal (None: unknown)."""

    error_rate: float | None
    latency_p99_ms: float | None
    flag: bool | None
    normal_error_rate: float | None
    normal_latency_p99_ms: float | None
    latency_level: float | None  # p99 over the median p99 of all services that report one
    error_excess: float | None  # error rate - normal error rate
    latency_change: float | None  # p99 / normal p99
    error_z: float | None  # (error rate - normal) / spread, spread known
    latency_z: float | None  # (p99 - normal) / spread, spread known
    error_moved: bool
    latency_moved: bool

    @property
    def has_normal(self) -> bool:
        """Whether the service came with a normal window (so its change is measured against it)."""
        return self.error_excess is not None or self.latency_change is not None

    @property
    def anomalous(self) -> bool:
        """Off its normal where a normal is known; else the flag where known; else bad raw levels."""
        if self.has_normal or self.flag is None:
            return self.error_moved or self.latency_moved
        return self.flag


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def readings(problem: RootCauseProblem) -> list[Reading]:
    """Every service's Reading, in the problem's order."""
    median = _median([s.latency_p99_ms for s in problem.services if s.latency_p99_ms is not None])
    out = []
    for s in problem.services:
        lat, err = s.latency_p99_ms, s.error_rate
        level = None
        if lat is not None and median is not None:
            level = lat / median if median > 0 else (1.0 if lat == 0 else math.inf)
        excess = change = err_z = lat_z = None
        if err is not None and s.normal_error_rate is not None:
            excess = err - s.normal_error_rate
            if s.normal_error_rate_spread is not None:
                err_z = excess / max(s.normal_error_rate_spread, ERR_SPREAD_FLOOR)
        if lat is not None and s.normal_latency_p99_ms is not None:
            change = lat / max(s.normal_latency_p99_ms, LAT_SPREAD_FLOOR_MS)
            if s.normal_latency_p99_spread_ms is not None:
                lat_z = (lat - s.normal_latency_p99_ms) / max(
                    s.normal_latency_p99_spread_ms, LAT_SPREAD_FLOOR_REL * s.normal_latency_p99_ms, LAT_SPREAD_FLOOR_MS
                )
        if excess is not None:
            err_moved = excess >= ERR_MOVED_EXCESS and (err_z is None or err_z >= MOVED_Z)
        else:
            err_moved = err is not None and err >= ERR_RAW_BAD
        if change is not None:
            lat_moved = change >= LAT_MOVED_RATIO and (lat_z is None or lat_z >= MOVED_Z)
        else:
            lat_moved = level is not None and level >= LAT_RAW_BAD
        out.append(
            Reading(
                err,
                lat,
                s.anomalous,
                s.normal_error_rate,
                s.normal_latency_p99_ms,
                level,
                excess,
                change,
                err_z,
                lat_z,
                err_moved,
                lat_moved,
            )
        )
    return out


def is_anomalous(problem: RootCauseProblem) -> list[bool]:
    """Per service: off its normal (where known), else its flag (where known), else bad raw levels."""
    return [r.anomalous for r in readings(problem)]


def anomaly_scores(problem: RootCauseProblem) -> list[float]:
    """0 (healthy) .. 2.5 per service: how far the error rate and p99 moved (from normal where known,
    else from 0.1% errors and the median p99) on log scales saturating at x300 and x5, plus 0.5 for
    an anomaly."""
    out = []
    for r in readings(problem):
        score = 0.0
        if r.error_excess is not None:
            if r.error_excess > 0.001:
                score += min(1.0, math.log(r.error_excess / 0.001) / math.log(300))
        elif r.error_rate is not None and r.error_rate > 0.001:
            score += min(1.0, math.log(r.error_rate / 0.001) / math.log(300))
        ratio = r.latency_change if r.latency_change is not None else r.latency_level
        if ratio is not None and ratio > 1:
            score += min(1.0, math.log(ratio) / math.log(5))
        score += 0.5 if r.anomalous else 0.0
        out.append(score)
    return out


def deviations(problem: RootCauseProblem) -> list[float]:
    """Per service, the largest robust deviation of its signals, in spreads (>= 0).

    Against the own normal window where given (its spread, else a default share of the normal);
    a signal without a normal is compared with all services' current values instead (median and
    1.4826 x MAD across services; latency in log space), as NSigma does without history.
    """
    rs = readings(problem)
    errs = [r.error_rate for r in rs if r.error_rate is not None]
    logs = [math.log(max(r.latency_p99_ms, 0.01)) for r in rs if r.latency_p99_ms is not None]
    err_mid, log_mid = _median(errs) or 0.0, _median(logs) or 0.0  # 0.0 only where the list is empty
    err_mad = max(1.4826 * statistics.median([abs(e - err_mid) for e in errs]), ERR_SPREAD_FLOOR) if errs else 1.0
    log_mad = max(1.4826 * statistics.median([abs(v - log_mid) for v in logs]), 0.1) if logs else 1.0
    out = []
    for s, r in zip(problem.services, rs, strict=True):
        z = [0.0]
        if r.error_excess is not None:
            spread = (
                s.normal_error_rate_spread
                if s.normal_error_rate_spread is not None
                else ERR_DEFAULT_SPREAD_REL * (s.normal_error_rate or 0)
            )
            z.append(r.error_excess / max(spread, ERR_SPREAD_FLOOR))
        elif r.error_rate is not None and err_mid is not None:
            z.append((r.error_rate - err_mid) / err_mad)
        if r.latency_change is not None:
            normal = s.normal_latency_p99_ms or 0.0
            spread = s.normal_latency_p99_spread_ms if s.normal_latency_p99_spread_ms is not None else LAT_DEFAULT_SPREAD_REL * normal
            z.append((r.latency_p99_ms - normal) / max(spread, LAT_SPREAD_FLOOR_REL * normal, LAT_SPREAD_FLOOR_MS))  # type: ignore[operator]
        elif r.latency_p99_ms is not None and log_mid is not None:
            z.append((math.log(max(r.latency_p99_ms, 0.01)) - log_mid) / log_mad)
        out.append(max(z))
    return out


def callees(problem: RootCauseProblem) -> list[set[int]]:
    """Each service's direct callees (indices), self-calls dropped."""
    index = {s.name: i for i, s in enumerate(problem.services)}
    out: list[set[int]] = [set() for _ in problem.services]
    for caller, callee in problem.dependencies:
        if caller != callee:
            out[index[caller]].add(index[callee])
    return out


# --- solutions -------------------------------------------------------------------------------------


def evidence(problem: RootCauseProblem, order: list[int]) -> list[ServiceEvidence]:
    """Per service, in `order`: which signals moved and which callees are healthy or not."""
    rs = readings(problem)
    names = [s.name for s in problem.services]
    out_edges = callees(problem)
    callers: list[set[int]] = [set() for _ in names]
    for i, cs in enumerate(out_edges):
        for j in cs:
            callers[j].add(i)

    def rounded(x: float | None, digits: int = 4) -> float | None:
        return None if x is None or not math.isfinite(x) else round(x, digits)

    out = []
    for i in order:
        r = rs[i]
        moved = [name for name, m in (("error_rate", r.error_moved), ("latency_p99", r.latency_moved), ("flag", bool(r.flag))) if m]
        ratio = r.latency_change if r.latency_change is not None else r.latency_level
        out.append(
            ServiceEvidence(
                name=names[i],
                anomalous=r.anomalous,
                moved=moved,
                error_rate=r.error_rate,
                normal_error_rate=r.normal_error_rate,
                error_rate_z=rounded(r.error_z, 2),
                latency_p99_ms=r.latency_p99_ms,
                normal_latency_p99_ms=r.normal_latency_p99_ms,
                latency_ratio=rounded(ratio, 3),
                latency_z=rounded(r.latency_z, 2),
                healthy_callees=sorted(names[j] for j in out_edges[i] if not rs[j].anomalous),
                unhealthy_callees=sorted(names[j] for j in out_edges[i] if rs[j].anomalous),
                anomalous_callers=sorted(names[j] for j in callers[i] if rs[j].anomalous),
            )
        )
    return out


def solution(problem: RootCauseProblem, scores: list[float], order: list[int] | None = None) -> RootCauseSolution:
    """Scores (any scale, >= 0) -> probabilities, the ranking (by score, ties in the given order,
    unless `order` is given) and the evidence in ranking order."""
    total = sum(scores)
    probs = [s / total for s in scores] if total > 0 else [1 / len(scores)] * len(scores)
    if order is None:
        order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    names = [s.name for s in problem.services]
    return RootCauseSolution(
        root_cause=names[order[0]],
        ranking=[names[i] for i in order],
        scores={names[i]: round(probs[i], 6) for i in order},
        evidence=evidence(problem, order),
    )


def by_rank(problem: RootCauseProblem, order: list[int]) -> RootCauseSolution:
    """A ranking as a solution, with scores halving down the ranks."""
    scores = [0.0] * len(order)
    for rank, i in enumerate(order):
        scores[i] = 0.5**rank
    return solution(problem, scores, order)


def heuristic_baseline(problem: RootCauseProblem) -> RootCauseSolution:
    """The leaf rule: anomalous services none of whose callees is anomalous first (largest deviation
    first), then the other anomalous ones, then the rest."""
    anomalous = is_anomalous(problem)
    out_edges = callees(problem)
    strength = anomaly_scores(problem)

    def tier(i: int) -> int:
        if not anomalous[i]:
            return 2
        return 1 if any(anomalous[j] for j in out_edges[i]) else 0

    order = sorted(range(len(problem.services)), key=lambda i: (tier(i), -strength[i], i))
    return by_rank(problem, order)


def pagerank_baseline(problem: RootCauseProblem, damping: float = 0.85, iterations: int = 100) -> RootCauseSolution:
    """Personalised PageRank on the anomalous services (`pagerank_ranking`) as a solution with evidence."""
    order, scores = pagerank_ranking(problem, damping, iterations)
    return solution(problem, scores, order)


def pagerank_ranking(problem: RootCauseProblem, damping: float = 0.85, iterations: int = 100) -> tuple[list[int], list[float]]:
    """Service indices in ranking order and a score per service (>= 0): personalised PageRank on the
    anomalous services, walking caller -> callee.

    Walks start at services in proportion to their anomaly score and follow calls towards more
    anomalous callees, so they flow from symptoms to causes; a service with no anomalous callee
    keeps its walkers. Services outside the anomaly subgraph follow, ranked by anomaly score.
    With no anomalous service at all the walk still gives an order (callees first), but the scores
    are uniform: nothing moved, so no service is more likely than another.
    """
    n = len(problem.services)
    anomalous = is_anomalous(problem)
    nodes = [i for i in range(n) if anomalous[i]] or list(range(n))
    where = {i: k for k, i in enumerate(nodes)}
    score = anomaly_scores(problem)
    out_edges = callees(problem)
    weight = np.array([score[i] + 0.05 for i in nodes])
    step = np.zeros((len(nodes), len(nodes)))
    for k, i in enumerate(nodes):
        targets = [where[j] for j in out_edges[i] if j in where]
        if targets:
            step[k, targets] = weight[targets] / weight[targets].sum()
        else:
            step[k, k] = 1.0
    start = weight / weight.sum()
    x = start.copy()
    for _ in range(iterations):
        x = damping * (x @ step) + (1 - damping) * start
    order = sorted(nodes, key=lambda i: (-x[where[i]], i)) + sorted((i for i in range(n) if i not in where), key=lambda i: (-score[i], i))
    if not any(anomalous):
        return order, [1.0] * n
    scores = [0.0] * n
    for i in nodes:
        scores[i] = float(x[where[i]])
    return order, scores


def deviation_baseline(problem: RootCauseProblem) -> RootCauseSolution:
    """Robust deviation (`deviation_ranking`) as a solution with evidence."""
    order, scores = deviation_ranking(problem)
    return solution(problem, scores, order)


def deviation_ranking(problem: RootCauseProblem) -> tuple[list[int], list[float]]:
    """Service indices in ranking order and a score per service (>= 0), robust deviation (BARO /
    NSigma style): services by their largest deviation from normal, in spreads (`deviations`); ties
    by anomaly score. Graph-free."""
    z = deviations(problem)
    strength = anomaly_scores(problem)
    order = sorted(range(len(z)), key=lambda i: (-z[i], -strength[i], i))
    return order, [max(v, 0.0) for v in z]


BASELINES = {"heuristic": heuristic_baseline, "pagerank": pagerank_baseline, "deviation": deviation_baseline}
