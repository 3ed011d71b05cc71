"""Where tasks are found: the built-in ones and any installed package's `trm.tasks` entry points.

A package adds a task without forking by declaring, in its pyproject.toml:
    [project.entry-points."trm.tasks"]
    mytask = "my_package.my_module:MyTask"
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from trm.tasks.base import Task

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "trm.tasks"


def _builtin() -> dict[str, type[Task[Any, Any]]]:
    # Imported unguarded: a built-in task that cannot be imported (a missing dependency, a wire-type
    # version mismatch) is a broken install and must fail here, not vanish and turn into 404s.
    from trm.tasks.homelab import HOMELAB_TASKS
    from trm.tasks.maze import MazeTask
    from trm.tasks.sudoku import SudokuTask
    from trm.tasks.toy import ReverseTask

    tasks: list[type[Task[Any, Any]]] = [SudokuTask, MazeTask, ReverseTask]
    tasks.extend(HOMELAB_TASKS)
    return {t.name: t for t in tasks}


@cache
def task_classes() -> dict[str, type[Task[Any, Any]]]:
    """Every known task class by name: the built-ins, then the `trm.tasks` entry points.

    Raises ImportError when a built-in task cannot be imported. A plug-in that fails to load is
    logged at ERROR with its traceback and left out (a third-party package must not take the
    built-in tasks down); a plug-in never replaces a built-in of the same name.
    """
    classes = _builtin()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception:
            log.exception("cannot load task entry point %s (%s); the task is unavailable", ep.name, ep.value)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            log.error("entry point %s (%s) is not a trm Task subclass; skipped", ep.name, ep.value)
            continue
        classes.setdefault(ep.name, cls)
    return classes


def get_task(name: str, **options: Any) -> Task[Any, Any]:
    """A new instance of the task `name` built with `options` (e.g. `size=15` for the maze).

    Raises KeyError naming the known tasks when `name` is unknown, TypeError when the task does
    not take one of `options`.
    """
    classes = task_classes()
    if name not in classes:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(sorted(classes))}")
    return classes[name](**options)


def list_tasks() -> list[str]:
    """The names of every known task, sorted."""
    return sorted(task_classes())
