"""rootcause_from_prometheus against a real Prometheus server: the normal-window queries (PromQL
`offset` over a subquery) answer what the adapter expects, and their answers fill the normal fields.

Three hours of counters and a latency histogram are backfilled with `promtool tsdb
create-blocks-from openmetrics`, a Prometheus serves that TSDB, and the queries go over HTTP to
/api/v1/query at the end of the data.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from agent_reasoning import normal_window_query, rootcause_from_prometheus

pytestmark = pytest.mark.skipif(
    (shutil.which("prometheus") is None or shutil.which("promtool") is None) and os.environ.get("CI") != "true",
    reason="prometheus and promtool not installed (apt-get install prometheus)",
)

STEP = 15  # seconds between samples
BUCKETS = (0.005, 0.01, 0.05, 0.25, 1.0)
ERRORS = 'sum by (service) (rate(http_requests_total{code="500"}[5m])) / sum by (service) (rate(http_requests_total[5m]))'
P99 = "histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))"


def scenario(t: int, end: int) -> dict[str, tuple[float, float, int]]:
    """Per service at time t: (requests/s, error share, latency bucket index every request falls in).

    db fails in the last 10 minutes and web sees half of it; web's own error rate moved from 1% to 3%
    half-way through the normal window (which ends an hour before `end`): a spread to measure."""
    incident = t >= end - 600
    web_error = 0.2 if incident else (0.01 if t < end - 5400 else 0.03)
    return {
        "web": (100.0, web_error, 3 if incident else 2),  # p99 in (0.01, 0.05] s, then (0.05, 0.25]
        "db": (50.0, 0.3 if incident else 0.001, 4 if incident else 1),  # (0.005, 0.01] s, then (0.25, 1]
        "cache": (200.0, 0.0, 0),
    }


def openmetrics(start: int, end: int) -> str:
    totals: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, int], float] = {}
    req_lines: dict[tuple[str, str], list[str]] = {}
    hist_lines: dict[tuple[str, str], list[str]] = {}
    for t in range(start, end + 1, STEP):
        for service, (rps, share, bucket) in scenario(t, end).items():
            for code, part in (("200", 1 - share), ("500", share)):
                key = (service, code)
                totals[key] = totals.get(key, 0.0) + rps * part * STEP
                req_lines.setdefault(key, []).append(f'http_requests_total{{service="{service}",code="{code}"}} {totals[key]:.3f} {t}')
            for k in range(len(BUCKETS) + 1):
                buckets[(service, k)] = buckets.get((service, k), 0.0) + (rps * STEP if k >= bucket else 0.0)
            for k, le in enumerate([*(str(b) for b in BUCKETS), "+Inf"]):
                hist_lines.setdefault((service, le), []).append(
                    f'http_request_duration_seconds_bucket{{service="{service}",le="{le}"}} {buckets[(service, k)]:.3f} {t}'
                )
    out = ["# TYPE http_requests counter"]
    out += [line for lines in req_lines.values() for line in lines]
    out += ["# TYPE http_request_duration_seconds histogram"]
    out += [line for lines in hist_lines.values() for line in lines]
    return "\n".join(out) + "\n# EOF\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("prometheus")
    end = int(time.time()) // 60 * 60 - 120
    (root / "data.om").write_text(openmetrics(end - 3 * 3600, end))
    tsdb = root / "tsdb"
    made = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"), str(tsdb)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "prometheus did not become ready"
            time.sleep(0.3)

        def query(expr: str) -> str:
            with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": end}), timeout=30) as r:
                return r.read().decode()

        yield query
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_offset_queries_fill_the_normal_window(prometheus) -> None:
    answers = {
        "errors": prometheus(ERRORS),
        "p99": prometheus(P99),
        "normal_errors": prometheus(normal_window_query(ERRORS)),
        "normal_p99": prometheus(normal_window_query(P99)),
        "error_spread": prometheus(normal_window_query(ERRORS, spread=True)),
        "p99_spread": prometheus(normal_window_query(P99, spread=True)),
    }
    assert all(json.loads(a)["status"] == "success" for a in answers.values()), answers
    problem = rootcause_from_prometheus(
        answers["errors"],
        answers["p99"],
        [["web", "db"], ["web", "cache"]],
        normal_error_ratio_json=answers["normal_errors"],
        normal_latency_p99_json=answers["normal_p99"],
        normal_error_ratio_spread_json=answers["error_spread"],
        normal_latency_p99_spread_json=answers["p99_spread"],
    )
    s = {x.name: x for x in problem.services}
    assert [x.name for x in problem.services] == ["cache", "db", "web"]
    # now: the incident
    assert s["db"].error_rate == pytest.approx(0.3, rel=1e-3) and s["web"].error_rate == pytest.approx(0.2, rel=1e-3)
    assert s["db"].latency_p99_ms == pytest.approx(250 + 0.99 * 750, rel=1e-3)  # in the (0.25, 1] s bucket
    # the normal window (1 h, an hour ago): db at 0.1% and ~10 ms; web between its 1% and 3% halves
    assert s["db"].normal_error_rate == pytest.approx(0.001, rel=1e-3)
    assert s["db"].normal_latency_p99_ms == pytest.approx(5 + 0.99 * 5, rel=1e-3)
    assert s["web"].normal_latency_p99_ms == pytest.approx(10 + 0.99 * 40, rel=1e-3)
    assert 0.01 <= s["web"].normal_error_rate <= 0.03
    assert s["db"].normal_error_rate_spread == pytest.approx(0.0, abs=1e-6) and s["db"].normal_latency_p99_spread_ms == pytest.approx(
        0.0, abs=1e-6
    )
    assert 0.01 <= s["web"].normal_error_rate_spread <= 0.02  # IQR of the two halves (0.02) / 1.349
    assert s["cache"].error_rate == 0.0 and s["cache"].normal_error_rate == 0.0
