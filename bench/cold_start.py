"""Cold start: process start to the first `/readyz` 200, against a bare `import torch, fastapi` process.

    python bench/cold_start.py [--runs 3] [--models models] [--out bench/results/cold_start.json]

Knative scales the service to zero, so the first request after a quiet spell pays the cold start.
Goal (issue 17): at most twice the bare import, with every shipped model loaded and warmed up.
Each run starts a fresh `python -m reasoning_service` on a free port and polls /readyz every 10 ms;
the bare import and the service alternate, run by run, so that a change in the host's load hits
both alike; medians are reported. A breakdown (one process, phase by phase, as the service loads)
says where the time goes. Prints tables and writes the JSON (--out). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "client" / "src"), os.environ.get("PYTHONPATH", "")])}

# Phases of a service start, timed in one process in the order the service runs them
BREAKDOWN = r"""
import json, sys, time
t0 = time.perf_counter()
marks = {}
steps = {}
def mark(name):
    global t0
    now = time.perf_counter(); marks[name] = marks.get(name, 0.0) + now - t0; t0 = now
import torch, fastapi
mark("import torch + fastapi")
from reasoning_service.app import create_app
from reasoning_service.settings import Settings
mark("import the service")
settings = Settings(models_dir=sys.argv[1])
app = create_app(settings)
mark("create_app")
registry = app.state.service.registry
from trm.checkpoint import load_checkpoint
from trm.engine import Engine
from trm.precision import for_inference
from trm.tasks import get_task
for path in registry.discover(settings.models_dir):
    model, config = registry.compute.call(load_checkpoint, path).result()
    mark("load checkpoints")
    model = registry.compute.call(for_inference, model, settings.dtype).result()
    task = get_task(model.config.task, **model.config.task_options)
    mark("task + dtype")
    inference = config.get("inference", {})
    engine = Engine(model, slots=settings.engine_slots, dtype=settings.dtype, name=path.name, worker=registry.compute,
                    halt_threshold=float(inference.get("halt_threshold", 0.0)), min_steps=int(inference.get("min_steps", 1)),
                    calibration=inference.get("calibration")).start()
    mark("engine (slots)")
    tokens = task.encode(task.parse(task.example()))
    engine.submit(tokens, max_steps=1).result(timeout=300)
    mark("warm-up: first step")
    steps[path.name] = engine.submit(tokens).result(timeout=300).steps
    mark("warm-up: a whole solve")
    engine.stop()
registry.compute.stop()
import reasoning_service.mcp_server, reasoning_service.questions
mark("MCP SDK + question path (beside the loader)")
print(json.dumps({"phases": marks, "warmup_steps": steps}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_import() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, fastapi"], check=True, env=ENV)
    return time.perf_counter() - started


def service_start(models: str, timeout: float) -> float:
    """Seconds from spawning the service to its first /readyz 200."""
    port = free_port()
    env = ENV | {"PORT": str(port), "REASONING_MODELS_DIR": models, "REASONING_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "reasoning_service"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.01)
        raise TimeoutError(f"/readyz not 200 within {timeout} s")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def breakdown(models: str) -> dict:
    out = subprocess.run([sys.executable, "-c", BREAKDOWN, models], check=True, env=ENV, cwd=ROOT, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default=str(ROOT / "models"))
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench" / "cold_start.json"), help="JSON path (bench/results/ holds the published one)")
    args = parser.parse_args()
    models = sorted(p.name for p in Path(args.models).iterdir() if (p / "config.json").is_file())
    bare, service = [], []
    for i in range(args.runs):
        bare.append(bare_import())
        service.append(service_start(args.models, args.timeout))
        print(f"run {i + 1}: bare import {bare[-1]:.2f} s, service to /readyz {service[-1]:.2f} s", flush=True)
    measured = breakdown(args.models)
    phases = measured["phases"]
    report = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "models": models,
        "runs": args.runs,
        "bare_import_s": bare,
        "service_ready_s": service,
        "bare_import_median_s": statistics.median(bare),
        "service_ready_median_s": statistics.median(service),
        "ratio": statistics.median(service) / statistics.median(bare),
        "breakdown_s": phases,
        "warmup_solve_steps": measured["warmup_steps"],
    }
    print(f"\n{'':<34} {'median s':>9}   runs")
    print(f"{'import torch, fastapi (bare)':<34} {report['bare_import_median_s']:>9.2f}   " + ", ".join(f"{x:.2f}" for x in bare))
    print(f"{'service start to /readyz 200':<34} {report['service_ready_median_s']:>9.2f}   " + ", ".join(f"{x:.2f}" for x in service))
    print(f"ratio {report['ratio']:.2f} (goal <= 2.0); models: {', '.join(models)}")
    print(f"\nwhere the time goes (one process, {sum(phases.values()):.2f} s):")
    for name, seconds in phases.items():
        print(f"  {name:<28} {seconds:>6.2f} s")
    print(f"  (the service warms up with one step per model; a whole solve, {measured['warmup_steps']} steps, is what a first request pays on top;")
    print("   the MCP SDK and the question path are imported beside the model loader in the service, after it here)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
