"""What every state backend stores and answers: the record types and their row mapping.

Both backends (``state.sqlite`` and ``state.postgres``) keep the same columns and
timestamps (seconds since the epoch, UTC), so one mapping serves both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

__all__ = [
    "DEDUPE_WINDOW",
    "EPOCH",
    "EVENT_COLUMNS",
    "STATUSES",
    "Clock",
    "EngagementRecord",
    "HandledIncident",
    "InboxStats",
    "OpenIncidentRow",
    "PurgeResult",
    "Status",
    "StoreResult",
    "StoredEvent",
    "event_from_row",
    "from_epoch",
    "to_epoch",
    "utcnow",
]

Status = Literal["pending", "done", "ignored", "dead"]
STATUSES: tuple[Status, ...] = ("pending", "done", "ignored", "dead")
Clock = Callable[[], datetime]

#: How long an event's dedupe keys (event id, webhook id) are kept, whatever the
#: purge asks: PagerDuty retries a delivery for up to 48 hours (CONTRACT §8, its
#: webhook docs "retries ... over 48 hours"), plus a day of margin. The receiver
#: refuses (stores as ignored) deliveries that occurred longer ago than this, so a
#: captured delivery replayed after its keys were purged is never evaluated again.
DEDUPE_WINDOW = timedelta(hours=72)


def utcnow() -> datetime:
    """The real clock (aware UTC); everything else takes a clock argument."""
    return datetime.now(UTC)


def to_epoch(value: datetime) -> float:
    return value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
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

    @classmethod
    def from_row(cls, row: Any) -> EngagementRecord:
        """From a ``ledger`` row of either backend (a mapping by column)."""
        return cls(
            incident_id=row["incident_id"],
            department=row["department"],
            as_=row["as_"],
            policy=row["policy"],
            event_id=row["event_id"],
            engaged_at=from_epoch(row["engaged_at"]) or EPOCH,
            details=json.loads(row["details"]),
        )


@dataclass(frozen=True)
class OpenIncidentRow:
    """An open incident as the state store keeps it (``open_incidents``); the worker
    turns each into a ``core.policies.OpenIncident`` for ``min_impacted_services``."""

    incident_id: str
    service_id: str | None
    service_name: str | None
    triggered_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> OpenIncidentRow:
        """From a ``recent_incidents`` row of either backend (a mapping by column)."""
        return cls(
            incident_id=row["incident_id"],
            service_id=row["service_id"],
            service_name=row["service_name"],
            triggered_at=from_epoch(row["triggered_at"]) or EPOCH,
        )


@dataclass(frozen=True)
class InboxStats:
    pending: int
    oldest_pending_age: float  # seconds; 0 when nothing is pending
    dead: int
    events: int = 0  # rows in the events table, whatever their status
    size_bytes: int = 0  # the database file and its WAL on disk


@dataclass(frozen=True)
class HandledIncident:
    """The state of an incident as the worker last handled it (webhook or poll)."""

    incident_id: str
    status: str
    priority: str | None
    urgency: str | None
    service_id: str | None
    observed_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> HandledIncident:
        """From a ``handled_incidents`` row of either backend (a mapping by column)."""
        return cls(
            incident_id=row["incident_id"],
            status=row["status"],
            priority=row["priority"],
            urgency=row["urgency"],
            service_id=row["service_id"],
            observed_at=from_epoch(row["observed_at"]) or EPOCH,
        )


@dataclass(frozen=True)
class PurgeResult:
    """What ``purge_expired`` deleted."""

    events: int
    ledger: int
    incidents: int


EVENT_COLUMNS = (
    "seq, event_id, webhook_id, received_at, event_type, incident_id, source, status, "
    "attempts, last_error, next_attempt_at, payload"
)
#: What a missing timestamp reads as.
EPOCH = datetime.min.replace(tzinfo=UTC)


class _Row(Protocol):
    """A result row by column name: ``sqlite3.Row`` or psycopg's ``dict_row``."""

    def __getitem__(self, key: str, /) -> Any: ...


def event_from_row(row: _Row) -> StoredEvent:
    """A ``StoredEvent`` from a row selected with ``EVENT_COLUMNS``."""
    return StoredEvent(
        seq=int(row["seq"]),
        event_id=row["event_id"],
        webhook_id=row["webhook_id"],
        received_at=from_epoch(row["received_at"]) or EPOCH,
        event_type=row["event_type"],
        incident_id=row["incident_id"],
        source=row["source"],
        status=row["status"],
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        next_attempt_at=from_epoch(row["next_attempt_at"]) or EPOCH,
        payload=row["payload"],
    )
