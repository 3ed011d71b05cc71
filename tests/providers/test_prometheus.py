"""The Prometheus provider against a real Prometheus server holding a generated incident (promtool
tsdb create-blocks-from openmetrics), queried over its HTTP API."""

from __future__ import annotations

import time

import httpx
import pytest

from reasoning_service.providers import ProviderError
from reasoning_service.providers.prometheus import DEFAULTS, PrometheusProvider

from .standins import DURING, EDGES, FAULT, NORMAL, black_hole, free_port, kube_api, prometheus_server


@pytest.fixture(scope="module")
def prometheus():
    return prometheus_server()


def values(body):
    return {s["metric"]["service"]: float(s["value"][1]) for s in body["data"]["result"]}


async def test_signals_now_and_in_the_normal_window_with_the_call_graph(prometheus):
    signals = await PrometheusProvider(prometheus.url).signals()
    assert signals.metrics == "service_graph"  # "auto" found the service-graph series first
    assert sorted(signals.edges) == sorted(EDGES)
    now, normal = values(signals.error_now), values(signals.error_normal)
    assert now[FAULT] == pytest.approx(DURING[FAULT][0], rel=0.01)
    assert now["inventory"] == pytest.approx(NORMAL["error"], rel=0.01)  # no failure injected: the ratio is there, not missing
    assert normal[FAULT] == pytest.approx(NORMAL["error"], rel=0.01)
    p99_now, p99_normal = values(signals.latency_now), values(signals.latency_normal)
    assert 2.0 < p99_now[FAULT] <= DURING[FAULT][1]  # seconds, interpolated inside the 1-2.5 s bucket
    assert p99_normal[FAULT] < 0.1
    assert [s.kind for s in signals.sources] == ["prometheus"] * 5
    assert all(s.at and s.query and s.url == f"{prometheus.url}/api/v1/query" for s in signals.sources)
    assert "offset 1h" in (signals.sources[3].query or "") and "[1h]" in (signals.sources[3].query or "")


async def test_every_default_template_is_valid_promql(prometheus):
    # istio and linkerd have no series in the incident, but Prometheus parses and runs their queries
    provider = PrometheusProvider(prometheus.url)
    async with httpx.AsyncClient(timeout=5) as client:
        for metrics in DEFAULTS.values():
            for which in ("error_ratio", "latency_p99", "edges"):
                for namespace in (None, "shop"):
                    body, _ = await provider.query(client, provider.render(metrics, which, namespace=namespace, normal=namespace is None))
                    assert body["status"] == "success"


@pytest.mark.parametrize("metrics", ["istio", "linkerd"])
async def test_istio_and_linkerd_metrics_give_the_same_graph_and_signals(prometheus, metrics):
    signals = await PrometheusProvider(prometheus.url, metrics=metrics).signals(namespace="shop")
    assert signals.metrics == metrics
    assert sorted(signals.edges) == sorted(e for e in EDGES if e[0] != "user")  # meshes see workloads, not Tempo's "user"
    assert values(signals.error_now)[FAULT] == pytest.approx(DURING[FAULT][0], rel=0.01)
    assert values(signals.error_normal)[FAULT] == pytest.approx(NORMAL["error"], rel=0.01)
    assert 2.0 < values(signals.latency_now)[FAULT] <= DURING[FAULT][1]  # ms histograms, divided to seconds
    assert all('namespace="shop"' in (s.query or "") for s in signals.sources)


async def test_metrics_without_series_are_a_422_naming_prometheus_and_the_setting(prometheus):
    with pytest.raises(ProviderError) as e:
        await PrometheusProvider(prometheus.url, metrics="istio").signals(namespace="nope")
    assert e.value.status == 422 and e.value.source == "prometheus" and e.value.field == "scope"
    assert "no call-graph series in namespace 'nope'" in e.value.detail and "REASONING_PROMETHEUS_METRICS" in e.value.detail


async def test_a_template_prometheus_rejects_is_a_502_with_its_message(prometheus):
    provider = PrometheusProvider(prometheus.url, templates={"error_ratio": "sum by (service) (rate(oops[$window]"})
    with pytest.raises(ProviderError) as e:
        await provider.signals()
    assert e.value.status == 502 and "bad_data" in e.value.detail and "oops" in e.value.detail


async def test_custom_templates_are_used_and_reported(prometheus):
    edges = 'sum by (client, server) (rate(traces_service_graph_request_total{server="payments"}[$window]$offset)) > 0'
    signals = await PrometheusProvider(prometheus.url, templates={"edges": edges}).signals()
    assert signals.edges == [("checkout", "payments")]
    assert signals.sources[0].query == edges.replace("$window", "5m").replace("$offset", "")


async def test_prometheus_down_is_a_503():
    provider = PrometheusProvider(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(ProviderError) as e:
        await provider.signals()
    assert e.value.status == 503 and e.value.detail.startswith("prometheus: cannot reach") and e.value.headers["Retry-After"]


async def test_a_hung_prometheus_is_a_503_after_the_timeout():
    with black_hole() as url:
        started = time.monotonic()
        with pytest.raises(ProviderError) as e:
            await PrometheusProvider(url, timeout_s=0.5).signals()
    assert e.value.status == 503 and "did not answer within 0.5 s" in e.value.detail
    assert time.monotonic() - started < 3


async def test_something_else_at_the_url_is_a_502():
    with kube_api() as api:
        with pytest.raises(ProviderError) as e:
            await PrometheusProvider(api.url, timeout_s=2).signals()
    assert e.value.status == 502 and "without the Prometheus API's JSON" in e.value.detail
