"""Fixtures of the client tests; the harness itself is in client_harness.py."""

from __future__ import annotations

import pytest
from client_harness import Harness


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Harness:
    return Harness(request.param)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client reads these; the machine running the tests must not steer them."""
    for name in ("AGENT_REASONING_URL", "AGENT_REASONING_TOKEN", "K_SINK"):
        monkeypatch.delenv(name, raising=False)
