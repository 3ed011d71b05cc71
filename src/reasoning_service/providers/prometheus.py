"""Prometheus, read over its HTTP API (/api/v1/query): per-service signals and the call graph.

Three sets of default PromQL templates, for metrics a homelab already has:
- "service_graph": Tempo's or Alloy's service-graph metrics (traces_service_graph_request_total{client,server},
  ..._failed_total, ..._server_seconds_bucket);
- "istio": istio_requests_total{source_workload,destination_workload,response_code} and
  istio_request_duration_milliseconds_bucket (reporter="destination" for signals, "source" for edges);
- "linkerd": response_total{deployment,dst_deployment,direction,classification} and response_latency_ms_bucket.
"auto" uses the first set whose edge query returns series. Every template yields the label `service`
(signals: error ratio 0..1, p99 latency in seconds) or `client` and `server` (edges). Placeholders:
$window (the rate window), $offset (" offset 1h" for the normal window, else empty) and $selector (label
matchers for the scope's namespace, each followed by a comma, or empty); `string.Template.safe_substitute`
leaves label_replace's "$1" alone.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from string import Template
from typing import Any

import httpx

from agent_reasoning.types import Source
from reasoning_service.providers import ProviderError, now_rfc3339

SOURCE = "prometheus"


@dataclass(frozen=True)
class Metrics:
    """One set of PromQL templates and the label that holds a namespace in its series."""

    name: str
    error_ratio: str
    latency_p99: str
    edges: str
    namespace_label: str | None  # None: the metrics carry no namespace (the scope's namespace is not applied)


def _as_service(expr: str, label: str) -> str:
    return f'label_replace({expr}, "service", "$$1", "{label}", "(.*)")'


def _ratio(failed: str, total: str, by: str) -> str:
    # `or ... * 0`: a service without a single failure has no failed series, and its ratio is 0, not missing
    return f"(sum by ({by}) (rate({failed}[$window]$offset)) or sum by ({by}) (rate({total}[$window]$offset)) * 0) / sum by ({by}) (rate({total}[$window]$offset))"


def _edges(metric: str, client: str, server: str) -> str:
    expr = f"sum by ({client}, {server}) (rate({metric}[$window]$offset)) > 0"
    if client != "client":
        expr = f'label_replace({expr}, "client", "$$1", "{client}", "(.*)")'
    if server != "server":
        expr = f'label_replace({expr}, "server", "$$1", "{server}", "(.*)")'
    return expr


# "$$1" is a literal "$1" after Template.substitute; the defaults are written for substitute so that a
# typo in a placeholder fails loudly in the tests, while user templates go through safe_substitute.
DEFAULTS: dict[str, Metrics] = {
    "service_graph": Metrics(
        "service_graph",
        _as_service(
            _ratio("traces_service_graph_request_failed_total{$selector}", "traces_service_graph_request_total{$selector}", "server"),
            "server",
        ),
        _as_service(
            "histogram_quantile(0.99, sum by (server, le) (rate(traces_service_graph_request_server_seconds_bucket{$selector}[$window]$offset)))",
            "server",
        ),
        _edges("traces_service_graph_request_total{$selector}", "client", "server"),
        None,
    ),
    "istio": Metrics(
        "istio",
        _as_service(
            _ratio(
                'istio_requests_total{$selector reporter="destination", response_code=~"5.."}',
                'istio_requests_total{$selector reporter="destination"}',
                "destination_workload",
            ),
            "destination_workload",
        ),
        _as_service(
            'histogram_quantile(0.99, sum by (destination_workload, le) (rate(istio_request_duration_milliseconds_bucket{$selector reporter="destination"}[$window]$offset))) / 1000',
            "destination_workload",
        ),
        _edges('istio_requests_total{$selector reporter="source"}', "source_workload", "destination_workload"),
        "destination_workload_namespace",
    ),
    "linkerd": Metrics(
        "linkerd",
        _as_service(
            _ratio(
                'response_total{$selector direction="inbound", classification="failure"}',
                'response_total{$selector direction="inbound"}',
                "deployment",
            ),
            "deployment",
        ),
        _as_service(
            'histogram_quantile(0.99, sum by (deployment, le) (rate(response_latency_ms_bucket{$selector direction="inbound"}[$window]$offset))) / 1000',
            "deployment",
        ),
        _edges('response_total{$selector direction="outbound"}', "deployment", "dst_deployment"),
        "namespace",
    ),
}


@dataclass
class Signals:
    """What the provider read for a root-cause question: raw /api/v1/query responses (`error_now`,
    `latency_now` for the current window, `error_normal`, `latency_normal` for the normal window), the call
    edges as [client, server] pairs, which metrics answered, and one Source per query."""

    metrics: str
    error_now: dict[str, Any]
    latency_now: dict[str, Any]
    error_normal: dict[str, Any]
    latency_normal: dict[str, Any]
    edges: list[tuple[str, str]]
    sources: list[Source] = field(default_factory=list)


class PrometheusProvider:
    """Instant queries against one Prometheus server (`url`, e.g. http://prometheus.monitoring:9090).

    `metrics`: "auto" or a key of DEFAULTS; `templates`: overrides of error_ratio / latency_p99 / edges (empty
    or missing: the default). `timeout_s` bounds each query (connect and read). Errors: ProviderError 503 when
    Prometheus cannot be reached or does not answer in time, 502 when it answers with an error or something
    other than its API, 422 when no metrics in scope have series.
    """

    def __init__(
        self,
        url: str,
        *,
        metrics: str = "auto",
        templates: dict[str, str] | None = None,
        window: str = "5m",
        normal_window: str = "1h",
        normal_offset: str = "1h",
        timeout_s: float = 10.0,
    ) -> None:
        if metrics != "auto" and metrics not in DEFAULTS:
            raise ValueError(f"metrics: {metrics!r} is not one of auto, {', '.join(DEFAULTS)}")
        self.url = url.rstrip("/")
        self.metrics = metrics
        self.templates = {k: v for k, v in (templates or {}).items() if v}
        self.window, self.normal_window, self.normal_offset = window, normal_window, normal_offset
        self.timeout_s = timeout_s

    async def query(self, client: httpx.AsyncClient, promql: str) -> tuple[dict[str, Any], Source]:
        """One instant query at the current time: the parsed response (status "success") and its Source."""
        at = now_rfc3339()
        where = f"{self.url}/api/v1/query"
        try:
            response = await client.post(where, data={"query": promql})
        except httpx.TimeoutException:
            raise ProviderError(503, SOURCE, f"{self.url} did not answer within {self.timeout_s:g} s", retry_after=5) from None
        except httpx.HTTPError as e:
            raise ProviderError(503, SOURCE, f"cannot reach {self.url} ({type(e).__name__}: {e})", retry_after=5) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise ProviderError(
                502, SOURCE, f"{where} answered HTTP {response.status_code} without the Prometheus API's JSON (is the URL right?)"
            )
        if body["status"] != "success":
            raise ProviderError(
                502, SOURCE, f"{where} answered {body.get('errorType', 'error')}: {body.get('error', '(no message)')} for query {promql!r}"
            )
        return body, Source(kind=SOURCE, url=where, query=promql, at=at)

    def _template(self, metrics: Metrics, which: str) -> tuple[str, bool]:
        custom = self.templates.get(which)
        return (custom, True) if custom else (getattr(metrics, which), False)

    def render(self, metrics: Metrics, which: str, *, namespace: str | None, normal: bool) -> str:
        """The PromQL of one query of `metrics` ("error_ratio", "latency_p99", "edges") for a scope."""
        text, custom = self._template(metrics, which)
        selector = f'{metrics.namespace_label}="{_escape(namespace)}", ' if namespace and metrics.namespace_label else ""
        values = {
            "window": self.normal_window if normal else self.window,
            "offset": f" offset {self.normal_offset}" if normal else "",
            "selector": selector,
        }
        template = Template(text)
        return template.safe_substitute(values) if custom else template.substitute(values)

    async def signals(self, *, namespace: str | None = None) -> Signals:
        """Per-service error ratio and p99 latency now and in the normal window, and the call edges."""
        timeout = httpx.Timeout(self.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            candidates = [DEFAULTS[self.metrics]] if self.metrics != "auto" else list(DEFAULTS.values())
            tried: list[Source] = []
            chosen = edges_body = None
            for metrics in candidates:
                body, source = await self.query(client, self.render(metrics, "edges", namespace=namespace, normal=False))
                tried.append(source)
                if body["data"].get("result"):
                    chosen, edges_body = metrics, body
                    break
            if chosen is None or edges_body is None:
                tried_queries = "; ".join(s.query or "" for s in tried)
                scope = f" in namespace {namespace!r}" if namespace else ""
                raise ProviderError(
                    422,
                    SOURCE,
                    f"no call-graph series{scope} at {self.url} (tried {', '.join(m.name for m in candidates)}: {tried_queries}); "
                    "set REASONING_PROMETHEUS_METRICS or REASONING_PROMQL_EDGES to metrics this Prometheus has, or give a problem",
                    field="scope" if namespace else None,
                )
            queries = [
                self.render(chosen, which, namespace=namespace, normal=normal)
                for normal in (False, True)
                for which in ("error_ratio", "latency_p99")
            ]
            answers = await asyncio.gather(*(self.query(client, q) for q in queries))
        (error_now, s1), (latency_now, s2), (error_normal, s3), (latency_normal, s4) = answers
        return Signals(
            metrics=chosen.name,
            error_now=error_now,
            latency_now=latency_now,
            error_normal=error_normal,
            latency_normal=latency_normal,
            edges=_pairs(edges_body, self.url),
            sources=[tried[-1], s1, s2, s3, s4],
        )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _pairs(body: dict[str, Any], url: str) -> list[tuple[str, str]]:
    pairs: dict[tuple[str, str], None] = {}
    for sample in body["data"].get("result") or []:
        labels = sample.get("metric") or {}
        client, server = labels.get("client"), labels.get("server")
        if not (isinstance(client, str) and isinstance(server, str)):
            raise ProviderError(
                502, SOURCE, f"{url}: an edge series lacks the client or server label ({labels}); an edges template must yield both"
            )
        value = float(sample["value"][1])
        if client and server and client != server and math.isfinite(value):
            pairs[(client, server)] = None
    return list(pairs)
