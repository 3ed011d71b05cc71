"""The task contract: how a structured problem becomes tokens for TRM and an answer comes back.

A task instance is cheap and stateless apart from its options (e.g. a maze's canvas size). Problems
arrive as pydantic models (the API schema); `parse` adds the checks a schema cannot express and
raises `InvalidProblem` naming the field, which the service turns into a 422.
"""

from __future__ import annotations

import difflib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from agent_reasoning.types import TaskType

ProblemT = TypeVar("ProblemT", bound=BaseModel)  # a task's problem model (its `Problem`)
SolutionT = TypeVar("SolutionT", bound=BaseModel)  # a task's solution model (its `Solution`)


class InvalidProblem(ValueError):
    """The problem is malformed or unsolvable: the client's fault. `field` is a dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class OutsideCanvas(InvalidProblem):
    """A valid problem larger than this task instance's canvas (the model's limit).

    Not the caller's fault: the service answers it with the task's solver (`Task.solve`) and says so
    in `solved_by`; only `parse` with `canvas=True` raises it.
    """


@dataclass
class SolverAnswer(Generic[SolutionT]):
    """What a task's own solver returns (`Task.solve`): no model involved."""

    solution: SolutionT
    solved_by: str  # "solver": an exact solver (optimal where proven); "baseline": a classical heuristic
    objective: float | None = None  # optimisation tasks: the solution's objective (lower is better)
    lower_bound: float | None = None  # a proven lower bound on the objective
    optimal: bool | None = None  # proven optimal; None where the task has no objective
    unique: bool | None = None  # the only solution, where the solver can tell (Sudoku)
    info: dict[str, Any] = field(default_factory=dict)  # solver facts (status, wall time, conflicts...)


@dataclass
class Example:
    """One generated problem with its exact label."""

    problem: BaseModel
    inputs: np.ndarray  # [seq_len] tokens
    labels: np.ndarray  # [seq_len] target tokens (0 = no target)
    bucket: str  # difficulty bucket name
    group: str  # canonical-form key: examples with equal keys must share a split
    info: dict[str, Any] = field(default_factory=dict)  # generator facts (givens, guesses, path length...)


@dataclass(frozen=True)
class View:
    """One symmetry of a task, for voting at inference: the same problem seen moved and relabelled.

    The view's token at position i is `values[tokens[positions[i]]]`; `undo` maps an answer in the
    view back to the original problem's positions and token values.
    """

    positions: np.ndarray  # [seq_len] source position of each position of the view
    values: np.ndarray  # [vocab_size] token relabelling (a permutation)

    @classmethod
    def identity(cls, seq_len: int, vocab_size: int) -> View:
        """The view that moves and relabels nothing."""
        return cls(np.arange(seq_len), np.arange(vocab_size))

    def apply(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens [..., seq_len] of the original problem -> the same tokens seen in this view."""
        return self.values[tokens[self.positions]]

    def undo(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens [seq_len] answered in this view -> the original problem's positions and values."""
        out = np.empty_like(tokens)
        out[self.positions] = np.argsort(self.values)[tokens]
        return out

    def undo_probs(self, probs: np.ndarray) -> np.ndarray:
        """Token probabilities [seq_len, vocab_size] answered in this view -> the original problem's
        positions, with column v the probability of the original token value v."""
        out = np.empty_like(probs)
        out[self.positions] = probs[:, self.values]
        return out


class Task(ABC, Generic[ProblemT, SolutionT]):
    """A kind of problem TRM learns: its schema, its token encoding, its exact check and its solvers.

    Generic over its problem and solution models: `class MazeTask(Task[MazeProblem, MazeSolution])`
    sets `Problem = MazeProblem` and `Solution = MazeSolution`. Subclasses define `name`,
    `task_type`, `buckets`, the shape (`seq_len`, `vocab_size`) and the abstract methods.
    """

    name: ClassVar[str]
    task_type: ClassVar[TaskType]
    version: ClassVar[str] = "1"
    # Class attributes in practice; not ClassVar because a ClassVar cannot hold a type variable.
    Problem: type[ProblemT]
    Solution: type[SolutionT]
    buckets: ClassVar[tuple[str, ...]]  # difficulty buckets, easiest first
    has_exact_check: ClassVar[bool] = True  # False: `verify` returns None (no exact check exists)
    # True: by default the service and Solver return the better verified answer of the model and the
    # fast classical method (`baseline`), so a weak model never makes an answer worse (homelab tasks)
    fallback_by_default: ClassVar[bool] = False
    # True: valid answers differ in quality (`objective`); False: any answer that passes `verify` is right
    has_objective: ClassVar[bool] = False
    test_only: ClassVar[bool] = False
    # True: `solve` is an exact solver (optimal or the unique answer, within its time limit), so it
    # answers as "solver" and `mode: exact` means something; False: `solve` is the classical baseline
    exact_solver: ClassVar[bool] = False  # True: for tests; not offered for a bare task_type nor to LLM tools
    needs_probs: ClassVar[bool] = False  # True: `decode` wants the token probabilities (e.g. to rank)
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"task {self.name!r} takes no options, got {sorted(options)}")

    # --- shape ---
    @property
    @abstractmethod
    def seq_len(self) -> int:
        """Tokens per problem (L): the length of `encode`'s output and of a label."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Distinct token values (V), PAD (0) included."""

    def options(self) -> dict[str, Any]:
        """What `__init__` needs to rebuild this task (saved in the model config)."""
        return {}

    # --- problems ---
    def parse(self, raw: dict[str, Any] | BaseModel, *, canvas: bool = True) -> ProblemT:
        """Validate a raw problem: schema first, then task-level checks. Raises InvalidProblem.

        With `canvas` (the default, for encoding), also raises OutsideCanvas when the problem is
        larger than this instance's canvas; `canvas=False` for a solver that takes any size."""
        if isinstance(raw, self.Problem):
            problem = raw
        else:
            try:
                problem = self.Problem.model_validate(raw)
            except ValidationError as e:
                err = e.errors()[0]
                # a cross-field check names the item at fault in ctx["at"] (agent_reasoning.types._invalid_at)
                at = (err.get("ctx") or {}).get("at")
                loc = ".".join([*(str(p) for p in err["loc"]), *([at] if at else [])]) or "problem"
                message = err["msg"] + (_sent_instead(raw, err["loc"]) if err["type"] == "missing" else "")
                raise InvalidProblem(f"problem.{loc}" if loc != "problem" else loc, message) from None
        self.check(problem)
        if canvas:
            self.check_canvas(problem)
        return problem

    def notes(self, problem: ProblemT) -> list[str]:
        """Parts of a valid problem the task reads as nothing, for the response's `warnings`, each
        starting with its field (`problem.dependencies.2: ...`); none by default."""
        return []

    def check(self, problem: ProblemT) -> None:  # noqa: B027 - an optional hook: most tasks need no extra checks
        """Task-level checks beyond the schema (size limits, contradictions). Raise InvalidProblem."""

    def check_canvas(self, problem: ProblemT) -> None:  # noqa: B027 - an optional hook
        """Raise OutsideCanvas if the (valid) problem is larger than this instance's canvas.

        Kept apart from `check`, which rejects problems no one can answer: a problem outside the
        canvas is still answered, by `solve`."""

    def ensure_solvable(self, problem: ProblemT) -> None:  # noqa: B027 - an optional hook
        """Raise InvalidProblem if the problem has no solution. Called only when the model's answer
        fails `verify`, so an expensive proof (a search) is paid for by failures alone."""

    @abstractmethod
    def encode(self, problem: ProblemT) -> np.ndarray:
        """Problem -> input tokens [seq_len] (int)."""

    @abstractmethod
    def decode(self, tokens: np.ndarray, problem: ProblemT, probs: np.ndarray | None = None) -> SolutionT:
        """Predicted tokens [seq_len] -> Solution (best effort; `verify` judges it).

        `probs` [seq_len, vocab_size] (softmax of the final step's logits) is given when the task
        sets `needs_probs`.
        """

    @abstractmethod
    def verify(self, problem: ProblemT, solution: SolutionT) -> list[str] | None:
        """Violations of the exact check (empty = valid); None where no exact check exists."""

    @abstractmethod
    def render(self, problem: ProblemT, solution: SolutionT) -> str:
        """The answer as a person reads it."""

    @abstractmethod
    def baseline(self, problem: ProblemT) -> SolutionT:
        """The classical method a user would otherwise run."""

    def solve(self, problem: ProblemT, *, time_limit_s: float = 10.0, hint: SolutionT | None = None) -> SolverAnswer[SolutionT]:
        """The task's own solver, for a task without a model and for `mode: exact`.

        Exact where the task has one (within `time_limit_s`, `hint` as a starting solution), else
        the classical baseline. Raises InvalidProblem when the problem has no solution."""
        return self.assess(problem, self.baseline(problem), solved_by="baseline")

    def unique(self, problem: ProblemT, solution: SolutionT) -> bool | None:
        """Whether a valid solution is the problem's only one, where that is cheap to know; else None."""
        return None

    def objective(self, problem: ProblemT, solution: SolutionT) -> float | None:
        """The objective of a valid solution (lower is better); None for tasks without one."""
        return None

    def lower_bound(self, problem: ProblemT) -> float | None:
        """A cheap proven lower bound on the objective; None for tasks without one."""
        return None

    def assess(self, problem: ProblemT, solution: SolutionT, *, solved_by: str, **extra: Any) -> SolverAnswer[SolutionT]:
        """A SolverAnswer with the objective, the cheap bound and whether they meet."""
        objective = self.objective(problem, solution)
        bound = self.lower_bound(problem)
        optimal = None if objective is None else (bound is not None and objective <= bound)
        return SolverAnswer(solution, solved_by, objective, bound, optimal, **extra)

    def label(self, problem: ProblemT) -> np.ndarray:
        """Target tokens [seq_len] for a problem (from the exact solver)."""
        raise NotImplementedError

    @abstractmethod
    def generate(self, rng: np.random.Generator, n: int, bucket: str, **options: Any) -> list[Example]:
        """n problems of one difficulty bucket with exact labels."""

    def augment(self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A random symmetry of the task applied to a batch [B, seq_len]; identity by default."""
        return inputs, labels

    def views(self, n: int) -> list[View]:
        """Up to `n` symmetries for voting at inference, the identity first; the same views at every
        call. By default the identity alone: a task without symmetries gets no voting."""
        return [View.identity(self.seq_len, self.vocab_size)]

    def answer_key(self, problem: ProblemT, solution: SolutionT, tokens: np.ndarray) -> bytes:
        """What makes two answers the same for a vote (trm.testtime): by default the predicted tokens
        [seq_len], mapped back to the problem's frame."""
        return np.ascontiguousarray(tokens).tobytes()

    # A view moves and relabels the problem's tokens; a task whose views re-list the problem itself
    # (the upgrade task: its nodes in another order, which changes the greedy draft it encodes, so
    # no token map can show it) overrides these four, and everything at inference goes through them.
    def view_problem(self, problem: ProblemT, view: View) -> ProblemT:
        """The problem as `view` shows it (the same problem where a view only moves tokens)."""
        return problem

    def view_inputs(self, problem: ProblemT, view: View, encoded: np.ndarray) -> np.ndarray:
        """The model's input [seq_len] for `problem` seen through `view`; `encoded` is `encode(problem)`."""
        return view.apply(encoded)

    def view_undo(self, problem: ProblemT, view: View, tokens: np.ndarray) -> np.ndarray:
        """Tokens [seq_len] answered in `view` -> the problem's own positions and values."""
        return view.undo(tokens)

    def view_undo_probs(self, problem: ProblemT, view: View, probs: np.ndarray) -> np.ndarray:
        """Probabilities [seq_len, vocab_size] answered in `view` -> the problem's own positions and values."""
        return view.undo_probs(probs)

    def example(self) -> dict[str, Any]:
        """A small problem for documentation and /v1/tasks."""
        return {}

    def describe(self) -> dict[str, Any]:
        """The task as /v1/tasks lists it: name, type, shape, options, buckets, `max_views`."""
        return {
            "name": self.name,
            "task_type": self.task_type.value,
            "version": self.version,
            "description": self.description,
            "seq_len": self.seq_len,
            "vocab_size": self.vocab_size,
            "options": self.options(),
            "buckets": list(self.buckets),
            "exact_check": self.has_exact_check,
            "max_views": len(self.views(64)),  # the most `views` a request may ask for
        }


def _sent_instead(raw: Any, loc: tuple[int | str, ...]) -> str:
    """For a missing field: the key its object holds instead, when it is the same name spelt another
    way (`maxUnavailable`, as a Kubernetes manifest spells it, for `max_unavailable`), else ""."""
    obj = raw
    for part in loc[:-1]:
        try:
            obj = obj[part]
        except (KeyError, IndexError, TypeError):
            return ""
    if not isinstance(obj, dict) or not isinstance(loc[-1], str):
        return ""
    wanted = loc[-1]
    keys = [k for k in obj if isinstance(k, str) and k != wanted]
    same = [k for k in keys if _snake(k) == wanted] or difflib.get_close_matches(wanted, keys, n=1, cutoff=0.8)
    return f"; the object has {same[0]!r}: did you mean {wanted!r}?" if same else ""


def _snake(name: str) -> str:
    """camelCase or kebab-case -> snake_case."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").lower()
