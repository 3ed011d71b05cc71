"""Pieces the homelab tasks (placement, upgrade, rootcause) share: search limits, the random
permutations their `augment` uses, canonical-form hashing, and CP-SAT set-up (and the nearness
solve of their hints labels).

Kept in one place so that "hit a limit", "the same problem up to renaming" and "a deterministic
CP-SAT run" mean the same thing in every task.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from ortools.sat.python import cp_model


class LimitReached(RuntimeError):
    """An exact search stopped at its limit (time or work) before proving its answer.

    `best` is the best answer found so far (task-specific, or None); generators count these
    instances (`limit_hits`) instead of dropping them silently."""

    def __init__(self, message: str, best: Any = None) -> None:
        super().__init__(message)
        self.best = best


def bool_option(name: str, value: object) -> bool:
    """A boolean task option (e.g. `hints`); TypeError naming it for anything else (the string
    "False" from a command line would otherwise read as true)."""
    if not isinstance(value, bool):
        raise TypeError(f"task option {name!r} takes true or false, not {value!r}")
    return value


def short_hash(value: object) -> str:
    """16 hex digits of the SHA-256 of `repr(value)`: a stable key for canonical forms (not for security)."""
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def wl_hash(graph: nx.Graph, *, node_attr: str = "label", edge_attr: str | None = None, iterations: int = 3) -> str:
    """A Weisfeiler-Lehman hash of a labelled graph (networkx): equal for isomorphic graphs with
    equal labels; 16 hex digits. Node labels (`node_attr`) and edge labels (`edge_attr`) must be strings."""
    return nx.weisfeiler_lehman_graph_hash(graph, node_attr=node_attr, edge_attr=edge_attr, iterations=iterations, digest_size=8)


def permutations(rng: np.random.Generator, present: np.ndarray) -> np.ndarray:
    """[B, S] source slot of each slot: present slots (a prefix) shuffled among themselves, the rest in place."""
    keys = np.where(present, rng.random(present.shape), 2.0 + np.arange(present.shape[1]))
    return np.argsort(keys, axis=1)


# --- CP-SAT ----------------------------------------------------------------------------------------

CPSAT_SEED = 1  # fixed: with one worker, CP-SAT's answers repeat run to run


def cpsat_solver(time_limit_s: float, workers: int = 1) -> cp_model.CpSolver:
    """A CP-SAT solver with a wall-clock limit (seconds), `workers` search threads and a fixed seed.

    One worker is deterministic (labels, evaluation sets); two use both cores of a small box but
    may return a different optimum between runs."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.001, float(time_limit_s))
    solver.parameters.num_workers = max(1, int(workers))
    solver.parameters.random_seed = CPSAT_SEED
    return solver


@dataclass
class CpResult:
    """One CP-SAT optimisation: the best values found (None if none), the proven bound, the status."""

    values: list[int] | None  # task-specific decision values (node per pod, wave per node)
    objective: int | None
    bound: int  # proven lower bound on the objective (the solver's, at least the cheap one given)
    optimal: bool  # proven
    status: str  # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN (CP-SAT's names)
    seconds: float  # wall time of the solve(s)
    info: dict[str, Any] = field(default_factory=dict)


class Budget:
    """What a chain of CP-SAT solves may still spend.

    `work`: CP-SAT's deterministic time (its own work units: about 10 s of one core each on the
    placement and upgrade models here; the same on any machine and under any load, so a label
    search stops at the same point everywhere and generated data repeat); None for wall-clock only
    (the service's exact mode).
    `wall_s`: a wall-clock limit over the whole chain, always enforced."""

    def __init__(self, wall_s: float, work: float | None = None) -> None:
        self.deadline = time.perf_counter() + wall_s
        self.work = work
        self.spent = 0.0  # deterministic time used so far

    def solver(self, workers: int = 1, cap: float | None = None) -> cp_model.CpSolver:
        """A solver limited to what is left (and at most `cap` work units, or seconds without `work`)."""
        solver = cpsat_solver(max(0.0, self.deadline - time.perf_counter()), workers)
        if self.work is not None:
            left = max(0.0, self.work - self.spent)
            solver.parameters.max_deterministic_time = max(1e-3, left if cap is None else min(cap, left))
        elif cap is not None:
            solver.parameters.max_time_in_seconds = max(1e-3, min(cap, solver.parameters.max_time_in_seconds))
        return solver

    def solve(self, model: cp_model.CpModel, workers: int = 1, cap: float | None = None, **params: Any) -> tuple[cp_model.CpSolver, int]:
        """Solve under the budget (extra CP-SAT `params` by name) and charge the work done."""
        solver = self.solver(workers, cap)
        for name, value in params.items():
            setattr(solver.parameters, name, value)
        status = solver.Solve(model)
        self.spent += solver.ResponseProto().deterministic_time
        return solver, status


def keep_most(model: cp_model.CpModel, keep: list[cp_model.IntVar], budget: Budget, best: Any) -> tuple[cp_model.CpSolver, int]:
    """The most of `keep` (literals: a cell as its draft has it) that can hold in `model`, proven by
    one CP-SAT solve under `budget` (the caller's hint set first), then fixed in `model` so a
    tie-break that follows stays as near the draft. Returns (solver, that count). Raises
    LimitReached (`best`: the caller's best answer) when not proven: an unproven nearest answer
    would be a label that may be wrong. The hints tasks' `nearest` labels use it."""
    model.maximize(cp_model.LinearExpr.Sum(keep))
    solver, status = budget.solve(model, 1, cp_model_presolve=False)
    if status != cp_model.OPTIMAL:
        raise LimitReached("no proven nearest optimum within the work budget", best)
    kept = round(solver.ObjectiveValue())
    model.add(cp_model.LinearExpr.Sum(keep) == kept)
    return solver, kept


STATUS_NAMES = {
    cp_model.OPTIMAL: "OPTIMAL",
    cp_model.FEASIBLE: "FEASIBLE",
    cp_model.INFEASIBLE: "INFEASIBLE",
    cp_model.MODEL_INVALID: "MODEL_INVALID",
    cp_model.UNKNOWN: "UNKNOWN",
}
