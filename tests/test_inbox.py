"""The durable inbox: dedupe, claim order, retry/dead-letter, ledger, recent incidents."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pdorgsync.cli import main
from pdorgsync.errors import InboxBusyError, InboxError, is_temporary
from pdorgsync.models.events import parse_envelope
from pdorgsync.state.records import StoreResult
from pdorgsync.state.sqlite import Inbox
from tests.support.webhooks import FakeClock, envelope, example, example_bytes


def _store(inbox: Inbox, body: dict[str, object], webhook_id: str | None = None) -> StoreResult:
    import json

    raw = json.dumps(body)
    return inbox.store(parse_envelope(raw), raw, webhook_id=webhook_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inbox(tmp_path: Path, clock: FakeClock) -> Iterator[Inbox]:
    box = Inbox(tmp_path / "state.db", clock=clock)
    yield box
    box.close()


def test_store_is_durable_across_reopen(tmp_path: Path, clock: FakeClock) -> None:
    """An event stored by one Inbox is visible, pending, to a freshly opened one."""
    box = Inbox(tmp_path / "s.db", clock=clock)
    raw = example_bytes("incident.triggered").decode()
    result = box.store(parse_envelope(raw), raw, webhook_id="w1")
    box.close()
    again = Inbox(tmp_path / "s.db", clock=clock)
    [event] = again.events()
    assert result.stored
    assert (event.status, event.event_type, event.incident_id) == (
        "pending",
        "incident.triggered",
        "Q1X7K2M9T4B8ZD",
    )
    assert event.payload == raw
    again.close()


def test_wal_mode_is_on(inbox: Inbox) -> None:
    """The inbox file uses write-ahead logging (readers never block the receiver)."""
    conn = sqlite3.connect(inbox.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_duplicate_event_id_is_not_stored_twice(inbox: Inbox) -> None:
    """The same event.id delivered twice (different webhook ids) is stored once."""
    body = example("incident.triggered")
    assert _store(inbox, body, "w1").stored
    assert not _store(inbox, body, "w2").stored
    assert len(inbox.events()) == 1


def test_duplicate_webhook_id_is_not_stored_twice(inbox: Inbox) -> None:
    """The same X-Webhook-Id with a different event id is a redelivery: stored once."""
    assert _store(inbox, envelope(event_id="a"), "same").stored
    assert not _store(inbox, envelope(event_id="b"), "same").stored
    assert len(inbox.events()) == 1


def test_unknown_event_type_is_stored_ignored(inbox: Inbox) -> None:
    """pagey.ping and unknown types are kept for inspection but never processed."""
    _store(inbox, example("pagey.ping"))
    _store(inbox, envelope("service.brand_new_thing", event_id="x"))
    assert [e.status for e in inbox.events()] == ["ignored", "ignored"]
    assert inbox.claim() is None


def test_claim_keeps_arrival_order_per_incident(inbox: Inbox, clock: FakeClock) -> None:
    """A later event of an incident waits while an earlier one is in backoff; others proceed."""
    inc_a = example("incident.triggered")["event"]["data"]
    inc_b = {**inc_a, "id": "QOTHER"}
    _store(inbox, envelope(incident=inc_a, event_id="a1"))
    _store(inbox, envelope("incident.priority_updated", incident=inc_a, event_id="a2"))
    _store(inbox, envelope(incident=inc_b, event_id="b1"))
    first = inbox.claim()
    assert first is not None
    assert first.event_id == "a1"
    inbox.fail(first.seq, "HTTP 429", retry_at=clock() + timedelta(seconds=30))
    nxt = inbox.claim()
    assert nxt is not None
    assert nxt.event_id == "b1"
    assert inbox.claim() is None  # a2 must not overtake a1
    clock.advance(31)
    again = inbox.claim()
    assert again is not None
    assert (again.event_id, again.attempts) == ("a1", 2)


def test_claimed_event_is_not_claimed_twice(inbox: Inbox) -> None:
    """Two workers never get the same event while its lease runs."""
    _store(inbox, envelope(event_id="a"))
    assert inbox.claim() is not None
    assert inbox.claim() is None


def test_release_claims_hands_back_events_of_a_dead_worker(inbox: Inbox) -> None:
    """After a crash, release_claims makes claimed events claimable again."""
    _store(inbox, envelope(event_id="a"))
    assert inbox.claim() is not None
    assert inbox.release_claims() == 1
    event = inbox.claim()
    assert event is not None
    assert event.attempts == 2


def test_fail_without_retry_is_dead_and_retry_requeues(inbox: Inbox) -> None:
    """A permanent failure is dead-lettered with its error; retry re-queues it with fresh attempts."""
    _store(inbox, envelope(event_id="a"))
    event = inbox.claim()
    assert event is not None
    inbox.fail(event.seq, "HTTP 404 not found", retry_at=None)
    [dead] = inbox.events(statuses=["dead"])
    assert dead.last_error == "HTTP 404 not found"
    requeued = inbox.retry(str(dead.seq))
    assert (requeued.status, requeued.attempts) == ("pending", 0)
    assert inbox.claim() is not None


def test_retry_refuses_done_events(inbox: Inbox) -> None:
    """Retrying a finished event is a clear error."""
    _store(inbox, envelope(event_id="a"))
    event = inbox.claim()
    assert event is not None
    inbox.complete(event.seq)
    with pytest.raises(InboxError, match="is done"):
        inbox.retry("a")


def test_purge_keeps_pending_and_recent(inbox: Inbox, clock: FakeClock) -> None:
    """Purge deletes old finished events only."""
    _store(inbox, envelope(event_id="old"))
    ev = inbox.claim()
    assert ev is not None
    inbox.complete(ev.seq)
    clock.advance(40 * 86400)
    _store(
        inbox,
        envelope(event_id="new-pending", incident={**envelope()["event"]["data"], "id": "Q2"}),
    )
    removed = inbox.purge(
        statuses=["done", "ignored", "dead"], older_than=clock() - timedelta(days=30)
    )
    assert removed == 1
    assert [e.event_id for e in inbox.events()] == ["new-pending"]


def test_ledger_records_each_engagement_once(inbox: Inbox) -> None:
    """(incident, department, as) is recorded once; the first policy is kept."""
    assert inbox.record_engagement("Q1", "support", "responder", policy="p1", event_id="e1")
    assert not inbox.record_engagement("Q1", "support", "responder", policy="p2", event_id="e2")
    assert inbox.has_engagement("Q1", "support", "responder")
    assert not inbox.has_engagement("Q1", "support", "subscriber")
    [record] = inbox.engagements("Q1")
    assert record.policy == "p1"


def test_recent_incidents_window_and_resolve(inbox: Inbox, clock: FakeClock) -> None:
    """Open incidents older than the window are dropped; resolved ones are removed."""
    inbox.record_incident_open("Q1", service_id="S1", service_name="a", triggered_at=clock())
    clock.advance(30 * 60)
    inbox.record_incident_open("Q2", service_id="S2", service_name="b", triggered_at=clock())
    inbox.record_incident_open("Q3", service_id="S3", service_name="c", triggered_at=clock())
    inbox.record_incident_resolved("Q3")
    assert [i.incident_id for i in inbox.open_incidents()] == ["Q1", "Q2"]
    clock.advance(31 * 60)
    assert [i.incident_id for i in inbox.open_incidents()] == ["Q2"]


def test_state_roundtrip(inbox: Inbox) -> None:
    """The poll cursor survives as a key/value pair."""
    assert inbox.get_state("poll_cursor") is None
    inbox.set_state("poll_cursor", "2026-03-14T10:00:00+00:00")
    inbox.set_state("poll_cursor", "2026-03-14T10:05:00+00:00")
    assert inbox.get_state("poll_cursor") == "2026-03-14T10:05:00+00:00"


def test_locked_database_raises_inbox_error_quickly(tmp_path: Path) -> None:
    """A write lock held by another connection makes store fail with InboxError after the busy timeout."""
    box = Inbox(tmp_path / "s.db", busy_timeout=0.1)
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(InboxBusyError, match="locked") as raised:
            _store(box, envelope(event_id="a"))
        assert is_temporary(raised.value)  # contention: retried, never a dead letter
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _store(box, envelope(event_id="a")).stored
    box.close()


def test_full_disk_raises_inbox_error(tmp_path: Path) -> None:
    """A database that cannot grow (disk full) makes store fail with InboxError."""
    box = Inbox(tmp_path / "s.db")
    conn = box._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    big = envelope(event_id="big")
    big["event"]["data"]["title"] = "x" * 200_000
    with pytest.raises(InboxError, match="full"):
        _store(box, big)
    box.close()


def test_concurrent_stores_from_threads(inbox: Inbox) -> None:
    """Stores from many threads all land exactly once."""

    def worker(n: int) -> None:
        for i in range(10):
            _store(inbox, envelope(event_id=f"{n}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inbox.stats().pending == 40


# -- the CLI ------------------------------------------------------------------------------


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _filled(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    box = Inbox(path)
    _store(box, envelope(event_id="ok"))
    _store(box, envelope(event_id="bad", incident={**envelope()["event"]["data"], "id": "QBAD"}))
    _store(box, example("pagey.ping"))
    first = box.claim()
    assert first is not None
    box.complete(first.seq)
    second = box.claim()
    assert second is not None
    box.fail(second.seq, "POST /incidents/{id}/responder_requests: HTTP 404", retry_at=None)
    box.close()
    return path


def test_cli_list_text_shows_status_and_last_error(tmp_path: Path) -> None:
    """`inbox list` shows every event with its status, attempts and last error."""
    path = _filled(tmp_path)
    result = _cli("inbox", "list", "--state", str(path))
    assert result.exit_code == 0, result.output
    assert "dead" in result.output
    assert "HTTP 404" in result.output
    assert "pagey.ping" in result.output
    assert "QBAD" in result.output


def test_cli_list_json_filters_by_status(tmp_path: Path) -> None:
    """`inbox list --format json --status dead` prints only dead events as JSON."""
    import json

    path = _filled(tmp_path)
    result = _cli("inbox", "list", "--state", str(path), "--format", "json", "--status", "dead")
    events = json.loads(result.output)["events"]
    assert [(e["event_id"], e["status"], e["attempts"]) for e in events] == [("bad", "dead", 1)]
    assert set(events[0]) >= {"id", "received_at", "event_type", "incident_id", "last_error"}


def test_cli_retry_requeues_dead_event(tmp_path: Path) -> None:
    """`inbox retry ID` puts a dead event back to pending."""
    path = _filled(tmp_path)
    result = _cli("inbox", "retry", "--state", str(path), "bad")
    assert result.exit_code == 0, result.output
    box = Inbox(path)
    assert box.get("bad").status == "pending"  # type: ignore[union-attr]  # a None fails the test too
    box.close()


def test_cli_retry_unknown_id_is_one_line_error(tmp_path: Path) -> None:
    """Retrying an id that does not exist exits 1 with one clear line."""
    path = _filled(tmp_path)
    result = _cli("inbox", "retry", "--state", str(path), "999")
    assert result.exit_code == 1
    assert "no event 999" in result.output


def test_cli_purge_needs_yes_without_tty(tmp_path: Path) -> None:
    """Without a TTY, purge refuses unless --yes is given; with it, old finished events go."""
    path = _filled(tmp_path)
    kept = _cli("inbox", "purge", "--state", str(path), "--older-than", "0s", "--yes")
    assert "nothing to purge" in kept.output  # younger than the dedupe window: kept
    with sqlite3.connect(path) as db:  # four days later
        db.execute("UPDATE events SET received_at = received_at - 4 * 86400")
    refused = _cli("inbox", "purge", "--state", str(path), "--older-than", "0s")
    assert refused.exit_code == 1
    assert "--yes" in refused.output
    done = _cli("inbox", "purge", "--state", str(path), "--older-than", "0s", "--yes")
    assert done.exit_code == 0, done.output
    assert "purged 2" in done.output  # done + ignored; the dead one stays
    box = Inbox(path)
    assert [e.event_id for e in box.events()] == ["bad"]
    box.close()


def test_cli_missing_inbox_is_clear(tmp_path: Path) -> None:
    """Listing an inbox that does not exist says so instead of creating it."""
    result = _cli("inbox", "list", "--state", str(tmp_path / "none.db"))
    assert result.exit_code == 1
    assert "no inbox" in result.output
    assert not (tmp_path / "none.db").exists()


def _handled(inbox: Inbox, clock: FakeClock, incident_id: str, status: str) -> None:
    inbox.record_handled(
        incident_id, status=status, priority="P1", urgency="high", service_id="S1",
        observed_at=clock(),
    )  # fmt: skip


def _incident(incident_id: str) -> dict[str, object]:
    return {**envelope()["event"]["data"], "id": incident_id}


def test_retention_purges_old_events_and_the_ledger_of_long_resolved_incidents(
    inbox: Inbox, clock: FakeClock
) -> None:
    """Old handled events go; the ledger stays while its incident is open or recently resolved."""
    for incident_id in ("QOPEN", "QOLD", "QRECENT"):
        _store(inbox, envelope(event_id=f"e-{incident_id}", incident=_incident(incident_id)))
        event = inbox.claim()
        assert event is not None
        inbox.complete(event.seq)
        inbox.record_engagement(incident_id, "support", "responder", policy="p", event_id=None)
    _store(inbox, envelope(event_id="dead", incident=_incident("QDEAD")))
    dead = inbox.claim()
    assert dead is not None
    inbox.fail(dead.seq, "HTTP 404", retry_at=None)
    _handled(inbox, clock, "QOPEN", "triggered")
    _handled(inbox, clock, "QOLD", "resolved")  # resolved 40 days ago
    clock.advance(20 * 86400)
    _handled(inbox, clock, "QRECENT", "resolved")  # resolved 20 days ago
    clock.advance(20 * 86400)
    _store(inbox, envelope(event_id="fresh", incident=_incident("QNEW")))

    result = inbox.purge_expired(clock() - timedelta(days=30))

    assert (result.events, result.ledger, result.incidents) == (3, 1, 1)
    assert sorted(e.event_id for e in inbox.events()) == ["dead", "fresh"]  # dead: for a human
    assert sorted(r.incident_id for r in inbox.engagements()) == ["QOPEN", "QRECENT"]
    assert sorted(inbox.handled_incidents(["QOPEN", "QOLD", "QRECENT"])) == ["QOPEN", "QRECENT"]
    assert inbox.stats().events == 2


def test_stats_show_the_store_size(inbox: Inbox) -> None:
    """Metrics can show how big the store is: rows and bytes on disk."""
    empty = inbox.stats()
    for n in range(20):
        _store(inbox, envelope(event_id=f"size-{n}"))
    grown = inbox.stats()
    assert (empty.events, grown.events) == (0, 20)
    assert grown.size_bytes > empty.size_bytes > 0


def test_connections_of_ended_threads_are_closed(inbox: Inbox, tmp_path: Path) -> None:
    """Bursts from short-lived threads (anyio's pool) never pile up connections or open files."""

    def burst(n: int) -> None:
        threads = [
            threading.Thread(target=_store, args=(inbox, envelope(event_id=f"b{n}-{i}")))
            for i in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def open_files() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if "state.db" in str(_readlink(fd)))

    burst(0)
    after_first = open_files()
    for n in range(1, 25):
        burst(n)
    assert inbox.open_connections <= 7  # the six of the last burst (ended) + this thread's
    # Each connection holds the database, its WAL and shared-memory files: bounded by one
    # burst's worth, where 24 more bursts used to add 144 connections.
    assert open_files() <= after_first + 3
    assert len(inbox.events()) == 25 * 6


def _readlink(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:  # closed between listing and reading
        return ""
