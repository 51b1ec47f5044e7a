"""PostgreSQL state: the inbox, ledger, poll cursor and reconcile lease of several replicas.

``DATABASE_URL=postgresql://…`` selects it. Every replica receives webhooks,
claims work, and competes for the one reconcile lease; PostgreSQL's own tools
do the coordination, nothing home-made:

- **Receiving**: ``INSERT … ON CONFLICT DO NOTHING`` on the unique ``event_id``
  and ``webhook_id``, committed before the receiver answers 202.
- **Claiming**: ``SELECT … FOR UPDATE OF e SKIP LOCKED`` picks the oldest due
  pending event of an incident with no earlier pending event; the claim is a
  lease (``claimed_until``, ``claimed_by``) of ``claim_lease`` seconds that this
  process renews every ``renew_every`` seconds while it works on the event. A
  SIGKILLed replica stops renewing, and its claims are taken back once they
  expire; a claim whose result could not be written (database away) is handed
  back by the renewer once the database answers again.
  ``complete``/``fail`` only touch an event this process still holds.
- **Exactly once**: the ledger's primary key is (incident, department, as);
  ``record_engagement`` is ``INSERT … ON CONFLICT DO NOTHING`` in its own
  transaction, and the engager reads it (and the incident) before any write.
- **Leader** (``pg_leader.py``): :class:`AdvisoryLeader` holds ``pg_try_advisory_lock`` on a
  dedicated connection; it dies with the session, so a killed leader's lock is
  free as soon as PostgreSQL sees the connection close (and TCP keepalives bound
  that for a vanished host). Session-level locks need *session* pooling: behind
  PgBouncer in transaction mode two replicas could both believe they lead.
- **Budget** (``pg_budget.py``): :class:`SharedBudget`, one token bucket row per API token hash,
  refilled by the database clock, shared by every replica.

The connections and transactions are ``pg_pool.py``'s (:class:`PgConnections`), the
queries both backends run alike ``sql.py``'s. The schema (``pg_schema.py``) is versioned (``pdorgsync_schema``) and migrated at start in one
transaction under a transaction-level advisory lock, so concurrent starts are
safe. Every database failure becomes an ``InboxError`` (503 at the receiver).
Times are stored as Unix seconds like the SQLite store, from the injected clock;
replicas need synchronised clocks (NTP), as any lease does.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from pdorgsync.core.policies import RECENT_WINDOW
from pdorgsync.errors import InboxError
from pdorgsync.logs import get_logger
from pdorgsync.models.events import WebhookEnvelope
from pdorgsync.state.pg_budget import SharedBudget
from pdorgsync.state.pg_leader import AdvisoryLeader
from pdorgsync.state.pg_pool import PgConnections, Row
from pdorgsync.state.pg_schema import (
    LEADER_LOCK_KEY,
    SCHEMA_VERSION,
    check_url,
    describe_url,
)
from pdorgsync.state.records import (
    DEDUPE_WINDOW,
    EVENT_COLUMNS,
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

__all__ = [
    "LEADER_LOCK_KEY",
    "SCHEMA_VERSION",
    "AdvisoryLeader",
    "PostgresState",
    "SharedBudget",
    "check_url",
    "describe_url",
]

log = get_logger("pdorgsync.state")

Clock = Callable[[], datetime]


class PostgresState(PgConnections, SqlBackend):
    """The PostgreSQL backend of ``state.StateStore`` (one per process; thread-safe).

    ``owner`` names this process in ``claimed_by``; a new one per start, so a
    restarted replica never mistakes its predecessor's claims for its own.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = utcnow,
        timeout: float = 2.0,
        connect_timeout: float = 5.0,
        claim_lease: float = 20.0,
        renew_every: float = 5.0,
        max_connections: int = 8,
    ) -> None:
        self.claim_lease = claim_lease
        self.renew_every = renew_every
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._renewer_lock = threading.Lock()
        # Events this process is working on right now: only these leases are renewed.
        self._held: set[int] = set()
        self._held_lock = threading.Lock()
        self.clock = clock
        super().__init__(
            url, timeout=timeout, connect_timeout=connect_timeout, max_connections=max_connections
        )

    def close(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=2)
        super().close()

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
        event = envelope.event
        if status is None:
            status = "pending" if event.is_handled_type else "ignored"
        now = to_epoch(self.clock())
        with self._tx() as conn:
            row = conn.execute(
                "INSERT INTO events (event_id, webhook_id, received_at, event_type,"
                " incident_id, source, status, next_attempt_at, finished_at, payload, last_error)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING seq",
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
            ).fetchone()
        if row is None:
            return StoreResult(stored=False, seq=None, status=None)
        return StoreResult(stored=True, seq=int(row["seq"]), status=status)

    def claim(self, *, lease: float = 300.0) -> StoredEvent | None:
        """The oldest due event whose incident has nothing earlier pending, under a lease.

        ``SKIP LOCKED`` lets replicas claim side by side without waiting on each
        other; a row another replica is claiming right now is skipped, and once its
        claim commits the row no longer qualifies (``claimed_until`` is set).
        The lease is at most ``claim_lease`` and renewed while this process lives.
        """
        lease = min(lease, self.claim_lease)
        now = to_epoch(self.clock())
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events e"
                " WHERE e.status = 'pending' AND e.next_attempt_at <= %s"
                " AND (e.claimed_until IS NULL OR e.claimed_until < %s)"
                " AND NOT EXISTS (SELECT 1 FROM events p WHERE p.status = 'pending'"
                "   AND p.incident_id = e.incident_id AND p.seq < e.seq)"
                " ORDER BY e.seq LIMIT 1 FOR UPDATE OF e SKIP LOCKED",
                (now, now),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE events SET claimed_until = %s, claimed_by = %s, attempts = attempts + 1"
                " WHERE seq = %s",
                (now + lease, self.owner, row["seq"]),
            )
        with self._held_lock:
            self._held.add(int(row["seq"]))
        self._ensure_renewer()
        claimed = event_from_row(row)
        return StoredEvent(**{**claimed.__dict__, "attempts": claimed.attempts + 1})

    def renew_claims(self) -> int:
        """Extend the leases of the events this process is working on (the renewer's job).

        A claim of ours that no work holds any more (its ``complete``/``fail`` could
        not be written while the database was away) is handed back instead, so the
        event is retried at once rather than when its lease would have lapsed. A
        claim younger than one renewal period is left alone (it may be on its way
        into ``_held``). Returns how many leases were renewed.
        """
        now = to_epoch(self.clock())
        with self._held_lock:
            held = sorted(self._held)
        with self._tx() as conn:
            renewed = conn.execute(
                "UPDATE events SET claimed_until = %s WHERE claimed_by = %s"
                " AND status = 'pending' AND seq = ANY(%s)",
                (now + self.claim_lease, self.owner, held),
            ).rowcount
            orphans = conn.execute(
                "UPDATE events SET claimed_until = NULL, claimed_by = NULL WHERE claimed_by = %s"
                " AND status = 'pending' AND NOT (seq = ANY(%s)) AND claimed_until < %s",
                (self.owner, held, now + self.claim_lease - self.renew_every),
            ).rowcount
        if orphans:
            log.info("state.claims_handed_back", count=orphans)
        return renewed

    def _let_go(self, seq: int) -> None:
        with self._held_lock:
            self._held.discard(seq)

    def _ensure_renewer(self) -> None:
        with self._renewer_lock:
            if self._renewer is None and not self._stop.is_set():
                self._renewer = threading.Thread(
                    target=self._renew_loop, name="claim-renewer", daemon=True
                )
                self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                self.renew_claims()
            except InboxError as exc:  # the database is away; the lease may lapse
                log.warning("state.renew_failed", error=str(exc))

    def release_claims(self) -> int:
        """Hand back the claims this process holds (never another replica's)."""
        with self._held_lock:
            self._held.clear()
        return self._write(
            "UPDATE events SET claimed_until = NULL, claimed_by = NULL"
            " WHERE claimed_by = %s AND status = 'pending'",
            (self.owner,),
        )

    def _still_ours(self, conn: psycopg.Connection[Row], seq: int) -> bool:
        """Lock the event row; False (and a log line) if another replica took it over."""
        row = conn.execute(
            "SELECT claimed_by FROM events WHERE seq = %s FOR UPDATE", (seq,)
        ).fetchone()
        if row is None or row["claimed_by"] in (None, self.owner):
            return True
        log.warning("state.claim_lost", id=seq, holder=row["claimed_by"])
        return False

    def complete(self, seq: int, status: Status = "done", note: str | None = None) -> None:
        if status not in ("done", "ignored"):
            raise ValueError(f"complete() takes done or ignored, not {status}")
        now = to_epoch(self.clock())
        self._let_go(seq)  # written or not, this process stops working on it
        with self._tx() as conn:
            if self._still_ours(conn, seq):
                conn.execute(
                    "UPDATE events SET status = %s, claimed_until = NULL, claimed_by = NULL,"
                    " finished_at = %s, last_error = COALESCE(%s, last_error) WHERE seq = %s",
                    (status, now, note, seq),
                )

    def fail(
        self, seq: int, error: str, *, retry_at: datetime | None, uncount: bool = False
    ) -> None:
        now = to_epoch(self.clock())
        undo = 1 if uncount else 0
        self._let_go(seq)  # written or not, this process stops working on it
        with self._tx() as conn:
            if not self._still_ours(conn, seq):
                return
            if retry_at is None:
                conn.execute(
                    "UPDATE events SET status = 'dead', claimed_until = NULL, claimed_by = NULL,"
                    " last_error = %s, finished_at = %s WHERE seq = %s",
                    (error[:2000], now, seq),
                )
            else:
                conn.execute(
                    "UPDATE events SET claimed_until = NULL, claimed_by = NULL, last_error = %s,"
                    " next_attempt_at = %s, attempts = GREATEST(0, attempts - %s) WHERE seq = %s",
                    (error[:2000], to_epoch(retry_at), undo, seq),
                )

    def retry(self, ref: int | str) -> StoredEvent:
        event = self._retryable(ref)
        self._write(
            "UPDATE events SET status = 'pending', attempts = 0, next_attempt_at = %s,"
            " claimed_until = NULL, claimed_by = NULL, finished_at = NULL WHERE seq = %s",
            (to_epoch(self.clock()), event.seq),
        )
        refreshed = self.get(event.seq)
        assert refreshed is not None
        return refreshed

    def purge_expired(
        self, cutoff: datetime, *, statuses: Sequence[Status] = ("done", "ignored")
    ) -> PurgeResult:
        """Retention (see ``Inbox.purge_expired``), in one transaction."""
        chosen = [s for s in statuses if s != "pending"]
        limit = to_epoch(cutoff)
        events_limit = to_epoch(min(cutoff, self.clock() - DEDUPE_WINDOW))
        gone = (
            "SELECT incident_id FROM handled_incidents h WHERE h.status = 'resolved'"
            " AND h.handled_at < %s AND NOT EXISTS"
            " (SELECT 1 FROM events e WHERE e.incident_id = h.incident_id)"
        )
        with self._tx() as conn:
            events = 0
            if chosen:
                events = conn.execute(
                    "DELETE FROM events WHERE status = ANY(%s) AND received_at < %s",
                    (chosen, events_limit),
                ).rowcount
            ledger = conn.execute(
                f"DELETE FROM ledger WHERE incident_id IN ({gone})", (limit,)
            ).rowcount
            incidents = conn.execute(
                f"DELETE FROM handled_incidents WHERE incident_id IN ({gone})", (limit,)
            ).rowcount
        return PurgeResult(events=events, ledger=ledger, incidents=incidents)

    def size_bytes(self) -> int:
        """The size of pdorgsync's tables (indexes and TOAST included)."""
        rows = self._read(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS size FROM pg_class c"
            " WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
            (["events", "ledger", "recent_incidents", "handled_incidents", "state"],),
        )
        return int(rows[0]["size"] or 0)

    # -- recent and handled incidents (the ledger and the rest are SqlBackend's) ----------

    def open_incidents(self, *, window: timedelta = RECENT_WINDOW) -> list[OpenIncidentRow]:
        cutoff = to_epoch(self.clock() - window)
        with self._tx() as conn:
            conn.execute("DELETE FROM recent_incidents WHERE triggered_at < %s", (cutoff,))
            rows = conn.execute("SELECT * FROM recent_incidents ORDER BY triggered_at").fetchall()
        return [OpenIncidentRow.from_row(r) for r in rows]

    # -- shared pieces --------------------------------------------------------------------

    def leader(self, on_change: Callable[[bool], None] | None = None) -> AdvisoryLeader:
        return AdvisoryLeader(self.url, on_change=on_change)

    def budget(self, token: str, per_minute: float, **kwargs: Any) -> SharedBudget:
        return SharedBudget(self, token, per_minute, **kwargs)
