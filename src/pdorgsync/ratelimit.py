"""One client-side rate budget per API token, shared by every loop of the process.

PagerDuty allows 960 requests per minute per API key and answers 429 beyond
that (CONTRACT §3); its advice is to serialise calls per token. The daemon runs
a reconcile loop (bulk reads, many writes) and a webhook worker (a few writes
that page people) on the same token, so each needs to know what the other
spends. :func:`limiter_for` hands every caller with the same token the same
:class:`TokenBucketLimiter`, keyed by a hash of the token (the token itself is
never kept as a key or logged).

The bucket refills at ``per_minute / 60`` tokens per second and holds at most
``burst`` tokens, so any 60-second window admits at most
``per_minute + burst`` requests: with the defaults (900/min, burst 30) that is
930, below PagerDuty's 960, leaving room for a person using the same key.

Priorities: callers wait in one queue ordered by priority, then arrival.
``acquire("engagement")`` is served before every waiting ``acquire("reconcile")``
(and ``"normal"``), so a 2,000-department apply never delays a responder request
by more than about one token interval. Only the head of the queue sleeps until
the next token; everybody else waits on a condition, so an engagement that
arrives while a reconcile request is sleeping takes the next token.

Time and sleep are injected (a monotonic clock in seconds, and a ``sleep``)
so tests never really sleep. This module must never do I/O or hold its lock
while sleeping.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PER_MINUTE",
    "PAGERDUTY_PER_MINUTE",
    "PRIORITIES",
    "TokenBucketLimiter",
    "limiter_for",
    "reset_registry",
]

# PagerDuty's documented limit per account API key (CONTRACT §3).
PAGERDUTY_PER_MINUTE = 960
# Our default budget: under the limit even with a full burst (900 + 30 < 960).
DEFAULT_PER_MINUTE = 900
DEFAULT_BURST = 30
_EPSILON = 1e-6

# Lower rank is served first. Unknown priorities rank with "normal".
PRIORITIES: dict[str, int] = {"engagement": 0, "normal": 1, "reconcile": 2}


@dataclass(frozen=True)
class LimiterStats:
    """What a limiter has done so far (for metrics and benchmarks)."""

    granted: dict[str, int]
    waited_seconds: dict[str, float]
    max_wait_seconds: dict[str, float]
    waiting: int


class TokenBucketLimiter:
    """A thread-safe token bucket with a priority queue of waiters.

    Implements ``pagerduty.RateLimiter``: call ``acquire(priority)`` before every
    HTTP attempt.
    """

    def __init__(
        self,
        per_minute: float = DEFAULT_PER_MINUTE,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[tuple[int, int]] = []  # (rank, ticket) min-heap
        self._tickets = itertools.count()
        self._sleeping = False
        self._granted: dict[str, int] = {}
        self._waited: dict[str, float] = {}
        self._max_wait: dict[str, float] = {}
        self.per_minute = 0.0
        self.burst = 0.0
        self._tokens = 0.0
        self._updated = clock()
        self.configure(per_minute, burst=burst)
        self._tokens = self.burst

    # ---------------------------------------------------------------- settings

    def configure(self, per_minute: float, *, burst: float | None = None) -> None:
        """Change the budget; tokens already in the bucket are kept (capped at ``burst``)."""
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute}")
        if burst is None:
            burst = min(DEFAULT_BURST, max(1.0, per_minute / 30))
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        with self._cond:
            self._refill()
            self.per_minute = float(per_minute)
            self.burst = float(burst)
            self._tokens = min(self._tokens, self.burst)
            self._cond.notify_all()

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.per_minute / 60.0

    # ----------------------------------------------------------------- acquire

    def acquire(self, priority: str = "normal") -> None:
        """Block until one request may be sent; higher priorities are served first."""
        rank = PRIORITIES.get(priority, PRIORITIES["normal"])
        started = self._clock()
        with self._cond:
            ticket = (rank, next(self._tickets))
            heapq.heappush(self._queue, ticket)
            try:
                self._wait_for_turn(ticket)
            except BaseException:
                self._queue.remove(ticket)
                heapq.heapify(self._queue)
                self._cond.notify_all()
                raise
            heapq.heappop(self._queue)
            self._tokens = max(0.0, self._tokens - 1)
            waited = max(0.0, self._clock() - started)
            self._granted[priority] = self._granted.get(priority, 0) + 1
            self._waited[priority] = self._waited.get(priority, 0.0) + waited
            self._max_wait[priority] = max(self._max_wait.get(priority, 0.0), waited)
            # The next in line may be able to go right away (burst) or become the sleeper.
            self._cond.notify_all()

    def _wait_for_turn(self, ticket: tuple[int, int]) -> None:
        """Return, holding the lock, once ``ticket`` heads the queue and a token is there."""
        while True:
            if self._queue[0] == ticket:
                self._refill()
                if self._tokens >= 1 - _EPSILON:
                    return
                if not self._sleeping:
                    # A hair longer than exact, so float rounding cannot leave us
                    # a sliver short of a token and spinning on tiny sleeps.
                    self._sleep_for((1 - self._tokens) / self.rate + _EPSILON)
                    continue
            self._cond.wait()

    def _sleep_for(self, seconds: float) -> None:
        """Sleep without the lock, as the only sleeper, then wake everyone to re-check."""
        self._sleeping = True
        self._cond.release()
        try:
            self._sleep(seconds)
        finally:
            self._cond.acquire()
            self._sleeping = False
            self._cond.notify_all()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)

    # ------------------------------------------------------------- inspection

    @property
    def waiting(self) -> int:
        """How many callers are queued right now."""
        with self._cond:
            return len(self._queue)

    def stats(self) -> LimiterStats:
        with self._cond:
            return LimiterStats(
                granted=dict(self._granted),
                waited_seconds=dict(self._waited),
                max_wait_seconds=dict(self._max_wait),
                waiting=len(self._queue),
            )


# --------------------------------------------------------------------------- #
# The process-wide registry
# --------------------------------------------------------------------------- #

_registry: dict[str, TokenBucketLimiter] = {}
_registry_lock = threading.Lock()


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def limiter_for(
    token: str,
    per_minute: float | None = None,
    *,
    burst: float | None = None,
) -> TokenBucketLimiter:
    """The one limiter of this process for ``token`` (created on first use).

    ``per_minute=None`` keeps the current budget (``DEFAULT_PER_MINUTE`` for a new
    limiter); a value changes the shared budget for every holder.
    """
    key = _key(token)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = TokenBucketLimiter(per_minute or DEFAULT_PER_MINUTE, burst=burst)
            _registry[key] = limiter
            return limiter
    if (per_minute is not None and per_minute != limiter.per_minute) or (
        burst is not None and burst != limiter.burst
    ):
        limiter.configure(per_minute or limiter.per_minute, burst=burst)
    return limiter


def reset_registry() -> None:
    """Forget every limiter (tests, and a daemon reload that changes the token)."""
    with _registry_lock:
        _registry.clear()
