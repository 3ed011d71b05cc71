"""The models the service serves: one engine per model directory, and how requests find them."""

from __future__ import annotations

import difflib
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
from trm.model import TRM
from trm.pipeline import InferenceConfig
from trm.precision import for_inference
from trm.tasks import InvalidProblem, OutsideCanvas, Task, get_task, task_classes

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """A request names a task or model the service does not have; `kind` is "unknown_task" or "unknown_model" (answered 404)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "unknown_task" | "unknown_model"
        self.message = message


class Mismatch(ValueError):
    """Two fields of a request contradict each other (a task and a task type, a model and a task); `field` names the second (answered 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class LoadedModel:
    """A served model: its directory name, version (config "version" or a hash of the weights), task, engine, config.json, load time in seconds."""

    name: str
    version: str
    task: Task
    engine: Engine
    config: dict[str, Any]
    load_seconds: float
    default: bool = False
    inference: InferenceConfig = field(default_factory=InferenceConfig)  # config.json "inference", typed

    def describe(self) -> dict[str, Any]:
        """The model as GET /v1/tasks lists it: name, version, default, task options, parameters, stored metrics, inference settings, trained steps."""
        training = self.config.get("training", {})
        return {
            "name": self.name,
            "version": self.version,
            "default": self.default,
            "options": self.task.options(),  # e.g. a maze model's canvas: {"size": 30}
            "parameters": self.config.get("parameters"),
            "metrics": self.config.get("metrics", {}),
            "inference": self.inference.as_dict(),
            "trained_steps": training.get("steps"),
        }


@dataclass
class Route:
    """Who answers a request: a loaded model, or (model None) the task's own solver, and why."""

    task: Task
    problem: BaseModel
    model: LoadedModel | None
    why_no_model: str | None = None  # e.g. "no model is loaded for task 'placement'"


@dataclass
class ModelRegistry:
    """The loaded models by directory name, the directories that failed to load (and why), and the compute thread they share."""

    models: dict[str, LoadedModel] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # model dir -> why it did not load
    # every model's engine steps on this one thread, and models load on it (see trm/compute.py)
    compute: ComputeThread = field(default_factory=ComputeThread)

    # --- loading ---

    @staticmethod
    def discover(models_dir: Path) -> list[Path]:
        """The model directories (those holding a config.json) in `models_dir`, by name; [] when it is not a directory."""
        if not models_dir.is_dir():
            return []
        return sorted(p for p in models_dir.iterdir() if (p / "config.json").is_file())

    def load(self, path: Path, *, device: str, dtype: str, slots: int | str, queue_size: int, warmup: bool) -> LoadedModel | None:
        """Load one model directory and start its engine (`slots` an int or "auto"); with `warmup`, one step of the task's example.

        Returns None, and records why in `failures`, when the checkpoint or its inference settings do not load.
        """
        started = time.perf_counter()
        try:
            model, config = self.compute.call(_load_for_serving, path, _device(device), dtype).result()
            task = get_task(model.config.task, **model.config.task_options)
        except (CheckpointError, KeyError, ValueError, TypeError, OSError) as e:
            self.failures[path.name] = str(e)
            log.error("model %s not loaded: %s", path.name, e)
            return None
        try:
            inference = InferenceConfig.from_config(config)
        except ValueError as e:
            self.failures[path.name] = str(e)
            log.error("model %s not loaded: %s", path.name, e)
            return None
        engine = Engine(
            model,
            slots=slots,
            queue_size=queue_size,
            halt_threshold=inference.halt_threshold,
            min_steps=inference.min_steps,
            dtype=dtype,
            name=path.name,
            worker=self.compute,
            calibration=list(inference.calibration) or None,  # step costs measured on some machine: slots="auto" uses them there
        ).start()
        if warmup:
            example = task.parse(task.example())
            # one step pays the one-off costs (first kernels, allocations); a whole solve would add more steps per model
            engine.submit(task.encode(example), max_steps=1).result(timeout=300)
        version = str(config.get("version") or _weights_hash(path / "model.safetensors"))
        loaded = LoadedModel(path.name, version, task, engine, config, time.perf_counter() - started, default=bool(config.get("default")), inference=inference)
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
        """Drain every engine, all within `timeout` seconds together, then stop the compute thread."""
        deadline = time.monotonic() + timeout
        for m in self.models.values():
            m.engine.stop(drain=True, timeout=max(0.0, deadline - time.monotonic()))
        self.compute.stop()

    # --- lookup ---

    def for_task(self, task_name: str) -> list[LoadedModel]:
        """The loaded models of a task, the default first."""
        return sorted((m for m in self.models.values() if m.task.name == task_name), key=lambda m: not m.default)

    def resolve(self, *, task: str | None, task_type: TaskType | None, model: str | None, problem: dict[str, Any]) -> Route:
        """Pick who answers a request and parse its problem. Raises NotFound, Mismatch or InvalidProblem.

        A named model answers if it takes the problem. Else the task's models in order (default
        first) until one's canvas takes it; a known task with no model, or a problem beyond every
        model's canvas, goes to the task's own solver (`Route.model` None). With a task type alone,
        the tasks of that type are tried in order (those with a loaded default model first) until
        one's schema accepts the problem."""
        if model is not None:
            if model not in self.models:
                raise NotFound("unknown_model", f"no model named {model!r} is loaded; loaded: {sorted(self.models)}")
            chosen = self.models[model]
            if task is not None and chosen.task.name != task:
                raise Mismatch("task", f"model {model!r} serves task {chosen.task.name!r}, not {task!r}")
            if task_type is not None and chosen.task.task_type != task_type:
                raise Mismatch("task_type", f"model {model!r} serves task type {chosen.task.task_type.value!r}, not {task_type.value!r}")
            return Route(chosen.task, chosen.task.parse(problem), chosen)
        if task is not None:
            cls = self.task_class(task)
            if task_type is not None and cls.task_type != task_type:
                raise Mismatch("task_type", f"task {task!r} is of type {cls.task_type.value!r}, not {task_type.value!r}")
            return self._route(task, problem)
        assert task_type is not None
        names = self.tasks_of_type(task_type)
        if not names:
            raise NotFound("unknown_task", f"no task of type {task_type.value!r}; known tasks: {self.known_tasks()}")
        first_error: InvalidProblem | None = None
        for name in names:
            try:
                return self._route(name, problem)
            except InvalidProblem as e:
                first_error = first_error or e
        assert first_error is not None
        if len(names) > 1:
            raise InvalidProblem(
                first_error.field,
                f"{first_error.message} (no {task_type.value} task accepts this problem: tried {', '.join(names)}; name one with 'task')",
            )
        raise first_error

    def tasks_of_type(self, task_type: TaskType) -> list[str]:
        """The known tasks of a type in the order a bare `task_type` tries them: those with a loaded
        default model first (the type's usual task), then the others by name. The first is the type's default."""
        names = [n for n in self.known_tasks() if task_classes()[n].task_type == task_type]
        return sorted(names, key=lambda n: (not any(m.default for m in self.for_task(n)), n))

    def known_tasks(self) -> list[str]:
        """The task names a caller may use: every task but the test-only ones without a loaded model."""
        return sorted(n for n, c in task_classes().items() if not c.test_only or self.for_task(n))

    def task_class(self, name: str) -> type[Task]:
        """The task class of `name`. Raises NotFound (404) for a name nobody knows, with the closest known name when one is close."""
        known = self.known_tasks()
        if name in known:
            return task_classes()[name]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise NotFound("unknown_task", f"unknown task {name!r}{hint}; known: {known}")

    def _route(self, name: str, problem: dict[str, Any]) -> Route:
        """The task's models in order, the first whose canvas takes the problem; else its solver."""
        candidates = self.for_task(name)
        if not candidates:
            task = get_task(name)
            return Route(task, task.parse(problem, canvas=False), None, f"no model is loaded for task {name!r}")
        # Validated once (the schema and the task's checks do not depend on a model's canvas); then the
        # default model first, and a problem it rejects for its size (a 30x30 maze for a 15x15 model)
        # goes to the next model of the task whose canvas takes it, then to the task's solver.
        parsed = candidates[0].task.parse(problem, canvas=False)
        outside: list[tuple[LoadedModel, OutsideCanvas]] = []
        for m in candidates:
            try:
                m.task.check_canvas(parsed)
                return Route(m.task, parsed, m)
            except OutsideCanvas as e:
                outside.append((m, e))
        limits = "; ".join(f"model {m.name!r}: {e.message}" for m, e in outside)
        return Route(candidates[0].task, parsed, None, f"beyond every {name} model's canvas ({limits})")

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
