"""bench/homelab.py end to end on a few frozen placement instances, with a real (untrained) model:
the classical columns are exact facts of the evaluation set, the model's columns exist where the
problem fits its canvas, and test-time compute (--attempts) really runs that many trajectories."""

import json
import subprocess
import sys
from pathlib import Path

from tests.bench.untrained import hints_model

REPO = Path(__file__).resolve().parents[2]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bench/homelab.py", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_evalset_bench_reports_every_bucket_with_the_model_and_attempts(tmp_path):
    model = hints_model("placement", 5, tmp_path)
    out = tmp_path / "out"
    run = bench(
        "--evalset", "evalsets/placement", "--model", str(model), "--limit", "2", "--hint-limit", "1", "--latency-n", "1",
        "--attempts", "2", "--time-limit", "5", "--threads", "1", "--out-dir", str(out),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "homelab-placement.json").read_text())
    assert report["attempts"] == 2 and report["noise"] == 0.3
    results = report["results"]
    assert set(results) == {"small", "large", "tight", "oversize"}
    for bucket, r in results.items():
        assert r["n"] == 2 and r["baseline_verified"] == 1.0  # FFD always places these (the sets hold placeable problems)
        assert r["hint_n"] == 1 and r["cold_proven"] is not None and r["median_cold_s"] >= 0
        # oversize is beyond the 16-node canvas: no model answer there, as the service would route it
        assert r["model_n"] == (0 if bucket == "oversize" else 2), bucket
        assert r["model_attempts"] == (None if bucket == "oversize" else 2), bucket
        # the draft a hints model reads, scored as if copied (FFD's nodes refilled: never more nodes than FFD)
        assert (r["draft_optimal"] is None) == (bucket == "oversize"), bucket
    small = results["small"]
    assert small["draft_optimal"] >= small["baseline_optimal"]
    assert results["small"]["latency_ms_p50"] > 0 and results["oversize"]["latency_ms_p50"] is None


def test_evalset_bench_without_a_model_or_hints_reports_nulls_and_refuses_bad_attempts(tmp_path):
    run = bench("--evalset", "evalsets/placement", "--limit", "1", "--hint-limit", "0", "--out-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    small = json.loads((tmp_path / "homelab-placement.json").read_text())["results"]["small"]
    assert small["hint_n"] == 0 and small["median_cold_s"] is None and small["model_n"] == 0 and small["baseline_verified"] == 1.0
    assert small["draft_optimal"] is None  # no hints model, no draft
    for args, message in ((["--attempts", "0"], "--attempts must be 1-64"), (["--attempts", "2"], "--attempts needs --evalset and --model")):
        refused = bench("--evalset", "evalsets/placement", *args)
        assert refused.returncode == 2 and message in refused.stderr
