"""Tasks: structured problems <-> token grids, with exact checks, baselines and generators."""

from trm.tasks.base import Example, InvalidProblem, Task
from trm.tasks.registry import get_task, list_tasks, task_classes

__all__ = ["Example", "InvalidProblem", "Task", "get_task", "list_tasks", "task_classes"]
