"""The models the service serves: one engine per model directory, and how requests find them."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from agent_reasoning.types import TaskType
from trm.checkpoint import CheckpointError, load_checkpoint
from trm.compute import ComputeThread
from trm.engine import Engine
from trm.inference import for_inference
from trm.model import TRM
from trm.tasks import InvalidProblem, Task, get_task, task_classes

log = logging.getLogger(__name__)


class NotFound(LookupError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "unknown_task" | "unknown_model"
        self.message = message


@dataclass
class LoadedModel:
    name: str
    version: str
    task: Task
    engine: Engine
    config: dict[str, Any]
    load_seconds: float
    default: bool = False

    def describe(self) -> dict[str, Any]:
        training = self.config.get("training", {})
        return {
            "name": self.name,
            "version": self.version,
            "default": self.default,
            "options": self.task.options(),  # e.g. a maze model's canvas: {"size": 30}
            "parameters": self.config.get("parameters"),
            "metrics": self.config.get("metrics", {}),
            "inference": self.config.get("inference", {}),
            "trained_steps": training.get("steps"),
        }


@dataclass
class ModelRegistry:
    models: dict[str, LoadedModel] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # model dir -> why it did not load
    # every model's engine steps on this one thread, and models load on it (see trm/compute.py)
    compute: ComputeThread = field(default_factory=ComputeThread)

    # --- loading ---

    @staticmethod
    def discover(models_dir: Path) -> list[Path]:
        if not models_dir.is_dir():
            return []
        return sorted(p for p in models_dir.iterdir() if (p / "config.json").is_file())

    def load(self, path: Path, *, device: str, dtype: str, slots: int | str, queue_size: int, warmup: bool) -> LoadedModel | None:
        started = time.perf_counter()
        try:
            model, config = self.compute.call(_load_for_serving, path, _device(device), dtype).result()
            task = get_task(model.config.task, **model.config.task_options)
        except (CheckpointError, KeyError, ValueError, TypeError, OSError) as e:
            self.failures[path.name] = str(e)
            log.error("model %s not loaded: %s", path.name, e)
            return None
        inference = config.get("inference", {})
        engine = Engine(
            model,
            slots=slots,
            queue_size=queue_size,
            halt_threshold=float(inference.get("halt_threshold", 0.0)),
            min_steps=int(inference.get("min_steps", 1)),
            dtype=dtype,
            name=path.name,
            worker=self.compute,
        ).start()
        if warmup:
            example = task.parse(task.example())
            engine.submit(task.encode(example)).result(timeout=300)
        version = str(config.get("version") or _weights_hash(path / "model.safetensors"))
        loaded = LoadedModel(path.name, version, task, engine, config, time.perf_counter() - started, default=bool(config.get("default")))
        self.models[path.name] = loaded
        self._assign_defaults()
        log.info("model %s loaded (task %s, %.2f s)", path.name, task.name, loaded.load_seconds)
        return loaded

    def _assign_defaults(self) -> None:
        """Each task's default model: the one marked `"default": true` in config.json, else the first by name."""
        by_task: dict[str, list[LoadedModel]] = {}
        for m in sorted(self.models.values(), key=lambda m: m.name):
            by_task.setdefault(m.task.name, []).append(m)
        for models in by_task.values():
            marked = [m for m in models if m.config.get("default")]
            chosen = (marked or models)[0]
            for m in models:
                m.default = m is chosen

    def stop(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for m in self.models.values():
            m.engine.stop(drain=True, timeout=max(0.0, deadline - time.monotonic()))
        self.compute.stop()

    # --- lookup ---

    def for_task(self, task_name: str) -> list[LoadedModel]:
        return sorted((m for m in self.models.values() if m.task.name == task_name), key=lambda m: not m.default)

    def resolve(self, *, task: str | None, task_type: TaskType | None, model: str | None, problem: dict[str, Any]) -> tuple[LoadedModel, BaseModel]:
        """Pick the model for a request and parse its problem. Raises NotFound or InvalidProblem."""
        if model is not None:
            if model not in self.models:
                raise NotFound("unknown_model", f"no model named {model!r} is loaded; loaded: {sorted(self.models)}")
            chosen = self.models[model]
            if task is not None and chosen.task.name != task:
                raise NotFound("unknown_model", f"model {model!r} serves task {chosen.task.name!r}, not {task!r}")
            if task_type is not None and chosen.task.task_type != task_type:
                raise NotFound("unknown_model", f"model {model!r} serves task type {chosen.task.task_type.value!r}, not {task_type.value!r}")
            return chosen, chosen.task.parse(problem)
        if task is not None:
            if task not in task_classes():
                raise NotFound("unknown_task", f"unknown task {task!r}; known: {sorted(task_classes())}")
            candidates = self.for_task(task)
            if not candidates:
                raise NotFound("unknown_task", f"no model is loaded for task {task!r}")
            chosen = candidates[0]
            if task_type is not None and chosen.task.task_type != task_type:
                raise NotFound("unknown_task", f"task {task!r} is of type {chosen.task.task_type.value!r}, not {task_type.value!r}")
            # The default model first; a problem it rejects (a 30x30 maze for a 15x15 model) goes to
            # the next model of the task whose canvas takes it.
            errors: list[tuple[LoadedModel, InvalidProblem]] = []
            for m in candidates:
                try:
                    return m, m.task.parse(problem)
                except InvalidProblem as e:
                    errors.append((m, e))
            first = errors[0][1]
            if len({e.message for _, e in errors}) > 1:
                tried = "; ".join(f"model {m.name!r}: {e.message}" for m, e in errors)
                raise InvalidProblem(first.field, f"no {task} model takes this problem ({tried})")
            raise first
        assert task_type is not None
        # task_type alone: the default models of that type, in order; the first whose schema
        # accepts the problem serves it (a maze and an upgrade plan are both "planning").
        candidates = [m for m in self.models.values() if m.default and m.task.task_type == task_type]
        if not candidates:
            raise NotFound("unknown_task", f"no model is loaded for task type {task_type.value!r}")
        first_error: InvalidProblem | None = None
        for m in candidates:
            try:
                return m, m.task.parse(problem)
            except InvalidProblem as e:
                first_error = first_error or e
        assert first_error is not None
        if len(candidates) > 1:
            names = ", ".join(m.task.name for m in candidates)
            raise InvalidProblem(first_error.field, f"{first_error.message} (no {task_type.value} task accepts this problem: tried {names}; name one with 'task')")
        raise first_error

    def engines(self) -> list[tuple[str, str, int, int, int]]:
        """[(task, model, slots, busy slots, queue depth)] of every loaded model's engine."""
        return [(m.task.name, m.name, m.engine.slots, m.engine.busy_slots(), m.engine.queue_depth()) for m in self.models.values()]


def _load_for_serving(path: Path, device: str, dtype: str) -> tuple[TRM, dict[str, Any]]:
    """Runs on the compute thread, so that loading and the bf16 cast add no OpenMP team of their own."""
    model, config = load_checkpoint(path, device=device)
    return for_inference(model, dtype), config


def _device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def _weights_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]
