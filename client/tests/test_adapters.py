"""Adapters from kubectl and Prometheus JSON: numbers worked out by hand from the fixtures, and the errors.

The fixtures are a homelab as kubectl and Prometheus print it:
  nodes: air (PreferNoSchedule only), pi-1 (control plane, NoSchedule), pi-2 (cordoned), pi-3 (NotReady), studio.
  pods: bound ones (Running, one Pending while its image pulls), pending ones without a node, a Succeeded backup
  job, an evicted (Failed) pod, node-exporter (a DaemonSet) everywhere and two static pods on pi-1.
"""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from agent_reasoning import (
    PlacementNode,
    PlacementPod,
    PlacementProblem,
    RootCauseProblem,
    ServiceSignal,
    UpgradeProblem,
    UpgradeService,
    normal_window_query,
    parse_quantity,
    placement_from_kubectl,
    rootcause_from_prometheus,
    upgrade_from_kubectl,
)
from agent_reasoning.adapters import dependency_pairs, pod_requests

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


NODES = fixture("kubectl-nodes.json")
PODS = fixture("kubectl-pods.json")
PDBS = fixture("kubectl-pdb.json")
ERRORS = fixture("prometheus-error-ratio.json")
LATENCY = fixture("prometheus-latency-p99.json")
ALERTS = fixture("prometheus-alerts.json")
MI = 2**20
IMMICH = "media/app.kubernetes.io/component=server,app.kubernetes.io/name=immich"


def items(text: str) -> list[dict[str, Any]]:
    listing: list[dict[str, Any]] = json.loads(text)["items"]
    return listing


def pod_named(name: str) -> dict[str, Any]:
    (found,) = (p for p in items(PODS) if p["metadata"]["name"] == name)
    return found


def listing(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(objects)}


def node(name: str, cpu: str, memory: str) -> dict[str, Any]:
    """The fields of a node the adapters read; the fixtures show the rest."""
    return {
        "metadata": {"name": name},
        "spec": {},
        "status": {"allocatable": {"cpu": cpu, "memory": memory}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pending(name: str, requests: dict[str, str] | None = None, *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "home-automation", "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "resources": {"requests": requests} if requests else {}}], **spec},
        "status": {"phase": "Pending"},
    }


# --- quantities -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", Fraction(1, 4)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("2.", Fraction(2)),
        ("+2", Fraction(2)),
        ("1500u", Fraction(3, 2000)),
        ("100n", Fraction(1, 10**7)),
        ("15800m", Fraction(158, 10)),
        ("128Mi", 128 * MI),
        ("1.5Ki", 1536),
        ("1Gi", 2**30),
        ("2Ti", 2 * 2**40),
        ("1Pi", 2**50),
        ("1Ei", 2**60),
        ("1k", 1000),
        ("500M", 500 * 10**6),
        ("1G", 10**9),
        ("3T", 3 * 10**12),
        ("1P", 10**15),
        ("1E", 10**18),  # exa, not an exponent
        ("1e3", 1000),
        ("1E3", 1000),
        ("5e-3", Fraction(1, 200)),
        ("12e+2", 1200),
        ("134217728", 134217728),
        ("-1", -1),
        (3, 3),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(text: str | int | float, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", "m", "Gi", "1K", "1ki", "1mi", "1Mb", "1e", "1e3m", "1.5.5", "1 Gi", " 1", "1/2", "abc", "NaN", "inf", True]
)
def test_parse_quantity_refuses_what_kubernetes_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_quantity(text)


def requests(cores: Fraction | int, size: int) -> tuple[Fraction, Fraction]:
    return Fraction(cores), Fraction(size)


def test_pod_requests_follow_the_effective_request_rule() -> None:
    # App containers beat the init container: 500m + 10m, 2Gi + 25Mi against 100m, 50Mi.
    assert pod_requests(pod_named("prometheus-k8s-0")) == requests(Fraction(51, 100), (2048 + 25) * MI)
    # The init container beats the app in cpu (1 against 500m), not in memory (256Mi against 1Gi).
    assert pod_requests(pod_named("home-assistant-0")) == requests(1, 1024 * MI)
    # A sidecar (restartPolicy Always) runs beside the app and beside the init containers after it:
    # max(500m + 100m, 1 + 100m), max(1Gi + 128Mi, 2Gi + 128Mi).
    assert pod_requests(pod_named("loki-0")) == requests(Fraction(11, 10), (2048 + 128) * MI)
    # Overhead of the kata runtime class adds to the containers' 1500m and 1G (decimal).
    assert pod_requests(pod_named("tdarr-node-5c9b8d7f6-w2n4r")) == requests(Fraction(7, 4), 10**9 + 160 * MI)
    # Three containers; the GPU request of another pod is not a cpu or memory request.
    assert pod_requests(pod_named("kube-state-metrics-7d6c8b9f5-2hqzl")) == requests(Fraction(5, 100), 230 * MI)
    assert pod_requests(pod_named("jellyfin-7d9c6b5f4-x2k8p")) == requests(2, 4096 * MI)
    assert pod_requests(pod_named("netshoot")) == requests(0, 0)


def test_a_sidecar_started_before_a_larger_init_container_adds_to_it() -> None:
    pod = pending("p", {"cpu": "500m"})
    pod["spec"]["initContainers"] = [
        {"name": "setup", "resources": {"requests": {"cpu": "1"}}},  # before the sidecar: alone
        {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "2"}}},
        {"name": "migrate", "resources": {"requests": {"cpu": "1"}}},  # after it: 1 + 2
    ]
    assert pod_requests(pod)[0] == 3  # max(500m + 2, 1, 2, 1 + 2)


# --- placement --------------------------------------------------------------------------------------


def test_placement_from_kubectl() -> None:
    problem = placement_from_kubectl(NODES, PODS)

    assert problem == PlacementProblem(
        # pi-1 has a NoSchedule taint, pi-2 is cordoned and pi-3 NotReady. air's PreferNoSchedule does not count.
        # air: 8 cores and 15978412Ki (15603.9 MiB) less home-assistant-0 1000m/1024Mi, mosquitto-0 50m/64Mi,
        #   immich 1000m/1536Mi, sonarr (Pending, bound) 250m/512Mi, node-exporter 112m/200Mi and
        #   prometheus-k8s-1 510m/2073Mi; the Succeeded backup job does not count.
        # studio: 15800m and 64929812Ki (63408.02 MiB) less node-exporter 112m/200Mi, the canary 50m/64Mi,
        #   jellyfin 2000m/4096Mi, kube-state-metrics 50m/230Mi and prometheus-k8s-0 510m/2073Mi; the
        #   evicted (Failed) node-red does not count.
        nodes=[
            PlacementNode(name="air", cpu_millicores=8000 - 2922, memory_mib=15603 - 5409),
            PlacementNode(name="studio", cpu_millicores=15800 - 2722, memory_mib=63408 - 6663),
        ],
        pods=[
            PlacementPod(name="default/netshoot", cpu_millicores=0, memory_mib=0, group=None),  # no requests
            # 300M is 286.1 MiB: a request rounds up.
            PlacementPod(name="home-automation/esphome-5f6d8c9b7-q7w2z", cpu_millicores=300, memory_mib=287, group=None),
            PlacementPod(name="media/immich-server-6c8f9d7b5-mx7qd", cpu_millicores=1000, memory_mib=1536, group=IMMICH),
            PlacementPod(name="media/immich-server-6c8f9d7b5-zr5wn", cpu_millicores=1000, memory_mib=1536, group=IMMICH),
            # 1500m + 250m overhead; 1G + 160Mi = 1113.67 MiB.
            PlacementPod(name="media/tdarr-node-5c9b8d7f6-w2n4r", cpu_millicores=1750, memory_mib=1114, group=None),
            PlacementPod(name="monitoring/loki-0", cpu_millicores=1100, memory_mib=2176, group=None),
        ],
    )


def test_include_tainted_adds_the_control_plane_less_its_static_pods() -> None:
    problem = placement_from_kubectl(json.loads(NODES), json.loads(PODS), include_tainted=True)
    # 4 cores and 7833524Ki (7649.93 MiB) less coredns 100m/70Mi, etcd 100m/100Mi, kube-apiserver 250m and
    # node-exporter 112m/200Mi. Cordoned and NotReady nodes stay out.
    assert [n.name for n in problem.nodes] == ["air", "pi-1", "studio"]
    assert problem.nodes[1] == PlacementNode(name="pi-1", cpu_millicores=4000 - 562, memory_mib=7649 - 370)


def test_without_pending_only_every_movable_pod_is_placed_afresh() -> None:
    problem = placement_from_kubectl(NODES, PODS, pending_only=False)
    # Only the DaemonSet's pod stays on each node.
    assert problem.nodes == [
        PlacementNode(name="air", cpu_millicores=8000 - 112, memory_mib=15603 - 200),
        PlacementNode(name="studio", cpu_millicores=15800 - 112, memory_mib=63408 - 200),
    ]
    # Finished pods, node-exporter (DaemonSet) and the static pods (etcd, kube-apiserver) are not placed;
    # pods on the cordoned and NotReady nodes are.
    assert [p.name for p in problem.pods] == [
        "default/netshoot",
        "home-automation/esphome-5f6d8c9b7-q7w2z",
        "home-automation/home-assistant-0",
        "home-automation/mosquitto-0",
        "home-automation/mosquitto-1",
        "home-automation/mosquitto-canary-6d5f8b7c4-p9xlm",
        "kube-system/coredns-7c65d6cfc9-x8vzn",
        "media/immich-server-6c8f9d7b5-h4jzt",
        "media/immich-server-6c8f9d7b5-mx7qd",
        "media/immich-server-6c8f9d7b5-zr5wn",
        "media/jellyfin-7d9c6b5f4-x2k8p",
        "media/sonarr-85f7d9c6b8-l4k9s",
        "media/tdarr-node-5c9b8d7f6-w2n4r",
        "monitoring/blackbox-exporter-6f8d9c7b5-j5t7k",
        "monitoring/kube-state-metrics-7d6c8b9f5-2hqzl",
        "monitoring/loki-0",
        "monitoring/prometheus-k8s-0",
        "monitoring/prometheus-k8s-1",
    ]
    # The running immich replica joins the pending ones; preferred anti-affinity (prometheus, coredns) makes no group.
    assert {p.name: p.group for p in problem.pods if p.group} == {
        "media/immich-server-6c8f9d7b5-h4jzt": IMMICH,
        "media/immich-server-6c8f9d7b5-mx7qd": IMMICH,
        "media/immich-server-6c8f9d7b5-zr5wn": IMMICH,
    }
    assert {p.name: (p.cpu_millicores, p.memory_mib) for p in problem.pods}["monitoring/prometheus-k8s-0"] == (510, 2073)


def test_groups_from_a_label() -> None:
    problem = placement_from_kubectl(NODES, PODS, group_label="app.kubernetes.io/name")
    assert {p.name: p.group for p in problem.pods} == {
        "default/netshoot": None,  # no such label
        "home-automation/esphome-5f6d8c9b7-q7w2z": "home-automation/app.kubernetes.io/name=esphome",
        "media/immich-server-6c8f9d7b5-mx7qd": "media/app.kubernetes.io/name=immich",
        "media/immich-server-6c8f9d7b5-zr5wn": "media/app.kubernetes.io/name=immich",
        "media/tdarr-node-5c9b8d7f6-w2n4r": "media/app.kubernetes.io/name=tdarr",
        "monitoring/loki-0": "monitoring/app.kubernetes.io/name=loki",
    }


def anti_affinity(selector: dict[str, Any], topology_key: str = "kubernetes.io/hostname") -> dict[str, Any]:
    return {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": selector, "topologyKey": topology_key}]}
    }


def test_groups_from_required_anti_affinity_only_per_host_and_only_among_pods_that_match() -> None:
    own = {"matchLabels": {"app": "zigbee2mqtt"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["bridge", "hub"]}]}
    pods = listing(
        pending("z-1", labels={"app": "zigbee2mqtt", "tier": "bridge"}, affinity=anti_affinity(own)),
        pending("z-2", labels={"app": "zigbee2mqtt", "tier": "hub"}, affinity=anti_affinity(own)),
        # Keeps away from zigbee2mqtt without being one: a constraint on nodes, not a group.
        pending("other", labels={"app": "matter"}, affinity=anti_affinity(own)),
        # Per zone, not per node.
        pending("zoned", labels={"app": "zigbee2mqtt", "tier": "hub"}, affinity=anti_affinity(own, "topology.kubernetes.io/zone")),
    )
    problem = placement_from_kubectl(listing(node("air", "8", "16Gi")), pods)
    group = "home-automation/app=zigbee2mqtt,tier in (bridge,hub)"
    assert [p.group for p in problem.pods] == [group, group, None, None]


def test_capacities_round_down_and_requests_up() -> None:
    nodes = listing(node("pi-4", "3999999u", "1G"))  # 3999.999 millicores, 953.67 MiB
    problem = placement_from_kubectl(nodes, listing(pending("p", {"cpu": "1500u", "memory": "1M"})))
    assert (problem.nodes[0].cpu_millicores, problem.nodes[0].memory_mib) == (3999, 953)
    assert (problem.pods[0].cpu_millicores, problem.pods[0].memory_mib) == (2, 1)


def test_an_overcommitted_node_has_no_free_capacity_rather_than_a_negative_one() -> None:
    bound = pending("big", {"cpu": "3", "memory": "3Gi"}, nodeName="pi-4")
    bound["status"]["phase"] = "Running"
    problem = placement_from_kubectl(listing(node("pi-4", "2", "2Gi")), listing(bound, pending("p", {"cpu": "1"})))
    assert (problem.nodes[0].cpu_millicores, problem.nodes[0].memory_mib) == (0, 0)


def test_placement_needs_a_node_and_a_pod() -> None:
    nodes = json.loads(NODES)
    nodes["items"] = [n for n in nodes["items"] if n["metadata"]["name"].startswith("pi-")]
    with pytest.raises(ValueError, match="nodes_json: no node takes new pods .*include_tainted"):
        placement_from_kubectl(nodes, PODS)
    pods = json.loads(PODS)
    pods["items"] = [p for p in pods["items"] if p["spec"].get("nodeName")]
    with pytest.raises(ValueError, match="pods_json: no pod to place .*pending_only"):
        placement_from_kubectl(NODES, pods)


@pytest.mark.parametrize(
    ("nodes", "pods", "message"),
    [
        (items(NODES)[0], PODS, r"nodes_json: expected a List with 'items' \(the output of `kubectl get nodes -o json`\), got 'Node'"),
        (NODES, "[]", r"pods_json: expected a List with 'items' \(the output of `kubectl get pods -A -o json`\), got 'list'"),
        (NODES, "{'items': []}", r"pods_json: not JSON: Expecting property name"),
        (listing({"metadata": {}}), PODS, r"nodes_json: items\[0\] has no metadata.name"),
        (
            listing(node("air", "8 cores", "16Gi")),
            PODS,
            r"nodes_json: node air: status.allocatable: '8 cores' is not a Kubernetes quantity",
        ),
        (
            NODES,
            listing(pending("p", {"cpu": "100m", "memory": "64MB"})),
            r"pod home-automation/p: containers\[0\].resources.requests: '64MB' is not a Kubernetes quantity",
        ),
        (NODES, listing(pending("p", {"cpu": "-100m"})), r"pod home-automation/p: containers\[0\].resources.requests: a negative quantity"),
    ],
)
def test_malformed_kubectl_json_is_named(nodes: Any, pods: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        placement_from_kubectl(nodes, pods)


# --- upgrades ---------------------------------------------------------------------------------------


def test_upgrade_from_kubectl() -> None:
    assert upgrade_from_kubectl(NODES, PODS, PDBS) == UpgradeProblem(
        nodes=["air", "pi-1", "studio"],  # Ready and uncordoned; the control plane's taint does not matter
        services=[
            # maxUnavailable 60% of the 2 non-canary pods: 1.2, rounded up to 2; mosquitto-1 on the cordoned
            # pi-2 already counts as down: 1 left.
            UpgradeService(name="home-automation/mosquitto", replicas_on=["air"], max_unavailable=1),
            # The Succeeded backup job matches the selector but has finished.
            UpgradeService(name="media/jellyfin", replicas_on=["studio"], max_unavailable=1),
            # Exporters but not node-exporter: blackbox (on NotReady pi-3) and kube-state-metrics; minAvailable
            # 50% of 2 = 1, so a budget of 1, used up by blackbox being down.
            UpgradeService(name="monitoring/exporters", replicas_on=["studio"], max_unavailable=0),
            # minAvailable 1 of 2.
            UpgradeService(name="monitoring/prometheus-k8s", replicas_on=["studio", "air"], max_unavailable=1),
        ],
    )


def test_upgrade_of_all_nodes() -> None:
    problem = upgrade_from_kubectl(NODES, PODS, PDBS, all_nodes=True)
    assert problem.nodes == ["air", "pi-1", "pi-2", "pi-3", "studio"]
    assert {s.name: (s.replicas_on, s.max_unavailable) for s in problem.services} == {
        "home-automation/mosquitto": (["air", "pi-2"], 2),
        "media/jellyfin": (["studio"], 1),
        "monitoring/exporters": (["pi-3", "studio"], 1),
        "monitoring/prometheus-k8s": (["studio", "air"], 1),
    }


def test_upgrade_reads_the_spec_not_disruptions_allowed() -> None:
    pdbs = json.loads(PDBS)
    for pdb in pdbs["items"]:
        pdb["status"]["disruptionsAllowed"] = 0
    assert upgrade_from_kubectl(NODES, PODS, pdbs) == upgrade_from_kubectl(NODES, PODS, PDBS)


def one_pdb(spec: dict[str, Any]) -> UpgradeService:
    """The service of one PDB in media over the fixtures' pods (immich: one running on air, two pending)."""
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "immich", "namespace": "media"}, "spec": spec}
    (service,) = upgrade_from_kubectl(NODES, PODS, listing(pdb), all_nodes=True).services
    return service


IMMICH_SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "immich"}}


@pytest.mark.parametrize(
    ("spec", "replicas_on", "max_unavailable"),
    [
        # Budgets of 3 matched pods, less the 2 pending ones.
        ({"selector": IMMICH_SELECTOR, "maxUnavailable": 3}, ["air"], 1),
        ({"selector": IMMICH_SELECTOR, "maxUnavailable": "67%"}, ["air"], 1),  # 2.01 rounds up to 3
        ({"selector": IMMICH_SELECTOR, "maxUnavailable": "66%"}, ["air"], 0),  # 1.98 rounds up to 2
        ({"selector": IMMICH_SELECTOR, "minAvailable": 0}, ["air"], 1),
        ({"selector": IMMICH_SELECTOR, "minAvailable": "34%"}, ["air"], 0),  # 1.02 rounds up to 2 wanted healthy
        ({"selector": IMMICH_SELECTOR, "minAvailable": 5}, ["air"], 0),  # more than there are: floored at 0
        ({"selector": IMMICH_SELECTOR}, ["air"], 1),  # neither: no pod need be healthy
        # A missing selector matches nothing; an empty one the 6 unfinished pods of the namespace, 2 of them running.
        ({"maxUnavailable": 1}, [], 1),
        ({"selector": {}, "maxUnavailable": "100%"}, ["air", "studio"], 2),
    ],
)
def test_disruption_budgets(spec: dict[str, Any], replicas_on: list[str], max_unavailable: int) -> None:
    assert one_pdb(spec) == UpgradeService(name="media/immich", replicas_on=replicas_on, max_unavailable=max_unavailable)


def test_malformed_budgets_are_named() -> None:
    with pytest.raises(ValueError, match=r"pdbs_json: media/immich: spec.maxUnavailable: 'two' is neither an integer nor a percentage"):
        one_pdb({"selector": IMMICH_SELECTOR, "maxUnavailable": "two"})
    with pytest.raises(ValueError, match=r"pdbs_json: media/immich: spec.selector: matchExpressions\[0\] has operator 'Gt'"):
        one_pdb({"selector": {"matchExpressions": [{"key": "replicas", "operator": "Gt", "values": ["1"]}]}, "maxUnavailable": 1})
    with pytest.raises(ValueError, match=r"pdbs_json: expected a List with 'items' \(the output of `kubectl get pdb -A -o json`\)"):
        upgrade_from_kubectl(NODES, PODS, "{}")
    nodes = json.loads(NODES)
    for n in nodes["items"]:
        n["spec"]["unschedulable"] = True
    with pytest.raises(ValueError, match="nodes_json: no Ready, uncordoned node .*all_nodes"):
        upgrade_from_kubectl(nodes, PODS, PDBS)


# --- root causes ------------------------------------------------------------------------------------

DEPENDENCIES = [
    ["node-red", "home-assistant"],
    ["node-red", "mosquitto"],
    ["home-assistant", "mosquitto"],
    ["home-assistant", "zigbee2mqtt"],
    ["home-assistant", "postgres"],
    ["zigbee2mqtt", "mosquitto"],
    ["frigate", "mosquitto"],
    ["home-assistant", "frigate"],
]


def test_rootcause_from_prometheus() -> None:
    problem = rootcause_from_prometheus(ERRORS, LATENCY, DEPENDENCIES)
    # Known p99s 4, 90, 350, 1800 and 2400 ms: median 350, so above 700 ms is slow; above 5% errors is failing.
    assert problem.services == [
        ServiceSignal(name="esphome", error_rate=None, latency_p99_ms=90.0, anomalous=False),  # not in the error query
        ServiceSignal(name="frigate", error_rate=0.010416666666666666, latency_p99_ms=None, anomalous=False),  # p99 +Inf
        ServiceSignal(name="home-assistant", error_rate=0.0021413276231263384, latency_p99_ms=2400.0, anomalous=True),
        ServiceSignal(name="jellyfin", error_rate=None, latency_p99_ms=None, anomalous=None),  # NaN: no traffic
        ServiceSignal(name="mosquitto", error_rate=0.0, latency_p99_ms=4.0, anomalous=False),
        ServiceSignal(name="node-red", error_rate=0.12345679012345678, latency_p99_ms=350.0, anomalous=True),
        ServiceSignal(name="postgres", error_rate=None, latency_p99_ms=None, anomalous=None),  # only a dependency
        ServiceSignal(name="zigbee2mqtt", error_rate=0.3103448275862069, latency_p99_ms=1800.0, anomalous=True),
    ]
    assert problem.dependencies == [tuple(pair) for pair in DEPENDENCIES]


def test_firing_alerts_mark_services() -> None:
    problem = rootcause_from_prometheus(ERRORS, LATENCY, DEPENDENCIES, alerts_json=ALERTS)
    assert {s.name: s.anomalous for s in problem.services} == {
        "esphome": False,
        "frigate": False,
        "home-assistant": True,
        "jellyfin": False,  # no metrics, but no alert either
        "mosquitto": False,  # its alert is only pending
        "node-red": True,
        "postgres": True,  # PostgresDown fires
        "unifi-poller": True,  # known from its alert alone; Watchdog names no service
        "zigbee2mqtt": True,
    }


def vector(*samples: tuple[dict[str, str], str], kind: str = "vector") -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": kind, "result": [{"metric": m, "value": [1795625910.512, v]} for m, v in samples]}}


def test_thresholds_label_and_dependency_map() -> None:
    errors = vector(({"job": "grafana"}, "0.05"), ({"job": "loki"}, "1.02"))
    latency = vector(({"job": "grafana"}, "0.2"), ({"job": "loki"}, "0.5"))
    problem = rootcause_from_prometheus(errors, latency, {"grafana": ["loki", "loki"]}, service_label="job", anomaly_latency_factor=1.5)
    # 5% is not above 5%; 1.02 (rates extrapolated apart) is clamped to 1. Median p99 350 ms: 500 ms is not above 525.
    assert problem == RootCauseProblem(
        services=[
            ServiceSignal(name="grafana", error_rate=0.05, latency_p99_ms=200.0, anomalous=False),
            ServiceSignal(name="loki", error_rate=1.0, latency_p99_ms=500.0, anomalous=True),
        ],
        dependencies=[("grafana", "loki")],
    )
    stricter = rootcause_from_prometheus(errors, latency, [], service_label="job", anomaly_error_ratio=0.01, anomaly_latency_factor=1.2)
    assert [s.anomalous for s in stricter.services] == [True, True]


def test_dependency_pairs() -> None:
    assert dependency_pairs({"a": ["b", "c"], "b": []}) == [("a", "b"), ("a", "c")]
    assert dependency_pairs([("a", "b"), ["a", "b"], ("b", "a")]) == [("a", "b"), ("b", "a")]
    cases: list[tuple[Any, str]] = [
        ([["a"]], r"dependencies\[0\]: expected a \[caller, callee\] pair of names, got \['a'\]"),
        (["ab"], r"dependencies\[0\]: .* got 'ab'"),
        ([("a", 1)], r"dependencies\[0\]: .* got \('a', 1\)"),
        ({"a": "b"}, r"dependencies\['a'\]: expected a list of callees, got the string 'b'"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            dependency_pairs(bad)


PROMETHEUS_ERROR = {"status": "error", "errorType": "bad_data", "error": 'invalid parameter "query": 1:14: parse error: unexpected ")"'}


@pytest.mark.parametrize(
    ("errors", "message"),
    [
        (PROMETHEUS_ERROR, r'error_ratio_json: Prometheus answered bad_data: invalid parameter "query": 1:14: parse error'),
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [1795625910.512, "0.12"]}},
            r"error_ratio_json: resultType is 'scalar', expected 'vector': use an instant query .* `sum by \(service\) \(...\)`",
        ),
        (vector(kind="matrix"), r"resultType is 'matrix', expected 'vector'"),
        ({"data": {"resultType": "vector", "result": []}}, r"error_ratio_json: expected a Prometheus API response"),
        ({"resultType": "vector", "result": []}, r"error_ratio_json: expected a Prometheus API response"),
        (vector(({}, "0.1")), r"error_ratio_json: result\[0\] has no 'service' label \(metric \{\}\); aggregate with"),
        (vector(({"service": "a"}, "0.1"), ({"service": "a"}, "0.2")), r"error_ratio_json: two series for service='a'"),
        (vector(({"service": "a"}, "lots")), r"error_ratio_json: result\[0\] has value \[1795625910.512, 'lots'\]; expected \[timestamp"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {"service": "a"}}]}}, r"result\[0\] has value None"),
        ("<html>502 Bad Gateway</html>", r"error_ratio_json: not JSON"),
    ],
)
def test_malformed_prometheus_responses_are_named(errors: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rootcause_from_prometheus(errors, LATENCY, DEPENDENCIES)


def test_malformed_alerts_and_empty_answers() -> None:
    with pytest.raises(ValueError, match=r"latency_p99_json: Prometheus answered"):
        rootcause_from_prometheus(ERRORS, json.dumps(PROMETHEUS_ERROR), DEPENDENCIES)
    with pytest.raises(ValueError, match=r"alerts_json: expected the /api/v1/alerts response"):
        rootcause_from_prometheus(ERRORS, LATENCY, DEPENDENCIES, alerts_json={"status": "success", "data": {}})
    with pytest.raises(ValueError, match="no services"):
        rootcause_from_prometheus(vector(), vector(), [])


def test_the_fixtures_are_untouched_by_the_adapters() -> None:
    nodes, pods, pdbs = json.loads(NODES), json.loads(PODS), json.loads(PDBS)
    before = copy.deepcopy((nodes, pods, pdbs))
    placement_from_kubectl(nodes, pods, pending_only=False)
    upgrade_from_kubectl(nodes, pods, pdbs)
    assert (nodes, pods, pdbs) == before


def test_normal_window_fills_the_normal_fields() -> None:
    normal_errors = vector(({"service": "node-red"}, "0.001"), ({"service": "zigbee2mqtt"}, "0.3"), ({"service": "frigate"}, "NaN"))
    normal_latency = vector(({"service": "home-assistant"}, "0.25"), ({"service": "zigbee2mqtt"}, "0.02"))
    spreads = vector(({"service": "node-red"}, "0.0005"), ({"service": "zigbee2mqtt"}, "-1e-18"))
    problem = rootcause_from_prometheus(
        ERRORS,
        LATENCY,
        DEPENDENCIES,
        normal_error_ratio_json=normal_errors,
        normal_latency_p99_json=json.dumps(normal_latency),
        normal_error_ratio_spread_json=spreads,
    )
    by_name = {s.name: s for s in problem.services}
    assert by_name["node-red"].normal_error_rate == 0.001 and by_name["node-red"].normal_error_rate_spread == 0.0005
    assert by_name["zigbee2mqtt"].normal_error_rate == 0.3 and by_name["zigbee2mqtt"].normal_latency_p99_ms == 20.0
    assert by_name["zigbee2mqtt"].normal_error_rate_spread == 0.0  # float noise below zero is clamped
    assert by_name["home-assistant"].normal_latency_p99_ms == 250.0 and by_name["home-assistant"].normal_error_rate is None
    assert by_name["frigate"].normal_error_rate is None  # NaN: no traffic in the window
    assert by_name["node-red"].normal_latency_p99_spread_ms is None  # that query was not given
    # the current values and flags are the same as without the normal window
    plain = rootcause_from_prometheus(ERRORS, LATENCY, DEPENDENCIES)
    assert [(s.name, s.error_rate, s.latency_p99_ms, s.anomalous) for s in problem.services] == [
        (s.name, s.error_rate, s.latency_p99_ms, s.anomalous) for s in plain.services
    ]
    with pytest.raises(ValueError, match=r"normal_latency_p99_json: resultType is 'matrix'"):
        rootcause_from_prometheus(ERRORS, LATENCY, DEPENDENCIES, normal_latency_p99_json=vector(kind="matrix"))


def test_normal_window_query() -> None:
    q = 'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'
    assert normal_window_query(q) == f"quantile_over_time(0.5, ({q})[1h:1m] offset 1h)"
    assert normal_window_query(q, offset="30m", window="2h", step="30s", spread=True) == (
        f"(quantile_over_time(0.75, ({q})[2h:30s] offset 30m) - quantile_over_time(0.25, ({q})[2h:30s] offset 30m)) / 1.349"
    )
