"""Homelab problems from what a cluster already reports: kubectl JSON for placement and upgrades, Prometheus for root causes.

Pure functions over parsed JSON (or its text): they run no commands and make no requests, so the caller
chooses how to reach kubectl and Prometheus (README, "Homelab tasks"). Malformed input raises ValueError
naming the argument and the item at fault.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any, NamedTuple, Union

from .types import PlacementNode, PlacementPod, PlacementProblem, RootCauseProblem, ServiceSignal, UpgradeProblem, UpgradeService

JSONInput = Union[str, bytes, Mapping[str, Any]]
Dependencies = Union[Iterable[Sequence[str]], Mapping[str, Iterable[str]]]

__all__ = [
    "Dependencies",
    "DisruptionBudget",
    "JSONInput",
    "dependency_pairs",
    "disruption_budgets",
    "normal_window_query",
    "parse_quantity",
    "pod_requests",
    "placement_from_kubectl",
    "rootcause_from_prometheus",
    "selector_matches",
    "upgrade_from_kubectl",
]

# --- Kubernetes quantities ------------------------------------------------------------------------

# <number><suffix>, as k8s.io/apimachinery/pkg/api/resource parses it. The exponent form comes first so
# that "1e3" is 1000 while "1E" alone is an exa.
_QUANTITY = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[eE]([+-]?\d+)|([KMGTPE]i|[numkMGTPE])?)")
_MULTIPLIER = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


def parse_quantity(value: str | int | float) -> Fraction:
    """A Kubernetes quantity ("250m", "0.5", "1500u", "128Mi", "1G", "1e3") as an exact fraction of its unit (cores, bytes)."""
    text = str(value)
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. '250m', '1.5', '128Mi', '1G', '1e3')")
    number, exponent, suffix = match.groups()
    if exponent is not None:
        return Fraction(number) * Fraction(10) ** int(exponent)
    return Fraction(number) * _MULTIPLIER[suffix or ""]


# Requests round up and capacities down, so that a placement that fits the numbers fits the node.
def _millicores(cores: Fraction, *, up: bool) -> int:
    return math.ceil(cores * 1000) if up else math.floor(cores * 1000)


def _mib(size: Fraction, *, up: bool) -> int:
    return math.ceil(size / 2**20) if up else math.floor(size / 2**20)


Resources = tuple[Fraction, Fraction]  # cores, bytes
_ZERO: Resources = (Fraction(0), Fraction(0))


def _add(a: Resources, b: Resources) -> Resources:
    return a[0] + b[0], a[1] + b[1]


def _max(a: Resources, b: Resources) -> Resources:
    return max(a[0], b[0]), max(a[1], b[1])


def _resources(resources: Any, where: str) -> Resources:
    if resources is None:
        return _ZERO
    if not isinstance(resources, Mapping):
        raise ValueError(f"{where}: expected a map of resource quantities, got {resources!r}")
    try:
        cpu, memory = parse_quantity(resources.get("cpu", 0)), parse_quantity(resources.get("memory", 0))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if cpu < 0 or memory < 0:
        raise ValueError(f"{where}: a negative quantity in {dict(resources)}")
    return cpu, memory


# --- kubectl JSON ---------------------------------------------------------------------------------


def _load(doc: JSONInput, what: str) -> Any:
    if isinstance(doc, (str, bytes)):
        try:
            return json.loads(doc)
        except ValueError as exc:
            raise ValueError(f"{what}: not JSON: {exc}") from None
    return doc


def _items(doc: JSONInput, what: str, command: str) -> list[Mapping[str, Any]]:
    body = _load(doc, what)
    items = body.get("items") if isinstance(body, Mapping) else None
    if not isinstance(items, list):
        kind = body.get("kind") if isinstance(body, Mapping) else type(body).__name__
        raise ValueError(f"{what}: expected a List with 'items' (the output of `{command}`), got {kind!r}")
    for i, item in enumerate(items):
        name = _get(item, "metadata", "name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what}: items[{i}] has no metadata.name")
    return items


def _get(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]…, or None where a step is missing (kubectl leaves out empty fields)."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _list(obj: Any, *path: str) -> list[Any]:
    found = _get(obj, *path)
    return found if isinstance(found, list) else []


def _name(item: Mapping[str, Any]) -> str:
    name: str = item["metadata"]["name"]
    return name


def _namespace(item: Mapping[str, Any]) -> str:
    namespace: str = _get(item, "metadata", "namespace") or "default"
    return namespace


def _labels(item: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = _get(item, "metadata", "labels") or {}
    return labels


def _schedulable(node: Mapping[str, Any]) -> bool:
    """Not cordoned and Ready (a node without a Ready condition has not reported: not ready)."""
    if _get(node, "spec", "unschedulable"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in _list(node, "status", "conditions"))


def _repels(node: Mapping[str, Any]) -> bool:
    """A NoSchedule or NoExecute taint keeps pods without a toleration off; PreferNoSchedule is only a wish."""
    return any(t.get("effect") in ("NoSchedule", "NoExecute") for t in _list(node, "spec", "taints"))


def _terminated(pod: Mapping[str, Any]) -> bool:
    return _get(pod, "status", "phase") in ("Succeeded", "Failed")


def _pinned(pod: Mapping[str, Any]) -> bool:
    """DaemonSet and static (mirror) pods belong to their node: the scheduler never moves them."""
    if "kubernetes.io/config.mirror" in (_get(pod, "metadata", "annotations") or {}):
        return True
    return any(ref.get("kind") in ("DaemonSet", "Node") for ref in _list(pod, "metadata", "ownerReferences"))


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """What the scheduler reserves for a pod: Kubernetes' effective request (cores, bytes).

    max(app containers + sidecars, each init container + the sidecars started before it) + overhead;
    sidecars are init containers with restartPolicy Always, which keep running beside the app.
    """
    where = f"pod {_namespace(pod)}/{_name(pod)}"
    apps = _ZERO
    for i, c in enumerate(_list(pod, "spec", "containers")):
        apps = _add(apps, _resources(_get(c, "resources", "requests"), f"{where}: containers[{i}].resources.requests"))
    sidecars = inits = _ZERO
    for i, c in enumerate(_list(pod, "spec", "initContainers")):
        request = _resources(_get(c, "resources", "requests"), f"{where}: initContainers[{i}].resources.requests")
        if c.get("restartPolicy") == "Always":
            sidecars = _add(sidecars, request)
            inits = _max(inits, sidecars)
        else:
            inits = _max(inits, _add(request, sidecars))
    overhead = _resources(_get(pod, "spec", "overhead"), f"{where}: spec.overhead")
    return _add(_max(_add(apps, sidecars), inits), overhead)


# --- label selectors --------------------------------------------------------------------------------


def _matches(selector: Mapping[str, Any], labels: Mapping[str, str], where: str) -> bool:
    """A metav1.LabelSelector: every matchLabels pair and every matchExpressions requirement holds."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for i, e in enumerate(selector.get("matchExpressions") or []):
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = labels.get(key) not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"{where}: matchExpressions[{i}] has operator {op!r}; expected In, NotIn, Exists or DoesNotExist")
        if not ok:
            return False
    return True


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a metav1.LabelSelector (matchLabels, matchExpressions) selects these labels; an unknown operator raises ValueError."""
    return _matches(selector, labels, "selector")


def _render(selector: Mapping[str, Any]) -> str:
    """The selector in kubectl's -l syntax: "app=immich,tier in (api,web),!canary"."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), ",".join(e.get("values") or [])
        # Rendered only after _matches accepted the selector, so the operator is one of these.
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


# --- placement --------------------------------------------------------------------------------------


def _group(pod: Mapping[str, Any], group_label: str | None) -> str | None:
    namespace, labels = _namespace(pod), _labels(pod)
    if group_label is not None:
        value = labels.get(group_label)
        return None if value is None else f"{namespace}/{group_label}={value}"
    # Required anti-affinity per host against pods the pod itself matches: replicas that must not share a node.
    terms = _list(pod, "spec", "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
    for term in terms:
        selector = term.get("labelSelector")
        where = f"pod {namespace}/{_name(pod)}: podAntiAffinity"
        if term.get("topologyKey") == "kubernetes.io/hostname" and isinstance(selector, Mapping) and _matches(selector, labels, where):
            return f"{namespace}/{_render(selector)}"
    return None


def placement_from_kubectl(
    nodes_json: JSONInput,
    pods_json: JSONInput,
    *,
    pending_only: bool = True,
    group_label: str | None = None,
    include_tainted: bool = False,
) -> PlacementProblem:
    """A PlacementProblem from `kubectl get nodes -o json` and `kubectl get pods -A -o json`.

    Nodes: those that take new pods (not cordoned, Ready, and, unless include_tainted, without a NoSchedule or
    NoExecute taint), with free capacity = allocatable cpu and memory minus the requests of the pods bound to
    them that have not finished (Running, or Pending on the node). Capacities round down, requests up.
    Pods: with pending_only, the pending pods no node has taken yet; without it, every pod that has not
    finished, so the answer is a fresh packing of the cluster ("how few nodes would do?"). DaemonSet and static
    pods stay on their nodes either way. A pod's size is Kubernetes' effective request (pod_requests); a pod
    without requests counts as 0. Pods are named "namespace/name".
    Groups (pods of a group must not share a node): pods with the same value of `group_label` in one
    namespace, or else pods whose required podAntiAffinity on kubernetes.io/hostname has the same selector,
    which they match themselves. Not expressed: anti-affinity towards pods already running (use
    pending_only=False to place the whole group), other affinities, tolerations, GPUs and pod-count limits.
    """
    pods = [p for p in _items(pods_json, "pods_json", "kubectl get pods -A -o json") if not _terminated(p)]
    used: dict[str, Resources] = {}
    moving: list[Mapping[str, Any]] = []
    for pod in pods:
        node = _get(pod, "spec", "nodeName")
        if not _pinned(pod) and (not node or not pending_only):
            moving.append(pod)
        elif node:
            used[node] = _add(used.get(node, _ZERO), pod_requests(pod))

    nodes: list[PlacementNode] = []
    for node in _items(nodes_json, "nodes_json", "kubectl get nodes -o json"):
        if not _schedulable(node) or (_repels(node) and not include_tainted):
            continue
        name = _name(node)
        cpu, memory = _resources(_get(node, "status", "allocatable"), f"nodes_json: node {name}: status.allocatable")
        used_cpu, used_memory = used.get(name, _ZERO)
        nodes.append(
            PlacementNode(
                name=name,
                cpu_millicores=max(0, _millicores(cpu - used_cpu, up=False)),
                memory_mib=max(0, _mib(memory - used_memory, up=False)),
            )
        )
    if not nodes:
        raise ValueError("nodes_json: no node takes new pods (all are cordoned, NotReady or tainted; see include_tainted)")
    if not moving:
        raise ValueError("pods_json: no pod to place" + (" (no pending pod without a node; see pending_only)" if pending_only else ""))

    placed = []
    for pod in moving:
        cpu, memory = pod_requests(pod)
        placed.append(
            PlacementPod(
                name=f"{_namespace(pod)}/{_name(pod)}",
                cpu_millicores=_millicores(cpu, up=True),
                memory_mib=_mib(memory, up=True),
                group=_group(pod, group_label),
            )
        )
    return PlacementProblem(nodes=nodes, pods=placed)


# --- upgrades -----------------------------------------------------------------------------------------


def _scaled(value: Any, total: int, where: str) -> int:
    """intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true), as the disruption controller calls it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+%", value):
        return -(-int(value[:-1]) * total // 100)
    raise ValueError(f"{where}: {value!r} is neither an integer nor a percentage like '50%'")


def _budget(pdb: Mapping[str, Any], expected: int, where: str) -> int:
    """Pods that may be down at once when all `expected` pods are healthy."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        return _scaled(spec["maxUnavailable"], expected, f"{where}: spec.maxUnavailable")
    if spec.get("minAvailable") is not None:
        return expected - _scaled(spec["minAvailable"], expected, f"{where}: spec.minAvailable")
    return expected  # neither: the disruption controller wants no pod healthy


class DisruptionBudget(NamedTuple):
    """A PodDisruptionBudget resolved against the pods: `name` "namespace/name", the unfinished pods its
    selector matches in its namespace (a missing selector matches none, {} all), and `budget`, the pods that
    may be down at once when all of them are healthy (as the disruption controller derives it)."""

    name: str
    pods: list[Mapping[str, Any]]
    budget: int


def disruption_budgets(pods_json: JSONInput, pdbs_json: JSONInput) -> list[DisruptionBudget]:
    """Each PodDisruptionBudget of `kubectl get pdb -A -o json` with the pods of `kubectl get pods -A -o json` it covers."""
    pods = [p for p in _items(pods_json, "pods_json", "kubectl get pods -A -o json") if not _terminated(p)]
    budgets = []
    for pdb in _items(pdbs_json, "pdbs_json", "kubectl get pdb -A -o json"):
        namespace, where = _namespace(pdb), f"pdbs_json: {_namespace(pdb)}/{_name(pdb)}"
        selector = _get(pdb, "spec", "selector")
        matched: list[Mapping[str, Any]] = []
        if isinstance(selector, Mapping):
            matched = [p for p in pods if _namespace(p) == namespace and _matches(selector, _labels(p), f"{where}: spec.selector")]
        budgets.append(DisruptionBudget(f"{namespace}/{_name(pdb)}", matched, _budget(pdb, len(matched), where)))
    return budgets


def upgrade_from_kubectl(
    nodes_json: JSONInput,
    pods_json: JSONInput,
    pdbs_json: JSONInput,
    *,
    all_nodes: bool = False,
) -> UpgradeProblem:
    """An UpgradeProblem from `kubectl get nodes -o json`, `kubectl get pods -A -o json` and `kubectl get pdb -A -o json`.

    Nodes: the Ready, uncordoned ones (taints do not matter: the control plane needs upgrades too), or all
    with all_nodes. Services: one per PodDisruptionBudget, named "namespace/name", over the unfinished pods
    its selector matches in its namespace (a missing selector matches none, {} all). replicas_on: the nodes
    of those pods that run on a listed node. max_unavailable: the budget Kubernetes derives from the spec
    (maxUnavailable, or matched pods minus minAvailable; percentages rounded up, of the matched pods where
    Kubernetes takes the owners' replica counts), less the matched pods already down (pending, or on a node
    left out), floored at 0; status.disruptionsAllowed is not read. Pods that no PodDisruptionBudget covers
    are not constrained.
    """
    node_names = [_name(n) for n in _items(nodes_json, "nodes_json", "kubectl get nodes -o json") if all_nodes or _schedulable(n)]
    if not node_names:
        raise ValueError("nodes_json: no Ready, uncordoned node (see all_nodes)")
    listed = set(node_names)
    services = []
    for budget in disruption_budgets(pods_json, pdbs_json):
        matched = budget.pods
        replicas_on = [node for p in matched if _get(p, "status", "phase") == "Running" and (node := _get(p, "spec", "nodeName")) in listed]
        down = len(matched) - len(replicas_on)
        services.append(UpgradeService(name=budget.name, replicas_on=replicas_on, max_unavailable=max(0, budget.budget - down)))
    return UpgradeProblem(nodes=node_names, services=services)


# --- root causes --------------------------------------------------------------------------------------


def _data(doc: JSONInput, what: str) -> Mapping[str, Any]:
    body = _load(doc, what)
    if isinstance(body, Mapping) and body.get("status") == "error":
        raise ValueError(f"{what}: Prometheus answered {body.get('errorType', 'error')}: {body.get('error', '(no message)')}")
    data = body.get("data") if isinstance(body, Mapping) else None
    if not (isinstance(body, Mapping) and body.get("status") == "success" and isinstance(data, Mapping)):
        raise ValueError(f"{what}: expected a Prometheus API response {{'status': 'success', 'data': {{...}}}}")
    return data


def _vector(doc: JSONInput, what: str, label: str) -> dict[str, float | None]:
    """service -> value of an instant query's vector; NaN and ±Inf (no traffic, no buckets) become None."""
    data = _data(doc, what)
    kind, result = data.get("resultType"), data.get("result")
    if kind != "vector" or not isinstance(result, list):
        raise ValueError(
            f"{what}: resultType is {kind!r}, expected 'vector': use an instant query (/api/v1/query) that keeps "
            f"the {label!r} label, e.g. `sum by ({label}) (...)`"
        )
    values: dict[str, float | None] = {}
    for i, sample in enumerate(result):
        name = _get(sample, "metric", label)
        if not isinstance(name, str):
            raise ValueError(
                f"{what}: result[{i}] has no {label!r} label (metric {_get(sample, 'metric')}); "
                f"aggregate with `sum by ({label}) (...)` or pass service_label="
            )
        if name in values:
            raise ValueError(f"{what}: two series for {label}={name!r}; aggregate with `sum by ({label}) (...)`")
        pair = _get(sample, "value")
        try:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise TypeError
            value = float(pair[1])
        except (TypeError, ValueError):
            raise ValueError(f'{what}: result[{i}] has value {pair!r}; expected [timestamp, "number"]') from None
        values[name] = value if math.isfinite(value) else None
    return values


def _firing(doc: JSONInput, label: str) -> set[str]:
    """Services named by a firing alert of a /api/v1/alerts response (pending alerts have not fired yet)."""
    alerts = _data(doc, "alerts_json").get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("alerts_json: expected the /api/v1/alerts response, with data.alerts a list")
    return {a["labels"][label] for a in alerts if a.get("state") == "firing" and isinstance(_get(a, "labels", label), str)}


def dependency_pairs(dependencies: Dependencies) -> list[tuple[str, str]]:
    """[caller, callee] pairs, from pairs or from a map caller -> callees; repeats dropped, order kept."""
    pairs: list[Any] = []
    if isinstance(dependencies, Mapping):
        for caller, callees in dependencies.items():
            if isinstance(callees, str):
                raise ValueError(f"dependencies[{caller!r}]: expected a list of callees, got the string {callees!r}")
            pairs.extend((caller, callee) for callee in callees)
    else:
        pairs.extend(dependencies)
    for i, pair in enumerate(pairs):
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2 or not all(isinstance(end, str) for end in pair):
            raise ValueError(f"dependencies[{i}]: expected a [caller, callee] pair of names, got {pair!r}")
    return list(dict.fromkeys((caller, callee) for caller, callee in pairs))


def normal_window_query(query: str, *, offset: str = "1h", window: str = "1h", step: str = "1m", spread: bool = False) -> str:
    """The PromQL for a query's normal window: its median over `window`, ending `offset` ago, or
    (spread=True) its robust spread there, the interquartile range / 1.349 (a standard deviation
    for normal noise). A subquery samples the instant query every `step`; `offset` moves it back
    before the incident. Durations in PromQL syntax ("1h", "30m").

    normal_window_query('sum by (service) (rate(x[5m]))')
    -> 'quantile_over_time(0.5, (sum by (service) (rate(x[5m])))[1h:1m] offset 1h)'
    """
    sub = f"({query})[{window}:{step}] offset {offset}"
    if not spread:
        return f"quantile_over_time(0.5, {sub})"
    return f"(quantile_over_time(0.75, {sub}) - quantile_over_time(0.25, {sub})) / 1.349"


def rootcause_from_prometheus(
    error_ratio_json: JSONInput,
    latency_p99_json: JSONInput,
    dependencies: Dependencies,
    *,
    service_label: str = "service",
    anomaly_error_ratio: float = 0.05,
    anomaly_latency_factor: float = 2.0,
    alerts_json: JSONInput | None = None,
    normal_error_ratio_json: JSONInput | None = None,
    normal_latency_p99_json: JSONInput | None = None,
    normal_error_ratio_spread_json: JSONInput | None = None,
    normal_latency_p99_spread_json: JSONInput | None = None,
) -> RootCauseProblem:
    """A RootCauseProblem from two Prometheus instant queries (/api/v1/query responses) and the call graph.

    error_ratio_json: a ratio per service, e.g. `sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))
    / sum by (service) (rate(http_requests_total[5m]))`. latency_p99_json: seconds per service, e.g.
    `histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))`.
    dependencies: [caller, callee] pairs or a map caller -> callees. Services: every name in the queries, the
    dependencies and firing alerts, sorted; a value the queries lack, or NaN/Inf, is null. anomalous: error
    ratio above anomaly_error_ratio, p99 above anomaly_latency_factor x the median p99, or (with alerts_json,
    a /api/v1/alerts response) a firing alert whose service_label names the service; null where nothing is known.

    The normal window (optional, each independently): the answers of the same queries wrapped by
    `normal_window_query` (PromQL `offset`: the median, or with spread=True the robust spread, of an
    hour before the incident) fill normal_error_rate, normal_latency_p99_ms and their spreads, so
    the root-cause ranking measures each service against its own normal. Latencies in seconds, like
    latency_p99_json; a series the normal query lacks leaves that field null.
    """
    errors = _vector(error_ratio_json, "error_ratio_json", service_label)
    seconds = _vector(latency_p99_json, "latency_p99_json", service_label)
    latencies = {name: None if s is None else s * 1000 for name, s in seconds.items()}
    pairs = dependency_pairs(dependencies)
    firing = None if alerts_json is None else _firing(alerts_json, service_label)
    normal: dict[str, dict[str, float | None]] = {}
    for field, doc, what, scale in (
        ("normal_error_rate", normal_error_ratio_json, "normal_error_ratio_json", 1.0),
        ("normal_latency_p99_ms", normal_latency_p99_json, "normal_latency_p99_json", 1000.0),
        ("normal_error_rate_spread", normal_error_ratio_spread_json, "normal_error_ratio_spread_json", 1.0),
        ("normal_latency_p99_spread_ms", normal_latency_p99_spread_json, "normal_latency_p99_spread_json", 1000.0),
    ):
        if doc is not None:
            # a ratio stays in [0, 1] and a spread >= 0 (extrapolated rates and float noise can stray)
            clamp = (lambda v: min(max(v, 0.0), 1.0)) if field == "normal_error_rate" else (lambda v: max(v, 0.0))
            normal[field] = {name: None if v is None else clamp(v * scale) for name, v in _vector(doc, what, service_label).items()}

    known = [ms for ms in latencies.values() if ms is not None]
    slow = anomaly_latency_factor * statistics.median(known) if known else math.inf
    services = []
    for name in sorted({*errors, *latencies, *(end for pair in pairs for end in pair), *(firing or ())}):
        error, latency = errors.get(name), latencies.get(name)
        votes: list[bool] = []
        if error is not None:
            error = min(max(error, 0.0), 1.0)  # separately extrapolated rates can stray past [0, 1]
            votes.append(error > anomaly_error_ratio)
        if latency is not None:
            votes.append(latency > slow)
        if firing is not None:
            votes.append(name in firing)
        extra = {field: values[name] for field, values in normal.items() if values.get(name) is not None}
        services.append(ServiceSignal(name=name, error_rate=error, latency_p99_ms=latency, anomalous=any(votes) if votes else None, **extra))
    if not services:
        raise ValueError("no services: the queries returned no series and dependencies is empty")
    return RootCauseProblem(services=services, dependencies=pairs)
