"""The state backend contract, run against both backends: SQLite (Inbox) and PostgreSQL.

Whatever ``DATABASE_URL`` selects, the receiver, worker and CLI see the same
behaviour: deduplication, claim order per incident, leases, retry/dead-letter,
the engagement ledger, recent incidents and small facts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pdorgsync.errors import InboxError
from pdorgsync.models.events import parse_envelope
from pdorgsync.state import StateStore, is_shared, open_state
from pdorgsync.state.postgres import PostgresState
from pdorgsync.state.records import DEDUPE_WINDOW, StoreResult
from pdorgsync.state.sqlite import Inbox
from tests.support.webhooks import FakeClock, envelope, example


def _store(box: StateStore, body: dict[str, Any], webhook_id: str | None = None) -> StoreResult:
    raw = json.dumps(body)
    return box.store(parse_envelope(raw), raw, webhook_id=webhook_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL-ish description of a fresh store of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("pg_url"))


def _open(where: str, clock: FakeClock) -> StateStore:
    if where.startswith("postgresql://"):
        return PostgresState(where, clock=clock)
    return Inbox(where, clock=clock)


@pytest.fixture
def box(backend: str, clock: FakeClock) -> Iterator[StateStore]:
    store = _open(backend, clock)
    yield store
    store.close()


def _incident(incident_id: str) -> dict[str, Any]:
    return {**example("incident.triggered")["event"]["data"], "id": incident_id}


def test_store_is_durable_and_visible_to_another_store(backend: str, clock: FakeClock) -> None:
    """What one store committed, a second store on the same state reads back verbatim."""
    first = _open(backend, clock)
    raw = json.dumps(example("incident.triggered"))
    result = first.store(parse_envelope(raw), raw, webhook_id="w1")
    first.close()
    second = _open(backend, clock)
    try:
        [event] = second.events()
        assert result.stored
        assert result.seq == event.seq
        assert (event.status, event.event_type, event.incident_id, event.webhook_id) == (
            "pending",
            "incident.triggered",
            "Q1X7K2M9T4B8ZD",
            "w1",
        )
        assert event.payload == raw
        assert second.get(event.event_id) == event == second.get(event.seq)
    finally:
        second.close()


def test_duplicates_by_event_id_or_webhook_id_are_stored_once(box: StateStore) -> None:
    """A redelivery (same event id, or same X-Webhook-Id) is accepted and not stored again."""
    body = example("incident.triggered")
    assert _store(box, body, "w1").stored
    assert not _store(box, body, "w2").stored
    assert _store(box, envelope(event_id="other"), "w3").stored
    assert not _store(box, envelope(event_id="third"), "w3").stored
    assert len(box.events()) == 2


def test_unhandled_types_are_kept_ignored_and_never_claimed(box: StateStore) -> None:
    _store(box, example("pagey.ping"))
    _store(box, envelope("service.brand_new_thing", event_id="x"))
    assert [e.status for e in box.events()] == ["ignored", "ignored"]
    assert box.claim() is None


def test_claim_keeps_order_per_incident_and_lets_others_pass(
    box: StateStore, clock: FakeClock
) -> None:
    """A later event of an incident waits behind an earlier one in backoff; others go on."""
    _store(box, envelope(incident=_incident("QA"), event_id="a1"))
    _store(box, envelope("incident.priority_updated", incident=_incident("QA"), event_id="a2"))
    _store(box, envelope(incident=_incident("QB"), event_id="b1"))
    first = box.claim()
    assert first is not None
    assert (first.event_id, first.attempts) == ("a1", 1)
    box.fail(first.seq, "HTTP 429", retry_at=clock() + timedelta(seconds=30))
    nxt = box.claim()
    assert nxt is not None
    assert nxt.event_id == "b1"
    assert box.claim() is None  # a2 must not overtake a1
    clock.advance(31)
    again = box.claim()
    assert again is not None
    assert (again.event_id, again.attempts) == ("a1", 2)
    box.complete(again.seq)
    last = box.claim()
    assert last is not None
    assert last.event_id == "a2"


def test_an_incident_with_a_claimed_event_is_not_claimed_again(box: StateStore) -> None:
    """While one event of an incident is claimed, neither it nor a later one is handed out."""
    _store(box, envelope(incident=_incident("QA"), event_id="a1"))
    _store(box, envelope("incident.acknowledged", incident=_incident("QA"), event_id="a2"))
    assert box.claim() is not None
    assert box.claim() is None


def test_an_expired_lease_is_taken_back(box: StateStore, clock: FakeClock) -> None:
    """A claim whose holder stopped (lease ran out) is handed out again, attempt counted."""
    _store(box, envelope(event_id="a"))
    held = box.claim(lease=10)
    assert held is not None
    clock.advance(5)
    assert box.claim(lease=10) is None
    clock.advance(6)
    again = box.claim(lease=10)
    assert again is not None
    assert (again.seq, again.attempts) == (held.seq, 2)


def test_release_claims_hands_back_this_stores_claims(box: StateStore) -> None:
    _store(box, envelope(event_id="a"))
    assert box.claim() is not None
    assert box.release_claims() == 1
    assert box.claim() is not None


def test_fail_without_retry_is_dead_and_retry_requeues(box: StateStore) -> None:
    """A permanent failure dead-letters the event; retry puts it back with a fresh budget."""
    _store(box, envelope(event_id="a"))
    event = box.claim()
    assert event is not None
    box.fail(event.seq, "HTTP 404 not found", retry_at=None)
    [dead] = box.events(statuses=["dead"])
    assert (dead.last_error, box.stats().dead) == ("HTTP 404 not found", 1)
    assert box.claim() is None
    again = box.retry("a")
    assert (again.status, again.attempts) == ("pending", 0)
    assert box.claim() is not None
    with pytest.raises(InboxError, match="no event"):
        box.retry(999)


def test_completed_events_cannot_be_retried(box: StateStore) -> None:
    _store(box, envelope(event_id="a"))
    event = box.claim()
    assert event is not None
    box.complete(event.seq, "ignored", note="our own change")
    [stored] = box.events()
    assert (stored.status, stored.last_error) == ("ignored", "our own change")
    with pytest.raises(InboxError, match="only dead or pending"):
        box.retry(stored.seq)


def test_events_filters_and_limit_keeps_newest(box: StateStore) -> None:
    for n in range(5):
        _store(box, envelope(incident=_incident(f"Q{n % 2}"), event_id=f"e{n}"))
    assert [e.event_id for e in box.events(limit=2)] == ["e3", "e4"]
    assert [e.event_id for e in box.events(incident_id="Q1")] == ["e1", "e3"]
    assert len(box.events(statuses=["pending"])) == 5
    assert box.events(statuses=["dead", "done"]) == []


def test_stats_and_purge(box: StateStore, clock: FakeClock) -> None:
    """Depth and age for the metrics; purge removes old finished events, never pending ones."""
    _store(box, envelope(event_id="old"))
    clock.advance(120)
    _store(box, envelope(incident=_incident("QZ"), event_id="new"))
    stats = box.stats()
    assert (stats.pending, stats.oldest_pending_age, stats.dead) == (2, 120.0, 0)
    first = box.claim()
    assert first is not None
    box.complete(first.seq)
    assert box.purge(statuses=["pending"]) == 0
    # Dedupe keys stay DEDUPE_WINDOW whatever purge asks (issue 15): past it, they go.
    assert box.purge(statuses=["done"], older_than=clock() - timedelta(seconds=60)) == 0
    clock.advance(DEDUPE_WINDOW.total_seconds())
    assert box.purge(statuses=["done"], older_than=clock() - timedelta(seconds=60)) == 1
    assert [e.event_id for e in box.events()] == ["new"]


def test_ledger_is_unique_per_incident_department_and_as(box: StateStore) -> None:
    """The first record wins; the same department may be engaged once per role."""
    assert not box.has_engagement("Q1", "support", "responder")
    assert box.record_engagement("Q1", "support", "responder", policy="p", event_id="e1")
    assert not box.record_engagement("Q1", "support", "responder", policy="other", event_id="e2")
    assert box.record_engagement("Q1", "support", "subscriber", policy="p", event_id="e1")
    assert box.record_engagement(
        "Q2", "support", "responder", policy="p", event_id=None, details={"x": 1}
    )
    assert box.has_engagement("Q1", "support", "responder")
    [first, second] = box.engagements("Q1")
    assert (first.policy, first.event_id, first.as_) == ("p", "e1", "responder")
    assert second.as_ == "subscriber"
    assert [r.details for r in box.engagements("Q2")] == [{"x": 1}]
    assert len(box.engagements()) == 3


def test_concurrent_ledger_writers_record_once(backend: str, clock: FakeClock) -> None:
    """Eight threads (over two stores) racing on one engagement: exactly one wins."""
    stores = [_open(backend, clock) for _ in range(2)]
    wins: list[bool] = []
    lock = threading.Lock()

    def race(store: StateStore) -> None:
        won = store.record_engagement("Q9", "exec", "subscriber", policy="p", event_id=None)
        with lock:
            wins.append(won)

    threads = [threading.Thread(target=race, args=(stores[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(wins) == [False] * 7 + [True]
        assert len(stores[0].engagements("Q9")) == 1
    finally:
        for store in stores:
            store.close()


def test_recent_incidents_window_and_resolution(box: StateStore, clock: FakeClock) -> None:
    box.record_incident_open("Q1", service_id="S1", service_name="API", triggered_at=clock())
    clock.advance(600)
    box.record_incident_open("Q2", service_id="S2", service_name="Web", triggered_at=clock())
    box.record_incident_open("Q1", service_id="S1b", service_name="API2", triggered_at=clock())
    rows = box.open_incidents(window=timedelta(minutes=60))
    assert [(r.incident_id, r.service_id) for r in rows] == [("Q1", "S1b"), ("Q2", "S2")]
    assert rows[0].triggered_at == clock() - timedelta(seconds=600)  # the first trigger wins
    box.record_incident_resolved("Q2")
    assert [r.incident_id for r in box.open_incidents(window=timedelta(minutes=5))] == []


def test_small_facts_are_upserted(box: StateStore) -> None:
    assert box.get_state("poll_cursor") is None
    box.set_state("poll_cursor", "a")
    box.set_state("poll_cursor", "b")
    assert box.get_state("poll_cursor") == "b"


def test_open_state_picks_the_backend_from_settings(backend: str, tmp_path: Path) -> None:
    """No DATABASE_URL: the SQLite file at STATE_PATH; postgresql://: the shared database."""
    from pdorgsync.settings import load_settings

    if backend.startswith("postgresql://"):
        settings = load_settings(database_url=backend, state_path=tmp_path / "unused.db")
    else:
        settings = load_settings(state_path=Path(backend))
    with open_state(settings) as store:
        assert is_shared(store) == backend.startswith("postgresql://")
        store.set_state("k", "v")
        assert store.get_state("k") == "v"
    assert not (tmp_path / "unused.db").exists()


# -- catch-up poll and retention (issue 14), on both backends ---------------------------------


def _handled(box: StateStore, incident_id: str, status: str, priority: str, at: Any) -> None:
    box.record_handled(
        incident_id, status=status, priority=priority, urgency="high", service_id="PSVC",
        observed_at=at,
    )  # fmt: skip


def test_handled_state_keeps_the_newest_observation(box: StateStore, clock: FakeClock) -> None:
    """What the poll compares with: a later observation wins, an older one never does."""
    first = clock()
    _handled(box, "Q1", "triggered", "P2", first)
    _handled(box, "Q1", "acknowledged", "P1", first + timedelta(minutes=5))
    _handled(box, "Q1", "triggered", "P3", first + timedelta(minutes=1))  # stale: ignored
    found = box.handled_incidents(["Q1", "Q-unknown"])
    assert list(found) == ["Q1"]
    assert (found["Q1"].status, found["Q1"].priority) == ("acknowledged", "P1")


def test_pending_incidents_names_only_those_with_an_event_waiting(box: StateStore) -> None:
    """The poll leaves an incident whose event is still queued to that event."""
    _store(box, envelope(incident=_incident("QA"), event_id="a1"))
    _store(box, envelope(incident=_incident("QB"), event_id="b1"))
    claimed = box.claim()
    assert claimed is not None
    box.complete(claimed.seq)
    assert box.pending_incidents(["QA", "QB", "QC"]) == {"QB"}


def test_retention_keeps_the_ledger_of_open_incidents(box: StateStore, clock: FakeClock) -> None:
    """Old events go; the ledger stays while the incident is open, and goes once it has
    been resolved for longer than the retention with no event left."""
    _store(box, envelope(incident=_incident("QOPEN"), event_id="o1"))
    _store(box, envelope(incident=_incident("QDONE"), event_id="d1"))
    for _ in range(2):
        claimed = box.claim()
        assert claimed is not None
        box.complete(claimed.seq)
    box.record_engagement("QOPEN", "support", "responder", policy="p", event_id="o1")
    box.record_engagement("QDONE", "support", "responder", policy="p", event_id="d1")
    _handled(box, "QOPEN", "triggered", "P1", clock())
    _handled(box, "QDONE", "resolved", "P1", clock())
    clock.advance(40 * 86400)
    result = box.purge_expired(clock() - timedelta(days=30))
    assert (result.events, result.ledger, result.incidents) == (2, 1, 1)
    assert [r.incident_id for r in box.engagements()] == ["QOPEN"]
    assert list(box.handled_incidents(["QOPEN", "QDONE"])) == ["QOPEN"]


def test_contention_is_not_counted_as_an_attempt(box: StateStore) -> None:
    """fail(uncount=True) gives the claim back: claims still find a poison event."""
    _store(box, envelope(event_id="c1"))
    claimed = box.claim()
    assert claimed is not None
    assert claimed.attempts == 1
    box.fail(claimed.seq, "state store busy", retry_at=box.clock(), uncount=True)
    again = box.claim()
    assert again is not None
    assert again.attempts == 1
    box.fail(again.seq, "503 from PagerDuty", retry_at=box.clock())
    third = box.claim()
    assert third is not None
    assert third.attempts == 2
