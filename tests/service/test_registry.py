"""Which model serves a request (ModelRegistry.resolve) when a task has several."""

import pytest

from reasoning_service.registry import LoadedModel, ModelRegistry
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
        chosen, _ = registry.resolve(task="maze", task_type=None, model=None, problem={"grid": maze(9)})
        assert chosen.name == "maze"
        chosen, _ = registry.resolve(task="maze", task_type=None, model=None, problem={"grid": maze(12)})
        assert chosen.name == "maze-big"
        with pytest.raises(InvalidProblem) as e:
            registry.resolve(task="maze", task_type=None, model=None, problem={"grid": maze(20)})
        assert e.value.field == "problem.grid" and "'maze': " in e.value.message and "'maze-big': " in e.value.message
        with pytest.raises(InvalidProblem) as e:  # the same fault for every model: said once
            registry.resolve(task="maze", task_type=None, model=None, problem={"grid": ["S#G"]})
        assert "no maze model" not in e.value.message
        with pytest.raises(InvalidProblem):  # a named model gets no fallback
            registry.resolve(task="maze", task_type=None, model="maze", problem={"grid": maze(12)})
    finally:
        registry.compute.stop()
