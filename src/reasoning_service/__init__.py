"""agent-reasoning service: TRM models behind FastAPI, CloudEvents, Prometheus."""

__version__ = "0.1.0"
