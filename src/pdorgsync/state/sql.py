"""What both state backends do the same way, written once: reading events (``get``,
``events``, ``stats``, ``purge``), the engagement ledger, the recent and handled
incidents, and the key/value state.

The SQL here is plain SQL both PostgreSQL and SQLite (3.24 or newer, for upserts)
accept, with psycopg's ``%s`` placeholders (and no literal ``%s`` anywhere); a
backend supplies ``_rows`` and ``_change`` (SQLite's turn ``%s`` into ``?``). What
differs between the two (storing and claiming events, their leases, failures and
retention, where PostgreSQL's claims carry an owner and row locks) stays in each backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Self

from pdorgsync.errors import InboxError
from pdorgsync.state.records import (
    EVENT_COLUMNS,
    EngagementRecord,
    HandledIncident,
    InboxStats,
    PurgeResult,
    Status,
    StoredEvent,
    event_from_row,
    to_epoch,
)

__all__ = ["SqlBackend"]


class SqlBackend:
    """The queries the SQLite and the PostgreSQL state stores share."""

    clock: Callable[[], datetime]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query (``%s`` placeholders) and return its rows, by column name."""
        raise NotImplementedError

    def _change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one writing statement in its own transaction; returns the row count."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get(self, ref: int | str) -> StoredEvent | None:
        """An event by inbox id (number) or by PagerDuty event id."""
        if isinstance(ref, int) or ref.isdigit():
            rows = self._rows(f"SELECT {EVENT_COLUMNS} FROM events WHERE seq = %s", (int(ref),))
            if rows:
                return event_from_row(rows[0])
        rows = self._rows(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = %s", (str(ref),))
        return event_from_row(rows[0]) if rows else None

    def _retryable(self, ref: int | str) -> StoredEvent:
        """The event ``retry`` may re-queue: a dead or a waiting one."""
        event = self.get(ref)
        if event is None:
            raise InboxError(f"no event {ref} in the inbox")
        if event.status not in ("dead", "pending"):
            raise InboxError(
                f"event {event.seq} is {event.status}; only dead or pending events can be retried"
            )
        return event

    def size_bytes(self) -> int:
        raise NotImplementedError

    def stats(self) -> InboxStats:
        """Pending count, age of the oldest pending event, dead count, rows, bytes (metrics).

        A full-table aggregate: callers on an event loop run it in a thread and cache it.
        """
        rows = self._rows(
            "SELECT"
            " SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending,"
            " MIN(CASE WHEN status = 'pending' THEN received_at END) AS oldest,"
            " SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END) AS dead,"
            " COUNT(*) AS total FROM events"
        )
        row = rows[0]
        oldest = row["oldest"]
        age = max(0.0, to_epoch(self.clock()) - oldest) if oldest is not None else 0.0
        return InboxStats(
            pending=int(row["pending"] or 0),
            oldest_pending_age=age,
            dead=int(row["dead"] or 0),
            events=int(row["total"] or 0),
            size_bytes=self.size_bytes(),
        )

    def purge_expired(
        self, cutoff: datetime, *, statuses: Sequence[Status] = ("done", "ignored")
    ) -> PurgeResult:
        raise NotImplementedError

    def events(
        self,
        *,
        statuses: Sequence[Status] | None = None,
        incident_id: str | None = None,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events, oldest first, optionally filtered (``limit``: the newest that many)."""
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE 1 = 1"
        params: list[Any] = []
        if statuses:
            sql += f" AND status IN ({_marks(statuses)})"
            params.extend(statuses)
        if incident_id is not None:
            sql += " AND incident_id = %s"
            params.append(incident_id)
        sql += " ORDER BY seq"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} DESC LIMIT %s) AS newest ORDER BY seq"
            params.append(limit)
        return [event_from_row(r) for r in self._rows(sql, params)]

    def purge(self, *, statuses: Sequence[Status], older_than: datetime | None = None) -> int:
        """Delete finished events (never pending ones) received before ``older_than``;
        returns how many. The same retention as ``purge_expired`` (which it runs)."""
        cutoff = older_than or datetime.max.replace(tzinfo=UTC)
        return self.purge_expired(cutoff, statuses=statuses).events

    # -- ledger ---------------------------------------------------------------------------

    def has_engagement(self, incident_id: str, department: str, as_: str) -> bool:
        return bool(
            self._rows(
                "SELECT 1 FROM ledger WHERE incident_id = %s AND department = %s AND as_ = %s",
                (incident_id, department, as_),
            )
        )

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
        inserted = self._change(
            "INSERT INTO ledger (incident_id, department, as_, policy, event_id,"
            " engaged_at, details) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (
                incident_id,
                department,
                as_,
                policy,
                event_id,
                to_epoch(self.clock()),
                json.dumps(details or {}, sort_keys=True),
            ),
        )
        return inserted == 1

    def engagements(self, incident_id: str | None = None) -> list[EngagementRecord]:
        sql = "SELECT * FROM ledger"
        params: tuple[Any, ...] = ()
        if incident_id is not None:
            sql += " WHERE incident_id = %s"
            params = (incident_id,)
        sql += " ORDER BY engaged_at, incident_id, department, as_"
        return [EngagementRecord.from_row(r) for r in self._rows(sql, params)]

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
        self._change(
            "INSERT INTO recent_incidents (incident_id, service_id, service_name, triggered_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (incident_id) DO UPDATE SET"
            " service_id = excluded.service_id, service_name = excluded.service_name",
            (incident_id, service_id, service_name, to_epoch(triggered_at)),
        )

    def record_incident_resolved(self, incident_id: str) -> None:
        self._change("DELETE FROM recent_incidents WHERE incident_id = %s", (incident_id,))

    # -- handled incidents (catch-up poll) --------------------------------------------------

    def record_handled(
        self,
        incident_id: str,
        *,
        status: str,
        priority: str | None,
        urgency: str | None,
        service_id: str | None,
        observed_at: datetime,
    ) -> None:
        """Remember the incident's state as handled; an older observation never wins."""
        self._change(
            "INSERT INTO handled_incidents (incident_id, status, priority, urgency,"
            " service_id, observed_at, handled_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (incident_id) DO UPDATE SET status = excluded.status,"
            " priority = excluded.priority, urgency = excluded.urgency,"
            " service_id = excluded.service_id, observed_at = excluded.observed_at,"
            " handled_at = excluded.handled_at"
            " WHERE excluded.observed_at >= handled_incidents.observed_at",
            (
                incident_id,
                status,
                priority,
                urgency,
                service_id,
                to_epoch(observed_at),
                to_epoch(self.clock()),
            ),
        )

    def handled_incidents(self, incident_ids: Sequence[str]) -> dict[str, HandledIncident]:
        """The handled state of each of these incidents that has one."""
        found: dict[str, HandledIncident] = {}
        for chunk in _chunks(incident_ids):
            rows = self._rows(
                f"SELECT * FROM handled_incidents WHERE incident_id IN ({_marks(chunk)})", chunk
            )
            found.update((r["incident_id"], HandledIncident.from_row(r)) for r in rows)
        return found

    def pending_incidents(self, incident_ids: Sequence[str]) -> set[str]:
        """Which of these incidents have an event waiting."""
        found: set[str] = set()
        for chunk in _chunks(incident_ids):
            rows = self._rows(
                "SELECT DISTINCT incident_id FROM events WHERE status = 'pending'"
                f" AND incident_id IN ({_marks(chunk)})",
                chunk,
            )
            found.update(r["incident_id"] for r in rows)
        return found

    # -- key/value state ------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM state WHERE key = %s", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_state(self, key: str, value: str) -> None:
        self._change(
            "INSERT INTO state (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _marks(values: Sequence[Any]) -> str:
    """One placeholder per value, for ``IN (...)``."""
    return ", ".join("%s" for _ in values)


def _chunks(ids: Sequence[str], size: int = 500) -> list[list[str]]:
    """Distinct ids in chunks under SQLite's bound-parameter limit."""
    distinct = list(dict.fromkeys(ids))
    return [distinct[start : start + size] for start in range(0, len(distinct), size)]
