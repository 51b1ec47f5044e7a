"""A state store that fails while an event is handled: the event is retried, never dead.

With PostgreSQL the database may go away for a moment while a replica works;
an ``InboxError`` then is temporary (``errors.is_temporary``) like a 503 from
PagerDuty, and the event is engaged once the store answers again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdorgsync.errors import InboxError, is_temporary
from pdorgsync.models.events import parse_envelope
from pdorgsync.sandbox import Sandbox
from pdorgsync.state.sqlite import Inbox
from tests.support.engagement import (
    PACK_P1_TAGS,
    applied_seed,
    client_for,
    create_incident,
    engaged_state,
    example_worker,
    note_tags,
    serving_sandbox,
    webhook_data,
)
from tests.support.webhooks import FakeClock, envelope


class _FlakyInbox(Inbox):
    """The real SQLite inbox, whose ledger read fails ``failures`` times (store away)."""

    failures = 0

    def has_engagement(self, incident_id: str, department: str, as_: str) -> bool:
        if self.failures:
            self.failures -= 1
            raise InboxError("database postgres@db:5432/app: server closed the connection")
        return super().has_engagement(incident_id, department, as_)


@pytest.fixture
def box() -> Iterator[Sandbox]:
    yield from serving_sandbox(applied_seed(["support", "executive", "finance", "sales"]))


def test_store_failure_while_handling_is_retried_then_engaged_once(
    box: Sandbox, tmp_path: Path
) -> None:
    assert box.base_url is not None
    assert is_temporary(InboxError("x"))
    clock = FakeClock()
    pd = client_for(box.base_url)
    incident = create_incident(pd, "Checkout API down")
    inbox = _FlakyInbox(tmp_path / "state.db", clock=clock)
    worker = example_worker(inbox, pd, clock=clock)
    try:
        raw = json.dumps(envelope(incident=webhook_data(incident)))
        inbox.store(parse_envelope(raw), raw)
        inbox.failures = 1
        assert worker.drain() == 1
        [event] = inbox.events()
        assert (event.status, event.attempts) == ("pending", 1)
        assert "server closed the connection" in (event.last_error or "")
        clock.advance(3600)
        assert worker.drain() == 1
        [event] = inbox.events()
        assert event.status == "done"
        eps, teams, notes = engaged_state(box, incident["id"])
        assert len(eps) == 1
        assert len(teams) == 3
        assert notes == 1  # one note per incident and pass (SPEC §2)
        assert note_tags(box, incident["id"]) == PACK_P1_TAGS
    finally:
        inbox.close()
