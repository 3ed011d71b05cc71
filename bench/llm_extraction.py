"""How well an LLM on Ollama turns free text into the right problem (REASONING_LLM_URL / REASONING_LLM_MODEL).

Needs a real Ollama server and model (nothing here can fetch weights, so the project's tests only run
this bench against a stand-in). A fixed set of 60 questions with known problems: 12 per task
(sudoku, maze, placement, rootcause, upgrade), each problem written three ways (a pasted grid or a
one-line puzzle, a drawn maze with another legend, prose with units to convert, a table, kubectl-like
requests, Prometheus-like series, YAML-like PDBs). The questions come from seeded generators, so the
set is the same on every run.

    python bench/llm_extraction.py --ollama http://ollama:11434 --model qwen3:8b
    python bench/llm_extraction.py --ollama http://ollama:11434 --model qwen3:8b --service http://localhost:8080

extracted exactly: the service's extraction (reasoning_service.llm.extract_problem, the code the
  service runs; in this process) picks the right task among all five and its problem equals the
  known one (order of nodes, pods and services aside).
answered correctly (with --service, a running service with the same REASONING_LLM_URL/MODEL): the
  question alone (and its task_type: the request needs a task or a task type) answered end to end,
  and the answer, checked against the known problem, is as good as the service's answer to the known
  problem itself: it passes the task's verifier and has no worse objective; rootcause (no exact check):
  the same root cause.
Prints a table per task and writes bench/results/llm-extraction-<model>.json (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "client" / "src"))

from reasoning_service.errors import ServiceError  # noqa: E402
from reasoning_service.llm import extract_problem  # noqa: E402
from reasoning_service.settings import Settings  # noqa: E402
from trm.tasks import get_task, task_classes  # noqa: E402

TASKS = ("sudoku", "maze", "placement", "rootcause", "upgrade")
PER_TASK = 12
SUDOKU = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
TASK_TYPES = {"sudoku": "logic", "maze": "planning", "placement": "optimization", "rootcause": "troubleshooting", "upgrade": "planning"}


@dataclass
class Question:
    id: str
    task: str
    text: str
    problem: dict[str, Any]


# --- the fixed question set ------------------------------------------------------------------------


def _sudoku(rng: random.Random) -> str:
    """A valid Sudoku from the classic one: digits relabelled, rows and bands shuffled, maybe transposed."""
    digits = list("123456789")
    rng.shuffle(digits)
    relabel = {str(i + 1): d for i, d in enumerate(digits)} | {".": "."}
    bands = rng.sample(range(3), 3)
    rows = [3 * b + r for b in bands for r in rng.sample(range(3), 3)]
    grid = [[relabel[SUDOKU[9 * r + c]] for c in range(9)] for r in rows]
    if rng.random() < 0.5:
        grid = [list(col) for col in zip(*grid)]
    return "".join("".join(row) for row in grid)


def _sudoku_text(puzzle: str, style: int) -> str:
    rows = [puzzle[9 * r : 9 * r + 9] for r in range(9)]
    if style == 0:
        lines = []
        for r, row in enumerate(rows):
            if r in (3, 6):
                lines.append("------+-------+------")
            lines.append(" | ".join(" ".join(row[3 * b : 3 * b + 3]) for b in range(3)))
        return "Can you solve this Sudoku?\n\n" + "\n".join(lines)
    if style == 1:
        return f"Sudoku, row by row, 0 = empty: {puzzle.replace('.', '0')}. What is the solution?"
    return "My puzzle book has this one (_ is blank):\n" + "\n".join(f"row {r + 1}: " + " ".join(c if c != "." else "_" for c in row) for r, row in enumerate(rows))


def _maze(rng: random.Random) -> list[str]:
    """A perfect maze carved by a seeded depth-first search on a (2h+1) x (2w+1) grid; S top left, G bottom right."""
    h, w = rng.randint(3, 5), rng.randint(3, 5)
    grid = [["#"] * (2 * w + 1) for _ in range(2 * h + 1)]
    stack, seen = [(0, 0)], {(0, 0)}
    grid[1][1] = " "
    while stack:
        r, c = stack[-1]
        nxt = [(r + dr, c + dc) for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)) if 0 <= r + dr < h and 0 <= c + dc < w and (r + dr, c + dc) not in seen]
        if not nxt:
            stack.pop()
            continue
        nr, nc = rng.choice(nxt)
        grid[r + nr + 1][c + nc + 1] = " "
        grid[2 * nr + 1][2 * nc + 1] = " "
        seen.add((nr, nc))
        stack.append((nr, nc))
    grid[1][1], grid[2 * h - 1][2 * w - 1] = "S", "G"
    return ["".join(row) for row in grid]


def _maze_text(grid: list[str], style: int) -> str:
    if style == 0:
        return "Shortest path from S to G in this maze?\n\n" + "\n".join(grid)
    if style == 1:
        return "Maze (X = wall, . = open, S start, G goal). How do I get from S to G?\n" + "\n".join(row.replace("#", "X").replace(" ", ".") for row in grid)
    return "Route through this map please:\n```\n" + "\n".join(grid) + "\n```\n'#' are walls."


NODE_NAMES = ["nuc-01", "nuc-02", "nuc-03", "pi-01", "pi-02", "studio", "air"]
POD_NAMES = ["immich-ml", "postgres-0", "postgres-1", "redis", "nextcloud", "grafana", "loki", "vault-0", "vault-1"]


def _placement(rng: random.Random) -> dict[str, Any]:
    nodes = [
        {"name": n, "cpu_millicores": rng.choice([2000, 4000, 8000]), "memory_mib": rng.choice([4096, 8192, 16384])}
        for n in rng.sample(NODE_NAMES, rng.randint(2, 4))
    ]
    pods = []
    for n in rng.sample(POD_NAMES, rng.randint(2, 5)):
        pod: dict[str, Any] = {"name": n, "cpu_millicores": rng.choice([250, 500, 1000]), "memory_mib": rng.choice([256, 512, 1024, 2048])}
        if n.startswith(("postgres", "vault")):
            pod["group"] = n.split("-")[0]
        pods.append(pod)
    return {"nodes": nodes, "pods": pods}


def _mem(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


def _cpu(m: int) -> str:
    return f"{m // 1000} cores" if m % 1000 == 0 and m > 1000 else ("1 core" if m == 1000 else f"{m}m CPU")


def _placement_text(p: dict[str, Any], style: int) -> str:
    nodes, pods = p["nodes"], p["pods"]
    group = lambda q: f" (keep apart from the other {q['group']} pods)" if q.get("group") else ""  # noqa: E731
    if style == 0:
        return (
            "Free capacity: "
            + "; ".join(f"{n['name']} has {_cpu(n['cpu_millicores'])} and {_mem(n['memory_mib'])}" for n in nodes)
            + ". I need to run "
            + "; ".join(f"{q['name']} needing {_cpu(q['cpu_millicores'])} and {_mem(q['memory_mib'])}{group(q)}" for q in pods)
            + ". Which node should each pod go on, using as few nodes as possible?"
        )
    if style == 1:
        table = ["| node | free cpu (m) | free memory (Mi) |", "|---|---|---|"] + [f"| {n['name']} | {n['cpu_millicores']} | {n['memory_mib']} |" for n in nodes]
        ptable = ["| pod | cpu (m) | memory (Mi) | anti-affinity group |", "|---|---|---|---|"] + [
            f"| {q['name']} | {q['cpu_millicores']} | {q['memory_mib']} | {q.get('group', '')} |" for q in pods
        ]
        return "Pack these pods on the fewest nodes.\n\n" + "\n".join(table) + "\n\n" + "\n".join(ptable)
    lines = ["Nodes (allocatable minus requests):"] + [f"  {n['name']}: cpu={n['cpu_millicores']}m memory={n['memory_mib']}Mi" for n in nodes]
    lines += ["Pending pods:"] + [
        f"  {q['name']}: requests cpu={q['cpu_millicores']}m memory={q['memory_mib']}Mi" + (f" podAntiAffinity app={q['group']}" if q.get("group") else "") for q in pods
    ]
    return "\n".join(lines) + "\nPlace them on as few nodes as you can."


SERVICE_NAMES = ["traefik", "nextcloud", "immich-server", "postgres", "redis", "authelia", "home-assistant", "mqtt"]


def _rootcause(rng: random.Random) -> dict[str, Any]:
    names = rng.sample(SERVICE_NAMES, rng.randint(3, 6))
    deps = [[names[rng.randrange(i)], names[i]] for i in range(1, len(names))]  # a tree: callers before callees
    culprit = rng.choice(names[1:])
    affected = {culprit}
    for caller, callee in reversed(deps):
        if callee in affected:
            affected.add(caller)
    services = []
    for n in names:
        if n == culprit:
            er, p99, bad = round(rng.uniform(0.2, 0.6), 2), rng.choice([1800, 2500, 4000]), True
        elif n in affected:
            er, p99, bad = round(rng.uniform(0.05, 0.2), 2), rng.choice([900, 1500, 2200]), True
        else:
            er, p99, bad = round(rng.uniform(0.0, 0.01), 3), rng.choice([40, 80, 150]), False
        services.append({"name": n, "error_rate": er, "latency_p99_ms": float(p99), "anomalous": bad})
    return {"services": services, "dependencies": deps}


def _rootcause_text(p: dict[str, Any], style: int) -> str:
    s, d = p["services"], p["dependencies"]
    if style == 0:
        return (
            "Alert storm! What is the root cause?\n"
            + "\n".join(f"- {x['name']}: {x['error_rate'] * 100:g}% errors, p99 {x['latency_p99_ms']:g} ms, {'alerting' if x['anomalous'] else 'quiet'}" for x in s)
            + "\nCalls: "
            + ", ".join(f"{a} -> {b}" for a, b in d)
        )
    if style == 1:
        return (
            "From Prometheus:\n"
            + "\n".join(f'service_error_ratio{{service="{x["name"]}"}} {x["error_rate"]}' for x in s)
            + "\n"
            + "\n".join(f'service_latency_p99_ms{{service="{x["name"]}"}} {x["latency_p99_ms"]:g}' for x in s)
            + "\nALERTS firing for: "
            + ", ".join(x["name"] for x in s if x["anomalous"])
            + " (the others are not alerting)\nDependencies (caller calls callee): "
            + "; ".join(f"{a} calls {b}" for a, b in d)
            + "\nWhich service started it?"
        )
    parts = [
        f"{x['name']} is {'alerting' if x['anomalous'] else 'not alerting'} with an error rate of {x['error_rate']} and p99 latency {x['latency_p99_ms']:g}ms"
        for x in s
    ]
    return "Since 10:00: " + "; ".join(parts) + ". " + " ".join(f"{a} depends on {b}." for a, b in d) + " Which one is the root cause?"


def _upgrade(rng: random.Random) -> dict[str, Any]:
    nodes = [f"k3s-{i:02d}" for i in range(1, rng.randint(3, 6) + 1)]
    services = []
    for n in rng.sample(["postgres", "traefik", "nextcloud", "redis", "loki", "vault"], rng.randint(2, 4)):
        k = rng.randint(2, min(3, len(nodes)))
        services.append({"name": n, "replicas_on": sorted(rng.sample(nodes, k)), "max_unavailable": 1 if k == 2 or rng.random() < 0.6 else 2})
    return {"nodes": nodes, "services": services}


def _upgrade_text(p: dict[str, Any], style: int) -> str:
    nodes, services = p["nodes"], p["services"]
    if style == 0:
        return (
            f"I must patch the kernel on {', '.join(nodes)}. "
            + " ".join(f"{s['name']} has replicas on {', '.join(s['replicas_on'])} and its PDB allows {s['max_unavailable']} unavailable." for s in services)
            + " Plan the drains in as few waves as possible."
        )
    if style == 1:
        lines = ["nodes:"] + [f"  - {n}" for n in nodes] + ["workloads:"]
        for s in services:
            lines += [f"  - name: {s['name']}", f"    pdb: {{maxUnavailable: {s['max_unavailable']}}}", "    pods:"] + [f"      - node: {n}" for n in s["replicas_on"]]
        return "Upgrade waves for this cluster?\n" + "\n".join(lines)
    table = ["| service | replicas on | maxUnavailable |", "|---|---|---|"] + [f"| {s['name']} | {' '.join(s['replicas_on'])} | {s['max_unavailable']} |" for s in services]
    return f"Nodes to upgrade: {' '.join(nodes)}\n" + "\n".join(table) + "\nIn what order should I drain them?"


def questions() -> list[Question]:
    """The fixed set: 12 per task, 60 in all (seeded: the same every run)."""
    makers = {
        "sudoku": (lambda r: {"puzzle": _sudoku(r)}, lambda p, s: _sudoku_text(p["puzzle"], s)),
        "maze": (lambda r: {"grid": _maze(r)}, lambda p, s: _maze_text(p["grid"], s)),
        "placement": (_placement, _placement_text),
        "rootcause": (_rootcause, _rootcause_text),
        "upgrade": (_upgrade, _upgrade_text),
    }
    out = []
    for t, task in enumerate(TASKS):
        make, text = makers[task]
        rng = random.Random(1000 + t)
        for i in range(PER_TASK):
            problem = make(rng)
            out.append(Question(f"{task}-{i:02d}", task, text(problem, i % 3), problem))
    return out


# --- scoring ---------------------------------------------------------------------------------------


def canonical(task: str, problem: dict[str, Any]) -> Any:
    """The problem in a form where equal means the same problem (list order of named items aside)."""
    p = get_task(task).Problem.model_validate(problem)
    if task == "sudoku":
        return p.cells()
    data = p.model_dump(mode="json", exclude_none=True)
    for key in ("nodes", "pods", "services"):
        if isinstance(data.get(key), list) and data[key] and isinstance(data[key][0], dict):
            data[key] = sorted(data[key], key=lambda x: x["name"])
            for item in data[key]:
                if "replicas_on" in item:
                    item["replicas_on"] = sorted(item["replicas_on"])
    if task == "upgrade":
        data["nodes"] = sorted(data["nodes"])
    if "dependencies" in data:
        data["dependencies"] = sorted(map(list, data["dependencies"]))
    if task == "rootcause":
        for s in data["services"]:
            s["error_rate"] = round(s["error_rate"], 4)
    return data


def as_good(task: str, known: dict[str, Any], answer: dict[str, Any], direct: dict[str, Any]) -> bool:
    """The end-to-end answer, checked against the known problem, is as good as the direct answer."""
    t = get_task(task)
    problem = t.parse(known, canvas=False)
    try:
        solution = t.Solution.model_validate(answer["solution"])
    except ValueError:
        return False
    violations = t.verify(problem, solution)
    if violations is None:  # no exact check (rootcause): the same root cause as for the known problem
        return answer["solution"].get("root_cause") == direct["solution"].get("root_cause")
    if violations:
        return False
    mine, best = t.objective(problem, solution), t.objective(problem, t.Solution.model_validate(direct["solution"]))
    return mine is None or best is None or mine <= best + 1e-9


@dataclass
class Row:
    id: str
    task: str
    extracted_task: str | None
    exact: bool
    extract_error: str | None
    extract_s: float
    answered: bool | None = None  # None: no --service
    answer_error: str | None = None


async def run(args: argparse.Namespace) -> list[Row]:
    settings = Settings(llm_url=args.ollama, llm_model=args.model, llm_timeout_seconds=args.timeout)
    tasks = {n: c for n, c in task_classes().items() if n in TASKS}
    rows = []
    qs = questions()[: args.limit] if args.limit else questions()
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.timeout, connect=10.0)) as http:
        for q in qs:
            started = time.perf_counter()
            try:
                built = await extract_problem(settings, q.text, tasks)
                got_task, error = built.task, None
                exact = built.task == q.task and canonical(q.task, built.problem) == canonical(q.task, q.problem)
            except ServiceError as e:
                got_task, exact, error = None, False, f"{e.status} {e.detail}"
            row = Row(q.id, q.task, got_task, exact, error, round(time.perf_counter() - started, 3))
            if args.service:
                row.answered, row.answer_error = await answer_end_to_end(http, args, q)
            rows.append(row)
            print(f"{q.id:14s} extracted={'yes' if exact else 'no ':3s} answered={row.answered}  {error or ''}", flush=True)
    return rows


async def answer_end_to_end(http: httpx.AsyncClient, args: argparse.Namespace, q: Question) -> tuple[bool, str | None]:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    url = args.service.rstrip("/") + "/v1/reason"
    direct = await http.post(url, json={"task": q.task, "problem": q.problem}, headers=headers)
    if direct.status_code != 200:
        return False, f"the known problem itself: {direct.status_code} {direct.text[:200]}"
    asked = await http.post(url, json={"task_type": TASK_TYPES[q.task], "question": q.text}, headers=headers)
    if asked.status_code != 200:
        return False, f"{asked.status_code} {asked.text[:200]}"
    body = asked.json()
    if body.get("task") != q.task:
        return False, f"answered as {body.get('task')}"
    return as_good(q.task, q.problem, body, direct.json()), None


def report(rows: list[Row], args: argparse.Namespace) -> dict[str, Any]:
    by_task: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_task[r.task].append(r)
    table = []
    for task in TASKS + ("all",):
        rs = rows if task == "all" else by_task.get(task, [])
        if not rs:
            continue
        answered = [r.answered for r in rs if r.answered is not None]
        table.append(
            {
                "task": task,
                "n": len(rs),
                "extracted_exactly": round(sum(r.exact for r in rs) / len(rs), 4),
                "answered_correctly": round(sum(answered) / len(answered), 4) if answered else None,
                "mean_extract_s": round(sum(r.extract_s for r in rs) / len(rs), 3),
            }
        )
    print(f"\nLLM extraction: model {args.model} at {args.ollama}" + (f", answered by {args.service}" if args.service else ""))
    print(f"{'task':10s} {'n':>3s} {'extracted exactly':>18s} {'answered correctly':>19s} {'s/extraction':>13s}")
    for t in table:
        ans = "-" if t["answered_correctly"] is None else f"{100 * t['answered_correctly']:.1f}%"
        print(f"{t['task']:10s} {t['n']:3d} {100 * t['extracted_exactly']:17.1f}% {ans:>19s} {t['mean_extract_s']:13.2f}")
    return {"model": args.model, "ollama": args.ollama, "service": args.service, "table": table, "rows": [asdict(r) for r in rows]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ollama", required=True, help="Ollama base URL, e.g. http://localhost:11434")
    parser.add_argument("--model", required=True, help="an Ollama model that supports structured outputs, e.g. qwen3:8b")
    parser.add_argument("--service", help="a running service (with the same REASONING_LLM_URL/MODEL) to measure end-to-end answers")
    parser.add_argument("--token", help="the service's bearer token")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per LLM call")
    parser.add_argument("--limit", type=int, help="only the first N questions (a quick look)")
    parser.add_argument("--out", type=Path, help="JSON report (default bench/results/llm-extraction-<model>.json)")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args))
    result = report(rows, args)
    out = args.out or ROOT / "bench" / "results" / f"llm-extraction-{args.model.replace(':', '-').replace('/', '-')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
