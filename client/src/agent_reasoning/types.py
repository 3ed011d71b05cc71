"""Wire types of the agent-reasoning API, shared by the client and the service.

Everything here is plain pydantic: importing it never pulls in torch.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

SolutionT = TypeVar("SolutionT", bound=BaseModel)


class TaskType(str, Enum):
    """Kind of problem; each task belongs to one type, and a request naming only the type gets that type's default task."""

    PLANNING = "planning"
    TROUBLESHOOTING = "troubleshooting"
    OPTIMIZATION = "optimization"
    LOGIC = "logic"
    GENERAL = "general"


# --- requests and responses ----------------------------------------------------------------------


SOLVED_BY = ("trm", "solver", "baseline")  # known values of ReasoningResponse.solved_by; clients accept others


class Scope(BaseModel):
    """What part of the cluster a question is about (used when the service builds the problem)."""

    model_config = ConfigDict(extra="forbid")

    namespace: str | None = Field(None, max_length=253, description="Kubernetes namespace")
    selector: str | None = Field(None, max_length=1000, description="Label selector, e.g. 'app.kubernetes.io/part-of=shop'")
    service: str | None = Field(None, max_length=253, description="A service the question is about")
    app: str | None = Field(None, max_length=253, description="A Deployment or StatefulSet name")


class Source(BaseModel):
    """Where the service read the data of a problem it built."""

    kind: str  # "kubernetes" | "prometheus" | "llm" | ...
    url: str | None = None
    query: str | None = None
    at: str | None = None  # RFC 3339 time of the read


class ReasoningRequest(BaseModel):
    """One structured problem for one task. `task` or `task_type` (or both) must be given.

    Fields this version does not know are accepted (a newer client may send them) and named in the
    response's `warnings`, so a misspelt option does not pass unnoticed."""

    model_config = ConfigDict(extra="allow")

    task_type: TaskType | None = Field(None, description="Kind of problem; alone it picks that type's default task")
    task: str | None = Field(None, description="Task name, e.g. 'sudoku'; implies its task_type")
    problem: dict[str, Any] | None = Field(
        None, description="The problem in the task's Problem schema; when absent the service builds it (providers, LLM) or answers 422"
    )
    scope: Scope | None = Field(None, description="Narrows a question the service answers from the cluster")
    context: str | None = Field(None, max_length=200_000, description="Extra input for building the problem, e.g. an app manifest")
    mode: Literal["fast", "exact"] | None = Field(
        None, description="'exact': the task's exact solver (CP-SAT) with the model's answer as a hint, within budget_ms"
    )
    budget_ms: int | None = Field(None, ge=1, le=600_000, description="Time budget of the exact solver in ms (mode 'exact')")
    question: str | None = Field(None, max_length=4000, description="Free text, echoed back")
    max_steps: int | None = Field(None, ge=1, le=64, description="Cap on supervision steps (default: the model's)")
    min_steps: int | None = Field(None, ge=1, le=64, description="Steps before halting (or an answer that passes the exact check) may stop a sample")
    halt_threshold: float | None = Field(None, ge=-20, le=20, description="Halt when q_halt exceeds this")
    trace: bool = Field(False, description="Return the answer after every supervision step")
    fallback: bool | None = Field(
        None,
        description="Use the classical answer when the model's fails verify or is worse (default: on for placement and upgrade, off for the others)",
    )
    model: str | None = Field(None, max_length=200, description="Model name (default: the task's default model)")
    conversation_id: str | None = Field(None, max_length=200, description="Echoed back, for the caller's bookkeeping")
    deadline_ms: int | None = Field(None, ge=1, le=600_000, description="Give up (504) after this many ms")
    views: int | None = Field(
        None, ge=1, le=64, description="Solve this many symmetric views of the problem and answer what most agree on (default: the model's)"
    )
    attempts: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Test-time compute: the most attempts the model may take at this problem (default: the model's). "
        "Adaptive by default: one attempt first, more only when it fails the exact check or its confidence is low",
    )
    strategy: Literal["views", "noise", "views+noise"] | None = Field(
        None, description="How attempts after the first differ: symmetric views, Gaussian noise on the latent state, or both (default: the model's)"
    )
    noise: float | None = Field(None, ge=0, le=4, description="Std of the latent noise of noisy attempts (default: the model's)")
    select: Literal["checker", "vote", "halt"] | None = Field(
        None, description="How the answer is chosen among attempts: the first to pass the exact check, the vote, or the most confident halting head"
    )
    adaptive: bool | None = Field(None, description="One attempt first and more only when needed (default: true); false runs them all at once")
    compute_ms: int | None = Field(None, ge=1, le=600_000, description="Wall time for the attempts after the first, in ms (default: the deadline)")

    @model_validator(mode="after")
    def _task_or_type(self) -> ReasoningRequest:
        # a question alone (no problem) is fine: the service's LLM, where configured, picks the task
        if self.task is None and self.task_type is None and not (self.problem is None and self.question):
            raise ValueError(
                "give 'task' or 'task_type' to say which task 'problem' is "
                "(a 'question' alone goes to the service's LLM, where REASONING_LLM_URL and REASONING_LLM_MODEL are set)"
            )
        return self


class ReasoningStep(BaseModel):
    """The answer after one supervision step (returned when the request asks for `trace`)."""

    step: int
    answer: str  # the rendered answer after this step
    confidence: float  # sigmoid(q_halt) after this step
    changed: int  # tokens that differ from the previous step's prediction
    solution: dict[str, Any] | None = None  # the answer after this step in the task's Solution schema


class ModelInfo(BaseModel):
    """Name and version of the model checkpoint that answered."""

    name: str
    version: str


class ReasoningResponse(BaseModel):
    """The service's answer to a `ReasoningRequest`: the solution, how it was found and checked, and timings (ms)."""

    answer: str = Field(..., description="The answer rendered for people")
    solution: dict[str, Any] = Field(..., description="The answer in the task's Solution schema")
    verified: bool | None = Field(..., description="Exact check passed; null where the task has no exact check")
    violations: list[str] = Field(default_factory=list)
    solved_by: str = Field("trm", description="Who produced the answer: 'trm' (the model), 'solver' (the task's exact solver), 'baseline' (a classical heuristic)")
    steps: int = 0
    halted: bool = True  # false: cut at max_steps or by the deadline
    confidence: float = Field(
        0.0,
        description="The model's halting confidence (sigmoid of q_halt) after its last step; where no model answered: "
        "1.0 for an answer the exact check proved, 0.0 for one that failed it, a ranking's top probability (rootcause)",
    )
    views: int = 1  # attempts (symmetric views, noisy trajectories) that finished (1: no choice to make)
    votes: int = 1  # how many of them gave this answer
    attempts: int = Field(1, description="Attempts the model started at this problem (test-time compute)")
    total_steps: int = Field(0, description="Supervision steps of all attempts together: the compute spent")
    chosen_by: str = Field("halt", description="How the answer was chosen: 'halt' (the halting head), 'vote', 'checker' (the exact check among the attempts)")
    strategy: str = Field("single", description="What found the answer: 'single' (the first, plain attempt), 'views', 'noise', 'views+noise'")
    reasoning_trace: list[ReasoningStep] = Field(default_factory=list)
    duration_ms: float = 0.0
    queue_ms: float = 0.0
    task_type: TaskType | str
    task: str
    model: ModelInfo | None = None  # None when no model took part (solved_by 'solver' or 'baseline' without a model)
    objective: float | None = Field(None, description="Optimisation tasks: the answer's objective (placement: nodes used; upgrade: waves)")
    lower_bound: float | None = Field(None, description="A proven lower bound on the objective")
    optimal: bool | None = Field(None, description="The answer is proven optimal (objective == lower bound, or the exact solver proved it)")
    unique: bool | None = Field(None, description="The solution is the only one (where that is cheap to know, e.g. Sudoku)")
    problem: dict[str, Any] | None = Field(None, description="The problem as the service built it (when the request gave none)")
    sources: list[Source] = Field(default_factory=list, description="Where the service read the data of a problem it built")
    conversation_id: str | None = None
    question: str | None = None
    warnings: list[str] = Field(
        default_factory=list,
        description="Fields of the request or problem the service does not read (a misspelt 'group' would drop an anti-affinity rule), with the closest known name",
    )

    @field_validator("task_type", mode="before")
    @classmethod
    def _known_type(cls, v: Any) -> Any:
        # a type this client knows becomes the enum; a newer service's new type stays a plain string
        try:
            return TaskType(v)
        except ValueError:
            return v

    def solution_as(self, model: type[SolutionT]) -> SolutionT:
        """The solution parsed into the task's Solution model, e.g. `result.solution_as(PlacementSolution)`."""
        return model.model_validate(self.solution)


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx answer: a machine-readable kind, a message, and the field at fault where there is one."""

    error: str  # short machine-readable kind, e.g. "invalid_problem"
    detail: str  # what went wrong, naming the field
    field: str | None = None  # dotted path of the field at fault


# --- per-task problems and solutions ---------------------------------------------------------------


_SUDOKU_RULE = set("-+=|") | {"\u2500", "\u253c", "\u2502"}  # box-drawing rules between bands


def _sudoku_text(text: str) -> str:
    """A puzzle in any common text layout -> 81 characters, '.' for blanks. Raises ValueError.

    Accepted: 81 characters ('1'-'9', '.' or '0' for a blank), on one line or as 9 lines of 9;
    digits separated by spaces or commas; the boxed layout with '|' between stacks and lines of
    '-' and '+' between bands (what the service renders as `answer`)."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or set(line.strip()) <= _SUDOKU_RULE | {" "}:
            continue  # blank lines and the rules between bands
        rows.append("".join(line.replace("|", " ").replace("\u2502", " ").replace(",", " ").split()))
    cells = "".join(rows)
    for i, ch in enumerate(cells):
        if ch not in "123456789.0":
            where = f"row {i // 9 + 1}, column {i % 9 + 1}" if len(cells) == 81 else f"character {i + 1} of the cells"
            raise ValueError(f"cell {i} ({where}) is {ch!r}; use 1-9 and '.' or '0' for a blank (separators: spaces, commas, '|', and lines of '-' and '+')")
    if len(cells) != 81:
        detail = f"need 81, got {len(cells)}"
        if len(rows) > 1:
            wrong = [f"row {r + 1} has {len(row)}" for r, row in enumerate(rows) if len(row) != 9]
            detail += f" in {len(rows)} rows" + (f" ({', '.join(wrong[:3])}; each needs 9)" if wrong else "; need 9 rows of 9")
        raise ValueError(f"must have 81 cells: {detail}")
    return cells.replace("0", ".")


class SudokuProblem(BaseModel):
    """A 9x9 Sudoku: `puzzle` as text or `grid` 9x9 (0 blank).

    `puzzle`: 81 characters ('1'-'9', '.' or '0' for blank) on one line or 9 lines of 9, digits
    separated by spaces or commas, or the boxed layout with '|', '-' and '+' that `answer` uses."""

    model_config = ConfigDict(extra="forbid")

    puzzle: str | None = Field(None, examples=["53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"])
    grid: list[list[int]] | None = None

    @field_validator("puzzle")
    @classmethod
    def _puzzle(cls, v: str | None) -> str | None:
        return None if v is None else _sudoku_text(v)

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: list[list[int]] | None) -> list[list[int]] | None:
        if v is None:
            return v
        if len(v) != 9 or any(len(row) != 9 for row in v):
            raise ValueError("must be 9 rows of 9 integers")
        for r, row in enumerate(v):
            for c, x in enumerate(row):
                if not 0 <= x <= 9:
                    raise ValueError(f"row {r + 1}, column {c + 1} is {x}; use 0-9 (0 = blank)")
        return v

    @model_validator(mode="after")
    def _one_form(self) -> SudokuProblem:
        if (self.puzzle is None) == (self.grid is None):
            raise ValueError("give exactly one of 'puzzle' or 'grid'")
        return self

    def cells(self) -> list[int]:
        """81 ints, 0 = blank."""
        if self.puzzle is not None:
            return [0 if ch == "." else int(ch) for ch in self.puzzle]
        assert self.grid is not None
        return [x for row in self.grid for x in row]


class SudokuSolution(BaseModel):
    """A solved Sudoku: `grid` 9x9 of digits 1-9, `solution` the same as 81 digits row by row."""

    grid: list[list[int]]
    solution: str  # 81 digits


MAZE_CHARS = "# SG"


class MazeProblem(BaseModel):
    """A grid maze: rows of '#' (wall), ' ' (open), 'S' (start), 'G' (goal). Outside the grid is wall."""

    model_config = ConfigDict(extra="forbid")

    grid: list[str] = Field(..., examples=[["#######", "#S  # #", "# # # #", "# #   #", "# ### #", "#    G#", "#######"]])

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must have at least one row")
        width = len(v[0])
        if width == 0:
            raise ValueError("rows must not be empty")
        starts = goals = 0
        for r, row in enumerate(v):
            if len(row) != width:
                raise ValueError(f"row {r} has {len(row)} cells, row 0 has {width}; all rows must be as long")
            for c, ch in enumerate(row):
                if ch not in MAZE_CHARS:
                    raise ValueError(f"row {r}, column {c} is {ch!r}; use '#', ' ', 'S' or 'G'")
            starts += row.count("S")
            goals += row.count("G")
        if starts != 1:
            raise ValueError(f"needs exactly one 'S', found {starts}")
        if goals != 1:
            raise ValueError(f"needs exactly one 'G', found {goals}")
        return v


class MazeSolution(BaseModel):
    """A path from S to G: `path` as [row, col] cells (both ends included), `grid` the maze with the path drawn as 'o'."""

    path: list[tuple[int, int]]  # [row, col] cells from S to G inclusive
    grid: list[str]  # the maze with the path drawn as 'o'


# --- homelab tasks ---------------------------------------------------------------------------------

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}$"
# The largest capacity, request or budget a problem may give: a million cores in millicores, about an
# EiB in MiB; far past any cluster, and small enough that sums over many pods stay within the 64-bit
# integers the exact solver (CP-SAT) works in.
MAX_QUANTITY = 10**12
NodeName = Annotated[str, Field(pattern=_NAME)]  # a Kubernetes node name (no spaces: plans print them into shell commands)


def _invalid_at(at: str, message: str) -> PydanticCustomError:
    """A cross-field error that names the item at fault: `ctx["at"]` is its path inside the model
    (`pods.3.name`), which the service adds to the 422's `field` (a model validator's own location is the whole model)."""
    return PydanticCustomError("invalid_reference", "{message}", {"message": message, "at": at})


def _unique(names: list[str], what: str, where: str) -> None:
    """`where`: the path of item i as a format string, e.g. "pods.{}.name"."""
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise _invalid_at(where.format(i), f"{what} name {n!r} appears twice")
        seen.add(n)


class PlacementNode(BaseModel):
    """A node with its free capacity (CPU in millicores, memory in MiB); extra fields are kept."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(..., pattern=_NAME)
    cpu_millicores: int = Field(..., ge=0, le=MAX_QUANTITY, description="Free CPU (allocatable minus requests of running pods)")
    memory_mib: int = Field(..., ge=0, le=MAX_QUANTITY, description="Free memory in MiB")


class PlacementPod(BaseModel):
    """A pod's requests (CPU in millicores, memory in MiB) and its optional anti-affinity group; extra fields are kept."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(..., pattern=_NAME)
    cpu_millicores: int = Field(..., ge=0, le=MAX_QUANTITY)
    memory_mib: int = Field(..., ge=0, le=MAX_QUANTITY)
    group: str | None = Field(None, description="Pods of one group must not share a node (anti-affinity)")


class PlacementProblem(BaseModel):
    """Place every pod on the fewest nodes; capacities are free capacity."""

    model_config = ConfigDict(extra="allow")

    nodes: list[PlacementNode] = Field(..., min_length=1)
    pods: list[PlacementPod] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _names(self) -> PlacementProblem:
        _unique([n.name for n in self.nodes], "node", "nodes.{}.name")
        _unique([p.name for p in self.pods], "pod", "pods.{}.name")
        return self


class PlacementSolution(BaseModel):
    """Pod -> node `assignments`, the number of nodes used, and the pods that fit nowhere (`unplaced`)."""

    model_config = ConfigDict(extra="allow")

    assignments: dict[str, str]  # pod -> node
    nodes_used: int
    unplaced: list[str] = Field(default_factory=list)


class ServiceSignal(BaseModel):
    """One service's signals during an incident (rates in [0, 1], latencies in ms), optionally with its normal window.

    Any signal may be null (unknown); the `normal_*` fields come from a window before the incident (e.g. PromQL `offset 1h`).
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field(..., pattern=_NAME)
    error_rate: float | None = Field(None, ge=0, le=1, description="Share of failing requests; null if unknown")
    latency_p99_ms: float | None = Field(None, ge=0, description="p99 latency in ms; null if unknown")
    anomalous: bool | None = Field(None, description="An alert or detector flags it; null if unknown")
    # The service's own normal (a window before the incident, e.g. PromQL `offset 1h`): what RCA methods
    # such as BARO and NSigma compare against, since a level that is normal for one service is an alarm
    # for another. All optional: problems without them keep working (raw levels are used then).
    normal_error_rate: float | None = Field(None, ge=0, le=1, description="Typical (median) error rate in the normal window; null if unknown")
    normal_latency_p99_ms: float | None = Field(None, ge=0, description="Typical (median) p99 latency in ms in the normal window; null if unknown")
    normal_error_rate_spread: float | None = Field(
        None, ge=0, description="Robust spread of the error rate in the normal window (IQR / 1.349 or 1.4826 x MAD); null if unknown"
    )
    normal_latency_p99_spread_ms: float | None = Field(
        None, ge=0, description="Robust spread of the p99 latency in ms in the normal window (IQR / 1.349 or 1.4826 x MAD); null if unknown"
    )


class RootCauseProblem(BaseModel):
    """Which service is the root cause of an alert storm? `dependencies` are [caller, callee] pairs."""

    model_config = ConfigDict(extra="allow")

    services: list[ServiceSignal] = Field(..., min_length=1)
    dependencies: list[tuple[str, str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> RootCauseProblem:
        names = [s.name for s in self.services]
        _unique(names, "service", "services.{}.name")
        known = set(names)
        for i, (caller, callee) in enumerate(self.dependencies):
            for end in (caller, callee):
                if end not in known:
                    raise _invalid_at(f"dependencies.{i}", f"dependencies[{i}] names {end!r}, which is not in services")
        return self


class ServiceEvidence(BaseModel):
    """What an operator checks about one service: which of its signals moved, and how its callees look.

    `moved` names the signals off their normal ("error_rate", "latency_p99", "flag"); a change is
    measured against the service's normal window where the problem gives one (`*_change` is then a
    robust z-score when a spread is known, else the ratio to normal), else against raw levels.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    anomalous: bool = Field(..., description="Counted as anomalous (flag, or a moved signal)")
    moved: list[str] = Field(default_factory=list, description="Signals off their normal: error_rate, latency_p99, flag")
    error_rate: float | None = None
    normal_error_rate: float | None = None
    error_rate_z: float | None = Field(None, description="(error_rate - normal) / spread; null without a normal window and spread")
    latency_p99_ms: float | None = None
    normal_latency_p99_ms: float | None = None
    latency_ratio: float | None = Field(None, description="p99 over its normal (or over the median of all services without one)")
    latency_z: float | None = Field(None, description="(p99 - normal) / spread; null without a normal window and spread")
    healthy_callees: list[str] = Field(default_factory=list, description="Services it calls that look normal")
    unhealthy_callees: list[str] = Field(default_factory=list, description="Services it calls that are anomalous (could explain its symptoms)")
    anomalous_callers: list[str] = Field(default_factory=list, description="Services calling it that are anomalous (its possible victims)")


class RootCauseSolution(BaseModel):
    """The most likely root cause, all services ranked (most likely first), their probabilities, and per-service evidence."""

    model_config = ConfigDict(extra="allow")

    root_cause: str
    ranking: list[str]  # most likely first
    scores: dict[str, float] = Field(default_factory=dict)  # service -> probability of being the root cause
    evidence: list[ServiceEvidence] = Field(default_factory=list, description="Per service, in ranking order: what moved and how its callees look")


class UpgradeService(BaseModel):
    """A service's replicas by node and how many may be down at once (its PodDisruptionBudget)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(..., pattern=_NAME)
    replicas_on: list[str] = Field(..., description="Node of each replica (a node may appear more than once)")
    max_unavailable: int = Field(..., ge=0, le=MAX_QUANTITY, description="Replicas that may be down at once (PodDisruptionBudget)")


class UpgradeProblem(BaseModel):
    """Upgrade nodes in the fewest waves; in every wave each service loses at most max_unavailable replicas."""

    model_config = ConfigDict(extra="allow")

    nodes: list[NodeName] = Field(..., min_length=1)
    services: list[UpgradeService] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> UpgradeProblem:
        _unique(self.nodes, "node", "nodes.{}")
        _unique([s.name for s in self.services], "service", "services.{}.name")
        known = set(self.nodes)
        for i, s in enumerate(self.services):
            for n in s.replicas_on:
                if n not in known:
                    raise _invalid_at(
                        f"services.{i}.replicas_on", f"services[{i}] ({s.name}) has a replica on {n!r}, which is not in nodes"
                    )
        return self


class UpgradeSolution(BaseModel):
    """Upgrade `waves`: lists of node names, upgraded one wave after another."""

    model_config = ConfigDict(extra="allow")

    waves: list[list[str]]
