"""What the service's tasks look like as LLM tools: names, descriptions, argument schemas, result text.

Pure (pydantic and the standard library, like the wire types): the service's MCP server (/mcp) and the
client's function-calling definitions (agent_reasoning.tools) both build their tools here, so an MCP
client and a function-calling agent see the same tools, described the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .types import ReasoningResponse

Format = Literal["openai", "ollama"]

# Tasks that exist for the project's own tests and smoke runs; never offered to an LLM.
TEST_ONLY_TASKS = frozenset({"toy_reverse"})

# What each task's tool tells an LLM: when to call it, how to fill it, what the answer means.
TASK_GUIDES: dict[str, str] = {
    "sudoku": (
        "Solve a 9x9 Sudoku exactly. Call it whenever a Sudoku puzzle must be solved or checked; do not solve "
        "Sudoku yourself. Pass `puzzle` as 81 characters read row by row ('1'-'9' for givens, '.' or '0' for "
        "blanks), or `grid` as 9 rows of 9 integers (0 = blank). The answer is the completed grid; "
        "verified=true means it obeys every row, column and box rule and keeps the givens; unique=true means "
        "it is the puzzle's only solution."
    ),
    "maze": (
        "Find a shortest path through a grid maze. Call it for any maze or grid route question. Pass `grid`: "
        "the rows of the maze as strings of equal length, '#' wall, ' ' open, exactly one 'S' (start) and one "
        "'G' (goal). The answer is the path as [row, column] cells from S to G (0-based) and the maze with the "
        "path drawn as 'o'; verified=true means the path is connected, avoids walls and is as short as possible."
    ),
    "placement": (
        "Place Kubernetes pods on the fewest nodes. Call it when asked where pods should run, how many nodes a "
        "workload needs, or which nodes can be emptied (consolidation). Give every node's free CPU "
        "(millicores) and memory (MiB) and every pod's requests; pods with the same `group` "
        "(anti-affinity) never share a node. The answer maps each pod to a node; objective = nodes used, "
        "lower_bound = a proven minimum, optimal=true means no plan uses fewer nodes; `unplaced` lists pods "
        "that fit nowhere; verified=true means every capacity and anti-affinity rule holds."
    ),
    "rootcause": (
        "Find the root cause of an alert storm. Call it when several services fail or slow down at once and "
        "the question is which one started it. Give every service with its error_rate (share of failing "
        "requests, 0-1), latency_p99_ms and anomalous flag (null where unknown), and the [caller, callee] "
        "dependencies. The answer ranks the services by the probability of being the root cause (`scores`); "
        "root_cause is the most likely one. It is a ranking, not a proof: verified is null."
    ),
    "upgrade": (
        "Plan node upgrades (drains, reboots, kernel patches) in the fewest waves without breaking any "
        "PodDisruptionBudget. Give the node names and, for every service, the node of each replica and "
        "max_unavailable. The answer is `waves`: lists of nodes drained together, in order; verified=true "
        "means no wave takes down more than max_unavailable replicas of any service; objective = waves, "
        "optimal=true means no plan has fewer."
    ),
}


@dataclass(frozen=True)
class QuestionTool:
    """A question the service answers from the live cluster (its providers build the problem)."""

    name: str
    task: str
    guide: str


# Offered by the MCP server only where the service has providers configured (Kubernetes API,
# Prometheus); `tool_definitions(include_questions=True)` offers them to a function-calling agent.
QUESTION_TOOLS: tuple[QuestionTool, ...] = (
    QuestionTool(
        "consolidate",
        "placement",
        "Ask the live Kubernetes cluster whether its pods fit on fewer nodes (consolidation). The service reads "
        "nodes and pod requests itself; narrow it with `scope` (namespace, label selector). The answer is a "
        "pod -> node plan with the nodes used (objective), a proven lower bound and the sources it read.",
    ),
    QuestionTool(
        "diagnose",
        "rootcause",
        "Ask which service is the root cause of the current alerts or errors. The service reads error rates, "
        "latencies and dependencies from Prometheus and Kubernetes itself; narrow it with `scope`. The answer "
        "ranks services by the probability of being the root cause, with the sources it read.",
    ),
    QuestionTool(
        "plan_upgrade",
        "upgrade",
        "Ask for a node upgrade plan for the live cluster: the fewest waves of node drains that keep every "
        "PodDisruptionBudget. The service reads nodes, replicas and budgets itself; narrow it with `scope`. "
        "The answer is the waves in order, with the sources it read.",
    ),
)

QUESTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "description": "The question in the user's words (echoed back)"},
        "scope": {
            "type": "object",
            "description": "What part of the cluster the question is about (all optional)",
            "properties": {
                "namespace": {"type": "string", "description": "Kubernetes namespace"},
                "selector": {"type": "string", "description": "Label selector, e.g. 'app.kubernetes.io/part-of=shop'"},
                "service": {"type": "string", "description": "A service the question is about"},
                "app": {"type": "string", "description": "A Deployment or StatefulSet name"},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what it tells the LLM, the JSON schema of its arguments, the task that answers it.

    kind "task": the arguments are the task's problem. kind "question": the arguments are
    {question?, scope?} and the service builds the problem from the cluster.
    """

    name: str
    description: str
    input_schema: dict[str, Any]
    task: str
    kind: Literal["task", "question"] = "task"


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every local `$ref` replaced by its `$defs` entry and `$defs` dropped.

    Function-calling runtimes (Ollama's among them) do not follow references; the task schemas are
    not recursive, so inlining terminates. Raises ValueError for a reference it cannot resolve.
    """
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if not ref.startswith("#/$defs/") or name not in defs:
                    raise ValueError(f"cannot resolve $ref {ref!r}")
                if name in seen:
                    raise ValueError(f"recursive $ref {ref!r} cannot be inlined")
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return walk({**defs[name], **rest}, (*seen, name))
            return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    return walk(copy.deepcopy(schema), ())


def _simplify(node: Any) -> Any:
    """A plainer schema for runtimes with a narrow schema model (Ollama's): no titles, no `null`
    defaults, and an optional field (`anyOf: [X, {type: null}]`) written as X."""
    if isinstance(node, list):
        return [_simplify(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _simplify(v) for k, v in node.items() if k != "title" and not (k == "default" and v is None)}
    options = out.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(options):
            del out["anyOf"]
            out = {**kept[0], **out}
    return out


@dataclass(frozen=True)
class TaskEntry:
    """What a tool is built from: a task's name, its one-line description and its problem's JSON schema
    (a GET /v1/tasks entry, or a task class on the service's side)."""

    name: str
    description: str
    problem_schema: dict[str, Any]


def tool_specs(tasks: Iterable[TaskEntry], *, questions: Iterable[str] = ()) -> list[ToolSpec]:
    """The tools for a task catalogue: one per task (test-only tasks left out) and the named question tools.

    questions: names from QUESTION_TOOLS to offer; a question whose task is not in `tasks` is left out.
    """
    entries, wanted = list(tasks), set(questions)
    specs: list[ToolSpec] = []
    names = {t.name for t in entries}
    for t in sorted(entries, key=lambda t: t.name):
        if t.name in TEST_ONLY_TASKS:
            continue
        guide = TASK_GUIDES.get(t.name) or f"{t.description} Pass the problem in the schema below."
        detail = f" ({t.description})" if t.name in TASK_GUIDES and t.description else ""
        schema = inline_refs(t.problem_schema) if t.problem_schema else {"type": "object"}
        schema.setdefault("type", "object")
        specs.append(ToolSpec(t.name, guide + detail, schema, t.name))
    for q in QUESTION_TOOLS:
        if q.name in wanted and q.task in names:
            specs.append(ToolSpec(q.name, q.guide, copy.deepcopy(QUESTION_SCHEMA), q.task, "question"))
    return specs


def to_definition(spec: ToolSpec, format: Format = "openai") -> dict[str, Any]:
    """One tool in a function-calling format.

    "openai": Chat Completions `tools` entries ({"type": "function", "function": {name, description,
    parameters}}), parameters as full JSON Schema (anyOf kept). "ollama": the same envelope, which
    Ollama's /api/chat takes, with the parameters simplified to the subset Ollama's tool schema models.
    """
    if format not in ("openai", "ollama"):
        raise ValueError(f"format must be 'openai' or 'ollama', not {format!r}")
    params = copy.deepcopy(spec.input_schema)
    if format == "ollama":
        params = _simplify(params)
    else:
        params.pop("title", None)
    return {"type": "function", "function": {"name": spec.name, "description": spec.description, "parameters": params}}


def render_result(response: ReasoningResponse) -> str:
    """The text an LLM reads for a solved call: the rendered answer, then the facts that qualify it."""
    facts = [f"task: {response.task}", f"verified: {_tri(response.verified)}", f"solved_by: {response.solved_by}"]
    if response.violations:
        facts.append("violations: " + "; ".join(response.violations))
    for name in ("objective", "lower_bound", "optimal", "unique"):
        value = getattr(response, name)
        if value is not None:
            facts.append(f"{name}: {_tri(value) if isinstance(value, bool) else _num(value)}")
    if response.sources:
        kinds = sorted({s.kind for s in response.sources})
        facts.append("problem built from: " + ", ".join(kinds))
    return f"{response.answer.rstrip()}\n\n" + "\n".join(facts)


def _tri(v: bool | None) -> str:
    return "unknown (this task has no exact check)" if v is None else str(v).lower()


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"
