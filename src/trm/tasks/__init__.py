"""Tasks: structured problems <-> token grids, with exact checks, baselines and generators."""

from trm.tasks.base import Example, InvalidProblem, OutsideCanvas, SolverAnswer, Task
from trm.tasks.registry import get_task, list_tasks, task_classes

__all__ = ["Example", "InvalidProblem", "OutsideCanvas", "SolverAnswer", "Task", "get_task", "list_tasks", "task_classes"]
