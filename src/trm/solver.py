"""In-process use of a trained model, no service needed:

    solver = trm.load("models/sudoku")
    result = solver.solve({"puzzle": "53..7....6..195...."})
    result.verified, result.solution, result.steps, result.confidence
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from trm.checkpoint import load_checkpoint
from trm.inference import Answer, HaltMode, finish, for_inference, recurse, vote
from trm.model import TRM
from trm.tasks import Task, get_task


class Solver:
    def __init__(self, model: TRM, task: Task, config: dict[str, Any] | None = None, dtype: str = "auto") -> None:
        self.model, self.task, self.config, self.dtype = for_inference(model, dtype), task, config or {}, dtype
        inference = self.config.get("inference", {})
        self.halt_threshold: float = float(inference.get("halt_threshold", 0.0))
        self.min_steps: int = int(inference.get("min_steps", 1))
        self.views: int = int(inference.get("views", 1))  # symmetric views solved and voted on (Task.views)

    @property
    def name(self) -> str:
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
        fallback: bool = False,
        views: int | None = None,
    ) -> Answer:
        """Solve one problem (a dict in the task's Problem schema). Raises InvalidProblem."""
        return self.solve_many(
            [problem], max_steps=max_steps, min_steps=min_steps, halt_threshold=halt_threshold, mode=mode, trace=trace, fallback=fallback, views=views
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
        fallback: bool = False,
        views: int | None = None,
    ) -> list[Answer]:
        """`views` > 1: solve that many symmetric views of each problem (at most the task has) in one
        batch and answer what most of them agree on (trm.inference.vote)."""
        parsed = [self.task.parse(p) for p in problems]
        symmetries = self.task.views(self.views if views is None else views)
        encoded = [self.task.encode(p) for p in parsed]
        inputs = torch.from_numpy(np.stack([v.apply(x) for x in encoded for v in symmetries]))  # problem-major
        predictions = recurse(
            self.model,
            inputs,
            max_steps=max_steps,
            min_steps=min_steps or self.min_steps,
            threshold=self.halt_threshold if halt_threshold is None else halt_threshold,
            mode=mode,
            trace=trace,
            probs=self.task.needs_probs,
            dtype=self.dtype,
        )
        k = len(symmetries)
        voted = [vote(symmetries, predictions[i * k : (i + 1) * k]) if k > 1 else predictions[i] for i in range(len(parsed))]
        return [finish(self.task, p, pred, fallback) for p, pred in zip(parsed, voted)]


def load(path: str | os.PathLike, device: str = "cpu", dtype: str = "auto") -> Solver:
    """Load a checkpoint directory (model.safetensors + config.json) as a Solver."""
    model, config = load_checkpoint(path, device=device)
    task = get_task(model.config.task, **model.config.task_options)
    return Solver(model, task, config, dtype=dtype)
