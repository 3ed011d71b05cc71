"""GET /v1/stats: the live numbers the web page draws, read from the service's own counters.

Requests per second come from the `agent_reasoning_requests_total` counter (every reasoning request,
whatever its outcome), sampled at each call; busy slots and queue depth are read from each engine.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from fastapi import APIRouter, Request

from reasoning_service.deps import Authorized, State
from reasoning_service.metrics import Metrics

router = APIRouter(dependencies=[Authorized])

WINDOW_SECONDS = 10.0


class RateWindow:
    """Rate of a growing total over roughly the last `window` seconds, from samples taken when asked.

    `rate(now, total)` records the sample and returns (per second, seconds covered), or (None, 0.0) on
    the first call. Between calls the service keeps nothing running: with no caller for a while the
    rate covers the whole gap (and says so in its seconds covered).
    """

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self.samples: deque[tuple[float, float]] = deque()

    def rate(self, now: float, total: float) -> tuple[float | None, float]:
        """Requests per second over the last `window` seconds (None until two samples span time), and the total."""
        self.samples.append((now, total))
        # keep the newest sample at least `window` old as the base, drop the ones before it
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        t0, v0 = self.samples[0]
        span = now - t0
        if span <= 0:
            return None, 0.0
        return (total - v0) / span, span


def requests_total(metrics: Metrics) -> float:
    """Every reasoning request counted so far (all tasks, all outcomes)."""
    return sum(s.value for family in metrics.requests.collect() for s in family.samples if s.name.endswith("_total"))


@router.get("/v1/stats", tags=["operations"], summary="Requests per second, busy slots per model, queue depth")
async def stats(request: Request, state: State) -> dict[str, Any]:
    """The live panel's numbers: requests per second, and busy slots and queue depth per model."""
    window: RateWindow = getattr(request.app.state, "stats_window", None) or RateWindow()
    request.app.state.stats_window = window
    total = requests_total(state.metrics)
    rate, span = window.rate(time.monotonic(), total)
    models = [
        {"name": m.name, "task": m.task.name, "slots": m.engine.slots, "busy_slots": m.engine.busy_slots(), "queue_depth": m.engine.queue_depth()}
        for m in state.registry.models.values()
    ]
    return {
        "ready": state.ready,
        "requests_total": total,
        "requests_per_second": None if rate is None else round(rate, 3),
        "rate_seconds": round(span, 3),
        "queue_depth": sum(m["queue_depth"] for m in models),
        "models": models,
    }
