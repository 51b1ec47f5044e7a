"""What a client remembers of its own calls: attempts per (method, route) for the API
budget commands report, statuses, PagerDuty's latest rate-limit headers, and the ids
it created recently (a 404 naming one is read-after-write lag, see
``failures.should_retry``). Thread-safe: a daemon's threads share one client.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pdorgsync.pagerduty.api import RateLimit
from pdorgsync.pagerduty.routes import ids_in

__all__ = ["FRESH_SECONDS", "CallLedger", "rate_limit_headers"]

# How long after creating an object a 404 for it counts as PagerDuty's read-after-
# write lag (seconds to a minute in the reports cited at failures.should_retry).
FRESH_SECONDS = 300.0


def rate_limit_headers(headers: Mapping[str, str]) -> RateLimit | None:
    """``ratelimit-limit`` / ``-remaining`` / ``-reset`` (developer docs, "Rate Limits")."""
    try:
        limit = int(headers["ratelimit-limit"])
        remaining = int(headers["ratelimit-remaining"])
    except (KeyError, ValueError):
        return None
    try:
        reset: float | None = float(headers["ratelimit-reset"])
    except (KeyError, ValueError):
        reset = None
    return limit, remaining, reset


class CallLedger:
    """Counts and memory of one client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.status_counts: Counter[int] = Counter()
        self.rate_limit: RateLimit | None = None
        self._created: dict[str, float] = {}  # id -> monotonic time of its create

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.status_counts.clear()

    def attempt(self, method: str, route: str) -> None:
        with self._lock:
            self.calls[(method, route)] += 1

    def answer(self, status: int, headers: Mapping[str, str]) -> None:
        seen_limit = rate_limit_headers(headers)
        with self._lock:
            self.status_counts[status] += 1
            if seen_limit is not None:
                self.rate_limit = seen_limit

    def remember_created(self, data: Mapping[str, Any]) -> None:
        """The ids of a POST answer's objects (``{"team": {"id": …}}``)."""
        ids = {
            str(value["id"])
            for value in data.values()
            if isinstance(value, dict) and isinstance(value.get("id"), str)
        }
        if ids:
            with self._lock:
                now = time.monotonic()
                self._created.update(dict.fromkeys(ids, now))

    def mentions_created(self, path: str, body: Mapping[str, Any] | None) -> bool:
        """True if the request names an object created within ``FRESH_SECONDS``."""
        with self._lock:
            created = self._fresh_ids()
        if not created:
            return False
        segments = set(path.split("?", 1)[0].strip("/").split("/"))
        if segments & created:
            return True
        return body is not None and bool(ids_in(body) & created)

    def _fresh_ids(self) -> set[str]:
        """Ids created within ``FRESH_SECONDS`` (caller holds the lock); older ones are
        forgotten: a 404 for them is a real one, and a daemon's set stays small."""
        horizon = time.monotonic() - FRESH_SECONDS
        for object_id in [i for i, at in self._created.items() if at < horizon]:
            del self._created[object_id]
        return set(self._created)
