"""Free text -> a structured problem, by an LLM on an Ollama server (REASONING_LLM_URL, REASONING_LLM_MODEL).

A question with no problem that no provider can build is sent to Ollama's `/api/chat` with `format`
set to a JSON schema whose every branch is one task and that task's problem schema, so the model's
output (constrained to the schema by Ollama) picks a task and carries its problem. The problem is
then validated like any caller's; the answer to it is still checked by the task's verifier, so the
LLM can make the service answer the wrong question but never return an unchecked answer as checked.

One blocking request per question, from a worker thread with the standard library's HTTP client (the
service keeps no HTTP client library of its own: docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from agent_reasoning.toolspec import TEST_ONLY_TASKS, inline_refs
from agent_reasoning.types import Source
from reasoning_service.errors import ServiceError
from reasoning_service.questions import BuiltProblem
from reasoning_service.settings import Settings
from trm.tasks import InvalidProblem, Task

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """You turn a user's text into the input of an exact solver. You never solve the problem yourself.
Pick the one task the text is about and copy its data into that task's problem, exactly as written:
every given, wall, node, pod, service and number; nothing invented, nothing left out.
Answer with one JSON object {{"task": <task name>, "problem": <the problem>}}.

Tasks:
{tasks}"""


def _classes(tasks: Mapping[str, Task | type[Task]] | Iterable[Task | type[Task]]) -> dict[str, type[Task]]:
    items = tasks.values() if isinstance(tasks, Mapping) else tasks
    out: dict[str, type[Task]] = {}
    for t in items:
        cls: type[Task] = t if isinstance(t, type) else type(t)
        if cls.name not in TEST_ONLY_TASKS:
            out[cls.name] = cls
    return out


def extraction_schema(tasks: Mapping[str, Task | type[Task]] | Iterable[Task | type[Task]]) -> dict[str, Any]:
    """The `format` schema: an object {task, problem}, one `anyOf` branch per task (a single object for one task).

    References are inlined: Ollama turns the schema into a grammar and does not follow `$ref`.
    """
    branches = []
    for name, cls in sorted(_classes(tasks).items()):
        branches.append(
            {
                "type": "object",
                "properties": {"task": {"type": "string", "enum": [name]}, "problem": inline_refs(cls.Problem.model_json_schema())},
                "required": ["task", "problem"],
            }
        )
    if not branches:
        raise ValueError("no task to extract a problem for")
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def _task_lines(classes: dict[str, type[Task]]) -> str:
    lines = []
    for name, cls in sorted(classes.items()):
        try:
            example = json.dumps(cls().example(), separators=(",", ":"))
        except Exception:  # a plug-in task whose example needs options: describe it without one
            example = "{}"
        lines.append(f"- {name}: {cls.description}\n  example problem: {example}")
    return "\n".join(lines)


def _unconfigured() -> ServiceError:
    return ServiceError(
        422,
        "invalid_request",
        "problem: Field required (no provider could build it from the question, and free text needs an LLM: set "
        "REASONING_LLM_URL to an Ollama server and REASONING_LLM_MODEL to its model; or send `problem` in the task's "
        "schema, see GET /v1/tasks)",
        field="problem",
    )


def _not_a_problem(detail: str) -> ServiceError:
    return ServiceError(422, "invalid_problem", f"question: the LLM's output is not a valid problem: {detail}", field="question")


async def extract_problem(
    settings: Settings,
    question: str,
    tasks: Mapping[str, Task | type[Task]] | Iterable[Task | type[Task]],
    *,
    context: str | None = None,
) -> BuiltProblem:
    """Ask the LLM which task `question` is and for its problem; validate what it says.

    settings: llm_url (Ollama base URL), llm_model, llm_timeout_seconds.
    tasks: the candidate tasks (a mapping name -> Task instance or class, or an iterable of them): all
    known tasks, or only the one the request named. Test-only tasks are left out.
    context: more text sent with the question (a pasted manifest, a drawn maze).
    Returns BuiltProblem(task, problem, sources=[Source(kind="llm", ...)]).
    Raises ServiceError: 422 when no LLM is configured or its output is not a valid problem of one of
    `tasks` (the detail says which field); 503 when the LLM server cannot be reached or times out;
    502 when it answers with an error (e.g. the model is not pulled).
    """
    if not settings.llm_url or not settings.llm_model:
        raise _unconfigured()
    if not settings.llm_url.startswith(("http://", "https://")):
        raise ServiceError(422, "invalid_request", f"question: REASONING_LLM_URL must be an http(s) URL of an Ollama server, not {settings.llm_url!r}", field="question")
    classes = _classes(tasks)
    if not classes:
        raise _unconfigured()
    if not (question or "").strip() and not (context or "").strip():
        raise ServiceError(422, "invalid_request", "question: give the problem as `problem`, or describe it in `question` (or `context`)", field="question")
    text = question if not context else f"{question}\n\n{context}"
    body = {
        "model": settings.llm_model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT.format(tasks=_task_lines(classes))},
            {"role": "user", "content": text},
        ],
        "stream": False,
        "format": extraction_schema(classes),
        "options": {"temperature": 0},
    }
    url = settings.llm_url.rstrip("/") + "/api/chat"
    try:
        status, payload = await asyncio.to_thread(_post_json, url, body, settings.llm_timeout_seconds)
    except (OSError, http.client.HTTPException) as e:  # refused, DNS, timeout, cut off: no (whole) answer
        reason = getattr(e, "reason", e)
        raise ServiceError(
            503, "llm_unavailable", f"the LLM at {settings.llm_url} did not answer: {reason}", headers={"Retry-After": str(settings.retry_after_seconds)}
        ) from None
    if status >= 400:
        try:
            why = json.loads(payload).get("error") or payload.decode(errors="replace")
        except (ValueError, AttributeError):
            why = payload.decode(errors="replace")
        raise ServiceError(502, "llm_error", f"the LLM at {settings.llm_url} answered {status}: {str(why)[:500]}")
    try:
        content = json.loads(payload)["message"]["content"]
    except (ValueError, KeyError, TypeError):
        raise ServiceError(502, "llm_error", f"the LLM at {settings.llm_url} answered something other than an Ollama chat response") from None
    built = parse_extraction(content, classes)
    at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    built.sources = [Source(kind="llm", url=settings.llm_url, query=f"model={settings.llm_model}", at=at)]
    log.info("LLM extracted a %s problem", built.task, extra={"fields": {"task": built.task, "model": settings.llm_model}})
    return built


def _post_json(url: str, body: dict[str, Any], timeout_s: float) -> tuple[int, bytes]:
    """POST `body` as JSON; (status, response body). Raises OSError when no answer comes within timeout_s."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:  # noqa: S310 - the operator's configured URL
            return reply.status, reply.read()
    except urllib.error.HTTPError as e:  # an answer with an error status: Ollama's {"error": ...}
        return e.code, e.read()


def parse_extraction(content: str, tasks: Mapping[str, Task | type[Task]] | Iterable[Task | type[Task]]) -> BuiltProblem:
    """Validate the LLM's JSON text {task, problem} against the candidate tasks. Raises ServiceError 422."""
    classes = _classes(tasks)
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, TypeError) as e:
        snippet = str(content)[:120]
        raise _not_a_problem(f"not JSON ({e}): {snippet!r}") from None
    if not isinstance(data, dict):
        raise _not_a_problem("not a JSON object")
    name = data.get("task")
    if name not in classes:
        raise _not_a_problem(f"task: {name!r} is not one of {sorted(classes)}")
    raw = data.get("problem")
    if not isinstance(raw, dict):
        raise _not_a_problem("problem: must be an object")
    cls = classes[name]
    try:
        problem = cls.Problem.model_validate(raw)
        cls().parse(problem, canvas=False)  # task-level checks (contradictions, infeasibility)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "problem"
        raise _not_a_problem(f"{name} problem.{loc}: {err['msg']}") from None
    except InvalidProblem as e:
        raise _not_a_problem(f"{name} {e}") from None
    # nulls dropped: an LLM fills every key of the schema, and "grid": null next to a puzzle is no grid
    return BuiltProblem(task=name, problem=problem.model_dump(mode="json", exclude_none=True))
