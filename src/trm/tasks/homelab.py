"""The homelab tasks: pod placement, root cause of an alert storm, rolling node upgrades."""

from typing import Any

from trm.tasks.base import Task
from trm.tasks.placement import PlacementTask
from trm.tasks.rootcause import RootCauseTask
from trm.tasks.upgrade import UpgradeTask

HOMELAB_TASKS: list[type[Task[Any, Any]]] = [PlacementTask, RootCauseTask, UpgradeTask]

__all__ = ["HOMELAB_TASKS", "PlacementTask", "RootCauseTask", "UpgradeTask"]
