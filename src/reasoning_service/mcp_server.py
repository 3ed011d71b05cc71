"""The service as an MCP server (official `mcp` SDK): one tool per task, plus the cluster questions.

Served by the app at `/mcp` (streamable HTTP, stateless, JSON responses: any replica answers any
request, so it scales behind Knative like the rest of the API) and, over stdio, by the torch-free
forwarder `agent-reasoning mcp` (agent_reasoning.mcp_stdio), which relays to this endpoint.

Every call goes through the service's one request path, `reasoning.reason`, so metrics, verification,
fallbacks and the deadline apply as they do to POST /v1/reason. The tools' names, descriptions and
schemas come from `agent_reasoning.toolspec.tool_specs`, which the client's function-calling
definitions (agent_reasoning.tools) use too.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from agent_reasoning.toolspec import QUESTION_TOOLS, TaskEntry, ToolSpec, render_result, tool_specs
from agent_reasoning.types import ReasoningRequest
from reasoning_service import __version__
from reasoning_service.errors import ServiceError
from reasoning_service.providers.kubernetes import in_cluster
from reasoning_service.reasoning import ServiceState, reason
from reasoning_service.settings import Settings
from trm.tasks import task_classes

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Tools that answer structured problems exactly (Sudoku, mazes, pod placement, node upgrade waves) or "
    "rank root causes, each with a Tiny Recursive Model whose answer is checked by an exact verifier. Call "
    "a tool instead of solving such a problem yourself; read `verified` before trusting an answer."
)


def configured_questions(settings: Settings) -> list[str]:
    """The cluster-question tools this service can answer, by the providers that build their problems:
    consolidate and plan_upgrade need the Kubernetes API (KUBECONFIG, or the service account in a
    cluster), diagnose needs Prometheus (REASONING_PROMETHEUS_URL)."""
    kubernetes = bool(settings.kubeconfig) or (settings.kubernetes_in_cluster and in_cluster())
    prometheus = bool(settings.prometheus_url)
    offered = {"consolidate": kubernetes, "plan_upgrade": kubernetes, "diagnose": prometheus}
    return [q.name for q in QUESTION_TOOLS if offered.get(q.name)]


def specs_for(settings: Settings) -> list[ToolSpec]:
    """The tools the service offers: every task it knows (test-only ones left out), and the cluster
    questions its providers can answer."""
    entries = [TaskEntry(name, cls.description, cls.Problem.model_json_schema()) for name, cls in task_classes().items()]
    return tool_specs(entries, questions=configured_questions(settings))


def _error(text: str, kind: str, field: str | None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=f"error: {text}")],
        structured_content={"error": kind, "detail": text, "field": field},
        is_error=True,
    )


def _request_for(spec: ToolSpec, arguments: dict[str, Any]) -> ReasoningRequest:
    """The reasoning request a call makes. Raises ServiceError (422 naming the argument) for
    arguments a question tool does not take."""
    if spec.kind == "task":
        return ReasoningRequest(task=spec.task, problem=arguments)
    unknown = sorted(set(arguments) - {"question", "scope"})
    if unknown:
        raise ServiceError(422, "invalid_request", f"{unknown[0]}: unknown argument; {spec.name} takes only 'question' and 'scope'", field=unknown[0])
    for name, kind in (("question", str), ("scope", dict)):
        if arguments.get(name) is not None and not isinstance(arguments[name], kind):
            raise ServiceError(422, "invalid_request", f"{name}: must be {'a string' if kind is str else 'an object'}", field=name)
    try:
        return ReasoningRequest.model_validate({"task": spec.task, "question": arguments.get("question"), "scope": arguments.get("scope")})
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        raise ServiceError(422, "invalid_request", f"{loc + ': ' if loc else ''}{err['msg']}", field=loc) from None


def _argument(field: str | None, spec: ToolSpec) -> str | None:
    # a task tool's arguments are the problem: name "nodes.0.name", not the request's "problem.nodes.0.name"
    if field and spec.kind == "task" and field.startswith("problem."):
        return field[len("problem.") :]
    return field


def build_server(state: ServiceState) -> Server[Any]:
    """The MCP server of one service: list_tools and call_tool over the service state."""
    specs = {s.name: s for s in specs_for(state.settings)}

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=s.name,
                    title=s.name.replace("_", " "),
                    description=s.description,
                    input_schema=s.input_schema,
                    annotations=types.ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=s.kind == "question"),
                )
                for s in specs.values()
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            # an unknown tool is a protocol error (the client asked for something never listed)
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}; tools: {', '.join(specs)}")
        arguments = params.arguments or {}
        try:
            response = await reason(state, _request_for(spec, arguments))
        except ServiceError as e:
            field = _argument(e.field, spec)
            detail = e.detail
            if spec.kind == "task" and detail.startswith("problem."):
                detail = detail[len("problem.") :]
            return _error(detail, e.kind, field)
        except Exception:  # the tool answers with an error; the session and the service carry on
            log.exception("MCP tool %s failed", spec.name)
            return _error("internal error; see the service logs", "internal", None)
        data = response.model_dump(mode="json")
        return types.CallToolResult(content=[types.TextContent(text=render_result(response))], structured_content=data)

    return Server(
        "agent-reasoning",
        version=__version__,
        title="agent-reasoning",
        description="Tiny Recursive Models for homelab agents: structured problems in, verified answers out.",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=lambda name: specs[name].input_schema if name in specs else None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def session_manager(state: ServiceState) -> StreamableHTTPSessionManager:
    """A session manager for the app's lifespan (the SDK runs one only once): stateless and JSON, so
    no session pins a client to one replica and no SSE stream is left for proxies to buffer."""
    return StreamableHTTPSessionManager(build_server(state), json_response=True, stateless=True, max_request_body_size=state.settings.max_request_bytes)
