"""/metrics is valid Prometheus exposition and carries the service's series."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

EXPECTED = {
    "agent_reasoning_requests": "counter",
    "agent_reasoning_request_duration_seconds": "histogram",
    "agent_reasoning_queue_wait_seconds": "histogram",
    "agent_reasoning_compute_seconds": "histogram",
    "agent_reasoning_steps": "histogram",
    "agent_reasoning_confidence": "histogram",
    "agent_reasoning_verified": "counter",
    "agent_reasoning_fallbacks": "counter",
    "agent_reasoning_rejections": "counter",
    "agent_reasoning_events": "counter",
    "agent_reasoning_model_loaded": "gauge",
    "agent_reasoning_model_load_seconds": "gauge",
    "agent_reasoning_build_info": "gauge",
    "agent_reasoning_engine_slots": "gauge",
    "agent_reasoning_engine_slots_busy": "gauge",
    "agent_reasoning_queue_depth": "gauge",
}


def families(server):
    text = httpx.get(server + "/metrics").text
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_and_cover_the_service(server):
    httpx.post(server + "/v1/reason", json={"task": "toy_reverse", "problem": {"sequence": [1, 2, 3, 4, 1, 2, 3, 4]}})
    got = families(server)
    for name, kind in EXPECTED.items():
        assert name in got, name
        assert got[name].type == kind, (name, got[name].type)
    loaded = {s.labels["model"]: s.value for s in got["agent_reasoning_model_loaded"].samples}
    assert loaded["toy"] == 1.0
    slots = {(s.labels["task"], s.labels["model"]): s.value for s in got["agent_reasoning_engine_slots"].samples}
    assert slots[("toy_reverse", "toy")] == 8
    ok = [s for s in got["agent_reasoning_requests"].samples if s.labels == {"task": "toy_reverse", "outcome": "ok"} and s.name.endswith("_total")]
    assert ok and ok[0].value >= 1
    steps = [s for s in got["agent_reasoning_steps"].samples if s.name.endswith("_count") and s.labels["task"] == "toy_reverse"]
    assert steps[0].value >= 1
    verified = {s.labels["result"] for s in got["agent_reasoning_verified"].samples if s.labels["task"] == "toy_reverse"}
    assert verified <= {"true", "false"} and verified


def test_metric_names_follow_prometheus_conventions(server):
    for name, family in families(server).items():
        assert name.startswith("agent_reasoning_")
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), name
        if "duration" in name or "wait" in name or "compute" in name:
            assert name.endswith("_seconds")


def test_no_two_series_share_a_label_set(server):
    """Two models of one task (maze and maze-30 where shipped) must not collide in the engine gauges."""
    got = families(server)
    seen = set()
    for family in got.values():
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in seen, f"duplicate series {s.name}{s.labels}"
            seen.add(key)
    models = {s.labels["model"]: s.labels["task"] for s in got["agent_reasoning_model_loaded"].samples if s.value == 1}
    for name in ("agent_reasoning_engine_slots", "agent_reasoning_engine_slots_busy", "agent_reasoning_queue_depth"):
        labelled = {s.labels["model"]: s.labels["task"] for s in got[name].samples}
        assert labelled == models, name  # one series per loaded model, with its task
    if {"maze", "maze-30"} <= set(models):
        assert models["maze"] == models["maze-30"] == "maze"
