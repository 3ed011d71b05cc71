"""Client of the agent-reasoning service: structured problems in, verified answers out.

Agents use `from agent_reasoning import ReasoningClient, TaskType` (or SyncReasoningClient); see README.md.
"""

from ._client import ReasoningClient
from ._errors import (
    APIError,
    AuthenticationError,
    ConnectionError,
    DeadlineExceededError,
    InvalidProblemError,
    NotFoundError,
    OverloadedError,
    ReasoningError,
    TimeoutError,
)
from ._sync import SyncReasoningClient
from ._tasks import TaskInfo, TaskModelInfo
from ._version import __version__
from .types import (
    ErrorBody,
    MazeProblem,
    MazeSolution,
    ModelInfo,
    ReasoningRequest,
    ReasoningResponse,
    ReasoningStep,
    SudokuProblem,
    SudokuSolution,
    TaskType,
)

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConnectionError",
    "DeadlineExceededError",
    "ErrorBody",
    "InvalidProblemError",
    "MazeProblem",
    "MazeSolution",
    "ModelInfo",
    "NotFoundError",
    "OverloadedError",
    "ReasoningClient",
    "ReasoningError",
    "ReasoningRequest",
    "ReasoningResponse",
    "ReasoningStep",
    "SudokuProblem",
    "SudokuSolution",
    "SyncReasoningClient",
    "TaskInfo",
    "TaskModelInfo",
    "TaskType",
    "TimeoutError",
    "__version__",
]
