"""Monotonic clocks for rate-limiter tests: they move only when someone sleeps on them."""

from __future__ import annotations

import threading
import time


class TickClock:
    """A thread-safe monotonic clock (seconds) that only moves when a caller sleeps on it.

    ``yield_thread``: each sleep also lets other threads in, as a real sleep would.
    """

    def __init__(self, start: float = 0.0, *, yield_thread: bool = False) -> None:
        self.now = start
        self.yield_thread = yield_thread
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)
        if self.yield_thread:
            time.sleep(0)
