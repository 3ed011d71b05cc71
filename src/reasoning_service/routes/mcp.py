"""The /mcp endpoint: the service's bearer token, then the MCP SDK's streamable-HTTP transport.

Light on purpose: the SDK itself (reasoning_service.mcp_server) is imported by the app's lifespan
while the models load, not when the app is created, so it does not lengthen a cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from reasoning_service.deps import require_token
from reasoning_service.errors import ServiceError

if TYPE_CHECKING:
    from reasoning_service.reasoning import ServiceState

PATH = "/mcp"


class McpEndpoint:
    """The ASGI endpoint at /mcp. `manager` (a StreamableHTTPSessionManager) is set by the app's
    lifespan while it runs; until then (and after) a request gets 503."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.manager: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token, then hand the request to the SDK's transport (503 while it is not running)."""
        try:
            require_token(Request(scope, receive), self.state)
        except ServiceError as e:
            await JSONResponse(e.body(), status_code=e.status, headers=e.headers)(scope, receive, send)
            return
        if self.manager is None:
            body = {"error": "overloaded", "detail": "the MCP endpoint is not running (the app's lifespan has not started)", "field": None}
            await JSONResponse(body, status_code=503, headers={"Retry-After": "1"})(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)
