"""A client wrapper for fault injection: every ``PagerDutyApi`` method goes to the real
client; a test overrides the one whose answers it changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.pagerduty.api import JSON, RateLimit


class DelegatingClient:
    """Satisfies ``PagerDutyApi`` by passing each call to ``inner``."""

    def __init__(self, inner: PagerDutyClient) -> None:
        self.inner = inner

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        return self.inner.get(path, params)

    def post(self, path: str, body: Mapping[str, Any], *, idempotent: bool = False) -> JSON:
        return self.inner.post(path, body, idempotent=idempotent)

    def put(self, path: str, body: Mapping[str, Any] | None = None) -> JSON:
        return self.inner.put(path, body)

    def delete(self, path: str) -> JSON:
        return self.inner.delete(path)

    def list_all(self, path: str, params: Mapping[str, Any] | None = None) -> list[JSON]:
        return self.inner.list_all(path, params)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)

    @property
    def total_calls(self) -> int:
        return self.inner.total_calls

    @property
    def rate_limit(self) -> RateLimit | None:
        return self.inner.rate_limit
