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
from .adapters import normal_window_query, parse_quantity, placement_from_kubectl, rootcause_from_prometheus, upgrade_from_kubectl
from .types import (
    ErrorBody,
    MazeProblem,
    MazeSolution,
    ModelInfo,
    PlacementNode,
    PlacementPod,
    PlacementProblem,
    PlacementSolution,
    ReasoningRequest,
    ReasoningResponse,
    ReasoningStep,
    RootCauseProblem,
    RootCauseSolution,
    ServiceEvidence,
    ServiceSignal,
    SudokuProblem,
    SudokuSolution,
    TaskType,
    UpgradeProblem,
    UpgradeService,
    UpgradeSolution,
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
    "PlacementNode",
    "PlacementPod",
    "PlacementProblem",
    "PlacementSolution",
    "ReasoningClient",
    "ReasoningError",
    "ReasoningRequest",
    "ReasoningResponse",
    "ReasoningStep",
    "RootCauseProblem",
    "RootCauseSolution",
    "ServiceEvidence",
    "ServiceSignal",
    "SudokuProblem",
    "SudokuSolution",
    "SyncReasoningClient",
    "TaskInfo",
    "TaskModelInfo",
    "TaskType",
    "TimeoutError",
    "UpgradeProblem",
    "UpgradeService",
    "UpgradeSolution",
    "parse_quantity",
    "placement_from_kubectl",
    "normal_window_query",
    "rootcause_from_prometheus",
    "upgrade_from_kubectl",
    "__version__",
]
