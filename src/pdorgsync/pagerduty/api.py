"""The one PagerDuty client interface every module that talks to the API is typed with.

:class:`PagerDutyApi` is what observe, reconcile, the audit, the importer, doctor, the
engager, the worker and the catch-up poll may ask of a client; its one implementation
is :class:`pdorgsync.pagerduty.client.PagerDutyClient`, and tests wrap that one (fault
injection) rather than writing another. A caller that needs a method not listed here
adds it here, next to the adapter, never a private protocol of its own.

This module imports neither pdpyras nor requests: it only describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["JSON", "PagerDutyApi", "RateLimit", "RateLimiter"]

JSON = dict[str, Any]
# PagerDuty's rate-limit headers of an answer: (limit, remaining, seconds to reset or None).
RateLimit = tuple[int, int, float | None]


class PagerDutyApi(Protocol):
    """A PagerDuty REST API v2 client: generic verbs on wrapped JSON bodies.

    Every failure is a :class:`pdorgsync.errors.PagerDutyError`; retrying (and the
    temporary/permanent decision) happens inside the client, never in callers.
    """

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> JSON: ...

    def post(self, path: str, body: Mapping[str, Any], *, idempotent: bool = False) -> JSON: ...

    def put(self, path: str, body: Mapping[str, Any] | None = None) -> JSON: ...

    def delete(self, path: str) -> JSON: ...

    def list_all(self, path: str, params: Mapping[str, Any] | None = None) -> list[JSON]: ...

    def sleep(self, seconds: float) -> None:
        """Wait with the client's injected sleep (callers waiting for PagerDuty use it)."""

    @property
    def total_calls(self) -> int:
        """Every HTTP attempt since the last reset, retries included."""

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate-limit headers of the latest answer that carried them."""


class RateLimiter(Protocol):
    """A shared limiter consulted before every HTTP attempt (see issue 7).

    ``acquire`` blocks until the caller may send one request; ``priority`` lets
    interactive work (incident engagement) overtake bulk reads.
    """

    def acquire(self, priority: str) -> None: ...
