"""bench/upgrade_decode.py end to end on a few frozen upgrade clusters with a real (untrained) model:
every decoder is scored against the stored optimum, and what holds by construction holds."""

import json
import subprocess
import sys
from pathlib import Path

from tests.bench.untrained import hints_model

REPO = Path(__file__).resolve().parents[2]


def test_decoders_side_by_side_on_an_evaluation_set(tmp_path):
    model = hints_model("upgrade", 17, tmp_path)
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "bench/upgrade_decode.py", "--model", str(model), "--problems", "evalsets/upgrade/large.jsonl.gz",
         "--limit", "12", "--width", "2", "--threads", "1", "--out-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "upgrade-decode.json").read_text())
    d = report["decoders"]
    assert report["n"] == 12 and set(d) == {"greedy", "given order", "surest first", "beam, model", "beam, uniform"}
    assert d["greedy"]["worse"] == d["greedy"]["better"] == 0.0
    # the service's decoder keeps the shorter of its plan and the given order's; the beams never answer longer than it or the greedy
    assert d["surest first"]["worse"] <= d["given order"]["worse"] and d["surest first"]["better"] >= d["given order"]["better"]
    assert d["beam, model"]["better"] >= d["surest first"]["better"] and d["beam, uniform"]["worse"] == 0.0
    assert report["decoded_shorter"] <= report["intends_shorter"] and report["intends_shorter_where_possible"] <= report["shorter_possible"]
    assert "beam, uniform" in run.stdout
