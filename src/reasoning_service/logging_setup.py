"""Structured logs: one JSON object per line, with the request id of the request being served."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ms), level, logger, message, request_id, the record's `fields`, exception."""
    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines: time, level, logger, message, then request_id and `fields` as key=value."""
    def format(self, record: logging.LogRecord) -> str:
        """The record as a line of text (plus the traceback, if any)."""
        rid = request_id.get()
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        base = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        return " ".join(x for x in (base, f"request_id={rid}" if rid else "", fields) if x) + (
            "\n" + self.formatException(record.exc_info) if record.exc_info else ""
        )


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    """Send every log record to stdout as `fmt` ("json", else text) at `level`; uvicorn's loggers go through it too.

    uvicorn's access log is switched off: the request middleware logs each request once.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request once
