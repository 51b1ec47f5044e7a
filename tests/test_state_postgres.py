"""What only the PostgreSQL backend does: replicas side by side on one database.

Claims across stores (no two replicas on one incident, order kept), concurrent
starts migrating one schema, the reconcile leader's advisory lock, the shared
API budget, and clear errors for a bad or unreachable DATABASE_URL.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import psycopg
import pytest

from pdorgsync.errors import ConfigError, InboxError, is_temporary
from pdorgsync.models.events import parse_envelope
from pdorgsync.state.postgres import (
    SCHEMA_VERSION,
    AdvisoryLeader,
    PostgresState,
    SharedBudget,
)
from tests.support.serving import free_port
from tests.support.webhooks import FakeClock, envelope, example


def _incident(incident_id: str) -> dict[str, Any]:
    return {**example("incident.triggered")["event"]["data"], "id": incident_id}


def _store(box: PostgresState, event_id: str, incident_id: str) -> None:
    raw = json.dumps(envelope(incident=_incident(incident_id), event_id=event_id))
    box.store(parse_envelope(raw), raw)


def test_concurrent_starts_migrate_once(pg_url: str) -> None:
    """Four replicas starting together on an empty database: one schema, version recorded once."""
    errors: list[BaseException] = []
    stores: list[PostgresState] = []

    def start() -> None:
        try:
            stores.append(PostgresState(pg_url))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM pdorgsync_schema").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_replicas_never_work_on_one_incident_at_once_and_keep_its_order(pg_url: str) -> None:
    """Two stores, three worker threads each, 60 events of 6 incidents: every event handled
    once, each incident's events in arrival order, never two holders of one incident."""
    replicas = [PostgresState(pg_url), PostgresState(pg_url)]
    for n in range(60):
        _store(replicas[0], f"e{n:02d}", f"Q{n % 6}")
    busy: set[str] = set()
    handled: dict[str, list[str]] = defaultdict(list)
    overlaps: list[str] = []
    lock = threading.Lock()

    def work(store: PostgresState) -> None:
        idle = 0
        while idle < 20:
            event = store.claim(lease=60)
            if event is None:
                idle += 1
                time.sleep(0.005)
                continue
            idle = 0
            incident = event.incident_id or ""
            with lock:
                if incident in busy:
                    overlaps.append(incident)
                busy.add(incident)
            time.sleep(0.002)  # the engagement's API calls
            with lock:
                busy.discard(incident)
                handled[incident].append(event.event_id)
            store.complete(event.seq)

    threads = [threading.Thread(target=work, args=(replicas[n % 2],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert overlaps == []
        assert sum(len(v) for v in handled.values()) == 60
        for incident, events in handled.items():
            assert events == sorted(events), incident
        assert replicas[1].stats().pending == 0
    finally:
        for store in replicas:
            store.close()


def test_a_dead_replicas_claim_is_taken_back_after_its_lease(pg_url: str) -> None:
    """A replica that stops renewing (killed) loses its claim once the lease runs out;
    a live replica renews its own lease, and a late complete() by the old holder is ignored."""
    clock = FakeClock()
    dead = PostgresState(pg_url, clock=clock, claim_lease=20, renew_every=3600)
    alive = PostgresState(pg_url, clock=clock, claim_lease=20, renew_every=3600)
    try:
        _store(dead, "a", "Q1")
        held = dead.claim()
        assert held is not None
        clock.advance(15)
        assert alive.claim() is None  # lease still running
        clock.advance(6)
        taken = alive.claim()
        assert taken is not None
        assert (taken.seq, taken.attempts) == (held.seq, 2)
        clock.advance(15)
        assert alive.renew_claims() == 1  # what the renewer thread does every few seconds
        clock.advance(15)
        assert dead.claim() is None  # renewed: still held by `alive`
        dead.complete(held.seq)  # the old holder wakes up: must not finish another's work
        assert [e.status for e in alive.events()] == ["pending"]
        alive.complete(taken.seq)
        assert [e.status for e in alive.events()] == ["done"]
    finally:
        dead.close()
        alive.close()


def test_a_claim_whose_result_was_lost_in_an_outage_is_handed_back(
    pg_url: str, pg_cluster: Any
) -> None:
    """complete() fails while the database is away: once it is back, the renewer hands
    the claim back (nothing lost, no restart) instead of renewing it for ever."""
    clock = FakeClock()
    box = PostgresState(pg_url, clock=clock, claim_lease=20, renew_every=5, timeout=0.5)
    other = PostgresState(pg_url, clock=clock)
    try:
        _store(box, "a", "Q1")
        held = box.claim()
        assert held is not None
        pg_cluster.stop()
        try:
            with pytest.raises(InboxError):
                box.complete(held.seq)
        finally:
            pg_cluster.start()
        clock.advance(6)  # one renewal period later, well inside the 20 s lease
        assert box.renew_claims() == 0
        again = other.claim()
        assert again is not None
        assert (again.seq, again.attempts) == (held.seq, 2)
    finally:
        box.close()
        other.close()


def test_release_claims_never_hands_back_another_replicas_claims(pg_url: str) -> None:
    first, second = PostgresState(pg_url), PostgresState(pg_url)
    try:
        _store(first, "a", "Q1")
        assert first.claim() is not None
        assert second.release_claims() == 0
        assert second.claim() is None
        assert first.release_claims() == 1
        assert second.claim() is not None
    finally:
        first.close()
        second.close()


def test_one_leader_and_takeover_when_its_session_dies(pg_url: str) -> None:
    """Exactly one of two candidates leads; when the leader's connection is killed
    (as when its process is SIGKILLed) the other takes over on its next round."""
    changes: list[tuple[str, bool]] = []
    a = AdvisoryLeader(pg_url, on_change=lambda v: changes.append(("a", v)))
    b = AdvisoryLeader(pg_url, on_change=lambda v: changes.append(("b", v)))
    try:
        assert a.step() is True
        assert b.step() is False
        assert (a.is_leader(), b.is_leader()) == (True, False)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE application_name = 'pdorgsync-leader' AND pid IN"
                " (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"
            )
        assert b.step() is True
        assert a.step() is False  # its connection is gone: it knows it no longer leads
        assert a.step() is False  # reconnected, but the lock is b's
        b.stop()  # a clean stop releases the lock at once
        assert a.step() is True
    finally:
        a.stop()
        b.stop()
    assert ("a", True) in changes
    assert ("b", True) in changes


def test_shared_budget_holds_every_replica_under_the_budget(pg_url: str) -> None:
    """Two replicas, two threads each, hammering one token's budget for ~2 s: the total
    granted stays within rate x time + burst, and both replicas got a share."""
    stores = [PostgresState(pg_url), PostgresState(pg_url)]
    per_minute, burst = 1200, 5  # 20 per second
    budgets = [SharedBudget(s, "tok", per_minute, burst=burst, reserve=2) for s in stores]
    granted = [0, 0]
    stop = time.monotonic() + 2.0
    lock = threading.Lock()

    def spend(index: int, priority: str) -> None:
        while time.monotonic() < stop:
            budgets[index].acquire(priority)
            with lock:
                granted[index] += 1

    threads = [
        threading.Thread(target=spend, args=(n % 2, "engagement" if n < 2 else "reconcile"))
        for n in range(4)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = time.monotonic() - started
    try:
        total = sum(granted)
        assert total <= per_minute / 60 * elapsed + burst + 1
        assert total >= per_minute / 60 * 1.0  # it did let requests through
        assert min(granted) > 0
    finally:
        for store in stores:
            store.close()


def test_engagements_find_a_token_while_reconcile_drains_the_budget(pg_url: str) -> None:
    """Reconcile requests leave the reserve; an engagement request takes it at once."""
    store = PostgresState(pg_url)
    slept: list[float] = []
    budget = SharedBudget(store, "tok", 60, burst=4, reserve=2, sleep=slept.append)
    try:
        assert [budget.try_acquire("reconcile") for _ in range(2)] == [0.0, 0.0]
        assert budget.try_acquire("reconcile") > 0.5  # only the reserve is left
        assert budget.try_acquire("engagement") == 0.0
        assert budget.try_acquire("engagement") == 0.0
        assert budget.try_acquire("engagement") > 0.5  # now the bucket is empty
        assert budget.granted == {"reconcile": 2, "engagement": 2}
    finally:
        store.close()


def test_budget_without_database_is_a_temporary_error(pg_url: str, pg_cluster: Any) -> None:
    """No database, no token: the request is not sent and the worker will retry it."""
    store = PostgresState(pg_url, timeout=0.5)
    budget = SharedBudget(store, "tok", 600)
    try:
        pg_cluster.stop()
        with pytest.raises(InboxError, match="shared API budget unavailable") as caught:
            budget.acquire("engagement")
        assert is_temporary(caught.value)  # the worker retries the event
    finally:
        pg_cluster.start()
        store.close()


def test_bad_or_unreachable_database_url_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="PDORGSYNC_DATABASE_URL: expected postgresql://"):
        PostgresState("mysql://x@y/z")
    with pytest.raises(ConfigError, match="not a valid PostgreSQL URL"):
        PostgresState("postgresql://u@h:notaport/db?bogus_option=1")
    port = free_port()
    with pytest.raises(InboxError) as caught:
        PostgresState(f"postgresql://app:s3cret@127.0.0.1:{port}/app", connect_timeout=2)
    message = str(caught.value)
    assert message.startswith(f"database app@127.0.0.1:{port}/app: ")
    assert "\n" not in message
    assert "s3cret" not in message


def test_a_database_migrated_by_a_newer_pdorgsync_is_refused(pg_url: str) -> None:
    """Never run an old schema's queries on a newer one: one clear error instead."""
    PostgresState(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO pdorgsync_schema (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(InboxError, match="newer than this pdorgsync"):
        PostgresState(pg_url)
