"""From a parsed problem to a checked answer: the one pipeline the service and the in-process Solver share.

    policy = plan_attempts(task, config, ...)            # how many attempts, how they differ, how to choose
    prediction = ... trm.testtime.run_attempts (the engine) or solve_attempts (a static batch) ...
    answer = finish(task, problem, prediction, options)  # decode, verify, better of TRM and classical

A task without a model, or a problem beyond a model's canvas, is answered by `solve_without_model`
(the task's own solver: exact for placement, upgrade, Sudoku and maze; a classical ranking for root cause).
Nothing here knows about HTTP.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from trm.inference import Prediction
from trm.tasks import Task
from trm.tasks.base import SolverAnswer
from trm.testtime import InvalidOption, Outcome, Policy, Select, Strategy, vote_policy

Mode = Literal["fast", "exact"]
DEFAULT_SOLVER_BUDGET_S = 5.0  # the exact solver's time limit when a request names none


__all__ = ["Answer", "AnswerOptions", "InferenceConfig", "InvalidOption", "Mode", "finish", "plan_attempts", "solve_without_model"]


@dataclass(frozen=True)
class InferenceConfig:
    """A model's inference defaults: the `inference` object of its config.json, typed.

    halt_threshold: a sample halts when q_halt exceeds it (ACT); min_steps: supervision steps before
    halting may stop it; views: symmetric views solved and voted on by default (Task.views; a
    vote over all of them on every problem); policy: test-time compute by default (trm.testtime.Policy,
    from the keys attempts, strategy, noise, select, adaptive, accept_confidence; one attempt when
    absent); calibration: step-cost curves measured per machine (trm.engine.calibrate), from which
    `slots="auto"` chooses the batch size on a matching machine.
    """

    halt_threshold: float = 0.0
    min_steps: int = 1
    views: int = 1
    policy: Policy = field(default_factory=Policy)
    calibration: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> InferenceConfig:
        """Read `config["inference"]` (missing keys take the defaults). Raises ValueError on a bad value."""
        raw = (config or {}).get("inference") or {}
        if not isinstance(raw, dict):
            raise ValueError(f"config.json 'inference' must be an object, got {type(raw).__name__}")
        plain = Policy()
        out = cls(
            halt_threshold=float(raw.get("halt_threshold", cls.halt_threshold)),
            min_steps=int(raw.get("min_steps", cls.min_steps)),
            views=int(raw.get("views", cls.views)),
            policy=Policy(
                attempts=int(raw.get("attempts", plain.attempts)),
                strategy=raw.get("strategy", plain.strategy),
                noise=float(raw.get("noise", plain.noise)),
                select=raw.get("select", plain.select),
                adaptive=raw.get("adaptive", plain.adaptive),
                accept_confidence=float(raw.get("accept_confidence", plain.accept_confidence)),
                stop_on_check=raw.get("stop_on_check", plain.stop_on_check),
            ),
            calibration=tuple(raw.get("calibration") or ()),
        )
        if out.min_steps < 1 or out.views < 1:
            raise ValueError(f"config.json 'inference': min_steps and views must be >= 1, got {raw}")
        for name in ("adaptive", "stop_on_check"):
            if not isinstance(raw.get(name, True), bool):
                raise ValueError(f"config.json 'inference'.{name} must be true or false, got {raw[name]!r}")
        try:
            out.policy.validate()
        except InvalidOption as e:
            raise ValueError(f"config.json 'inference'.{e.field}: {e.message}") from None
        return out

    def as_dict(self) -> dict[str, Any]:
        """The config as config.json's `inference` object (and /v1/tasks shows it)."""
        return {"halt_threshold": self.halt_threshold, "min_steps": self.min_steps, "views": self.views, **self.policy.as_dict()}


@dataclass(frozen=True)
class AnswerOptions:
    """How a prediction becomes the answer.

    fallback: compare the model's answer with the task's fast classical answer and return the better
    verified one (None: the task's default, `Task.fallback_by_default`). mode "exact": the task's exact
    solver, with the model's answer as a hint, within `budget_s` seconds.
    """

    fallback: bool | None = None
    mode: Mode = "fast"
    budget_s: float | None = None


@dataclass
class Answer:
    """A checked answer, ready for an API response or an in-process caller."""

    answer: str  # rendered for people
    solution: dict[str, Any]  # in the task's Solution schema
    verified: bool | None  # the exact check passed; None where the task has none
    violations: list[str]
    solved_by: str  # "trm" | "solver" | "baseline"
    steps: int  # supervision steps the model took (0: no model took part)
    halted: bool
    confidence: float  # sigmoid(q_halt) of the model's last step; without a model see `_confidence`
    trace: list[dict[str, Any]] = field(default_factory=list)
    views: int = 1  # attempts (symmetric views, noisy trajectories) that finished
    votes: int = 1  # of those, how many gave this answer
    attempts: int = 1  # attempts started (trm.testtime)
    total_steps: int = 0  # supervision steps of every attempt together: the compute spent
    chosen_by: str = "halt"  # "halt" (the halting head, one attempt or the most confident), "vote", "checker"
    strategy: str = "single"  # what found the answer: "single" (the plain attempt) or "views", "noise", "views+noise"
    objective: float | None = None  # optimisation tasks: lower is better
    lower_bound: float | None = None  # a proven lower bound on the objective
    optimal: bool | None = None  # proven optimal
    unique: bool | None = None  # the only solution, where known


def plan_attempts(
    task: Task,
    config: InferenceConfig,
    *,
    views: int | None = None,
    attempts: int | None = None,
    strategy: Strategy | None = None,
    noise: float | None = None,
    select: Select | None = None,
    adaptive: bool | None = None,
    budget_s: float | None = None,
) -> Policy:
    """The test-time compute for one request: its options over the model's stored defaults.

    `views` N: a vote over N symmetric views, all at once (as before test-time compute); `attempts`
    and the rest: trm.testtime.Policy. Without either, the model's stored policy, or its stored
    `views` vote. Raises InvalidOption naming the field at fault."""
    if views is not None and attempts is not None:
        raise InvalidOption("views", "give views (a vote over that many symmetric views) or attempts, not both")
    stored = config.policy
    if views is not None:
        available = len(task.views(views))
        if views > available:
            raise InvalidOption("views", f"the {task.name} task has at most {available}")
        base = dataclasses.replace(stored, **_as_vote(views, task))
    elif stored.attempts == 1 and config.views > 1 and attempts is None:
        base = dataclasses.replace(stored, **_as_vote(config.views, task))  # the model's stored vote, with the request's other options
    else:
        base = stored
    return dataclasses.replace(
        base,
        attempts=base.attempts if attempts is None else attempts,
        strategy=base.strategy if strategy is None else strategy,
        noise=base.noise if noise is None else noise,
        select=base.select if select is None else select,
        adaptive=base.adaptive if adaptive is None else adaptive,
        budget_s=budget_s,
    ).check(task)


def _as_vote(views: int, task: Task) -> dict[str, Any]:
    vote = vote_policy(views, task)
    return {"attempts": vote.attempts, "strategy": vote.strategy, "select": vote.select, "adaptive": vote.adaptive}


def finish(task: Task, problem: Any, prediction: Prediction, options: AnswerOptions | None = None) -> Answer:
    """Decode, verify and, where asked, keep the better of the model's and the classical answer.

    Raises InvalidProblem when the model's answer fails its check and the problem has no solution.
    """
    options = options or AnswerOptions()
    model_solution = task.decode(prediction.tokens, problem, prediction.probs)
    violations = task.verify(problem, model_solution)
    verified = None if violations is None else not violations
    if verified is False:
        task.ensure_solvable(problem)  # an unsolvable problem is the caller's error, not a wrong answer
    chosen = SolverAnswer(model_solution, "trm")
    if options.mode == "exact" and task.exact_solver:  # without an exact solver "exact" has nothing to add
        chosen = _exact(task, problem, model_solution if verified else None, options.budget_s)
    elif task.fallback_by_default if options.fallback is None else options.fallback:
        chosen = _better_of_model_and_baseline(task, problem, model_solution, verified)
    if chosen.solution is not model_solution:
        violations = task.verify(problem, chosen.solution)
        verified = None if violations is None else not violations
    # the last step is the answer: shown as it was decoded (with the probabilities), not without them
    last = len(prediction.trace) if prediction.trace and (prediction.trace[-1].tokens == prediction.tokens).all() else 0
    trace = [
        {
            "step": r.step,
            "answer": task.render(problem, step_solution),
            "confidence": r.confidence,
            "changed": r.changed,
            "solution": step_solution.model_dump(mode="json"),
        }
        for k, r in enumerate(prediction.trace, 1)
        for step_solution in [model_solution if k == last else task.decode(r.tokens, problem)]
    ]
    answer = _answer(task, problem, chosen, verified, violations or [])
    answer.steps, answer.halted, answer.confidence = prediction.steps, prediction.halted, prediction.confidence
    answer.trace, answer.views, answer.votes = trace, prediction.views, prediction.votes
    answer.total_steps = prediction.steps
    if isinstance(prediction, Outcome):
        answer.attempts, answer.total_steps = prediction.attempts, prediction.sample_steps
        answer.chosen_by, answer.strategy = prediction.chosen_by, prediction.strategy
    return answer


def solve_without_model(task: Task, problem: Any, options: AnswerOptions | None = None) -> Answer:
    """The task's own solver answers (no model loaded, or the problem is beyond every model's canvas).

    Raises InvalidProblem when the problem has no solution."""
    options = options or AnswerOptions()
    solved = task.solve(problem, time_limit_s=options.budget_s or DEFAULT_SOLVER_BUDGET_S)
    violations = task.verify(problem, solved.solution)
    verified = None if violations is None else not violations
    return _answer(task, problem, solved, verified, violations or [])


def _answer(task: Task, problem: Any, chosen: SolverAnswer, verified: bool | None, violations: list[str]) -> Answer:
    objective, bound, optimal = chosen.objective, chosen.lower_bound, chosen.optimal
    if verified is not False and objective is None:
        assessed = task.assess(problem, chosen.solution, solved_by=chosen.solved_by)
        objective, bound, optimal = assessed.objective, assessed.lower_bound, assessed.optimal
    unique = chosen.unique
    if unique is None and verified:
        unique = task.unique(problem, chosen.solution)
    return Answer(
        answer=task.render(problem, chosen.solution),
        solution=chosen.solution.model_dump(mode="json"),
        verified=verified,
        violations=violations,
        solved_by=chosen.solved_by,
        steps=0,
        halted=True,
        confidence=_confidence(chosen.solution, verified),
        objective=objective if verified is not False else None,
        lower_bound=bound,
        # an invalid answer is not optimal; a task without an objective has no optimum to speak of
        optimal=None if objective is None else (optimal if verified is not False else False),
        unique=unique if verified else None,
    )


def _confidence(solution: BaseModel, verified: bool | None) -> float:
    """An answer no model took part in: 1.0 when the exact check proved it, 0.0 when it failed; a
    ranking without a check (rootcause) gives its top probability."""
    if verified is not None:
        return 1.0 if verified else 0.0
    scores = getattr(solution, "scores", None) or {}
    return float(max(scores.values(), default=0.0))


def _better_of_model_and_baseline(task: Task, problem: Any, model_solution: BaseModel, verified: bool | None) -> SolverAnswer:
    """The model's answer unless it fails its check or the classical one is strictly better (lower
    objective) and valid: a weak model never makes the answer worse than the classical method."""
    if verified is None:  # no exact check (root cause): nothing to judge the model's answer by
        return SolverAnswer(model_solution, "trm")
    baseline = task.baseline(problem)
    baseline_violations = task.verify(problem, baseline)
    if baseline_violations:
        return SolverAnswer(model_solution, "trm")
    if verified is False:
        return SolverAnswer(baseline, "baseline")
    ours, theirs = task.objective(problem, model_solution), task.objective(problem, baseline)
    if ours is not None and theirs is not None and theirs < ours:
        return SolverAnswer(baseline, "baseline")
    return SolverAnswer(model_solution, "trm")


def _exact(task: Task, problem: Any, hint: BaseModel | None, budget_s: float | None) -> SolverAnswer:
    """The exact solver with the model's (valid) answer as its hint; the model keeps the credit when
    the solver found nothing better than it."""
    solved = task.solve(problem, time_limit_s=budget_s or DEFAULT_SOLVER_BUDGET_S, hint=hint)
    if hint is not None and solved.objective is None:  # no objective (Sudoku, maze): a valid answer is as good
        return SolverAnswer(hint, "trm", unique=solved.unique, info=solved.info)
    if hint is not None and solved.objective is not None:
        ours = task.objective(problem, hint)
        if ours is not None and ours <= solved.objective:
            return SolverAnswer(hint, "trm", ours, solved.lower_bound, solved.optimal, solved.unique, solved.info)
    return solved
