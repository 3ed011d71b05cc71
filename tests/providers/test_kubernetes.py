"""The Kubernetes provider through the official client library, configured by a kubeconfig, against the
stand-in API server (real paths, real List and Status payloads)."""

from __future__ import annotations

import time

import pytest

from reasoning_service.providers import ProviderError
from reasoning_service.providers.kubernetes import KubernetesProvider

from .standins import black_hole, kube_api


@pytest.fixture
def api():
    with kube_api() as state:
        yield state


@pytest.fixture
def provider(api, tmp_path):
    return KubernetesProvider.from_kubeconfig(str(api.kubeconfig(tmp_path)), timeout_s=2)


async def test_lists_come_back_as_the_api_sends_them(provider, api):
    nodes, source = await provider.list("nodes")
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["air", "pi-1", "pi-2", "pi-3", "studio"]
    assert nodes["kind"] == "NodeList"
    assert source.kind == "kubernetes" and source.url == f"{api.url}/api/v1/nodes" and source.at and source.at.endswith("Z")
    pods, _ = await provider.list("pods")
    assert len(pods["items"]) == 27
    pdbs, _ = await provider.list("pdbs")
    assert {p["metadata"]["name"] for p in pdbs["items"]} == {"mosquitto", "jellyfin", "exporters", "prometheus-k8s"}
    deployments, _ = await provider.list("deployments")
    assert "immich-server" in {d["metadata"]["name"] for d in deployments["items"]}


async def test_namespace_and_selector_go_to_the_api(provider, api):
    pods, source = await provider.list("pods", namespace="media", label_selector="app.kubernetes.io/name in (immich,sonarr)")
    assert {p["metadata"]["name"].rsplit("-", 2)[0] for p in pods["items"]} == {"immich-server", "sonarr"}
    assert api.requests[-1].startswith("/api/v1/namespaces/media/pods?labelSelector=")
    assert source.url and "namespaces/media/pods" in source.url
    statefulsets, _ = await provider.list("statefulsets", namespace="monitoring")
    assert {s["metadata"]["name"] for s in statefulsets["items"]} == {"loki", "prometheus-k8s"}


async def test_rbac_refusal_is_a_502_naming_kubernetes_and_the_resource(provider, api):
    api.forbidden = {"pods"}
    with pytest.raises(ProviderError) as e:
        await provider.list("pods")
    assert e.value.status == 502 and e.value.source == "kubernetes"
    assert "forbidden to list pods" in e.value.detail and "cannot list resource" in e.value.detail and "ClusterRole" in e.value.detail


async def test_a_wrong_token_is_a_502_that_says_unauthorized(api, tmp_path):
    provider = KubernetesProvider.from_kubeconfig(str(api.kubeconfig(tmp_path, token="wrong")), timeout_s=2)
    with pytest.raises(ProviderError) as e:
        await provider.list("nodes")
    assert e.value.status == 502 and "unauthorized to list nodes" in e.value.detail


async def test_an_api_server_that_is_down_is_a_503(tmp_path):
    with kube_api() as api:
        path = api.kubeconfig(tmp_path)
    provider = KubernetesProvider.from_kubeconfig(str(path), timeout_s=2)
    started = time.monotonic()
    with pytest.raises(ProviderError) as e:
        await provider.list("nodes")
    assert e.value.status == 503 and e.value.detail.startswith("kubernetes: cannot reach the API server")
    assert e.value.headers.get("Retry-After")
    assert time.monotonic() - started < 2


async def test_a_hung_api_server_is_a_503_after_the_timeout(tmp_path):
    with kube_api() as api, black_hole() as url:
        api.url = url
        provider = KubernetesProvider.from_kubeconfig(str(api.kubeconfig(tmp_path)), timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(ProviderError) as e:
            await provider.list("nodes")
    assert e.value.status == 503 and "no answer within 0.5 s" in e.value.detail
    assert time.monotonic() - started < 3


def test_an_unreadable_kubeconfig_is_named(tmp_path):
    with pytest.raises(ProviderError) as e:
        KubernetesProvider.from_kubeconfig(str(tmp_path / "missing"))
    assert e.value.status == 503 and "KUBECONFIG=" in e.value.detail
