"""Probes: /healthz (alive) and /readyz (models loaded and warmed up, not draining); /health and /ready too."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from reasoning_service.deps import State

router = APIRouter(tags=["probes"])


@router.get("/healthz", summary="Liveness")
@router.get("/health", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: 200 {"status": "ok"} while the process serves HTTP."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: models loaded and warmed up")
@router.get("/ready", include_in_schema=False)
async def readyz(state: State) -> JSONResponse:
    """Readiness: 200 once the models are loaded and warmed up; 503 with Retry-After while loading or draining."""
    models = {name: m.task.name for name, m in state.registry.models.items()}
    if state.draining:
        return JSONResponse({"status": "draining", "models": models}, status_code=503, headers={"Retry-After": "1"})
    if not state.ready:
        return JSONResponse({"status": "loading", "models": models}, status_code=503, headers={"Retry-After": "1"})
    # every known task answers: with its model where one is loaded, else with its own solver
    tasks = {name: (state.registry.for_task(name)[0].name if state.registry.for_task(name) else None) for name in state.registry.known_tasks()}
    return JSONResponse({"status": "ready", "models": models, "tasks": tasks, "failed": state.registry.failures})
