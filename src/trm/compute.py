"""One thread for all the torch work of a process: every engine's steps, and model loading.

Why one: on CPU, PyTorch parallelises an op with OpenMP, and OpenMP gives every thread that runs a
parallel op its own team of worker threads. Two teams on the same cores slow each other down even
when one of them is idle: with an idle engine thread beside it, a busy engine stepped 1.6-1.9x
slower on the 2-core machine here (libgomp stops spinning and sleeps between ops as soon as it
manages more threads than there are cores). So the engines of a process share this one thread,
which steps them in turn, and model loading runs on it too (`call`). Other threads only queue
work; a process that also runs torch ops on its main thread should give that thread one OpenMP
thread (`torch.set_num_threads(1)` before its first op) and this one the rest (`threads`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import torch

if TYPE_CHECKING:
    from trm.engine import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")


class ComputeThread:
    """The one thread that steps a process's engines in turn and runs queued calls (`call`) between their steps.

    `threads`: torch (OpenMP) threads for its ops, 0 for torch's default. Started lazily by `add`/`call`; an engine whose
    step raises is crashed (its callers get the error) and the thread goes on.
    """

    def __init__(self, threads: int = 0, name: str = "trm-compute") -> None:
        self.threads = threads  # torch threads for this thread's ops; 0: torch's default
        self.name = name
        # guards this thread's engine list and calls, and wakes it; each engine has a lock of its own
        # (taken inside this one, never the other way round)
        self._cond = threading.Condition()
        self._engines: list[Engine] = []
        self._calls: collections.deque[tuple[Callable[[], Any], concurrent.futures.Future]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # --- lifecycle ---

    def start(self) -> ComputeThread:
        """Start the thread if it is not running; returns self."""
        with self._cond:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the calls already queued; engines must have been removed (Engine.stop)."""
        with self._cond:
            thread, self._stopping = self._thread, True
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._thread = None

    def add(self, engine: Engine) -> None:
        """Step `engine` on this thread from now on (idempotent); starts the thread."""
        with self._cond:
            if engine not in self._engines:
                self._engines.append(engine)
            self._cond.notify_all()
        self.start()

    def wake(self) -> None:
        """New work for an engine: wake the thread if it waits."""
        with self._cond:
            self._cond.notify_all()

    def remove(self, engine: Engine) -> None:
        """Stop stepping `engine`; a no-op if it is not here."""
        with self._cond:
            if engine in self._engines:
                self._engines.remove(engine)

    def on_thread(self) -> bool:
        """Whether the caller runs on this thread."""
        return threading.current_thread() is self._thread

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        """Run fn(*args, **kwargs) on this thread, between engine steps; returns its future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self.on_thread():  # from inside a call: run it now rather than wait on ourselves
            _run(lambda: fn(*args, **kwargs), future)
            return future
        self.start()
        with self._cond:
            self._calls.append((lambda: fn(*args, **kwargs), future))
            self._cond.notify_all()
        return future

    # --- the thread ---

    def _loop(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        while True:
            with self._cond:
                while not self._stopping and not self._calls and not any(e.has_work() for e in self._engines):
                    self._cond.wait(timeout=0.5)
                if self._stopping and not self._calls:
                    return
                calls = list(self._calls)
                self._calls.clear()
                engines = list(self._engines)
            for fn, future in calls:
                _run(fn, future)
            # one supervision step for each engine with work, in turn
            for engine in engines:
                try:
                    with torch.inference_mode():
                        engine.step()
                except Exception as e:  # never leave callers hanging on a broken engine
                    log.exception("engine %s failed", engine.name)
                    engine.crash(e)


def _run(fn: Callable[[], Any], future: concurrent.futures.Future) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn())
    except BaseException as e:  # handed to the caller through the future
        future.set_exception(e)
