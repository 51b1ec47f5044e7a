"""The durable webhook inbox: one SQLite file (WAL) shared by receiver, worker and CLI.

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
- ``state``: small key/value facts such as the poll cursor.

What it must never do: hold a write lock while talking to the network, or answer
"stored" for an event that is not committed. Every SQLite failure becomes an
``InboxError`` (the receiver turns it into 503 so PagerDuty retries).

One process works on a given inbox file at a time (several readers, such as the
CLI, are fine): ``release_claims()`` at worker start hands back events that a
killed predecessor had claimed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pdorgsync.errors import InboxError
from pdorgsync.models.events import WebhookEnvelope

__all__ = [
    "STATUSES",
    "EngagementRecord",
    "Inbox",
    "InboxStats",
    "OpenIncident",
    "Status",
    "StoreResult",
    "StoredEvent",
    "utcnow",
]

Status = Literal["pending", "done", "ignored", "dead"]
STATUSES: tuple[Status, ...] = ("pending", "done", "ignored", "dead")
Clock = Callable[[], datetime]

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
CREATE TABLE IF NOT EXISTS state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"""


def utcnow() -> datetime:
    """The real clock (aware UTC); everything else takes a clock argument."""
    return datetime.now(UTC)


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class StoreResult:
    """Outcome of ``Inbox.store``: ``stored`` False means a duplicate delivery."""

    stored: bool
    seq: int | None
    status: Status | None


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event_id: str
    webhook_id: str | None
    received_at: datetime
    event_type: str
    incident_id: str | None
    source: str
    status: Status
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    payload: str

    def envelope_dict(self) -> dict[str, Any]:
        value = json.loads(self.payload)
        assert isinstance(value, dict)  # only envelopes are ever stored
        return value

    def as_json(self) -> dict[str, Any]:
        """The row as ``inbox list --format json`` prints it."""
        return {
            "id": self.seq,
            "event_id": self.event_id,
            "webhook_id": self.webhook_id,
            "received_at": self.received_at.isoformat(),
            "event_type": self.event_type,
            "incident_id": self.incident_id,
            "source": self.source,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": self.next_attempt_at.isoformat(),
        }


@dataclass(frozen=True)
class EngagementRecord:
    incident_id: str
    department: str
    as_: str
    policy: str
    event_id: str | None
    engaged_at: datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class OpenIncident:
    incident_id: str
    service_id: str | None
    service_name: str | None
    triggered_at: datetime


@dataclass(frozen=True)
class InboxStats:
    pending: int
    oldest_pending_age: float  # seconds; 0 when nothing is pending
    dead: int


_EVENT_COLUMNS = (
    "seq, event_id, webhook_id, received_at, event_type, incident_id, source, status, "
    "attempts, last_error, next_attempt_at, payload"
)


def _event(row: sqlite3.Row) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"],
        event_id=row["event_id"],
        webhook_id=row["webhook_id"],
        received_at=_dt(row["received_at"]) or datetime.min.replace(tzinfo=UTC),
        event_type=row["event_type"],
        incident_id=row["incident_id"],
        source=row["source"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        next_attempt_at=_dt(row["next_attempt_at"]) or datetime.min.replace(tzinfo=UTC),
        payload=row["payload"],
    )


class Inbox:
    """SQLite-backed inbox, ledger and small state store; safe to share between threads.

    ``busy_timeout`` bounds how long a write waits for a lock held by another
    connection before failing with ``InboxError`` (the receiver answers 503 then,
    well within PagerDuty's 5-second budget).
    """

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 1.0, clock: Clock = utcnow
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Writers of this process queue here rather than in SQLite's busy handler,
        # which retries by sleeping: under concurrent deliveries that turned into
        # p99s near the busy timeout and needless 503s. Other processes still
        # meet SQLite's lock and busy_timeout as before.
        self._write_lock = threading.Lock()
        try:
            conn = self._conn()
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise InboxError(f"inbox {self.path}: cannot switch to WAL mode (got {mode})")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise InboxError(f"inbox {self.path}: {exc}") from None

    # -- connections and transactions ---------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                if self.path.parent and not self.path.parent.exists():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(self.path),
                    timeout=self.busy_timeout,
                    isolation_level=None,  # explicit BEGIN/COMMIT below
                    check_same_thread=False,
                )
            except (sqlite3.Error, OSError) as exc:
                raise InboxError(f"inbox {self.path}: cannot open: {exc}") from None
            conn.row_factory = sqlite3.Row
            # FULL: a commit is on disk before the receiver answers 202, even on power loss.
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction (takes the write lock up front, waits busy_timeout)."""
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise InboxError(
                f"inbox {self.path}: busy (another write took over {self.busy_timeout:g} s)"
            )
        try:
            try:
                conn = self._conn()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise InboxError(f"inbox {self.path}: {exc}") from None
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise InboxError(f"inbox {self.path}: {exc}") from None
            except BaseException:
                _rollback(conn)
                raise
        finally:
            self._write_lock.release()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(self._conn().execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise InboxError(f"inbox {self.path}: {exc}") from None

    def close(self) -> None:
        """Close every connection this inbox opened (in any thread)."""
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):  # closing is best effort
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Inbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- events ---------------------------------------------------------------------------

    def store(
        self,
        envelope: WebhookEnvelope,
        payload: str,
        *,
        webhook_id: str | None = None,
        source: str = "webhook",
        status: Status | None = None,
    ) -> StoreResult:
        """Store one verified event durably; a duplicate (event id or webhook id) is not stored.

        ``payload`` is the raw body text (kept verbatim for replay). Handled incident
        event types start ``pending``; anything else is stored ``ignored``.
        """
        event = envelope.event
        if status is None:
            status = "pending" if event.is_handled_type else "ignored"
        now = _ts(self.clock())
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO events (event_id, webhook_id, received_at, event_type,"
                " incident_id, source, status, next_attempt_at, finished_at, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        now = _ts(self.clock())
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e"
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
        claimed = _event(row)
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
        now = _ts(self.clock())
        with self._write() as conn:
            conn.execute(
                "UPDATE events SET status = ?, claimed_until = NULL, finished_at = ?,"
                " last_error = COALESCE(?, last_error) WHERE seq = ?",
                (status, now, note, seq),
            )

    def fail(self, seq: int, error: str, *, retry_at: datetime | None) -> None:
        """Record a failed attempt: back to pending until ``retry_at``, or dead if None."""
        now = _ts(self.clock())
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
                    " next_attempt_at = ? WHERE seq = ?",
                    (error[:2000], _ts(retry_at), seq),
                )

    def retry(self, ref: int | str) -> StoredEvent:
        """Re-queue a dead (or waiting) event now, with a fresh attempt budget."""
        event = self.get(ref)
        if event is None:
            raise InboxError(f"no event {ref} in the inbox")
        if event.status not in ("dead", "pending"):
            raise InboxError(
                f"event {event.seq} is {event.status}; only dead or pending events can be retried"
            )
        now = _ts(self.clock())
        with self._write() as conn:
            conn.execute(
                "UPDATE events SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                " claimed_until = NULL, finished_at = NULL WHERE seq = ?",
                (now, event.seq),
            )
        refreshed = self.get(event.seq)
        assert refreshed is not None
        return refreshed

    def get(self, ref: int | str) -> StoredEvent | None:
        """An event by inbox id (number) or by PagerDuty event id."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq = ?", (int(ref),))
            if rows:
                return _event(rows[0])
        rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ?", (str(ref),))
        return _event(rows[0]) if rows else None

    def events(
        self,
        *,
        statuses: Sequence[Status] | None = None,
        incident_id: str | None = None,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events, oldest first, optionally filtered."""
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE 1 = 1"
        params: list[Any] = []
        if statuses:
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            params.extend(statuses)
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params.append(incident_id)
        sql += " ORDER BY seq"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} DESC LIMIT ?) ORDER BY seq"
            params.append(limit)
        return [_event(r) for r in self._read(sql, params)]

    def purge(self, *, statuses: Sequence[Status], older_than: datetime | None = None) -> int:
        """Delete finished events (never pending ones) received before ``older_than``."""
        chosen = [s for s in statuses if s != "pending"]
        if not chosen:
            return 0
        sql = f"DELETE FROM events WHERE status IN ({', '.join('?' for _ in chosen)})"
        params: list[Any] = list(chosen)
        if older_than is not None:
            sql += " AND received_at < ?"
            params.append(_ts(older_than))
        with self._write() as conn:
            return conn.execute(sql, params).rowcount

    def stats(self) -> InboxStats:
        """Pending count, age of the oldest pending event, dead count (for metrics)."""
        rows = self._read(
            "SELECT"
            " SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending,"
            " MIN(CASE WHEN status = 'pending' THEN received_at END) AS oldest,"
            " SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END) AS dead FROM events"
        )
        row = rows[0]
        oldest = row["oldest"]
        age = max(0.0, _ts(self.clock()) - oldest) if oldest is not None else 0.0
        return InboxStats(
            pending=row["pending"] or 0, oldest_pending_age=age, dead=row["dead"] or 0
        )

    def next_due(self) -> datetime | None:
        """When the earliest pending event becomes due (None if nothing is pending)."""
        rows = self._read("SELECT MIN(next_attempt_at) AS due FROM events WHERE status = 'pending'")
        return _dt(rows[0]["due"])

    # -- ledger ---------------------------------------------------------------------------

    def has_engagement(self, incident_id: str, department: str, as_: str) -> bool:
        rows = self._read(
            "SELECT 1 FROM ledger WHERE incident_id = ? AND department = ? AND as_ = ?",
            (incident_id, department, as_),
        )
        return bool(rows)

    def record_engagement(
        self,
        incident_id: str,
        department: str,
        as_: str,
        *,
        policy: str,
        event_id: str | None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Record an engagement; False if it was already recorded (first one wins)."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO ledger (incident_id, department, as_, policy, event_id,"
                " engaged_at, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    incident_id,
                    department,
                    as_,
                    policy,
                    event_id,
                    _ts(self.clock()),
                    json.dumps(details or {}, sort_keys=True),
                ),
            )
            return cur.rowcount == 1

    def engagements(self, incident_id: str | None = None) -> list[EngagementRecord]:
        sql = "SELECT * FROM ledger"
        params: tuple[Any, ...] = ()
        if incident_id is not None:
            sql += " WHERE incident_id = ?"
            params = (incident_id,)
        sql += " ORDER BY engaged_at, incident_id, department, as_"
        return [
            EngagementRecord(
                incident_id=r["incident_id"],
                department=r["department"],
                as_=r["as_"],
                policy=r["policy"],
                event_id=r["event_id"],
                engaged_at=_dt(r["engaged_at"]) or datetime.min.replace(tzinfo=UTC),
                details=json.loads(r["details"]),
            )
            for r in self._read(sql, params)
        ]

    # -- recent incidents (min_impacted_services) -------------------------------------------

    def record_incident_open(
        self,
        incident_id: str,
        *,
        service_id: str | None,
        service_name: str | None,
        triggered_at: datetime,
    ) -> None:
        """Remember an open incident (triggered or reopened); the first trigger time wins."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO recent_incidents (incident_id, service_id, service_name, triggered_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET"
                " service_id = excluded.service_id, service_name = excluded.service_name",
                (incident_id, service_id, service_name, _ts(triggered_at)),
            )

    def record_incident_resolved(self, incident_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM recent_incidents WHERE incident_id = ?", (incident_id,))

    def open_incidents(self, *, window: timedelta = timedelta(minutes=60)) -> list[OpenIncident]:
        """Open incidents triggered within ``window`` of now (older rows are pruned)."""
        cutoff = _ts(self.clock() - window)
        with self._write() as conn:
            conn.execute("DELETE FROM recent_incidents WHERE triggered_at < ?", (cutoff,))
        return [
            OpenIncident(
                incident_id=r["incident_id"],
                service_id=r["service_id"],
                service_name=r["service_name"],
                triggered_at=_dt(r["triggered_at"]) or datetime.min.replace(tzinfo=UTC),
            )
            for r in self._read("SELECT * FROM recent_incidents ORDER BY triggered_at")
        ]

    # -- state ----------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM state WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_state(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:  # pragma: no cover - the connection is already broken
        pass
