"""Free-text extraction through Ollama's /api/chat (reasoning_service.llm), against the Ollama stand-in."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from agent_reasoning.tools import inline_refs
from reasoning_service.errors import ServiceError
from reasoning_service.llm import extract_problem, extraction_schema, parse_extraction
from reasoning_service.settings import Settings
from trm.tasks import get_task, task_classes

from ..ollama_standin import Reply, last_user_text, running_ollama
from .conftest import SUDOKU_EASY, needs_sudoku, settings_for
from .server import running_server

MODEL = "qwen3:8b"
OFFERED = sorted(set(task_classes()) - {"toy_reverse"})
PASTED_SUDOKU = """Can you solve this one for me?

5 3 . | . 7 . | . . .
6 . . | 1 9 5 | . . .
. 9 8 | . . . | . 6 .
------+-------+------
8 . . | . 6 . | . . 3
4 . . | 8 . 3 | . . 1
7 . . | . 2 . | . . 6
------+-------+------
. 6 . | . . . | 2 8 .
. . . | 4 1 9 | . . 5
. . . | . 8 . | . 7 9
"""
DRAWN_MAZE = """Find me the shortest way from S to G:

#######
#S  # #
# # # #
# #   #
# ### #
#    G#
#######
"""
NODES_AND_PODS = (
    "I have two nodes, nuc-01 with 4000m CPU and 16Gi free, and pi-01 with 2000m and 4Gi. "
    "Where should immich-ml (2 cores, 4Gi) and postgres (1 core, 2Gi) go?"
)
PLACEMENT = {
    "nodes": [{"name": "nuc-01", "cpu_millicores": 4000, "memory_mib": 16384}, {"name": "pi-01", "cpu_millicores": 2000, "memory_mib": 4096}],
    "pods": [{"name": "immich-ml", "cpu_millicores": 2000, "memory_mib": 4096}, {"name": "postgres", "cpu_millicores": 1000, "memory_mib": 2048}],
}


def reading_model(body: dict) -> Reply:
    """A scripted model that reads the user's text the way a good LLM would for these three inputs."""
    text = last_user_text(body)
    rows = ["".join(ch for ch in line if ch in "123456789.") for line in text.splitlines()]
    cells = "".join(r for r in rows if len(r) >= 9)
    if len(cells) == 81:
        return Reply(json.dumps({"task": "sudoku", "problem": {"puzzle": cells, "grid": None}}))
    if "#" in text:
        rows = [line for line in text.splitlines() if line.startswith("#")]
        return Reply(json.dumps({"task": "maze", "problem": {"grid": rows}}))
    if "nodes" in text:
        return Reply(json.dumps({"task": "placement", "problem": PLACEMENT}))
    return Reply(json.dumps({"task": "sudoku", "problem": {"puzzle": "1" * 80}}))


def settings(url: str | None, model: str | None = MODEL) -> Settings:
    return Settings(llm_url=url, llm_model=model, log_format="text")


@pytest.fixture(scope="module")
def ollama():
    with running_ollama(reading_model, models=(MODEL,)) as (url, standin):
        yield url, standin


async def test_extracts_a_pasted_sudoku_a_drawn_maze_and_nodes_and_pods(ollama):
    url, standin = ollama
    tasks = task_classes()
    built = await extract_problem(settings(url), PASTED_SUDOKU, tasks)
    assert built.task == "sudoku" and built.problem == {"puzzle": SUDOKU_EASY}  # the null grid is dropped
    assert [s.kind for s in built.sources] == ["llm"] and built.sources[0].url == url and MODEL in built.sources[0].query
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", built.sources[0].at)

    body = standin.requests[-1]
    assert body["model"] == MODEL and body["stream"] is False and body["options"] == {"temperature": 0}
    assert [m["role"] for m in body["messages"]] == ["system", "user"] and body["messages"][1]["content"] == PASTED_SUDOKU
    # the format: one branch per task (never the test-only one), each the task's own problem schema
    branches = body["format"]["anyOf"]
    assert [b["properties"]["task"]["enum"] for b in branches] == [[n] for n in OFFERED]
    for b in branches:
        name = b["properties"]["task"]["enum"][0]
        assert b["properties"]["problem"] == inline_refs(task_classes()[name].Problem.model_json_schema())
        assert name in body["messages"][0]["content"]
    assert "toy_reverse" not in json.dumps(body)

    built = await extract_problem(settings(url), DRAWN_MAZE, tasks)
    assert built.task == "maze" and built.problem == get_task("maze").example()
    built = await extract_problem(settings(url), NODES_AND_PODS, tasks)
    assert built.task == "placement" and built.problem == PLACEMENT


async def test_one_candidate_task_gets_a_plain_object_schema(ollama):
    url, standin = ollama
    built = await extract_problem(settings(url), "Fill in:\n" + SUDOKU_EASY, {"sudoku": get_task("sudoku")}, context="(a Sudoku)")
    assert built.task == "sudoku"
    fmt = standin.requests[-1]["format"]
    assert "anyOf" not in fmt and fmt["properties"]["task"] == {"type": "string", "enum": ["sudoku"]}
    assert standin.requests[-1]["messages"][1]["content"].endswith("\n\n(a Sudoku)")
    assert extraction_schema([get_task("sudoku")]) == fmt


@pytest.mark.parametrize("llm_url, model", [(None, MODEL), ("http://127.0.0.1:9", None)])
async def test_unconfigured_is_a_clear_422(llm_url, model):
    with pytest.raises(ServiceError) as caught:
        await extract_problem(settings(llm_url, model), PASTED_SUDOKU, task_classes())
    e = caught.value
    assert e.status == 422 and e.field == "problem"
    assert "REASONING_LLM_URL" in e.detail and "REASONING_LLM_MODEL" in e.detail


async def test_output_that_is_not_a_valid_problem_is_a_clear_422():
    def script(body: dict) -> Reply:
        text = last_user_text(body)
        if "truncate" in text:  # cut at num_predict: half a JSON object, done_reason "length"
            return Reply(json.dumps({"task": "maze", "problem": {"grid": ["#S#", "#G#"]}}), truncated=True)
        if "maze" in text:  # fits the schema, breaks the maze rules
            return Reply(json.dumps({"task": "maze", "problem": {"grid": ["#S #", "#G"]}}))
        return Reply(json.dumps({"task": "sudoku", "problem": {"puzzle": "1" * 80}}))

    with running_ollama(script, models=(MODEL,)) as (url, _):
        for question, words in [
            ("a sudoku", "sudoku problem.puzzle: Value error, must have 81 cells: need 81, got 80"),
            ("a maze", "maze problem.grid: Value error, row 1 has 2 cells"),
            ("truncate it", "not JSON"),
        ]:
            with pytest.raises(ServiceError) as caught:
                await extract_problem(settings(url), question, task_classes())
            e = caught.value
            assert e.status == 422 and e.kind == "invalid_problem" and e.field == "question"
            assert e.detail.startswith("question: the LLM's output is not a valid problem: ") and words in e.detail, e.detail


async def test_an_empty_question_is_a_422_before_any_llm_call(ollama):
    url, standin = ollama
    seen = len(standin.requests)
    with pytest.raises(ServiceError) as caught:
        await extract_problem(settings(url), "  ", task_classes())
    assert caught.value.status == 422 and caught.value.field == "question" and len(standin.requests) == seen


def test_parse_extraction_rejects_what_the_schema_would_not_allow():
    tasks = task_classes()
    for content, words in [
        ('{"task": "toy_reverse", "problem": {"sequence": [1,2,3,4,1,2,3,4]}}', "'toy_reverse' is not one of"),
        ('{"task": "chess", "problem": {}}', "'chess' is not one of"),
        ('{"task": "maze", "problem": [1]}', "problem: must be an object"),
        ("[1, 2]", "not a JSON object"),
        # a task-level check (no answer exists), not only the schema
        ('{"task": "sudoku", "problem": {"puzzle": "55' + "." * 79 + '"}}', "sudoku problem"),
    ]:
        with pytest.raises(ServiceError) as caught:
            parse_extraction(content, tasks)
        assert caught.value.status == 422 and words in caught.value.detail, caught.value.detail


async def test_a_model_that_is_not_pulled_is_a_502_with_ollamas_message(ollama):
    url, _ = ollama
    with pytest.raises(ServiceError) as caught:
        await extract_problem(settings(url, "llama9:70b"), PASTED_SUDOKU, task_classes())
    assert caught.value.status == 502 and 'model "llama9:70b" not found' in caught.value.detail


async def test_an_unreachable_llm_is_a_503():
    with pytest.raises(ServiceError) as caught:
        await extract_problem(settings("http://127.0.0.1:9"), PASTED_SUDOKU, task_classes())
    assert caught.value.status == 503 and caught.value.kind == "llm_unavailable" and "Retry-After" in caught.value.headers


def test_the_standin_speaks_ollamas_streaming_and_tool_call_format(ollama):
    """The stand-in itself: NDJSON when stream is left on, tool calls with object arguments."""
    url, _ = ollama
    tools = [{"type": "function", "function": {"name": "maze", "description": "d", "parameters": {"type": "object"}}}]
    with running_ollama(lambda body: Reply(tool_calls=[("maze", {"grid": ["#SG#"]})]), models=(MODEL,)) as (url2, _):
        r = httpx.post(f"{url2}/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "go"}], "tools": tools, "stream": False})
        call = r.json()["message"]["tool_calls"][0]
        assert call["function"] == {"index": 0, "name": "maze", "arguments": {"grid": ["#SG#"]}} and call["id"].startswith("call_")
    with httpx.stream("POST", f"{url}/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": DRAWN_MAZE}]}) as r:
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert all(not c["done"] for c in lines[:-1]) and lines[-1]["done"] and lines[-1]["done_reason"] == "stop"
    assert json.loads("".join(c["message"]["content"] for c in lines))["task"] == "maze"


# --- through a real service ------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "integration-example.md"
REPO = DOC.parents[1]


def doc_example(marker: str) -> str:
    """The Python block of docs/integration-example.md that contains `marker`."""
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL) if marker in b]
    return block


def agent_model(body: dict) -> Reply:
    """A scripted tool-calling model: a Sudoku in the user's words -> a call to the sudoku tool; a tool
    result -> a final answer that quotes the tool's first row."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return Reply(f"Solved and checked by the tool. First row: {last['content'].splitlines()[0]}")
    puzzle = re.search(r"[\d.]{81}", last_user_text(body)).group(0)
    return Reply(tool_calls=[("sudoku", {"puzzle": puzzle})])


def run_example(code: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ) | {"PYTHONPATH": f"{REPO / 'src'}:{REPO / 'client' / 'src'}"} | env
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300)


@needs_sudoku
def test_the_documented_agent_loop_runs_against_ollama(server):
    from agent_reasoning import SyncReasoningClient
    from agent_reasoning.tools import tool_definitions

    with running_ollama(agent_model, models=("qwen3:8b",)) as (ollama_url, standin):
        done = run_example(doc_example("ollama_agent.py"), OLLAMA_URL=ollama_url, AGENT_REASONING_URL=server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[tool sudoku: verified=True]", "Solved and checked by the tool. First row: 5 3 4 | 6 7 8 | 9 1 2"]
    first, second = standin.requests
    with SyncReasoningClient(base_url=server) as client:
        assert first["tools"] == tool_definitions(format="ollama", client=client)
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][2]["tool_calls"][0]["function"]["arguments"] == {"puzzle": SUDOKU_EASY}
    tool_message = second["messages"][3]
    assert tool_message["tool_name"] == "sudoku" and "verified: true" in tool_message["content"]


@needs_sudoku
def test_the_documented_mcp_python_client_runs(server):
    code = doc_example("from mcp import Client").replace("http://localhost:8080", server)
    done = run_example(code)
    assert done.returncode == 0, done.stderr
    names, *answer = done.stdout.splitlines()
    assert names == str(OFFERED) and answer[0] == "5 3 4 | 6 7 8 | 9 1 2" and "verified: true" in answer


@needs_sudoku
def test_a_free_text_question_is_extracted_by_the_llm_and_verified(models_dir):
    with running_ollama(reading_model, models=(MODEL,)) as (ollama_url, _):
        with running_server(settings_for(models_dir, llm_url=ollama_url, llm_model=MODEL)) as url:
            r = httpx.post(f"{url}/v1/reason", json={"task_type": "logic", "question": PASTED_SUDOKU}, timeout=120)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["task"] == "sudoku" and {k: v for k, v in body["problem"].items() if v is not None} == {"puzzle": SUDOKU_EASY}
            assert [s["kind"] for s in body["sources"]] == ["llm"] and body["verified"] is True
            assert body["solution"]["solution"].startswith("534678912")
            r = httpx.post(f"{url}/v1/reason", json={"task_type": "logic", "question": "Solve 11111111"}, timeout=120)
            assert r.status_code == 422 and "the LLM's output is not a valid problem" in r.json()["detail"], r.text


@needs_sudoku
def test_a_free_text_question_without_an_llm_is_a_clear_422(server):
    r = httpx.post(f"{server}/v1/reason", json={"task_type": "logic", "question": PASTED_SUDOKU}, timeout=60)
    assert r.status_code == 422 and r.json()["field"] == "problem"
    assert "REASONING_LLM_URL" in r.json()["detail"], r.text


def test_the_extraction_bench_scores_against_the_known_problems(tmp_path):
    """bench/llm_extraction.py against a stand-in "model" that reads every question perfectly, except
    that it drops the first given of every Sudoku: 100% extracted for four tasks, 0% for Sudoku."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import llm_extraction as bench
    finally:
        sys.path.remove(str(REPO / "bench"))
    known = {q.text: q for q in bench.questions()}
    assert len(known) == 60 and {q.task for q in known.values()} == set(bench.TASKS)

    def script(body: dict) -> Reply:
        q = known[last_user_text(body)]
        problem = dict(q.problem)
        if q.task == "sudoku":
            first = next(i for i, ch in enumerate(problem["puzzle"]) if ch != ".")
            problem["puzzle"] = problem["puzzle"][:first] + "." + problem["puzzle"][first + 1 :]
        return Reply(json.dumps({"task": q.task, "problem": problem}))

    with running_ollama(script, models=(MODEL,)) as (url, standin):
        result = bench.main(["--ollama", url, "--model", MODEL, "--out", str(tmp_path / "report.json")])
    assert len(standin.requests) == 60
    table = {row["task"]: row for row in result["table"]}
    assert table["sudoku"]["extracted_exactly"] == 0.0
    assert all(table[t]["extracted_exactly"] == 1.0 for t in ("maze", "placement", "rootcause", "upgrade"))
    assert table["all"]["n"] == 60 and table["all"]["extracted_exactly"] == 0.8 and table["all"]["answered_correctly"] is None
    assert json.loads((tmp_path / "report.json").read_text())["table"] == result["table"]
