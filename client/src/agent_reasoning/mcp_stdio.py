"""`agent-reasoning mcp` (or `agent-reasoning-mcp`): the service's MCP tools over stdio, for desktop MCP clients.

A thin relay without torch: it serves MCP on stdin/stdout and forwards every request to a running
service's `/mcp` endpoint (streamable HTTP), so the tools, their schemas and their answers are the
service's own. Needs the `mcp` extra: `pip install 'agent-reasoning-client[mcp]'`.

    AGENT_REASONING_URL=http://reasoning.homelab:8080 AGENT_REASONING_TOKEN=... agent-reasoning mcp

It connects per request (the service's MCP endpoint is stateless), so it starts even while the
service is down and picks it up once it is back; a call that cannot reach it answers with a tool
error that says so.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ._base import DEFAULT_BASE_URL
from ._version import __version__

log = logging.getLogger("agent_reasoning.mcp")


def endpoint(base_url: str) -> str:
    """The MCP endpoint of a service: its base URL + /mcp (a URL already ending in /mcp is kept)."""
    base = base_url.rstrip("/")
    return base if base.endswith("/mcp") else f"{base}/mcp"


def build_relay(url: str, token: str | None, timeout_s: float = 300.0) -> Any:
    """An MCP server (mcp.server.lowlevel.Server) whose list_tools and call_tool are the service's.

    url: the service's MCP endpoint; token: its bearer token (None: send none); timeout_s: the
    longest a call may take (a Sudoku on a CPU takes about a second; the exact solvers up to their budget).
    """
    import httpx2
    import mcp_types as types
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.server.lowlevel import Server
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.exceptions import MCPError

    headers = {"Authorization": f"Bearer {token}"} if token else None

    @asynccontextmanager
    async def remote() -> AsyncIterator[Client]:
        timeout = httpx2.Timeout(30.0, read=timeout_s)
        async with create_mcp_http_client(headers=headers, timeout=timeout) as http:
            async with Client(streamable_http_client(url, http_client=http, terminate_on_close=False), cache=None) as client:
                yield client

    def unreachable(e: BaseException) -> str:
        return f"cannot reach the agent-reasoning service at {url}: {e}"

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        try:
            async with remote() as client:
                return await client.list_tools()
        except MCPError:
            raise
        except Exception as e:  # the desktop client shows this; tools appear once the service is up
            log.warning("%s", unreachable(e))
            raise MCPError(types.INTERNAL_ERROR, unreachable(e)) from None

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            async with remote() as client:
                return await client.call_tool(params.name, params.arguments or {})
        except MCPError:
            raise  # the service's own protocol errors (an unknown tool) pass through as they are
        except Exception as e:
            log.warning("%s", unreachable(e))
            return types.CallToolResult(content=[types.TextContent(text=f"error: {unreachable(e)}")], is_error=True)

    return Server(
        "agent-reasoning",
        version=__version__,
        instructions="Relays to the agent-reasoning service: every tool answers a structured problem with a verified answer.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve(url: str, token: str | None) -> None:
    """Serve the relay on stdin/stdout until the client closes it."""
    from mcp.server.stdio import stdio_server

    server = build_relay(url, token)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `agent-reasoning mcp [--url URL]`. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="agent-reasoning mcp",
        description="Serve the agent-reasoning service's MCP tools over stdio (for desktop MCP clients).",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("AGENT_REASONING_URL") or DEFAULT_BASE_URL,
        help="the service's base URL (default: $AGENT_REASONING_URL, else the in-cluster service)",
    )
    args = parser.parse_args(argv)
    token = os.environ.get("AGENT_REASONING_TOKEN") or None
    try:
        import anyio
        import mcp  # noqa: F401
    except ImportError:
        print("agent-reasoning mcp needs the MCP SDK: pip install 'agent-reasoning-client[mcp]'", file=sys.stderr)
        return 2
    # stdout carries the protocol: logs go to stderr only
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    anyio.run(serve, endpoint(args.url), token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
