"""The SQLite state backend (``Inbox``), the embedded default; the durable webhook inbox: one SQLite file (WAL) shared by receiver, worker and CLI.

Why it exists: PagerDuty wants an answer within 5 seconds and delivers at least
once, while engaging a department takes several API calls that may fail or be
rate limited. So the receiver only *stores* a verified event (and answers 202
after the commit), and the worker drains the inbox at its own pace. A killed
process therefore loses nothing it acknowledged, and the ledger of engagements in
the same file keeps it from engaging anybody twice.

Tables:
- ``events``: one row per distinct event, deduplicated on ``event.id`` AND on the
  ``X-Webhook-Id`` delivery header; status ``pending|done|ignored|dead``,
  ``attempts``, ``last_error``, ``next_attempt_at``, a claim lease.
- ``ledger``: engagements performed, keyed ``(incident_id, department, as)``.
- ``recent_incidents``: open incidents seen recently (``min_impacted_services``).
- ``handled_incidents``: per incident, the state the worker last handled
  (status, priority, urgency, service): what the catch-up poll compares with.
- ``state``: small key/value facts such as the poll cursor.

Retention (``purge_expired``): finished events older than the cutoff go (never
younger than ``DEDUPE_WINDOW``, 72 h: their ids are the dedupe keys); the
ledger and the handled state of an incident stay until it has been resolved
for longer than the cutoff, since an open incident can still produce events
(and an engagement forgotten too early would be made twice).

What it must never do: hold a write lock while talking to the network, answer
"stored" for an event that is not committed, or write to a file that was deleted
or replaced under it (every write checks the path still names the file opened;
the file is created ``0600``). Every SQLite failure becomes an
``InboxError`` (the receiver turns it into 503 so PagerDuty retries).

One process works on a given inbox file at a time (several readers, such as the
CLI, are fine): ``release_claims()`` at worker start hands back events that a
killed predecessor had claimed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from pdorgsync.core.policies import RECENT_WINDOW
from pdorgsync.models.events import WebhookEnvelope
from pdorgsync.state.records import (
    DEDUPE_WINDOW,
    EVENT_COLUMNS,
    Clock,
    OpenIncidentRow,
    PurgeResult,
    Status,
    StoredEvent,
    StoreResult,
    event_from_row,
    to_epoch,
    utcnow,
)
from pdorgsync.state.sql import SqlBackend
from pdorgsync.state.sqlite_file import SqliteFile

__all__ = ["Inbox"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL UNIQUE,
    webhook_id      TEXT UNIQUE,
    received_at     REAL NOT NULL,
    event_type      TEXT NOT NULL,
    incident_id     TEXT,
    source          TEXT NOT NULL DEFAULT 'webhook',
    status          TEXT NOT NULL CHECK (status IN ('pending', 'done', 'ignored', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at REAL NOT NULL,
    claimed_until   REAL,
    finished_at     REAL,
    payload         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_pending ON events (status, incident_id, seq);
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
CREATE TABLE IF NOT EXISTS ledger (
    incident_id  TEXT NOT NULL,
    department   TEXT NOT NULL,
    as_          TEXT NOT NULL,
    policy       TEXT NOT NULL,
    event_id     TEXT,
    engaged_at   REAL NOT NULL,
    details      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (incident_id, department, as_)
);
CREATE TABLE IF NOT EXISTS recent_incidents (
    incident_id   TEXT PRIMARY KEY,
    service_id    TEXT,
    service_name  TEXT,
    triggered_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS handled_incidents (
    incident_id  TEXT PRIMARY KEY,
    status       TEXT NOT NULL,
    priority     TEXT,
    urgency      TEXT,
    service_id   TEXT,
    observed_at  REAL NOT NULL,
    handled_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"""


class Inbox(SqliteFile, SqlBackend):
    """SQLite-backed inbox, ledger and small state store; safe to share between threads.

    ``busy_timeout`` bounds how long a write waits for a lock held by another
    connection before failing with ``InboxError`` (the receiver answers 503 then,
    well within PagerDuty's 5-second budget).
    """

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 1.0, clock: Clock = utcnow
    ) -> None:
        self.clock = clock
        super().__init__(path, busy_timeout=busy_timeout, schema=_SCHEMA)

    # -- events ---------------------------------------------------------------------------

    def store(
        self,
        envelope: WebhookEnvelope,
        payload: str,
        *,
        webhook_id: str | None = None,
        source: str = "webhook",
        status: Status | None = None,
        note: str | None = None,
    ) -> StoreResult:
        """Store one verified event durably; a duplicate (event id or webhook id) is not stored.

        ``payload`` is the raw body text (kept verbatim for replay). Handled incident
        event types start ``pending``; anything else is stored ``ignored``.
        """
        event = envelope.event
        if status is None:
            status = "pending" if event.is_handled_type else "ignored"
        now = to_epoch(self.clock())
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO events (event_id, webhook_id, received_at, event_type,"
                " incident_id, source, status, next_attempt_at, finished_at, payload, last_error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.id,
                    webhook_id or None,
                    now,
                    event.event_type,
                    event.incident_id,
                    source,
                    status,
                    now,
                    None if status == "pending" else now,
                    payload,
                    note,
                ),
            )
            if cur.rowcount == 0:
                return StoreResult(stored=False, seq=None, status=None)
            return StoreResult(stored=True, seq=cur.lastrowid, status=status)

    def claim(self, *, lease: float = 300.0) -> StoredEvent | None:
        """Claim the next due event for one of several workers, for ``lease`` seconds.

        The oldest due pending event of an incident that has no event currently
        claimed (unexpired lease) and no earlier pending event: PagerDuty keeps
        order per incident, so do we, while other incidents proceed in parallel.
        """
        now = to_epoch(self.clock())
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events e"
                " WHERE e.status = 'pending' AND e.next_attempt_at <= ?"
                " AND (e.claimed_until IS NULL OR e.claimed_until < ?)"
                " AND NOT EXISTS (SELECT 1 FROM events p WHERE p.status = 'pending'"
                "   AND p.incident_id = e.incident_id AND p.seq < e.seq)"
                " AND NOT EXISTS (SELECT 1 FROM events c WHERE c.incident_id = e.incident_id"
                "   AND c.seq <> e.seq AND c.status = 'pending' AND c.claimed_until >= ?)"
                " ORDER BY e.seq LIMIT 1",
                (now, now, now),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE events SET claimed_until = ?, attempts = attempts + 1 WHERE seq = ?",
                (now + lease, row["seq"]),
            )
        claimed = event_from_row(row)
        return StoredEvent(**{**claimed.__dict__, "attempts": claimed.attempts + 1})

    def release_claims(self) -> int:
        """Hand back every claimed event (call when a worker starts: its predecessor died)."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE events SET claimed_until = NULL WHERE claimed_until IS NOT NULL"
                " AND status = 'pending'"
            )
            return cur.rowcount

    def complete(self, seq: int, status: Status = "done", note: str | None = None) -> None:
        """Finish a claimed event as ``done`` or ``ignored``."""
        if status not in ("done", "ignored"):
            raise ValueError(f"complete() takes done or ignored, not {status}")
        now = to_epoch(self.clock())
        with self._write() as conn:
            conn.execute(
                "UPDATE events SET status = ?, claimed_until = NULL, finished_at = ?,"
                " last_error = COALESCE(?, last_error) WHERE seq = ?",
                (status, now, note, seq),
            )

    def fail(
        self, seq: int, error: str, *, retry_at: datetime | None, uncount: bool = False
    ) -> None:
        """Record a failed attempt: back to pending until ``retry_at``, or dead if None.

        ``uncount``: the attempt ended in lock contention, which says nothing about
        the event, so its claim is not counted (claims count toward a poison event).
        """
        now = to_epoch(self.clock())
        undo = 1 if uncount else 0
        with self._write() as conn:
            if retry_at is None:
                conn.execute(
                    "UPDATE events SET status = 'dead', claimed_until = NULL, last_error = ?,"
                    " finished_at = ? WHERE seq = ?",
                    (error[:2000], now, seq),
                )
            else:
                conn.execute(
                    "UPDATE events SET claimed_until = NULL, last_error = ?,"
                    " next_attempt_at = ?, attempts = MAX(0, attempts - ?) WHERE seq = ?",
                    (error[:2000], to_epoch(retry_at), undo, seq),
                )

    def retry(self, ref: int | str) -> StoredEvent:
        """Re-queue a dead (or waiting) event now, with a fresh attempt budget."""
        event = self._retryable(ref)
        now = to_epoch(self.clock())
        with self._write() as conn:
            conn.execute(
                "UPDATE events SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                " claimed_until = NULL, finished_at = NULL WHERE seq = ?",
                (now, event.seq),
            )
        refreshed = self.get(event.seq)
        assert refreshed is not None
        return refreshed

    def size_bytes(self) -> int:
        """The store's size on disk: the database file plus its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):  # the WAL may not exist right now
                total += Path(str(self.path) + suffix).stat().st_size
        return total

    def purge_expired(
        self, cutoff: datetime, *, statuses: Sequence[Status] = ("done", "ignored")
    ) -> PurgeResult:
        """Retention: delete what can no longer matter, in one transaction.

        - events with one of ``statuses`` (never ``pending``) received before ``cutoff``
          and before ``DEDUPE_WINDOW`` ago (their ids are what makes a redelivery, or a
          replayed capture, a duplicate);
        - the ledger rows and handled state of incidents last handled as resolved
          before ``cutoff`` with no event left in the inbox. An open incident can
          still produce events, so its ledger stays however old it is.
        """
        chosen = [s for s in statuses if s != "pending"]
        limit = to_epoch(cutoff)
        events_limit = to_epoch(min(cutoff, self.clock() - DEDUPE_WINDOW))
        with self._write() as conn:
            events = 0
            if chosen:
                events = conn.execute(
                    f"DELETE FROM events WHERE status IN ({', '.join('?' for _ in chosen)})"
                    " AND received_at < ?",
                    (*chosen, events_limit),
                ).rowcount
            gone = (
                "SELECT incident_id FROM handled_incidents h WHERE h.status = 'resolved'"
                " AND h.handled_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM events e WHERE e.incident_id = h.incident_id)"
            )
            ledger = conn.execute(
                f"DELETE FROM ledger WHERE incident_id IN ({gone})", (limit,)
            ).rowcount
            incidents = conn.execute(
                f"DELETE FROM handled_incidents WHERE incident_id IN ({gone})", (limit,)
            ).rowcount
        return PurgeResult(events=events, ledger=ledger, incidents=incidents)

    # -- recent incidents (min_impacted_services; the rest of the ledger and incident -----
    #    state is SqlBackend's)

    def open_incidents(self, *, window: timedelta = RECENT_WINDOW) -> list[OpenIncidentRow]:
        """Open incidents triggered within ``window`` of now (older rows are pruned)."""
        cutoff = to_epoch(self.clock() - window)
        with self._write() as conn:
            conn.execute("DELETE FROM recent_incidents WHERE triggered_at < ?", (cutoff,))
        rows = self._read("SELECT * FROM recent_incidents ORDER BY triggered_at")
        return [OpenIncidentRow.from_row(r) for r in rows]
