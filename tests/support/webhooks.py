"""Shared helpers for the webhook/inbox/worker tests: example deliveries and signing."""

from __future__ import annotations

import copy
import json
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.exceptions import StarletteDeprecationWarning

from pdorgsync.webhooks import sign
from tests.support.paths import TEST_DATA

# Starlette 1.x warns at import that its TestClient wants httpx2; the httpx it
# finds works, and the warning (an error under our filterwarnings) is about the
# test client only, never the served app.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["TestClient"]

# PagerDuty's example deliveries, vendored from shared/pagerduty/webhooks/ (with index.json).
WEBHOOK_DIR = TEST_DATA / "webhooks"
INDEX = json.loads((WEBHOOK_DIR / "index.json").read_text())
SECRET: str = INDEX["test_secret"]
OLD_SECRET: str = INDEX["rotation_old_secret"]


def example_bytes(name: str) -> bytes:
    """The exact bytes of an example delivery (signatures in index.json match them)."""
    return (WEBHOOK_DIR / f"{name}.json").read_bytes()


def example_headers(name: str) -> dict[str, str]:
    for delivery in INDEX["deliveries"]:
        if delivery["file"] == f"{name}.json":
            return dict(delivery["headers"])
    raise KeyError(name)


def example(name: str) -> dict[str, Any]:
    value = json.loads(example_bytes(name))
    assert isinstance(value, dict)
    return value


def envelope(
    event_type: str = "incident.triggered",
    *,
    incident: dict[str, Any] | None = None,
    event_id: str | None = None,
    agent: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """A V3 envelope built from the triggered example, with the given incident data."""
    base = example("incident.triggered")
    event = base["event"]
    event["id"] = event_id or uuid.uuid4().hex
    event["event_type"] = event_type
    # Now by default: the receiver refuses deliveries older than the dedupe window.
    event["occurred_at"] = (occurred_at or datetime.now(UTC)).isoformat()
    if agent is not None:
        event["agent"] = agent
    if incident is not None:
        event["data"] = copy.deepcopy(incident)
    return base


def signed(body: dict[str, Any] | bytes, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign(raw, secret),
        "X-Webhook-Id": str(uuid.uuid4()),
        "User-Agent": "PagerDuty-Webhook/V3.0",
    }


class FakeClock:
    """A settable clock for inbox/worker tests (never sleeps)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 14, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
