"""agent_reasoning.tools: function-calling definitions from GET /v1/tasks, and tool calls answered through /v1/reason."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from client_harness import BASE, error, response_body

from agent_reasoning import SyncReasoningClient
from agent_reasoning.tools import QUESTION_TOOLS, TASK_GUIDES, call_tool, inline_refs, render_result, tool_definitions
from agent_reasoning.types import (
    MazeProblem,
    PlacementProblem,
    ReasoningResponse,
    RootCauseProblem,
    SudokuProblem,
    UpgradeProblem,
)

PROBLEMS = {"sudoku": SudokuProblem, "maze": MazeProblem, "placement": PlacementProblem, "rootcause": RootCauseProblem, "upgrade": UpgradeProblem}
TYPES = {"sudoku": "logic", "maze": "planning", "placement": "optimization", "rootcause": "troubleshooting", "upgrade": "planning"}


def catalogue() -> dict[str, Any]:
    """GET /v1/tasks as the service sends it (the problem schemas are the wire types'), the toy task included."""
    tasks = [
        {"name": n, "task_type": TYPES[n], "description": f"{n} description.", "problem_schema": p.model_json_schema(), "example": {}, "models": []}
        for n, p in PROBLEMS.items()
    ]
    tasks.append({"name": "toy_reverse", "task_type": "general", "description": "toy", "problem_schema": {"type": "object"}, "models": []})
    return {"tasks": tasks, "ready": True, "failed_models": {}}


class Service:
    """A canned service: /v1/tasks, and /v1/reason answering with `answer(request_json)`."""

    def __init__(self, answer=None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda body: httpx.Response(200, json=response_body()))

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.url.path == "/v1/tasks":
            return httpx.Response(200, json=catalogue())
        assert request.url.path == "/v1/reason"
        return self.answer(json.loads(request.content))

    def client(self) -> SyncReasoningClient:
        return SyncReasoningClient(base_url=BASE, http_client=httpx.Client(transport=httpx.MockTransport(self.handler)), sleep=lambda s: None)


def test_openai_definitions_one_per_task_with_full_schemas() -> None:
    service = Service()
    tools = tool_definitions(format="openai", client=service.client())
    assert [t["function"]["name"] for t in tools] == sorted(PROBLEMS)  # toy_reverse is never offered
    assert service.requests[0].url.path == "/v1/tasks"
    for tool in tools:
        fn = tool["function"]
        assert tool["type"] == "function" and set(fn) == {"name", "description", "parameters"}
        assert fn["description"] == f"{TASK_GUIDES[fn['name']]} ({fn['name']} description.)"
        expected = inline_refs(PROBLEMS[fn["name"]].model_json_schema())
        expected.pop("title")
        assert fn["parameters"] == expected and "$defs" not in json.dumps(fn["parameters"])
    sudoku = tools[[t["function"]["name"] for t in tools].index("sudoku")]["function"]["parameters"]
    assert sudoku["properties"]["puzzle"]["anyOf"][1] == {"type": "null"}  # JSON Schema kept as is


def test_ollama_definitions_are_simplified() -> None:
    tools = {t["function"]["name"]: t["function"] for t in tool_definitions(format="ollama", client=Service().client())}
    text = json.dumps(tools)
    assert '"title"' not in text and '{"type": "null"}' not in text and "$ref" not in text
    assert tools["sudoku"]["parameters"]["properties"]["puzzle"]["type"] == "string"
    pods = tools["placement"]["parameters"]["properties"]["pods"]
    assert pods["type"] == "array" and pods["items"]["required"] == ["name", "cpu_millicores", "memory_mib"]
    assert pods["items"]["properties"]["group"]["type"] == "string"


def test_question_tools_only_on_request() -> None:
    names = [t["function"]["name"] for t in tool_definitions(client=Service().client(), include_questions=True)]
    assert names == sorted(PROBLEMS) + [q.name for q in QUESTION_TOOLS]
    with pytest.raises(ValueError, match="format must be"):
        tool_definitions(format="anthropic", client=Service().client())  # type: ignore[arg-type]


def test_call_tool_answers_through_reason() -> None:
    service = Service()
    puzzle = {"puzzle": "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"}
    for arguments in (puzzle, json.dumps(puzzle)):  # Ollama sends an object, OpenAI JSON text
        result = call_tool("sudoku", arguments, client=service.client(), deadline_ms=5000)
        assert not result.is_error and result.data == ReasoningResponse.model_validate(response_body()).model_dump(mode="json")
        sent = json.loads(service.requests[-1].content)
        assert sent["task"] == "sudoku" and sent["problem"] == puzzle and sent["deadline_ms"] == 5000
        assert result.text.startswith("534678912") and "verified: true" in result.text and "solved_by: trm" in result.text


def test_call_tool_question_sends_scope_and_no_problem() -> None:
    service = Service()
    call_tool("consolidate", {"question": "can I free a node?", "scope": {"namespace": "media"}}, client=service.client())
    sent = json.loads(service.requests[-1].content)
    assert sent["task"] == "placement" and sent.get("problem") is None
    assert sent["question"] == "can I free a node?" and sent["scope"]["namespace"] == "media"


@pytest.mark.parametrize(
    ("name", "arguments", "text", "field"),
    [
        ("sudoku", "{not json", "not valid JSON", None),
        ("sudoku", "[1, 2]", "must be a JSON object", None),
        ("toy_reverse", {}, "unknown tool 'toy_reverse'", None),
        ("consolidate", {"nodes": []}, "nodes: unknown argument", "nodes"),
        ("consolidate", {"scope": {"zone": "a"}}, "scope:", "scope"),
    ],
)
def test_call_tool_errors_the_model_can_fix_never_raise(name: str, arguments: Any, text: str, field: str | None) -> None:
    service = Service()
    result = call_tool(name, arguments, client=service.client())
    assert result.is_error and result.data is None and text in result.text and result.field == field
    assert service.requests == []  # nothing worth asking the service


def test_call_tool_names_the_argument_the_service_rejects() -> None:
    service = Service(lambda body: error(422, "invalid_problem", "problem.puzzle: must have 81 cells, got 3", "problem.puzzle"))
    result = call_tool("sudoku", {"puzzle": "123"}, client=service.client())
    assert result.is_error and result.field == "puzzle" and result.text == "error: puzzle: must have 81 cells, got 3"
    service = Service(lambda body: error(404, "unknown_task", "unknown task 'chess'"))
    result = call_tool("chess", {}, client=service.client())
    assert result.is_error and result.text.startswith("error: unknown tool 'chess'")
    service = Service(lambda body: error(422, "invalid_request", "problem: Field required (no provider ...)", "problem"))
    result = call_tool("diagnose", {}, client=service.client())
    assert result.is_error and result.field == "problem" and "no provider" in result.text


def test_render_result_states_what_qualifies_the_answer() -> None:
    response = ReasoningResponse.model_validate(
        response_body(task="placement", task_type="optimization", answer="a -> n1", verified=True, solved_by="solver", objective=2.0, lower_bound=2.0, optimal=True)
        | {"sources": [{"kind": "kubernetes"}, {"kind": "prometheus"}, {"kind": "kubernetes"}]}
    )
    assert render_result(response).splitlines() == [
        "a -> n1",
        "",
        "task: placement",
        "verified: true",
        "solved_by: solver",
        "objective: 2",
        "lower_bound: 2",
        "optimal: true",
        "problem built from: kubernetes, prometheus",
    ]
    unchecked = ReasoningResponse.model_validate(response_body(task="rootcause", verified=None, violations=[]))
    assert "verified: unknown (this task has no exact check)" in render_result(unchecked)
