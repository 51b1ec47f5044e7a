"""One API budget per token for every replica: a token bucket row in PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pdorgsync.errors import InboxError

if TYPE_CHECKING:
    from pdorgsync.state.postgres import PostgresState

__all__ = ["SharedBudget"]


class SharedBudget:
    """One token bucket per API token in the database, shared by every replica.

    Implements ``pagerduty.RateLimiter``. The bucket row (keyed by a hash of the
    token, never the token) refills at ``per_minute / 60`` per second up to
    ``burst``, by the database's clock, so any 60 s window admits at most
    ``per_minute + burst`` requests whatever the number of replicas.

    Engagement requests come first: they may take any token, while every other
    priority leaves ``reserve`` tokens in the bucket. A reconcile loop that
    drains the budget therefore stops short, and a responder request finds a
    token at once. Waiting is a sleep (injected) outside any transaction.
    If the database cannot be reached the request is not sent, and an
    ``InboxError`` (temporary) says so (the worker retries the event later).
    """

    def __init__(
        self,
        state: PostgresState,
        token: str,
        per_minute: float,
        *,
        burst: float | None = None,
        reserve: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_step: float = 1.0,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute}")
        self.state = state
        self.key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        self.per_minute = float(per_minute)
        self.rate = self.per_minute / 60.0
        self.burst = float(burst if burst is not None else min(30.0, max(1.0, per_minute / 30)))
        self.reserve = float(reserve if reserve is not None else max(1.0, self.burst / 3))
        self.sleep = sleep
        self.max_wait_step = max_wait_step
        self.granted: dict[str, int] = {}

    def _need(self, priority: str) -> float:
        return 1.0 if priority == "engagement" else 1.0 + min(self.reserve, self.burst - 1.0)

    def try_acquire(self, priority: str = "normal") -> float:
        """Take one token if there is one for this priority: 0.0, else seconds to wait."""
        need = self._need(priority)
        try:
            with self.state._tx() as conn:
                conn.execute(
                    "INSERT INTO rate_budget (key, tokens, updated_at)"
                    " VALUES (%s, %s, extract(epoch FROM clock_timestamp()))"
                    " ON CONFLICT (key) DO NOTHING",
                    (self.key, self.burst),
                )
                row = conn.execute(
                    "SELECT tokens, updated_at, extract(epoch FROM clock_timestamp())::float8"
                    " AS now FROM rate_budget WHERE key = %s FOR UPDATE",
                    (self.key,),
                ).fetchone()
                assert row is not None  # inserted above
                now = float(row["now"])
                elapsed = max(0.0, now - float(row["updated_at"]))
                tokens = min(self.burst, float(row["tokens"]) + elapsed * self.rate)
                wait = 0.0
                if tokens >= need - 1e-9:
                    tokens -= 1.0
                else:
                    wait = (need - tokens) / self.rate
                conn.execute(
                    "UPDATE rate_budget SET tokens = %s, updated_at = %s WHERE key = %s",
                    (tokens, max(now, float(row["updated_at"])), self.key),
                )
        except InboxError as exc:
            # Not a PagerDuty error, and not retried inside the client: with the database
            # away this replica's claims cannot be renewed, so the pass must stop now (the
            # worker retries the event durably). Waiting here and sending later could race
            # another replica that took the expired claim over and read the incident first.
            raise InboxError(f"shared API budget unavailable, request not sent: {exc}") from None
        if wait == 0.0:
            self.granted[priority] = self.granted.get(priority, 0) + 1
        return wait

    def acquire(self, priority: str = "normal") -> None:
        """Block until this process may send one request on the shared budget."""
        while True:
            wait = self.try_acquire(priority)
            if wait == 0.0:
                return
            self.sleep(min(self.max_wait_step, wait + 1e-3))
