"""Client of the agent-reasoning service: structured problems in, verified answers out.

Agents use `from agent_reasoning import ReasoningClient, TaskType` (or SyncReasoningClient); see README.md.

The package imports lazily (PEP 562 `__getattr__`): `import agent_reasoning.types` loads pydantic
and nothing else, so the `trm` library and the service depend on the wire types without loading the
transport (httpx, cloudevents). A name from the transport side is imported on first use, and an
import failure there is raised as it is (never turned into a missing attribute).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "ReasoningClient": "._client",
    "SyncReasoningClient": "._sync",
    "TaskInfo": "._tasks",
    "TaskModelInfo": "._tasks",
    "normal_window_query": ".adapters",
    "parse_quantity": ".adapters",
    "placement_from_kubectl": ".adapters",
    "rootcause_from_prometheus": ".adapters",
    "upgrade_from_kubectl": ".adapters",
    **dict.fromkeys(
        [
            "APIError",
            "AuthenticationError",
            "ConnectionError",
            "DeadlineExceededError",
            "InvalidProblemError",
            "NotFoundError",
            "OverloadedError",
            "ReasoningError",
            "TimeoutError",
        ],
        "._errors",
    ),
    **dict.fromkeys(
        [
            "ErrorBody",
            "MazeProblem",
            "MazeSolution",
            "ModelInfo",
            "PlacementNode",
            "PlacementPod",
            "PlacementProblem",
            "PlacementSolution",
            "ReasoningRequest",
            "ReasoningResponse",
            "ReasoningStep",
            "RootCauseProblem",
            "RootCauseSolution",
            "Scope",
            "ServiceEvidence",
            "ServiceSignal",
            "Source",
            "SudokuProblem",
            "SudokuSolution",
            "TaskType",
            "UpgradeProblem",
            "UpgradeService",
            "UpgradeSolution",
        ],
        ".types",
    ),
}

# A literal list, so linters and type checkers read it; a test checks it against _EXPORTS.
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
    "Scope",
    "ServiceEvidence",
    "ServiceSignal",
    "Source",
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
    "normal_window_query",
    "parse_quantity",
    "placement_from_kubectl",
    "rootcause_from_prometheus",
    "upgrade_from_kubectl",
    "__version__",
]

if TYPE_CHECKING:  # the type checker and IDEs see the names eagerly
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
        Scope,
        ServiceEvidence,
        ServiceSignal,
        Source,
        SudokuProblem,
        SudokuSolution,
        TaskType,
        UpgradeProblem,
        UpgradeService,
        UpgradeSolution,
    )


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first use (PEP 562), then cache it here.

    Raises AttributeError for a name the package does not export; an ImportError from the
    submodule (e.g. httpx missing) propagates unchanged.
    """
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names plus the lazily imported public ones."""
    return sorted({*globals(), *_EXPORTS})
