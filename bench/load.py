"""Load benchmark: the running service under wrk at 1, 8, 32 and 128 connections, next to the engine alone.

    python bench/load.py [--models models] [--duration 20] [--url http://host:port]

Starts `python -m reasoning_service` on a free port (unless --url is given), drives POST /v1/reason
with wrk (Debian package `wrk`) over a mixed easy+medium Sudoku workload, then runs the same
workload through the engine in-process at the same concurrency. The difference at saturation is
what the HTTP layer costs. Prints a table and writes runs/bench/load.json (scratch; `--out
bench/results/load.json` publishes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import engine as engine_bench  # noqa: E402
from engine import closed_loop, workload  # noqa: E402

LUA = r"""
local bodies = {}
local i = 0
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
init = function(args)
  for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
  ok, shed, other = 0, 0, 0
end
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/reason", {["Content-Type"] = "application/json"}, bodies[i])
end
response = function(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 503 then shed = shed + 1 else other = other + 1 end
end
done = function(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("ok"); b = b + t:get("shed"); c = c + t:get("other") end
  io.write(string.format("STATUS %%d %%d %%d\n", a, b, c))
  io.write(string.format("P50 %%d\nP99 %%d\n", latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: str, slots: str, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = os.environ | {
        "PORT": str(port),
        "REASONING_MODELS_DIR": models,
        "REASONING_ENGINE_SLOTS": str(slots),
        "REASONING_QUEUE_SIZE": "256",
        "REASONING_LOG_LEVEL": "WARNING",
        "REASONING_TORCH_THREADS": str(threads),
    }
    proc = subprocess.Popen([sys.executable, "-m", "reasoning_service"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the service did not become ready")


def run_wrk(url: str, script: str, connections: int, duration: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "60s", "--latency", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    ok, shed, other = (int(x) for x in re.search(r"STATUS (\d+) (\d+) (\d+)", out).groups())
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "connections": connections,
        "requests_per_second": rps,
        "p50_ms": int(re.search(r"P50 (\d+)", out).group(1)) / 1000,
        "p99_ms": int(re.search(r"P99 (\d+)", out).group(1)) / 1000,
        "ok": ok,
        "status_503": shed,
        "errors": other + (sum(int(x) for x in re.findall(r"\d+", errors.group(1))) if errors else 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="models")
    parser.add_argument("--model", default="models/sudoku", help="for the engine-alone comparison")
    parser.add_argument("--url", help="an already running service (skips starting one)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per concurrency level")
    parser.add_argument("--concurrency", default="1,8,32,128")
    parser.add_argument("--slots", default="auto", help="engine slots of the service and the engine run (an integer or auto)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the service and the engine run")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--out", default="runs/bench/load.json", help="bench/results/ holds the published results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    import torch

    from trm.checkpoint import load_checkpoint

    torch.set_num_threads(1)  # the main thread gets no OpenMP team; the engine's compute thread runs with --threads
    engine_bench.THREADS = args.threads
    slots: int | str = int(args.slots) if args.slots != "auto" else "auto"
    inputs, _labels, _ = workload("sudoku", {}, args.n, seed=321)
    tmp = Path(tempfile.mkdtemp())
    bodies = tmp / "bodies.jsonl"
    with open(bodies, "w") as f:
        for x in inputs:
            puzzle = "".join(str(t - 1) if t > 1 else "." for t in x)
            f.write(json.dumps({"task": "sudoku", "problem": {"puzzle": puzzle}}) + "\n")
    script = tmp / "bench.lua"
    script.write_text(LUA % {"bodies": bodies})
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args.models, args.slots, args.threads)
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    try:
        for c in levels:
            rows.append(run_wrk(url, str(script), c, args.duration))
            print(f"  http c={c}: {rows[-1]['requests_per_second']:.1f} req/s", file=sys.stderr, flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    from reasoning_service.settings import Settings

    service_dtype = Settings.model_fields["dtype"].default  # the engine alone runs as the service does
    model, _ = load_checkpoint(args.model)
    threshold = json.loads((Path(args.model) / "config.json").read_text()).get("inference", {}).get("halt_threshold", 0.0)
    for row in rows:
        c = row["connections"]
        per_client = max(2, int(row["requests_per_second"] * args.duration / c))
        alone = closed_loop(model, inputs, slots, service_dtype, threshold, "continuous", c, min(per_client, 40))
        row["engine_puzzles_per_second"] = alone["puzzles_per_second"]
        row["engine_p50_ms"] = alone["p50_ms"]
        row["http_overhead"] = 1 - row["requests_per_second"] / alone["puzzles_per_second"]
    print(f"{'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ok':>6} {'503':>5} {'errors':>6} {'engine/s':>9} {'HTTP cost':>9}")
    for r in rows:
        print(
            f"{r['connections']:>5} {r['requests_per_second']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['ok']:>6} {r['status_503']:>5} {r['errors']:>6} "
            f"{r['engine_puzzles_per_second']:>9.1f} {100 * r['http_overhead']:>8.1f}%"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"url": url, "duration_s": args.duration, "threads": args.threads, "slots": args.slots, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
