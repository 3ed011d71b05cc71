"""Prometheus metrics, one registry per app (so tests can run several apps in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

PREFIX = "agent_reasoning"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STEP_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
ATTEMPT_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
CONFIDENCE_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


class Metrics:
    """The service's Prometheus series (prefix `agent_reasoning_`) in their own CollectorRegistry.

    Durations in seconds; engine gauges (slots, busy slots, queue depth) are read at scrape time from `watch_engines` sources.
    """

    def __init__(self) -> None:
        disable_created_metrics()  # *_created series only add noise to every scrape
        r = self.registry = CollectorRegistry()
        self.requests = Counter(f"{PREFIX}_requests_total", "Reasoning requests by task and outcome", ["task", "outcome"], registry=r)
        self.duration = Histogram(f"{PREFIX}_request_duration_seconds", "End-to-end request time", ["task"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram(f"{PREFIX}_queue_wait_seconds", "Time waiting for an engine slot", ["task"], buckets=LATENCY_BUCKETS, registry=r)
        self.compute = Histogram(f"{PREFIX}_compute_seconds", "Time in an engine slot", ["task"], buckets=LATENCY_BUCKETS, registry=r)
        self.steps = Histogram(f"{PREFIX}_steps", "Supervision steps per answer", ["task"], buckets=STEP_BUCKETS, registry=r)
        self.confidence = Histogram(f"{PREFIX}_confidence", "Halting confidence of answers", ["task"], buckets=CONFIDENCE_BUCKETS, registry=r)
        self.verified = Counter(f"{PREFIX}_verified_total", "Answers by exact-check result", ["task", "result"], registry=r)
        self.attempts = Histogram(
            f"{PREFIX}_attempts", "Attempts the model started per answer (test-time compute)", ["task"], buckets=ATTEMPT_BUCKETS, registry=r
        )
        self.chosen = Counter(
            f"{PREFIX}_answers_chosen_total",
            "Model answers by how they were chosen (halt, vote, checker) and what found them (single, views, noise, views+noise)",
            ["task", "chosen_by", "strategy"],
            registry=r,
        )
        self.fallbacks = Counter(f"{PREFIX}_fallbacks_total", "Answers taken from the classical baseline", ["task"], registry=r)
        self.rejections = Counter(f"{PREFIX}_rejections_total", "Requests shed with 503, and extra test-time attempts not started (reason attempt_*)", ["task", "reason"], registry=r)
        self.events = Counter(f"{PREFIX}_events_total", "CloudEvents received by type and outcome", ["type", "outcome"], registry=r)
        self.model_loaded = Gauge(f"{PREFIX}_model_loaded", "1 when the model is loaded and warmed up", ["task", "model"], registry=r)
        self.model_load_seconds = Gauge(f"{PREFIX}_model_load_seconds", "Time to load and warm up the model", ["model"], registry=r)
        self.build_info = Gauge(f"{PREFIX}_build_info", "Build information", ["version", "torch_version"], registry=r)
        self._engine_sources: list[EngineSource] = []
        r.register(_EngineCollector(self._engine_sources))

    def watch_engines(self, source: EngineSource) -> None:
        """`source()` -> [(task, model, slots, busy slots, queue depth)], read at every scrape.

        One engine per model, and several models may serve one task (maze and maze-30): the series
        carry both labels, so no two share a label set; sum by task for a task's capacity."""
        self._engine_sources.append(source)


EngineSource = Callable[[], list[tuple[str, str, int, int, int]]]


class _EngineCollector:
    def __init__(self, sources: list[EngineSource]) -> None:
        self.sources = sources

    def collect(self):  # type: ignore[no-untyped-def]
        labels = ["task", "model"]
        slots = GaugeMetricFamily(f"{PREFIX}_engine_slots", "Engine slots (batch capacity)", labels=labels)
        busy = GaugeMetricFamily(f"{PREFIX}_engine_slots_busy", "Engine slots holding a sample", labels=labels)
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Requests waiting for a slot", labels=labels)
        for source in self.sources:
            for task, model, n_slots, n_busy, n_queue in source():
                slots.add_metric([task, model], n_slots)
                busy.add_metric([task, model], n_busy)
                depth.add_metric([task, model], n_queue)
        yield slots
        yield busy
        yield depth

    def describe(self):  # type: ignore[no-untyped-def]
        return []
