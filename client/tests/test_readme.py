"""Every Python example in README.md runs as written, against a stand-in service (respx)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from client_harness import reply, response_body

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)

MAZE_ANSWER = {
    "task_type": "planning",
    "task": "maze",
    "solution": {"path": [[1, 1], [1, 2], [1, 3]], "grid": ["#####", "#ooo#", "#####"]},
    "model": {"name": "maze-trm", "version": "1"},
}


def answer(request: httpx.Request) -> dict[str, Any]:
    asked = json.loads(request.content)
    asked = asked.get("data", asked)  # a structured-mode event wraps the request
    body = response_body(**MAZE_ANSWER) if asked.get("task") == "maze" else response_body()
    if asked.get("trace"):
        body["reasoning_trace"] = [{"step": 1, "answer": "…", "confidence": 0.4, "changed": 12}]
    return body


def stand_in(router: respx.MockRouter) -> None:
    router.post(path="/v1/reason").mock(side_effect=lambda request: httpx.Response(200, json=answer(request)))
    router.post(path="/events").mock(side_effect=lambda request: reply(request, "io.homelab.reasoning.completed", answer(request)))
    router.get(path="/v1/tasks").mock(
        return_value=httpx.Response(
            200,
            json={
                "tasks": [
                    {
                        "name": "sudoku",
                        "task_type": "logic",
                        "description": "9x9 Sudoku",
                        "default": True,
                        "example": {"puzzle": "." * 81},
                        "models": [{"name": "sudoku-trm", "version": "1", "metrics": {"exact": 0.9}, "default": True}],
                    }
                ]
            },
        )
    )
    router.get(path="/healthz").mock(return_value=httpx.Response(200, json={"status": "ok"}))
    router.get(path="/readyz").mock(return_value=httpx.Response(200, json={"status": "ready"}))
    router.post(host="broker-ingress.knative-eventing.svc.cluster.local").mock(return_value=httpx.Response(202))


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(example: str) -> None:
    with respx.mock(assert_all_called=False) as router:
        stand_in(router)
        exec(compile(example, str(README), "exec"), {"__name__": "__main__"})
