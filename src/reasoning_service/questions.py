"""Questions without a problem: the service builds the problem from its providers (the Kubernetes API,
Prometheus) through the client's adapters. `build_problem` is the one entry point the request path calls.

    optimization      consolidation: the running pods on the fewest nodes, then the fewest moves, in steps
                      that keep every PodDisruptionBudget (task "placement"; plans.consolidate)
    planning          where the replicas of an app go (task "placement"): the app from scope.app, a manifest
                      in `context`, or a Deployment the question names; a question about upgrading or
                      draining nodes, or task "upgrade": the upgrade waves (task "upgrade")
    troubleshooting   the root cause among the services in scope (task "rootcause")

How the request path uses it (reasoning.py), when the request has no `problem`:

    built = await build_problem(state, request)       # ServiceError: answer with its status (422/502/503)
    # solve built.problem with the task named built.task (not the task type's default: planning would
    # pick the maze), exactly as a given problem: the model, or Task.solve past the canvas / without one
    presented = await run_in_threadpool(built.present, response.solution)   # may raise ServiceError
    response.answer, response.solution = presented.answer, presented.solution
    # verified/violations: task.verify(problem, task.Solution(presented.solution)) (a consolidation
    # replaces the assignment); objective, lower_bound, optimal: presented's where not None
    response.problem, response.sources = built.problem, built.sources
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx
import yaml

from agent_reasoning.adapters import (
    disruption_budgets,
    placement_from_kubectl,
    pod_requests,
    rootcause_from_prometheus,
    selector_matches,
    upgrade_from_kubectl,
)
from agent_reasoning.types import (
    PlacementPod,
    PlacementProblem,
    ReasoningRequest,
    RootCauseProblem,
    Scope,
    Source,
    TaskType,
    UpgradeProblem,
)
from reasoning_service.errors import ServiceError
from reasoning_service.plans import Budget, ConsolidationPlan, NoPlan, check_plan, consolidate
from reasoning_service.providers import ProviderError
from reasoning_service.providers.kubernetes import KubernetesProvider, in_cluster
from reasoning_service.providers.prometheus import PrometheusProvider, Signals
from trm.tasks import Task, task_classes

if TYPE_CHECKING:
    from reasoning_service.reasoning import ServiceState
    from reasoning_service.settings import Settings


@dataclass
class Presented:
    """The answer in operator terms. `solution` replaces the task's solution in the response (the same
    schema, with extra fields such as `moves`, `steps`, `drain`, `commands`, `evidence`); `objective`,
    `lower_bound`, `optimal` replace the response's where not None (a consolidation plan is re-solved)."""

    answer: str
    solution: dict[str, Any]
    objective: float | None = None
    lower_bound: float | None = None
    optimal: bool | None = None


@dataclass
class BuiltProblem:
    """A problem the service built for a question, with what it read to build it.

    `present(solution)`: the task's solution (a dict in its Solution schema) in operator terms; None: the
    task's own rendering stands."""

    task: str  # the task that answers it, e.g. "placement"
    problem: dict[str, Any]  # in that task's Problem schema
    sources: list[Source] = field(default_factory=list)
    present: Callable[[dict[str, Any]], Presented] | None = None


TASKS = "GET /v1/tasks lists each task's problem schema"
UPGRADE_WORDS = re.compile(r"\b(upgrad\w*|drain\w*|reboot\w*|maintenance|cordon\w*|waves?)\b", re.IGNORECASE)
DRAIN_FLAGS = "--ignore-daemonsets --delete-emptydir-data"


async def build_problem(state: ServiceState, request: ReasoningRequest) -> BuiltProblem:
    """The problem for a request that gave none: from the providers (Kubernetes, Prometheus) for a
    question about the cluster; else, where an LLM is configured (REASONING_LLM_URL and _MODEL), the
    LLM picks the task and extracts its problem from the question's text (reasoning_service.llm).

    Raises ServiceError: 422 when nothing can build it (naming the missing `problem` or setting, and
    pointing to /v1/tasks), the scope selects nothing, or the LLM's output is not a valid problem;
    502/503 when a provider or the LLM fails (naming it)."""
    settings = state.settings
    try:
        return await _from_providers(state, request)
    except ServiceError as e:
        # only "nothing could build it" goes on to the LLM: a provider that failed, or a scope that
        # selects nothing, is the answer
        if e.status != 422 or e.field != "problem" or not request.question:
            raise
        if not (settings.llm_url and settings.llm_model):
            hint = "; or set REASONING_LLM_URL and REASONING_LLM_MODEL (an Ollama server) to extract the problem from the question's text"
            raise ServiceError(422, e.kind, e.detail.rstrip(")") + hint + (")" if e.detail.endswith(")") else ""), field="problem") from None
    from reasoning_service.llm import extract_problem  # llm.py builds this module's BuiltProblem: a real cycle

    return await extract_problem(settings, request.question or "", _candidates(request), context=request.context)


def _candidates(request: ReasoningRequest) -> dict[str, type[Task]]:
    """The tasks an LLM may choose from: the one the request named, else those of its type, else all."""
    classes = {n: c for n, c in task_classes().items() if not c.test_only}
    if request.task is not None:
        return {n: c for n, c in classes.items() if n == request.task}
    if request.task_type is not None:
        return {n: c for n, c in classes.items() if c.task_type == request.task_type}
    return classes


async def _from_providers(state: ServiceState, request: ReasoningRequest) -> BuiltProblem:
    """The problem from the cluster's providers. Raises ServiceError as build_problem does."""
    task = request.task
    kind = request.task_type
    scope = request.scope or Scope()
    if task in ("placement", "upgrade", "rootcause") or task is None:
        if task == "rootcause" or (task is None and kind == TaskType.TROUBLESHOOTING):
            return await _rootcause(state.settings, scope)
        if task == "upgrade" or (task is None and kind == TaskType.PLANNING and UPGRADE_WORDS.search(request.question or "")):
            return await _upgrade(state.settings, scope)
        if kind == TaskType.OPTIMIZATION or (task == "placement" and kind is None and not (scope.app or request.context)):
            return await _consolidation(state.settings, scope)
        if kind == TaskType.PLANNING or task == "placement":
            return await _app_placement(state.settings, scope, request)
    what = f"task {task!r}" if task else f"task_type {kind.value if kind else None!r}"
    raise ServiceError(
        422,
        "invalid_request",
        f"problem: Field required (the service builds problems only for questions about the cluster: optimization, planning, "
        f"troubleshooting; {what} needs its problem; {TASKS})",
        field="problem",
    )


# --- providers ------------------------------------------------------------------------------------


def kubernetes_provider(settings: Settings) -> KubernetesProvider:
    """The configured Kubernetes provider (cached per settings object), or a 422 naming what to set."""
    cached = _CACHE.get(("kubernetes", id(settings)))
    if cached is not None and cached[0] is settings:
        return cached[1]
    if settings.kubeconfig:
        provider = KubernetesProvider.from_kubeconfig(settings.kubeconfig, timeout_s=settings.provider_timeout_seconds)
    elif settings.kubernetes_in_cluster and in_cluster():
        provider = KubernetesProvider.from_service_account(timeout_s=settings.provider_timeout_seconds)
    else:
        raise ServiceError(
            422,
            "invalid_request",
            "problem: Field required, and no Kubernetes API is configured to build it from the cluster: set KUBECONFIG, or run in a "
            f"cluster with the service account of deploy/k8s; or send the problem ({TASKS})",
            field="problem",
        )
    _CACHE[("kubernetes", id(settings))] = (settings, provider)
    return provider


def prometheus_provider(settings: Settings) -> PrometheusProvider:
    """The configured Prometheus provider, or a 422 naming REASONING_PROMETHEUS_URL."""
    if not settings.prometheus_url:
        raise ServiceError(
            422,
            "invalid_request",
            f"problem: Field required, and no Prometheus is configured to build it: set REASONING_PROMETHEUS_URL; or send the problem ({TASKS})",
            field="problem",
        )
    return PrometheusProvider(
        settings.prometheus_url,
        metrics=settings.prometheus_metrics,
        templates={"error_ratio": settings.promql_error_ratio, "latency_p99": settings.promql_latency_p99, "edges": settings.promql_edges},
        window=settings.prometheus_window,
        normal_window=settings.prometheus_normal_window,
        normal_offset=settings.prometheus_normal_offset,
        timeout_s=settings.provider_timeout_seconds,
    )


_CACHE: dict[tuple[str, int], tuple[Any, Any]] = {}


def _adapted(call: Callable[[], Any], source: str) -> Any:
    """An adapter's result; its ValueError (the cluster's data cannot make a problem) becomes a 422 naming the source."""
    try:
        return call()
    except ValueError as e:
        raise ServiceError(422, "invalid_request", f"{source}: the data in scope makes no problem: {e}", field="scope") from None


def _key(item: Mapping[str, Any]) -> str:
    meta = item.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


# --- optimization: consolidation ------------------------------------------------------------------


async def _consolidation(settings: Settings, scope: Scope) -> BuiltProblem:
    k8s = kubernetes_provider(settings)
    (nodes, s1), (pods, s2), (pdbs, s3) = await asyncio.gather(k8s.list("nodes"), k8s.list("pods"), k8s.list("pdbs"))
    sources = [s1, s2, s3]
    in_scope: set[str] | None = None
    if scope.namespace or scope.selector:
        chosen, s4 = await k8s.list("pods", namespace=scope.namespace, label_selector=scope.selector)
        sources.append(s4)
        in_scope = {_key(p) for p in chosen["items"]}
    full: PlacementProblem = _adapted(lambda: placement_from_kubectl(nodes, pods, pending_only=False), "kubernetes")
    by_name = {_key(p): p for p in pods["items"]}
    node_names = {n.name for n in full.nodes}
    # Movable: running on a node that takes pods, and in scope. The rest of what is bound to those nodes stays.
    movable, staying = [], []
    for pod in full.pods:
        raw = by_name[pod.name]
        node = (raw.get("spec") or {}).get("nodeName")
        if node not in node_names:
            continue  # pending, or on a cordoned, tainted or NotReady node: not part of the packing
        if (raw.get("status") or {}).get("phase") == "Running" and (in_scope is None or pod.name in in_scope):
            movable.append(PlacementPod(**pod.model_dump(), current_node=node))
        else:
            staying.append((node, raw))
    if not movable:
        raise ServiceError(
            422, "invalid_request", "kubernetes: no running pod in scope on a node that takes pods: nothing to consolidate", field="scope"
        )
    capacity = {n.name: [n.cpu_millicores, n.memory_mib] for n in full.nodes}
    for node, raw in staying:
        cpu, memory = pod_requests(raw)
        capacity[node][0] -= math.ceil(cpu * 1000)
        capacity[node][1] -= math.ceil(memory / 2**20)
    problem = PlacementProblem(
        nodes=[
            n.model_copy(update={"cpu_millicores": max(0, capacity[n.name][0]), "memory_mib": max(0, capacity[n.name][1])})
            for n in full.nodes
        ],
        pods=movable,
    )
    current = {p.name: p.current_node for p in movable}  # type: ignore[attr-defined]
    names = set(current)
    budgets = []
    for b in _adapted(lambda: disruption_budgets(pods, pdbs), "kubernetes"):
        members = tuple(_key(p) for p in b.pods)
        down = sum(1 for p in b.pods if (p.get("status") or {}).get("phase") != "Running")
        covered = tuple(m for m in members if m in names)
        if covered:
            budgets.append(Budget(b.name, covered, max(0, b.budget - down)))
    raw_problem = problem.model_dump(mode="json", exclude_none=True)
    raw_problem["budgets"] = [{"name": b.name, "pods": list(b.pods), "allowed_disruptions": b.allowed} for b in budgets]

    def present(solution: dict[str, Any]) -> Presented:
        try:
            plan = consolidate(problem, current, budgets, time_limit_s=settings.plan_time_limit_seconds)
        except NoPlan as e:
            raise ServiceError(422, "invalid_problem", f"consolidation: {e}", field="problem") from None
        violations = check_plan(problem, current, plan, budgets)
        if violations:  # the plan is checked from scratch; a failure here is a bug, said plainly
            raise ServiceError(500, "internal", f"consolidation plan failed its check: {'; '.join(violations)}")
        return _present_consolidation(problem, plan)

    return BuiltProblem("placement", raw_problem, sources, present)


def _present_consolidation(problem: PlacementProblem, plan: ConsolidationPlan) -> Presented:
    moves = plan.moves
    lines = [
        f"{len(problem.pods)} running pods fit on {plan.nodes_used} of {len(problem.nodes)} nodes"
        + (" (fewest possible)" if plan.optimal_nodes else f" (at least {plan.lower_bound} are needed)")
        + f" with {len(moves)} pod moves"
        + (" (fewest possible)." if plan.optimal_moves else "."),
        f"Nodes that can be drained: {', '.join(plan.drain) or 'none'}.",
    ]
    commands = [f"kubectl cordon {n}" for n in plan.drain]
    for k, step in enumerate(plan.steps, 1):
        lines.append(f"Step {k}: " + "; ".join(f"{m.pod} {m.source} -> {m.target}" for m in step))
        commands += [f"kubectl delete pod -n {m.pod.split('/', 1)[0]} {m.pod.split('/', 1)[1]} --wait=false" for m in step]
        commands.append("kubectl wait --for=condition=Ready pods --all -A --timeout=10m")
    commands += [f"kubectl drain {n} {DRAIN_FLAGS}" for n in plan.drain]
    if plan.held:
        lines.append(
            f"Kept in place (their PodDisruptionBudgets allow no disruption, or no order of moves keeps them): {', '.join(plan.held)}."
        )
    lines.append("Cordon the drained nodes first, so the scheduler places the evicted pods on the others; then one step at a time.")
    solution = {
        "assignments": plan.assignments,
        "nodes_used": plan.nodes_used,
        "unplaced": [],
        "drain": plan.drain,
        "moves": [{"pod": m.pod, "from": m.source, "to": m.target} for m in moves],
        "steps": [[{"pod": m.pod, "from": m.source, "to": m.target} for m in step] for step in plan.steps],
        "commands": commands,
        "held": plan.held,
    }
    return Presented("\n".join(lines), solution, objective=plan.nodes_used, lower_bound=plan.lower_bound, optimal=plan.optimal_nodes)


# --- planning: an app's replicas -------------------------------------------------------------------

WORKLOADS = ("Deployment", "StatefulSet")


def _manifest(context: str) -> dict[str, Any] | None:
    try:
        docs = list(yaml.safe_load_all(context))
    except yaml.YAMLError as e:
        raise ServiceError(422, "invalid_request", f"context: not a YAML or JSON manifest: {e}", field="context") from None
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") in WORKLOADS and isinstance((doc.get("metadata") or {}).get("name"), str):
            return doc
    return None


async def _app_placement(settings: Settings, scope: Scope, request: ReasoningRequest) -> BuiltProblem:
    k8s = kubernetes_provider(settings)
    sources: list[Source] = []
    app = _manifest(request.context) if request.context else None
    if request.context and app is None:
        raise ServiceError(
            422, "invalid_request", "context: no Deployment or StatefulSet with a metadata.name in the manifest", field="context"
        )
    if app is None:
        deployments, s = await k8s.list("deployments", namespace=scope.namespace, label_selector=scope.selector)
        sources.append(s)
        candidates = list(deployments["items"])
        if scope.app:
            statefulsets, s = await k8s.list("statefulsets", namespace=scope.namespace, label_selector=scope.selector)
            sources.append(s)
            named = [w for w in candidates + statefulsets["items"] if (w.get("metadata") or {}).get("name") == scope.app]
            if not named:
                raise ServiceError(
                    422,
                    "invalid_request",
                    f"scope.app: no Deployment or StatefulSet {scope.app!r} in scope; {_listing(candidates)}",
                    field="scope.app",
                )
            if len(named) > 1:
                raise ServiceError(
                    422,
                    "invalid_request",
                    f"scope.app: {scope.app!r} names {', '.join(_key(w) for w in named)}; set scope.namespace",
                    field="scope.app",
                )
            app = named[0]
        else:
            question = request.question or ""
            named = [w for w in candidates if re.search(rf"(?<![\w-]){re.escape(w['metadata']['name'])}(?![\w-])", question, re.IGNORECASE)]
            if len(named) != 1:
                which = "names several" if named else "names no Deployment in scope"
                raise ServiceError(
                    422,
                    "invalid_request",
                    f"scope.app: which app? the question {which}; give scope.app, a manifest in context, or name one. {_listing(named or candidates)}",
                    field="scope.app",
                )
            app = named[0]
    (nodes, s1), (pods, s2) = await asyncio.gather(k8s.list("nodes"), k8s.list("pods"))
    sources += [s1, s2]
    meta, spec = app.get("metadata") or {}, app.get("spec") or {}
    namespace = meta.get("namespace") or scope.namespace or "default"
    name = meta["name"]
    template = spec.get("template") or {}
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 1:
        raise ServiceError(
            422,
            "invalid_request",
            f"{app.get('kind')} {namespace}/{name}: spec.replicas is {replicas!r}; nothing to place",
            field="scope.app",
        )
    selector = spec.get("selector") or {}
    # The app's own pods make room (the plan is for all its replicas); other unbound pods are not placed now.
    kept = [
        p
        for p in pods["items"]
        if (p.get("spec") or {}).get("nodeName")
        and not (
            (p.get("metadata") or {}).get("namespace", "default") == namespace
            and selector
            and selector_matches(selector, (p.get("metadata") or {}).get("labels") or {})
        )
    ]
    labels = (template.get("metadata") or {}).get("labels") or {}
    replica_pods = [
        {
            "metadata": {"name": f"{name}-{r}", "namespace": namespace, "labels": labels},
            "spec": {
                k: v for k, v in (template.get("spec") or {}).items() if k in ("containers", "initContainers", "overhead", "affinity")
            },
            "status": {"phase": "Pending"},
        }
        for r in range(replicas)
    ]
    problem: PlacementProblem = _adapted(
        lambda: placement_from_kubectl(nodes, {"items": kept + replica_pods}, pending_only=True), "kubernetes"
    )
    raw_problem = problem.model_dump(mode="json", exclude_none=True)
    raw_problem["app"] = f"{app.get('kind', 'Deployment')} {namespace}/{name}"

    def present(solution: dict[str, Any]) -> Presented:
        where = solution.get("assignments") or {}
        lines = [f"{raw_problem['app']}: {replicas} replicas on {solution.get('nodes_used', len(set(where.values())))} nodes."]
        lines += [f"replica {pod} -> {node}" for pod, node in where.items()]
        if solution.get("unplaced"):
            lines.append(f"no room for: {', '.join(solution['unplaced'])}")
        return Presented("\n".join(lines), dict(solution))

    return BuiltProblem("placement", raw_problem, sources, present)


def _listing(workloads: list[Mapping[str, Any]]) -> str:
    names = sorted(_key(w) for w in workloads)
    return f"Deployments in scope: {', '.join(names)}" if names else "no Deployment in scope"


# --- planning: upgrade waves ------------------------------------------------------------------------


async def _upgrade(settings: Settings, scope: Scope) -> BuiltProblem:
    k8s = kubernetes_provider(settings)
    (nodes, s1), (pods, s2), (pdbs, s3) = await asyncio.gather(
        k8s.list("nodes"), k8s.list("pods"), k8s.list("pdbs", namespace=scope.namespace)
    )
    problem: UpgradeProblem = _adapted(lambda: upgrade_from_kubectl(nodes, pods, pdbs), "kubernetes")
    raw_problem = problem.model_dump(mode="json", exclude_none=True)

    def present(solution: dict[str, Any]) -> Presented:
        waves = solution.get("waves") or []
        lines = [f"{len(problem.nodes)} nodes in {len(waves)} waves; within a wave the PodDisruptionBudgets hold."]
        commands = []
        for k, wave in enumerate(waves, 1):
            lines.append(f"wave {k}: {', '.join(wave)}")
            commands.append(f"# wave {k}")
            commands.append(f"kubectl drain {' '.join(wave)} {DRAIN_FLAGS}")
            commands.append(f"# upgrade {', '.join(wave)}, wait until Ready")
            commands.append(f"kubectl uncordon {' '.join(wave)}")
        return Presented("\n".join(lines + ["", *commands]), {**solution, "commands": commands})

    return BuiltProblem("upgrade", raw_problem, [s1, s2, s3], present)


# --- troubleshooting: root cause --------------------------------------------------------------------


def _values(body: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for sample in body["data"].get("result") or []:
        name, value = (sample.get("metric") or {}).get("service"), float(sample["value"][1])
        if isinstance(name, str) and math.isfinite(value):
            out[name] = value
    return out


async def _rootcause(settings: Settings, scope: Scope) -> BuiltProblem:
    prometheus = prometheus_provider(settings)
    s: Signals = await prometheus.signals(namespace=scope.namespace)
    edges = s.edges
    if scope.service:
        graph = nx.Graph(edges)
        if scope.service not in graph:
            raise ProviderError(
                422,
                "prometheus",
                f"scope.service: {scope.service!r} has no call edges in {s.metrics} metrics (services: {', '.join(sorted(graph))})",
                field="scope.service",
            )
        keep = nx.node_connected_component(graph, scope.service)
        edges = [e for e in edges if e[0] in keep]
    else:
        keep = None
    problem: RootCauseProblem = _adapted(
        lambda: rootcause_from_prometheus(
            s.error_now,
            s.latency_now,
            edges,
            service_label="service",
            normal_error_ratio_json=s.error_normal,
            normal_latency_p99_json=s.latency_normal,
        ),
        "prometheus",
    )
    if keep is not None:
        problem = RootCauseProblem(services=[x for x in problem.services if x.name in keep], dependencies=problem.dependencies)
    raw_problem = problem.model_dump(mode="json", exclude_none=True)
    errors_normal, latency_normal = _values(s.error_normal), _values(s.latency_normal)
    callers: dict[str, list[str]] = {}
    callees: dict[str, list[str]] = {}
    for a, b in problem.dependencies:
        callees.setdefault(a, []).append(b)
        callers.setdefault(b, []).append(a)
    signal = {x.name: x for x in problem.services}

    def evidence(name: str) -> dict[str, Any]:
        x = signal[name]
        normal_ms = latency_normal.get(name)
        return {
            "service": name,
            "error_ratio": x.error_rate,
            "error_ratio_normal": errors_normal.get(name),
            "latency_p99_ms": x.latency_p99_ms,
            "latency_p99_ms_normal": None if normal_ms is None else normal_ms * 1000,
            "anomalous": x.anomalous,
            "calls": callees.get(name, []),
            "called_by": callers.get(name, []),
        }

    def present(solution: dict[str, Any]) -> Presented:
        ranking = [n for n in solution.get("ranking") or [] if n in signal]
        scores = solution.get("scores") or {}
        ranked = [evidence(n) | {"score": scores.get(n)} for n in ranking]
        lines = [
            f"Root cause: {ranking[0]}" if ranking else "No root cause ranked.",
            f"(from {s.metrics} metrics over the last {settings.prometheus_window}, "
            f"normal: {settings.prometheus_normal_window} ending {settings.prometheus_normal_offset} ago)",
        ]
        for k, e in enumerate(ranked[:5], 1):
            lines.append(
                f"{k}. {e['service']}: errors {_pct(e['error_ratio'])} (normal {_pct(e['error_ratio_normal'])}), "
                f"p99 {_ms(e['latency_p99_ms'])} (normal {_ms(e['latency_p99_ms_normal'])}); "
                f"calls {', '.join(e['calls']) or 'nothing'}; called by {', '.join(e['called_by']) or 'nobody'}"
            )
        # the task's own `evidence` (which signals moved, which callees are healthy) stays; what the
        # provider read for each ranked service goes beside it
        return Presented("\n".join(lines), {**solution, "signals": ranked, "metrics": s.metrics})

    return BuiltProblem("rootcause", raw_problem, s.sources, present)


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.1f}%"


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} ms"
