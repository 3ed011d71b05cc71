"""The task catalogue served at GET /v1/tasks, as typed models.

Lenient on purpose (extra fields kept, most fields defaulted): the service may describe tasks in more
detail than this client version knows about, and listing them must not break on that.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .types import ModelInfo, TaskType


class TaskModelInfo(ModelInfo):
    """A trained model that serves a task."""

    model_config = ConfigDict(extra="allow")

    metrics: dict[str, Any] = {}
    default: bool = False


class TaskInfo(BaseModel):
    """One task: what it solves, the shape of its problems and solutions, and its models."""

    model_config = ConfigDict(extra="allow")

    name: str
    task_type: TaskType
    description: str = ""
    default: bool = False  # the task picked when a request names only its task_type
    problem_schema: dict[str, Any] = {}
    solution_schema: dict[str, Any] = {}
    example: dict[str, Any] | None = None  # tasks without one may send null
    models: list[TaskModelInfo] = []


class TaskList(BaseModel):
    """The body of GET /v1/tasks (the fields the client reads)."""
    tasks: list[TaskInfo]
