"""OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, request spans reach an OTLP/HTTP collector."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from .conftest import settings_for
from .server import running_server

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter", reason="the `otel` extra is not installed")


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_spans_are_exported(models_dir, monkeypatch):
    collector = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    from opentelemetry import trace

    try:
        with running_server(settings_for(models_dir, warmup=False)) as url:
            r = httpx.post(url + "/v1/reason", json={"task": "toy_reverse", "problem": {"sequence": [1, 2, 3, 4, 4, 3, 2, 1]}})
            assert r.status_code == 200
            trace.get_tracer_provider().force_flush()
            deadline = time.monotonic() + 10
            while not Collector.received and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        collector.shutdown()
    paths = {p for p, _ in Collector.received}
    assert "/v1/traces" in paths
    assert any(b"/v1/reason" in body for _, body in Collector.received)  # the route's span
