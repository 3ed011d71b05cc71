"""POST /v1/reason, and POST /reason for the older API."""

from __future__ import annotations

from fastapi import APIRouter

from agent_reasoning.types import ErrorBody, ReasoningRequest, ReasoningResponse
from reasoning_service.deps import Authorized, State
from reasoning_service.reasoning import reason

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 413, 422, 503, 504)}

router = APIRouter(dependencies=[Authorized])


@router.post("/v1/reason", response_model=ReasoningResponse, responses=ERRORS, tags=["reasoning"], summary="Solve one structured problem")
async def reason_v1(body: ReasoningRequest, state: State) -> ReasoningResponse:
    """Solve one structured problem (or a question the service turns into one); errors answer an ErrorBody with the status listed."""
    return await reason(state, body)


@router.post("/reason", response_model=ReasoningResponse, responses=ERRORS, tags=["reasoning"], deprecated=True, summary="Older path of /v1/reason")
async def reason_legacy(body: ReasoningRequest, state: State) -> ReasoningResponse:
    """The same as POST /v1/reason, at the path of the older API."""
    return await reason(state, body)
