"""Test-time compute: more recursion for a hard problem, within a budget, and the choice among attempts.

An attempt is one trajectory of the model through a problem. Attempt 0 is the plain one (the problem
as given, no noise: exactly a single solve). Attempt k >= 1 differs from it by the policy's strategy:
- "views": it sees the problem as symmetric view k (Task.views: relabelled, rotated, permuted; for
  upgrade, the nodes re-listed in another order: Task.view_inputs encodes each view);
- "noise": Gaussian noise of std `noise` is added to its latent z before every step (trm.act.LatentNoise,
  seeded by k, so an attempt is reproducible): the parallel noisy trajectories of the TRM follow-up
  work, which need no retraining;
- "views+noise": both.

Adaptive (the default): attempt 0 runs alone first and is kept when it passes the task's exact check
(Sudoku, maze, placement, upgrade; for an optimisation task, placement and upgrade, only when its
objective also meets the task's lower bound, i.e. it is proven optimal) or, for a task without one
(root cause), when its halting confidence reaches `accept_confidence`; so an easy problem costs what
it cost before. Otherwise the
other attempts run side by side (one engine slot each) and the answer is chosen (`select`):
- "checker": the first attempt that passes the exact check wins and the rest are cancelled; for an
  optimisation task (an objective), the best objective among the attempts that pass; when none
  passes, the vote decides;
- "vote": the answer most attempts agree on (ties to the larger summed confidence);
- "halt": the attempt whose halting head is most confident.

`run_attempts` runs a policy on the continuous-batching engine (the service); `solve_attempts` on a
static batch through trm.inference.recurse (the in-process Solver, the benches). Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
from pydantic import BaseModel

from trm.act import LatentNoise
from trm.inference import Prediction, majority
from trm.tasks import Task
from trm.tasks.base import View

Strategy = Literal["views", "noise", "views+noise"]
Select = Literal["checker", "vote", "halt"]
ChosenBy = Literal["halt", "vote", "checker"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
SELECTS: tuple[str, ...] = get_args(Select)
MAX_ATTEMPTS = 64


class InvalidOption(ValueError):
    """A request option this task or model cannot honour; `field` names it (a 422 in the service)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Policy:
    """How much a problem may cost and how the answer is chosen among the model's attempts.

    attempts: the most attempts (1: the plain solve alone); strategy: how attempts after the first
    differ; noise: the std of the latent noise (strategies with noise), in units of the latent's own
    scale (its init vectors have std 1); select: None picks "checker" where the task has an exact
    check, else "vote"; adaptive: attempt 0 alone first (see the module); accept_confidence: the
    halting confidence that accepts attempt 0 of a task without an exact check; budget_s: wall
    seconds for the attempts after the first (None: the request's deadline governs; the engine only);
    stop_on_check: when test-time compute runs with the checker (more than one attempt) on a task where
    an answer that passes the exact check is right (Sudoku, maze: no objective), every attempt is
    checked after each step and stops as soon as its answer passes, halted or not.
    """

    attempts: int = 1
    strategy: Strategy = "views"
    noise: float = 0.0
    select: Select | None = None
    adaptive: bool = True
    accept_confidence: float = 0.5
    budget_s: float | None = None
    stop_on_check: bool = True

    def validate(self) -> None:
        """Raise InvalidOption (naming the field) for values out of range, whatever the task."""
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise InvalidOption("attempts", f"must be 1-{MAX_ATTEMPTS}, got {self.attempts}")
        if self.strategy not in STRATEGIES:
            raise InvalidOption("strategy", f"must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if not 0.0 <= self.noise <= 4.0:
            raise InvalidOption("noise", f"must be 0-4 (std of the latent noise), got {self.noise}")
        if self.strategy != "views" and self.attempts > 1 and self.noise == 0.0:
            raise InvalidOption("noise", f"strategy {self.strategy!r} needs noise > 0 (the model stores none for this task)")
        if self.select is not None and self.select not in SELECTS:
            raise InvalidOption("select", f"must be one of {', '.join(SELECTS)}, got {self.select!r}")
        if not 0.0 <= self.accept_confidence <= 1.0:
            raise InvalidOption("accept_confidence", f"must be 0-1, got {self.accept_confidence}")
        if self.budget_s is not None and self.budget_s <= 0:
            raise InvalidOption("compute_ms", "must be > 0")

    def check(self, task: Task) -> Policy:
        """Raise InvalidOption (naming the field) for values out of range or one the task cannot honour;
        returns the policy with `select` settled and `attempts` capped at the distinct views a
        views-only strategy has."""
        self.validate()
        if self.select == "checker" and not task.has_exact_check:
            raise InvalidOption("select", f"the {task.name} task has no exact check; use 'vote' or 'halt'")
        select = self.select or ("checker" if task.has_exact_check else "vote")
        attempts = self.attempts
        if self.strategy == "views":
            attempts = min(attempts, len(task.views(attempts)))  # more would repeat a view
        return dataclasses.replace(self, select=select, attempts=attempts)

    def view_count(self) -> int:
        """The distinct views the attempts cycle through."""
        return self.attempts if self.strategy != "noise" else 1

    def noise_for(self, k: int) -> LatentNoise | None:
        """Attempt k's latent noise (None for attempt 0 and the views-only strategy)."""
        if k == 0 or self.strategy == "views" or self.noise == 0.0:
            return None
        return LatentNoise(self.noise, seed=k)

    def kind(self, k: int) -> str:
        """What attempt k is: "single" (the plain attempt 0), else the strategy."""
        return "single" if k == 0 else self.strategy

    def as_dict(self) -> dict[str, Any]:
        """The policy as config.json's `inference` fields and a response's echo."""
        return {
            "attempts": self.attempts,
            "strategy": self.strategy,
            "noise": self.noise,
            "select": self.select,
            "adaptive": self.adaptive,
            "accept_confidence": self.accept_confidence,
            "stop_on_check": self.stop_on_check,
        }

    def checker(self, task: Task, problem: Any, view: View) -> Callable[[np.ndarray], bool] | None:
        """The per-step check of an attempt seen through `view` (None where the policy or task has none)."""
        if not (self.stop_on_check and self.attempts > 1 and self.select == "checker" and task.has_exact_check and not task.has_objective):
            return None
        return lambda tokens: not task.verify(problem, task.decode(task.view_undo(problem, view, tokens), problem))


def vote_policy(views: int, task: Task | None = None) -> Policy:
    """A request's `views: N` (and a model's stored `views`): N symmetric views at once, the vote
    decides; for an optimisation `task`, the checker (the best objective that passes), as agreeing
    on a plan says less than its objective does."""
    select: Select = "checker" if task is not None and task.has_objective else "vote"
    return Policy(attempts=views, strategy="views", select=select, adaptive=False)


@dataclass
class Judged:
    """One finished attempt: its prediction mapped back to the problem, decoded and checked."""

    index: int  # attempt number (0: the plain one)
    prediction: Prediction  # tokens and trace in the problem's own frame
    solution: BaseModel
    verified: bool | None  # None: the task has no exact check
    objective: float | None  # for verified answers of optimisation tasks
    cut: str | None = None  # the engine's cut reason ("deadline", "max_steps") or None
    proven: bool | None = None  # optimisation tasks, verified: the objective meets the task's lower bound (optimal)
    key: bytes = b""  # what makes two attempts the same answer (Task.answer_key): votes and the vote count it


def judge(task: Task, problem: Any, k: int, view: View, prediction: Prediction, cut: str | None = None, bound: float | None = None) -> Judged:
    """Map attempt k's prediction back from its view, decode and check it. `bound`: the problem's
    lower bound (Task.lower_bound, computed once per problem by the caller), which proves an
    optimisation answer optimal."""
    back = dataclasses.replace(
        prediction,
        tokens=task.view_undo(problem, view, prediction.tokens),
        trace=[dataclasses.replace(r, tokens=task.view_undo(problem, view, r.tokens)) for r in prediction.trace],
        probs=task.view_undo_probs(problem, view, prediction.probs) if prediction.probs is not None else None,
    )
    solution = task.decode(back.tokens, problem, back.probs)
    violations = task.verify(problem, solution)
    verified = None if violations is None else not violations
    objective = task.objective(problem, solution) if verified else None
    proven = None if objective is None or bound is None else objective <= bound
    return Judged(k, back, solution, verified, objective, cut, proven, task.answer_key(problem, solution, back.tokens))


def accepts_first(policy: Policy, first: Judged) -> bool:
    """Whether adaptive mode keeps attempt 0 without trying more: it passes the exact check and, for
    an optimisation task, is proven optimal (its objective meets the lower bound; another attempt
    could find a better one otherwise); without a check, its halting confidence is high enough."""
    if first.verified is not None:
        return first.verified and first.proven is not False
    return first.prediction.confidence >= policy.accept_confidence


def decisive(policy: Policy, judged: Judged) -> bool:
    """Whether this attempt ends the search at once (checker selection, a satisfaction task, verified)."""
    return policy.select == "checker" and judged.verified is True and judged.objective is None


def select(policy: Policy, judged: Sequence[Judged]) -> tuple[Judged, ChosenBy, int]:
    """The chosen attempt, how it was chosen, and how many attempts gave the same answer.

    Raises ValueError for no attempts."""
    if not judged:
        raise ValueError("no attempts to choose from")

    def agreeing(j: Judged) -> int:
        return sum(k.key == j.key for k in judged)

    if len(judged) == 1:
        return judged[0], "halt", 1
    if policy.select == "checker":
        passed = [j for j in judged if j.verified]
        if passed:
            # satisfaction tasks: the first to pass; optimisation: the best objective, ties to the lower
            # attempt number (not completion order, so the engine and a static batch choose alike)
            best = min(passed, key=lambda j: (j.objective if j.objective is not None else 0.0, j.index))
            return best, "checker", agreeing(best)
    if policy.select == "halt":
        best = max(judged, key=lambda j: (j.prediction.confidence, -j.index))
        return best, "halt", agreeing(best)
    members = [judged[i] for i in majority([np.frombuffer(j.key, dtype=np.uint8) for j in judged], [j.prediction.confidence for j in judged])]
    best = max(members, key=lambda j: (j.prediction.confidence, -j.index))
    return best, "vote", len(members)


@dataclass
class Outcome(Prediction):
    """The chosen prediction, with what the search cost and how it chose.

    `views` is the attempts that finished, `votes` those that gave this answer (as for a vote)."""

    attempts: int = 1  # attempts started
    sample_steps: int = 0  # supervision steps of every attempt (the compute spent)
    chosen_by: ChosenBy = "halt"
    strategy: str = "single"  # what found the answer: "single" (attempt 0) or the policy's strategy
    cut_reason: str | None = None  # attempt 0's cut reason in the engine ("deadline": the request ran out)
    queue_seconds: float = 0.0
    compute_seconds: float = 0.0


def _outcome(policy: Policy, judged: list[Judged], started: int, steps: int, extra: dict[str, Any] | None = None) -> Outcome:
    chosen, how, votes = select(policy, judged)
    fields = {f.name: getattr(chosen.prediction, f.name) for f in dataclasses.fields(Prediction)}
    fields.update(views=len(judged), votes=votes)
    return Outcome(**fields, attempts=started, sample_steps=steps, chosen_by=how, strategy=policy.kind(chosen.index), **(extra or {}))


# --- on the engine (the service) ---


async def run_attempts(
    engine: Any,
    task: Task,
    problem: Any,
    policy: Policy,
    *,
    deadline: float | None,
    submit: dict[str, Any],
    on_overflow: Callable[[Exception], None] | None = None,
) -> Outcome:
    """Run `policy` on a trm.engine.Engine; `submit` holds the other Engine.submit arguments (max_steps,
    min_steps, threshold, trace, probs), `deadline` the request's (time.monotonic()).

    Raises what Engine.submit raises for attempt 0 (QueueFullError, EngineStoppedError),
    DeadlineExceededError when attempt 0 never got a slot, and InvalidProblem when attempt 0 fails
    the check and the task proves the problem has no solution (before any extra attempt runs). A later attempt that finds the queue full
    is not started (`on_overflow` hears of it); one that runs out of time is judged as far as it got.
    Cancelling the caller cancels every attempt."""
    tokens = task.encode(problem)
    bound = task.lower_bound(problem) if task.has_objective else None  # once, not per attempt (placement's enumerates node sets)
    views = task.views(policy.view_count())
    running: dict[asyncio.Future, tuple[concurrent.futures.Future, int]] = {}

    def budget_end() -> float | None:
        if policy.budget_s is None:
            return deadline
        return min(deadline or float("inf"), time.monotonic() + policy.budget_s)

    def launch(ks: range) -> None:
        extra_until = budget_end()
        for k in ks:
            view = views[k % len(views)]
            try:
                future = engine.submit(
                    task.view_inputs(problem, view, tokens),
                    deadline=deadline if k == 0 else extra_until,
                    noise=policy.noise_for(k),
                    check=policy.checker(task, problem, view),
                    **submit,
                )
            except Exception as e:  # attempt 0 must run; a later one is extra: fewer attempts, not a failed request
                if k == 0:
                    raise
                if on_overflow:
                    on_overflow(e)
                return
            running[asyncio.wrap_future(future)] = (future, k)

    judged: list[Judged] = []
    started = steps = 0
    times: dict[str, float] = {}
    extra: dict[str, Any] = {}
    try:
        launch(range(1) if policy.adaptive else range(policy.attempts))
        started = len(running)
        decided = False
        while running and not decided:
            done, _ = await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            for wrapped in done:
                _, k = running.pop(wrapped)
                try:
                    result = wrapped.result()
                except Exception:
                    if k == 0:
                        raise
                    continue  # an extra attempt whose time ran out while it queued
                steps += result.steps
                j = judge(task, problem, k, views[k % len(views)], result, result.cut_reason, bound)
                judged.append(j)
                times = times or {"queue_seconds": result.queue_seconds, "compute_seconds": result.compute_seconds}
                if k == 0 and result.cut_reason == "deadline":
                    judged, extra, decided = [j], {"cut_reason": "deadline"}, True
                elif decisive(policy, j) or (k == 0 and policy.adaptive and accepts_first(policy, j)):
                    decided = True
                if decided:
                    break
            if not decided and not running and policy.adaptive and started == 1 and policy.attempts > 1:
                if judged and judged[0].verified is False:
                    # no more compute for a problem without a solution: InvalidProblem, a 422 in the service
                    await asyncio.to_thread(task.ensure_solvable, problem)
                launch(range(1, policy.attempts))
                started += len(running)
    finally:
        for wrapped, (future, _) in running.items():  # decided, failed or cancelled: the rest give up their slots
            future.cancel()
            steps += engine.steps_taken(future)  # what they cost until now counts as compute spent
            if wrapped.done() and not wrapped.cancelled():
                wrapped.exception()  # finished meanwhile: read, so asyncio does not warn of an unread error
            wrapped.cancel()
    return _outcome(policy, judged, started, steps, {**times, **extra})


# --- on a static batch (the in-process Solver, benches) ---


def solve_attempts(
    run: Callable[[torch.Tensor, list[LatentNoise | None], list[Callable[[np.ndarray], bool] | None]], list[Prediction]],
    task: Task,
    problems: Sequence[Any],
    policy: Policy,
) -> list[Outcome]:
    """Run `policy` for every problem on static batches: `run(inputs [B, L], noise [B], checks [B])`
    solves a batch (trm.inference.recurse with the caller's settings). Round 1 runs attempt 0 of every problem
    (every attempt when not adaptive); round 2 the other attempts of the problems round 1 did not
    settle, all in one batch. The checker takes the first attempt in attempt order that passes.
    `policy.budget_s` does not apply (a static batch has no clock per attempt)."""
    views = task.views(policy.view_count())
    encoded = [task.encode(p) for p in problems]
    bounds = [task.lower_bound(p) if task.has_objective else None for p in problems]  # once per problem, not per attempt
    judged: list[list[Judged]] = [[] for _ in problems]
    started = [0] * len(problems)
    steps = [0] * len(problems)

    def round_(jobs: list[tuple[int, int]]) -> None:
        if not jobs:
            return
        inputs = torch.from_numpy(np.stack([task.view_inputs(problems[i], views[k % len(views)], encoded[i]) for i, k in jobs]))
        checks = [policy.checker(task, problems[i], views[k % len(views)]) for i, k in jobs]
        predictions = run(inputs, [policy.noise_for(k) for _, k in jobs], checks)
        for (i, k), prediction in zip(jobs, predictions):
            started[i] += 1
            steps[i] += prediction.steps
            judged[i].append(judge(task, problems[i], k, views[k % len(views)], prediction, bound=bounds[i]))

    first = range(1) if policy.adaptive else range(policy.attempts)
    round_([(i, k) for i in range(len(problems)) for k in first])
    if policy.adaptive and policy.attempts > 1:
        unsettled = [i for i in range(len(problems)) if not accepts_first(policy, judged[i][0])]
        for i in unsettled:
            if judged[i][0].verified is False:
                task.ensure_solvable(problems[i])  # no more compute for a problem without a solution (InvalidProblem)
        round_([(i, k) for i in unsettled for k in range(1, policy.attempts)])
    out = []
    for i in range(len(problems)):
        attempts = judged[i]
        decided = next((j for j in attempts if decisive(policy, j)), None)
        if decided is not None:
            attempts = [j for j in attempts if j.index <= decided.index]  # the engine would have cancelled the rest
        out.append(_outcome(policy, attempts, started[i], steps[i]))
    return out
