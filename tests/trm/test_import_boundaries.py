"""The one-way dependencies of docs/architecture.md, checked in fresh interpreters.

`trm` (the library) depends on the wire types (`agent_reasoning.types`, pydantic only), never on
the client's transport (httpx, cloudevents); a built-in task that cannot be imported fails loudly
instead of vanishing from the registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

TRANSPORT = ("httpx", "cloudevents")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    # The child sees exactly this process's import path (the worktree's src/ and client/src/ first).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120)


def _loaded_after(statement: str) -> list[str]:
    proc = _run(
        f"""
        import json, sys
        {statement}
        print(json.dumps(sorted(sys.modules)))
        """
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("statement", ["import trm", "import trm.tasks", "import agent_reasoning.types", "from agent_reasoning import TaskType"])
def test_library_and_wire_types_load_no_transport(statement):
    modules = _loaded_after(statement)
    transport = [m for m in modules if m.split(".")[0] in TRANSPORT]
    assert transport == [], f"{statement!r} loaded {transport[:5]}"
    client = [m for m in modules if m.startswith("agent_reasoning.")]
    assert set(client) <= {"agent_reasoning._version", "agent_reasoning.types"}, client


def test_the_client_still_exports_its_transport_lazily():
    modules = _loaded_after("from agent_reasoning import ReasoningClient, SyncReasoningClient")
    assert "httpx" in modules and "agent_reasoning._client" in modules and "agent_reasoning._sync" in modules
    proc = _run("import agent_reasoning; agent_reasoning.NoSuchName")
    assert proc.returncode != 0 and "has no attribute 'NoSuchName'" in proc.stderr


def test_every_public_client_name_resolves():
    import agent_reasoning

    assert set(agent_reasoning.__all__) == {*agent_reasoning._EXPORTS, "__version__"}
    missing = [name for name in agent_reasoning.__all__ if not hasattr(agent_reasoning, name)]
    assert missing == []
    assert {"ReasoningClient", "TaskType", "placement_from_kubectl", "__version__"} <= set(dir(agent_reasoning))


def test_a_builtin_task_that_cannot_be_imported_fails_loudly():
    # A broken homelab task module (as after a wire-type version mismatch) must raise, not leave
    # the registry with three tasks fewer and the service answering 404.
    proc = _run(
        """
        import sys
        sys.modules["trm.tasks.placement"] = None  # any later import of it raises ImportError
        from trm.tasks import list_tasks
        try:
            list_tasks()
        except ImportError as e:
            print("ImportError", e)
        else:
            print("no error")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ImportError") and "trm.tasks.placement" in proc.stdout, proc.stdout


def test_the_registry_lists_every_builtin_task():
    proc = _run("from trm.tasks import list_tasks; print(list_tasks())")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().replace("'", '"')) == ["maze", "placement", "rootcause", "sudoku", "toy_reverse", "upgrade"]


# --- the arrows of docs/architecture.md, over every module's imports (function-level ones too) ------

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
PARTS = {  # part -> (its source files, top-level names it must not import)
    "wire types": (
        ["client/src/agent_reasoning/types.py", "client/src/agent_reasoning/toolspec.py"],
        {"agent_reasoning", "trm", "reasoning_service", "httpx", "cloudevents", "torch"},
    ),
    "client": (["client/src/agent_reasoning"], {"trm", "reasoning_service", "torch"}),
    "tasks": (["src/trm/tasks"], {"reasoning_service", "torch", "httpx", "cloudevents", "trm"}),
    "trm core": (["src/trm"], {"reasoning_service", "httpx", "cloudevents"}),
    "service": (["src/reasoning_service"], {"httpx"}),
}
ALLOWED = {  # exceptions to the table above: (part, imported module prefix)
    ("tasks", "trm.tasks"),
    # `agent-reasoning mcp` hands over to the client's torch-free stdio relay (the CLI, not the app)
    ("service", "agent_reasoning.mcp_stdio"),
    # the Prometheus provider queries Prometheus' HTTP API (its own client, not the agent client's transport)
    ("service", "httpx"),
}
# the wire types, and the tools built on them (pure: what the MCP server and the client's
# function-calling definitions share)
# and the adapters (pure functions from kubectl/Prometheus JSON to problems), which the providers
# build their problems through rather than keep a second copy
WIRE_TYPES = {"agent_reasoning.types", "agent_reasoning._version", "agent_reasoning.toolspec", "agent_reasoning.adapters"}


def _imports(path) -> list[str]:
    import ast

    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


@pytest.mark.parametrize("part", list(PARTS))
def test_parts_import_only_down_the_arrows(part):
    sources, forbidden = PARTS[part]
    files = [p for s in sources for p in ([REPO / s] if s.endswith(".py") else sorted((REPO / s).rglob("*.py")))]
    assert files
    bad = []
    for path in files:
        for module in _imports(path):
            top = module.split(".")[0]
            if any(module == prefix or module.startswith(prefix + ".") for p, prefix in ALLOWED if p == part):
                continue
            if top in forbidden:
                bad.append(f"{path.relative_to(REPO)}: {module}")
            # outside the client itself, only the wire types of agent_reasoning
            if top == "agent_reasoning" and part != "client" and module not in WIRE_TYPES:
                bad.append(f"{path.relative_to(REPO)}: {module} (only agent_reasoning.types)")
    assert bad == []
