"""Questions without a problem: the service builds the problem from its providers (Kubernetes API,
Prometheus) or, later, an LLM. `build_problem` is the one entry point the request path calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent_reasoning.types import ReasoningRequest, Source
from reasoning_service.errors import ServiceError

if TYPE_CHECKING:
    from reasoning_service.reasoning import ServiceState


@dataclass
class BuiltProblem:
    """A problem the service built for a question, with what it read to build it."""

    task: str  # the task that answers it, e.g. "placement"
    problem: dict[str, Any]  # in that task's Problem schema
    sources: list[Source] = field(default_factory=list)


async def build_problem(state: ServiceState, request: ReasoningRequest) -> BuiltProblem:
    """The problem for a request that gave none. Raises ServiceError (422 when nothing can build it)."""
    raise ServiceError(
        422,
        "invalid_request",
        "problem: Field required (no provider is configured to build it from the question: set KUBECONFIG or run in a "
        "cluster for Kubernetes, REASONING_PROMETHEUS_URL for Prometheus; GET /v1/tasks lists each task's problem schema)",
        field="problem",
    )
