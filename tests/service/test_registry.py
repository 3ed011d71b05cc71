"""Which model serves a request (ModelRegistry.resolve) when a task has several."""

import pytest

from agent_reasoning.types import TaskType
from reasoning_service.registry import LoadedModel, ModelRegistry, NotFound
from trm.tasks import InvalidProblem, get_task


def registry_of(*models: tuple[str, int, bool]) -> ModelRegistry:
    """Maze models of the given canvas sizes; resolve reads only names, tasks and the default flag."""
    registry = ModelRegistry()
    for name, size, default in models:
        registry.models[name] = LoadedModel(name, "v1", get_task("maze", size=size), engine=None, config={}, load_seconds=0.0, default=default)  # type: ignore[arg-type]
    return registry


def maze(side: int) -> list[str]:
    rows = ["#" * side] * side
    rows[1] = "#S" + " " * (side - 4) + "G#"
    return rows


def test_the_default_model_serves_what_fits_it_and_a_larger_canvas_takes_the_rest():
    registry = registry_of(("maze", 9, True), ("maze-big", 13, False))
    try:
        route = registry.resolve(task="maze", task_type=None, model=None, problem={"grid": maze(9)})
        assert route.model is not None and route.model.name == "maze"
        route = registry.resolve(task="maze", task_type=None, model=None, problem={"grid": maze(12)})
        assert route.model is not None and route.model.name == "maze-big"
        # beyond every canvas: the task's solver, with each model's limit in the reason
        route = registry.resolve(task="maze", task_type=None, model=None, problem={"grid": maze(20)})
        assert route.model is None and route.task.name == "maze" and len(route.problem.grid) == 20
        assert route.why_no_model is not None and "'maze': " in route.why_no_model and "'maze-big': " in route.why_no_model
        with pytest.raises(InvalidProblem) as e:  # a fault no one can answer stays a 422
            registry.resolve(task="maze", task_type=None, model=None, problem={"grid": ["S#G"]})
        assert e.value.field == "problem.grid" and "cannot be reached" in e.value.message
        with pytest.raises(InvalidProblem):  # a named model gets no fallback
            registry.resolve(task="maze", task_type=None, model="maze", problem={"grid": maze(12)})
    finally:
        registry.compute.stop()


def test_a_task_without_a_model_goes_to_its_solver_and_a_type_alone_finds_its_task():
    registry = registry_of(("maze", 9, True))
    try:
        placement = {"nodes": [{"name": "a", "cpu_millicores": 1000, "memory_mib": 1024}], "pods": [{"name": "p", "cpu_millicores": 10, "memory_mib": 10}]}
        route = registry.resolve(task="placement", task_type=None, model=None, problem=placement)
        assert route.model is None and route.task.name == "placement" and "no model is loaded" in (route.why_no_model or "")
        route = registry.resolve(task=None, task_type=TaskType.OPTIMIZATION, model=None, problem=placement)
        assert route.task.name == "placement"
        # the order a bare type tries its tasks (what /v1/tasks reports as `default`): a loaded default model first
        assert registry.tasks_of_type(TaskType.OPTIMIZATION) == ["placement"]
        assert registry.tasks_of_type(TaskType.PLANNING) == ["maze", "upgrade"]
        assert registry.tasks_of_type(TaskType.GENERAL) == []  # toy_reverse is test-only and has no model here
        # planning: the maze (which has a model) is tried first, then upgrade, whose schema takes this
        route = registry.resolve(task=None, task_type=TaskType.PLANNING, model=None, problem={"nodes": ["n1"], "services": []})
        assert route.task.name == "upgrade" and route.model is None
        with pytest.raises(InvalidProblem) as e:  # neither planning task takes it: both named
            registry.resolve(task=None, task_type=TaskType.PLANNING, model=None, problem={})
        assert "maze" in e.value.message and "upgrade" in e.value.message
        with pytest.raises(NotFound):
            registry.resolve(task="no_such_task", task_type=None, model=None, problem={})
        # a near miss names the task meant; the test-only task is not offered where no model of it is loaded
        with pytest.raises(NotFound) as nf:
            registry.resolve(task="placment", task_type=None, model=None, problem={})
        assert "did you mean 'placement'?" in nf.value.message and "toy_reverse" not in nf.value.message
        assert "toy_reverse" not in registry.known_tasks() and {"maze", "placement", "rootcause", "sudoku", "upgrade"} <= set(registry.known_tasks())
        with pytest.raises(NotFound):  # nor answered by name (/v1/tasks and /readyz list known_tasks too)
            registry.resolve(task="toy_reverse", task_type=None, model=None, problem={"sequence": [1, 2, 3, 4, 4, 3, 2, 1]})
    finally:
        registry.compute.stop()
