"""`python -m reasoning_service` / `agent-reasoning`: uvicorn on $PORT with graceful drain on SIGTERM.

`agent-reasoning mcp`: the MCP tools over stdio, relayed to a running service (agent_reasoning.mcp_stdio);
it imports neither torch nor the app.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn

from reasoning_service.logging_setup import configure_logging
from reasoning_service.settings import Settings

HEADER_BLOCK_LIMIT = 64 * 1024  # bytes of request line and headers the transport buffers at most


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT: /readyz turns 503 at once, in-flight requests finish, then the lifespan drains the engines."""

    def handle_exit(self, sig: int, frame: object) -> None:
        """Mark the service draining (so /readyz answers 503) before uvicorn's own shutdown."""
        state = getattr(getattr(self.config.app, "state", None), "service", None)
        if state is not None:
            state.draining = True
        super().handle_exit(sig, frame)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the service with uvicorn on $HOST:$PORT (settings from the environment), or `mcp ...`: the stdio MCP relay.

    `argv` defaults to sys.argv[1:]; `mcp` exits with the relay's status (SystemExit).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["mcp"]:
        from agent_reasoning.mcp_stdio import main as mcp_main

        raise SystemExit(mcp_main(args[1:]))
    from reasoning_service.app import create_app  # here, not at the top: it imports torch

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        timeout_keep_alive=settings.keepalive_seconds,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        access_log=False,
        log_config=None,
        lifespan="on",
        # httptools buffers a header block of any size; h11 refuses one over this (431 from the
        # HeaderLimit middleware is the clear answer below it): a bound on what one request can pin
        http="h11",
        h11_max_incomplete_event_size=HEADER_BLOCK_LIMIT,
    )
    DrainingServer(config).run()


if __name__ == "__main__":
    main()
