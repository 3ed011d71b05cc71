"""GET /v1/tasks: every task, its schemas, an example, and the models that serve it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agent_reasoning.types import TaskType
from reasoning_service.deps import Authorized, State
from trm.tasks import get_task, task_classes

router = APIRouter(dependencies=[Authorized])


@router.get("/v1/tasks", tags=["reasoning"], summary="Tasks, schemas, examples and loaded models")
async def list_tasks(state: State) -> dict[str, Any]:
    """Every task a caller may name (a test-only task only where a model of it is loaded): its
    description, shape, problem and solution JSON schemas, an example problem, the models serving it."""
    tasks = []
    # `default`: the task a bare task_type tries first
    defaults = {names[0] for t in TaskType if (names := state.registry.tasks_of_type(t))}
    for name in state.registry.known_tasks():
        cls = task_classes()[name]
        models = state.registry.for_task(name)
        task = models[0].task if models else get_task(name)
        tasks.append(
            task.describe()
            | {
                "problem_schema": cls.Problem.model_json_schema(),
                "solution_schema": cls.Solution.model_json_schema(),
                "example": task.example(),
                "models": [m.describe() for m in models],
                "has_model": bool(models),
                # who answers a problem within a model's canvas; the task's solver answers the rest
                "answered_by": "trm" if models else _solver_kind(task),
                "test_only": cls.test_only,
                "default": name in defaults,
            }
        )
    return {"tasks": tasks, "ready": state.ready, "failed_models": state.registry.failures}


def _solver_kind(task: Any) -> str:
    """'solver' where the task has an exact solver of its own, else 'baseline' (a classical heuristic)."""
    return "solver" if task.exact_solver else "baseline"
