"""The service's tasks as LLM tools: function-calling definitions and a dispatcher for the calls.

An agent that thinks with an LLM offers these tools, lets the model call one, and answers the call
through the service:

    from agent_reasoning.tools import call_tool, tool_definitions

    tools = tool_definitions(format="ollama")       # from the running service's GET /v1/tasks
    ...                                              # the model answers with a tool call
    result = call_tool(call["function"]["name"], call["function"]["arguments"])
    messages.append({"role": "tool", "tool_name": name, "content": result.text})

No torch here: the definitions are built from the service's own task catalogue, so they always
match the service that answers them. The service's MCP server (`/mcp`) builds its tools with the
same `toolspec.tool_specs`, so an MCP client and a function-calling agent see the same tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._errors import APIError
from ._sync import SyncReasoningClient
from .toolspec import (
    QUESTION_TOOLS,
    TASK_GUIDES,
    TEST_ONLY_TASKS,
    Format,
    TaskEntry,
    ToolSpec,
    inline_refs,
    render_result,
    to_definition,
    tool_specs,
)
from .types import ReasoningRequest, Scope

__all__ = [
    "QUESTION_TOOLS",
    "TASK_GUIDES",
    "TEST_ONLY_TASKS",
    "ToolResult",
    "call_tool",
    "inline_refs",
    "render_result",
    "to_definition",
    "tool_definitions",
    "tool_specs",
]


@dataclass
class ToolResult:
    """What a tool call returns to the LLM.

    text: what to put in the tool message (the rendered answer and its key facts, or the error);
    data: the service's response as JSON (None on error); is_error: the call failed and `text` says why,
    naming the argument at fault where there is one, so the model can correct itself.
    """

    text: str
    data: dict[str, Any] | None = None
    is_error: bool = False
    field: str | None = None  # the argument at fault, on error


def _client(client: SyncReasoningClient | None) -> SyncReasoningClient:
    return client if client is not None else SyncReasoningClient()


def _specs(client: SyncReasoningClient, include_questions: bool) -> list[ToolSpec]:
    questions = [q.name for q in QUESTION_TOOLS] if include_questions else []
    entries = [TaskEntry(t.name, t.description, t.problem_schema) for t in client.tasks()]
    return tool_specs(entries, questions=questions)


def tool_definitions(
    format: Format = "openai", *, client: SyncReasoningClient | None = None, include_questions: bool = False
) -> list[dict[str, Any]]:
    """Function-calling definitions of the running service's tasks (GET /v1/tasks), one per task.

    format: "openai" (Chat Completions tools) or "ollama" (/api/chat tools).
    client: the service to ask; default a SyncReasoningClient from $AGENT_REASONING_URL / $AGENT_REASONING_TOKEN.
    include_questions: also offer consolidate/diagnose/plan_upgrade (only useful where the service has
    Kubernetes/Prometheus providers configured; without them those calls answer with an error).
    Raises ValueError for an unknown format and the client's errors when the service cannot be reached.
    """
    if format not in ("openai", "ollama"):
        raise ValueError(f"format must be 'openai' or 'ollama', not {format!r}")
    own = client is None
    c = _client(client)
    try:
        return [to_definition(s, format) for s in _specs(c, include_questions)]
    finally:
        if own:
            c.close()


def call_tool(
    name: str,
    arguments: dict[str, Any] | str | None,
    *,
    client: SyncReasoningClient | None = None,
    deadline_ms: int | None = None,
) -> ToolResult:
    """Answer one tool call through the service (POST /v1/reason) and return what to tell the model.

    name: a tool name from `tool_definitions` (a task name, or consolidate/diagnose/plan_upgrade).
    arguments: the call's arguments, as a dict (Ollama) or JSON text (OpenAI).
    Never raises for what the model got wrong (an unknown tool, arguments that are not JSON or not a
    valid problem: is_error=True with the field at fault) or for a service error (is_error=True with
    the service's message); connection failures raise the client's ConnectionError.
    """
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            return ToolResult(f"error: the arguments are not valid JSON ({e.msg} at character {e.pos})", is_error=True)
    arguments = arguments or {}
    if not isinstance(arguments, dict):
        return ToolResult("error: the arguments must be a JSON object", is_error=True)
    question = {q.name: q for q in QUESTION_TOOLS}.get(name)
    try:
        if question is not None:
            extra = set(arguments) - {"question", "scope"}
            if extra:
                bad = sorted(extra)[0]
                return ToolResult(f"error: {bad}: unknown argument; {name} takes only 'question' and 'scope'", is_error=True, field=bad)
            request = ReasoningRequest(
                task=question.task,
                question=arguments.get("question"),
                scope=Scope.model_validate(arguments["scope"]) if arguments.get("scope") else None,
                deadline_ms=deadline_ms,
            )
        else:
            if name in TEST_ONLY_TASKS:
                return ToolResult(f"error: unknown tool {name!r}", is_error=True)
            request = ReasoningRequest(task=name, problem=arguments, deadline_ms=deadline_ms)
    except ValueError as e:  # pydantic's ValidationError: a bad scope
        return ToolResult(f"error: scope: {e}", is_error=True, field="scope")
    own = client is None
    c = _client(client)
    try:
        response = c._run(c._reason_plan(request))
    except APIError as e:
        if e.status_code == 404 and question is None:
            return ToolResult(f"error: unknown tool {name!r} ({e.detail})", is_error=True)
        argument = _argument(e.field, question is not None)
        return ToolResult(f"error: {_strip(e.detail, question is not None)}", is_error=True, field=argument)
    finally:
        if own:
            c.close()
    return ToolResult(render_result(response), data=response.model_dump(mode="json"))


def _argument(field: str | None, is_question: bool) -> str | None:
    """The service names fields of the request ("problem.nodes.0.name"); the model wrote the problem as
    the tool's arguments, so name the argument ("nodes.0.name")."""
    if field and not is_question and field.startswith("problem."):
        return field[len("problem.") :]
    return field


def _strip(detail: str, is_question: bool) -> str:
    return detail[len("problem.") :] if not is_question and detail.startswith("problem.") else detail
