"""The MCP server, through the official SDK's own client: in-process, over streamable HTTP on a real
socket (with the service's bearer token), and over stdio through `agent-reasoning mcp`."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from agent_reasoning import SyncReasoningClient
from agent_reasoning.tools import TASK_GUIDES, call_tool, inline_refs, tool_definitions
from reasoning_service.app import create_app
from reasoning_service.mcp_server import build_server, configured_questions
from trm.tasks import get_task, task_classes

from .conftest import SUDOKU_EASY, needs_maze, needs_sudoku, settings_for
from .server import running_server

TOKEN = "mcp-test-token"
REPO = Path(__file__).resolve().parents[2]
OFFERED = sorted(set(task_classes()) - {"toy_reverse"})
SUDOKU_SOLUTION_START = "534678912"
PROVIDER_VARS = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "REASONING_PROMETHEUS_URL")


@pytest.fixture(autouse=True)
def _no_providers(monkeypatch):
    # the cluster-question tools appear only with providers; these tests run outside any cluster
    for var in PROVIDER_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def service(models_dir):
    """A real service with the shipped models and the toy model, the bearer token on: (url, app)."""
    with pytest.MonkeyPatch.context() as mp:
        for var in PROVIDER_VARS:
            mp.delenv(var, raising=False)
        # a generous deadline: the maze model votes over 8 views, and test machines are shared
        app = create_app(settings_for(models_dir, api_token=TOKEN, default_deadline_ms=300_000))
    with running_server(app.state.service.settings, app=app) as url:
        yield url, app


@asynccontextmanager
async def http_client(url: str, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
            yield client


def example(task: str) -> dict:
    return get_task(task).example()


def check_answer(task: str, result) -> None:
    """A tool result that answers the task's example: structured solution, verified, and a text rendering."""
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert data["task"] == task and isinstance(data["solution"], dict) and data["solution"]
    # rootcause has no exact check (verified is null); every other task's answer is verified
    assert data["verified"] is (None if task == "rootcause" else True), data
    text = result.content[0].text
    assert text.startswith(data["answer"].rstrip()) and f"task: {task}" in text and "verified: " in text
    if task == "sudoku":
        assert data["solution"]["solution"].startswith(SUDOKU_SOLUTION_START)


# --- in-process ------------------------------------------------------------------------------------


async def test_lists_one_tool_per_task_with_its_schema(service):
    _, app = service
    async with Client(build_server(app.state.service)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    # the toy model is loaded, but a test-only task is never offered; no providers: no question tools
    assert sorted(tools) == OFFERED
    for name, tool in tools.items():
        assert tool.input_schema == inline_refs(task_classes()[name].Problem.model_json_schema())
        assert tool.input_schema["type"] == "object" and "$ref" not in str(tool.input_schema)
        assert tool.description.startswith(TASK_GUIDES[name])
        assert tool.annotations.read_only_hint is True


def test_question_tools_follow_the_configured_providers(monkeypatch, models_dir):
    assert configured_questions(settings_for(models_dir)) == []
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    assert configured_questions(settings_for(models_dir)) == ["consolidate", "plan_upgrade"]
    monkeypatch.setenv("REASONING_PROMETHEUS_URL", "http://prometheus:9090")
    assert configured_questions(settings_for(models_dir)) == ["consolidate", "diagnose", "plan_upgrade"]
    monkeypatch.delenv("KUBECONFIG")
    assert configured_questions(settings_for(models_dir)) == ["diagnose"]


async def test_question_tool_listed_with_its_schema_when_kubernetes_is_configured(service, models_dir):
    _, app = service
    state = dataclasses.replace(app.state.service, settings=settings_for(models_dir, kubeconfig="/nonexistent/kubeconfig"))
    async with Client(build_server(state)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"consolidate", "plan_upgrade"} <= set(tools) and "diagnose" not in tools
        assert set(tools["consolidate"].input_schema["properties"]) == {"question", "scope"}
        # an argument the question tool does not take: a tool error naming it, not a crash
        bad = await client.call_tool("consolidate", {"nodes": []})
        assert bad.is_error and bad.structured_content["field"] == "nodes"
        bad = await client.call_tool("consolidate", {"scope": {"namespace": 7}})
        assert bad.is_error and bad.structured_content["field"].startswith("scope"), bad.content[0].text
        # the provider's own error (an unreadable kubeconfig) is a tool error too, never a crash
        failed = await client.call_tool("consolidate", {"question": "can I free a node?"})
        assert failed.is_error and failed.content[0].text.startswith("error: "), failed.content[0].text


@pytest.mark.parametrize("task", OFFERED)
async def test_each_task_tool_answers_its_example_in_process(service, task):
    _, app = service
    async with Client(build_server(app.state.service)) as client:
        check_answer(task, await client.call_tool(task, example(task)))


@pytest.mark.parametrize(
    ("tool", "arguments", "field", "words"),
    [
        ("sudoku", {"puzzle": "12"}, "puzzle", "81 cells"),
        ("sudoku", {}, None, "exactly one of 'puzzle' or 'grid'"),
        ("sudoku", {"puzzle": SUDOKU_EASY, "colour": "red"}, "colour", "Extra inputs"),
        ("maze", {"grid": ["#S#", "# "]}, "grid", "row 1 has 2 cells"),
        ("maze", {"grid": "not a list"}, "grid", "valid list"),
        ("placement", {"pods": [{"name": "a", "cpu_millicores": 1, "memory_mib": 1}]}, "nodes", "Field required"),
        ("upgrade", {"nodes": ["n1"], "services": [{"name": "s", "replicas_on": ["n9"], "max_unavailable": 1}]}, None, "n9"),
    ],
)
async def test_a_bad_argument_is_a_tool_error_naming_the_field(service, tool, arguments, field, words):
    _, app = service
    async with Client(build_server(app.state.service)) as client:
        result = await client.call_tool(tool, arguments)
        assert result.is_error
        text = result.content[0].text
        assert text.startswith("error: ") and words in text, text
        assert "problem." not in text  # named as the tool's argument, not the request's field
        if field is not None:
            assert result.structured_content["field"] == field and field in text
        # the session goes on: the next call is answered
        assert (await client.list_tools()).tools


async def test_unknown_tool_is_a_protocol_error(service):
    _, app = service
    async with Client(build_server(app.state.service)) as client:
        with pytest.raises(MCPError, match="unknown tool 'toy_reverse'"):
            await client.call_tool("toy_reverse", {"sequence": [1, 2, 3, 4, 1, 2, 3, 4]})


# --- streamable HTTP on a real socket --------------------------------------------------------------


@pytest.mark.parametrize("task", OFFERED)
async def test_each_task_tool_answers_over_http(service, task):
    url, _ = service
    async with http_client(url) as client:
        assert sorted(t.name for t in (await client.list_tools()).tools) == OFFERED
        check_answer(task, await client.call_tool(task, example(task)))


@needs_sudoku
async def test_http_calls_go_through_the_request_path(service):
    url, _ = service

    def served() -> float:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        line = [ln for ln in text.splitlines() if ln.startswith("agent_reasoning_requests_total{") and 'task="sudoku"' in ln and 'outcome="ok"' in ln]
        return float(line[0].rsplit(" ", 1)[1]) if line else 0.0

    before = served()
    async with http_client(url) as client:
        result = await client.call_tool("sudoku", {"puzzle": SUDOKU_EASY})
        bad = await client.call_tool("sudoku", {"grid": [[1, 2, 3]]})
    check_answer("sudoku", result)
    assert result.structured_content["solved_by"] == "trm" and result.structured_content["model"]["name"] == "sudoku"
    assert bad.is_error and bad.structured_content == {"error": "invalid_problem", "detail": bad.structured_content["detail"], "field": "grid"}
    assert served() == before + 1  # the one request path counted it


async def test_function_calling_definitions_match_the_mcp_tools(service):
    url, _ = service
    async with http_client(url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    with SyncReasoningClient(base_url=url, token=TOKEN) as sync:
        for format in ("openai", "ollama"):
            defs = {d["function"]["name"]: d["function"] for d in tool_definitions(format=format, client=sync)}
            assert sorted(defs) == sorted(tools)
            for name, fn in defs.items():
                assert fn["description"] == tools[name].description
                if format == "openai":
                    assert fn["parameters"] == {k: v for k, v in tools[name].input_schema.items() if k != "title"}
        result = call_tool("sudoku", {"puzzle": SUDOKU_EASY}, client=sync)
        assert not result.is_error and result.data["verified"] is True


async def test_http_needs_the_token(service):
    url, _ = service
    for token in (None, "wrong"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = httpx.post(
            f"{url}/mcp",
            headers=headers | {"Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            timeout=10,
        )
        assert r.status_code == 401 and r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        # the SDK's client cannot even open the connection (its handshake gets the 401)
        with pytest.raises(BaseException) as caught:
            async with http_client(url, token=token) as client:
                await client.list_tools()
        assert "Server returned an error response" in repr(caught.value), repr(caught.value)


# --- stdio: the torch-free forwarder ----------------------------------------------------------------


def _stdio_params(url: str) -> StdioServerParameters:
    env = dict(os.environ) | {"AGENT_REASONING_TOKEN": TOKEN, "PYTHONPATH": f"{REPO / 'src'}:{REPO / 'client' / 'src'}"}
    return StdioServerParameters(command=sys.executable, args=["-m", "reasoning_service", "mcp", "--url", url], env=env)


@needs_sudoku
@needs_maze
async def test_stdio_forwarder_relays_the_service(service):
    url, _ = service
    async with http_client(url) as direct:
        expected = [t.model_dump() for t in (await direct.list_tools()).tools]
    async with Client(_stdio_params(url), read_timeout_seconds=600) as client:
        listed = [t.model_dump() for t in (await client.list_tools()).tools]
        assert listed == expected
        check_answer("sudoku", await client.call_tool("sudoku", example("sudoku")))
        check_answer("maze", await client.call_tool("maze", example("maze")))
        bad = await client.call_tool("maze", {"grid": []})
        assert bad.is_error and bad.structured_content["field"] == "grid"


async def test_stdio_forwarder_says_when_the_service_is_down():
    async with Client(_stdio_params("http://127.0.0.1:9"), read_timeout_seconds=60) as client:
        result = await client.call_tool("sudoku", {"puzzle": SUDOKU_EASY})
        assert result.is_error and "cannot reach the agent-reasoning service at http://127.0.0.1:9/mcp" in result.content[0].text


def test_the_forwarder_does_not_import_torch():
    code = (
        "import sys\n"
        "from reasoning_service.__main__ import main\n"
        "import agent_reasoning.mcp_stdio\n"
        "from agent_reasoning.mcp_stdio import build_relay\n"
        "build_relay('http://127.0.0.1:9/mcp', None)\n"
        "assert 'torch' not in sys.modules and 'trm' not in sys.modules, sorted(m for m in sys.modules if m.startswith(('torch', 'trm')))\n"
    )
    env = dict(os.environ) | {"PYTHONPATH": f"{REPO / 'src'}:{REPO / 'client' / 'src'}"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
