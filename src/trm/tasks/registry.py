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


def _builtin() -> dict[str, type[Task]]:
    from trm.tasks.maze import MazeTask
    from trm.tasks.sudoku import SudokuTask
    from trm.tasks.toy import ReverseTask

    tasks: list[type[Task]] = [SudokuTask, MazeTask, ReverseTask]
    try:  # the homelab tasks, where present
        from trm.tasks.homelab import HOMELAB_TASKS

        tasks.extend(HOMELAB_TASKS)
    except ImportError:
        pass
    return {t.name: t for t in tasks}


@cache
def task_classes() -> dict[str, type[Task]]:
    classes = _builtin()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as e:  # a broken plug-in must not take the built-in tasks down with it
            log.warning("cannot load task entry point %s: %s", ep.name, e)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            log.warning("entry point %s is not a trm Task subclass; skipped", ep.name)
            continue
        classes.setdefault(ep.name, cls)
    return classes


def get_task(name: str, **options: Any) -> Task:
    classes = task_classes()
    if name not in classes:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(sorted(classes))}")
    return classes[name](**options)


def list_tasks() -> list[str]:
    return sorted(task_classes())
