"""In-process use of a trained model, no service needed:

    solver = trm.load("models/sudoku")
    result = solver.solve({"puzzle": "53..7....6..195...."})
    result.verified, result.solution, result.steps, result.confidence
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trm.act import LatentNoise
from trm.checkpoint import load_checkpoint
from trm.inference import Prediction, recurse
from trm.model import TRM
from trm.pipeline import Answer, AnswerOptions, InferenceConfig, Mode, finish, plan_attempts, solve_without_model
from trm.precision import for_inference
from trm.scheduler import HaltMode
from trm.tasks import OutsideCanvas, Task, get_task
from trm.testtime import Select, Strategy, solve_attempts


class Solver:
    """A model and its task in this process: the same pipeline as the service (trm.pipeline) without HTTP."""

    def __init__(self, model: TRM, task: Task, config: dict[str, Any] | None = None, dtype: str = "auto") -> None:
        self.model, self.task, self.config, self.dtype = for_inference(model, dtype), task, config or {}, dtype
        self.inference = InferenceConfig.from_config(self.config)

    @property
    def name(self) -> str:
        """The task's name."""
        return self.task.name

    def solve(
        self,
        problem: dict[str, Any] | Any,
        *,
        max_steps: int | None = None,
        min_steps: int | None = None,
        halt_threshold: float | None = None,
        mode: HaltMode = "act",
        trace: bool = False,
        fallback: bool | None = None,
        views: int | None = None,
        answer_mode: Mode = "fast",
        budget_s: float | None = None,
        attempts: int | None = None,
        strategy: Strategy | None = None,
        noise: float | None = None,
        select: Select | None = None,
        adaptive: bool | None = None,
    ) -> Answer:
        """Solve one problem (a dict in the task's Problem schema). Raises InvalidProblem, InvalidOption.

        `mode` is the halting mode ("act" or "fixed"); `answer_mode` "exact" runs the task's exact solver
        with the model's answer as its hint, within `budget_s` seconds; `fallback` (None: the task's
        default) returns the better verified answer of the model and the classical method. `attempts`,
        `strategy`, `noise`, `select`, `adaptive`: test-time compute (trm.testtime.Policy), over the
        model's stored defaults."""
        return self.solve_many(
            [problem],
            max_steps=max_steps,
            min_steps=min_steps,
            halt_threshold=halt_threshold,
            mode=mode,
            trace=trace,
            fallback=fallback,
            views=views,
            answer_mode=answer_mode,
            budget_s=budget_s,
            attempts=attempts,
            strategy=strategy,
            noise=noise,
            select=select,
            adaptive=adaptive,
        )[0]

    def solve_many(
        self,
        problems: list[dict[str, Any] | Any],
        *,
        max_steps: int | None = None,
        min_steps: int | None = None,
        halt_threshold: float | None = None,
        mode: HaltMode = "act",
        trace: bool = False,
        fallback: bool | None = None,
        views: int | None = None,
        answer_mode: Mode = "fast",
        budget_s: float | None = None,
        attempts: int | None = None,
        strategy: Strategy | None = None,
        noise: float | None = None,
        select: Select | None = None,
        adaptive: bool | None = None,
    ) -> list[Answer]:
        """`views` > 1: solve that many symmetric views of each problem (at most the task has) in one
        batch and answer what most of them agree on. `attempts` > 1 (or the model's stored policy):
        test-time compute, trm.testtime.solve_attempts. A problem beyond the model's canvas is answered
        by the task's own solver (trm.pipeline.solve_without_model), as in the service."""
        parsed = [self.task.parse(p, canvas=False) for p in problems]
        fits = [self._fits(p) for p in parsed]
        policy = plan_attempts(
            self.task, self.inference, views=views, attempts=attempts, strategy=strategy, noise=noise, select=select, adaptive=adaptive
        )
        options = AnswerOptions(fallback=fallback, mode=answer_mode, budget_s=budget_s)
        inside = [p for p, ok in zip(parsed, fits) if ok]

        def run(inputs: torch.Tensor, noise: list[LatentNoise | None], checks: list[Callable[[np.ndarray], bool] | None]) -> list[Prediction]:
            return recurse(
                self.model,
                inputs,
                max_steps=max_steps,
                min_steps=min_steps or self.inference.min_steps,
                threshold=self.inference.halt_threshold if halt_threshold is None else halt_threshold,
                mode=mode,
                trace=trace,
                probs=self.task.needs_probs,
                dtype=self.dtype,
                noise=noise,
                checks=checks if mode == "act" else None,
            )

        ours = iter(solve_attempts(run, self.task, inside, policy) if inside else [])
        return [finish(self.task, p, next(ours), options) if ok else solve_without_model(self.task, p, options) for p, ok in zip(parsed, fits)]

    def _fits(self, problem: Any) -> bool:
        try:
            self.task.check_canvas(problem)
        except OutsideCanvas:
            return False
        return True


def load(path: str | os.PathLike, device: str = "cpu", dtype: str = "auto") -> Solver:
    """Load a checkpoint directory (model.safetensors + config.json) as a Solver."""
    model, config = load_checkpoint(path, device=device)
    task = get_task(model.config.task, **model.config.task_options)
    return Solver(model, task, config, dtype=dtype)
