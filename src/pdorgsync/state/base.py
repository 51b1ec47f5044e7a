"""The state backend interface: inbox, engagement ledger, poll cursor and small facts.

Two implementations satisfy it: ``pdorgsync.state.sqlite.Inbox`` (SQLite, the embedded
default; one process per file) and ``pdorgsync.state.postgres.PostgresState``
(several replicas on one database). The receiver, the worker, the engager, the
daemon and the ``inbox`` commands only see this protocol.

Claim semantics, shared by both: ``claim`` returns the oldest due pending event
of an incident that has no earlier pending event (so no other event of that
incident is being worked on: a claimed event stays pending until completed),
marks it claimed for a bounded lease and counts the attempt; an expired lease is
taken back by the next claim. ``release_claims`` hands back the claims *this
store* (this process) holds. The ledger is unique on (incident, department, as):
``record_engagement`` returns False when the row was already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from pdorgsync.models.events import WebhookEnvelope
from pdorgsync.state.records import (
    EngagementRecord,
    HandledIncident,
    InboxStats,
    OpenIncidentRow,
    PurgeResult,
    Status,
    StoredEvent,
    StoreResult,
)

__all__ = ["Leader", "StateStore"]


class StateStore(Protocol):
    """What every state backend offers (see the module docstring for the semantics)."""

    def clock(self) -> datetime: ...

    def check_file(self) -> None: ...

    def quick_check(self) -> None: ...

    def write_failure(self, *, within: float = 60.0) -> str | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> StateStore: ...

    def __exit__(self, *_exc: object) -> None: ...

    # events
    def store(
        self,
        envelope: WebhookEnvelope,
        payload: str,
        *,
        webhook_id: str | None = None,
        source: str = "webhook",
        status: Status | None = None,
        note: str | None = None,
    ) -> StoreResult: ...

    def claim(self, *, lease: float = 300.0) -> StoredEvent | None: ...

    def release_claims(self) -> int: ...

    def complete(self, seq: int, status: Status = "done", note: str | None = None) -> None: ...

    def fail(
        self, seq: int, error: str, *, retry_at: datetime | None, uncount: bool = False
    ) -> None: ...

    def retry(self, ref: int | str) -> StoredEvent: ...

    def get(self, ref: int | str) -> StoredEvent | None: ...

    def events(
        self,
        *,
        statuses: Sequence[Status] | None = None,
        incident_id: str | None = None,
        limit: int | None = None,
    ) -> list[StoredEvent]: ...

    def purge(self, *, statuses: Sequence[Status], older_than: datetime | None = None) -> int: ...

    def stats(self) -> InboxStats: ...

    def purge_expired(
        self, cutoff: datetime, *, statuses: Sequence[Status] = ("done", "ignored")
    ) -> PurgeResult: ...

    def size_bytes(self) -> int: ...

    @property
    def open_connections(self) -> int: ...

    # ledger
    def has_engagement(self, incident_id: str, department: str, as_: str) -> bool: ...

    def record_engagement(
        self,
        incident_id: str,
        department: str,
        as_: str,
        *,
        policy: str,
        event_id: str | None,
        details: dict[str, Any] | None = None,
    ) -> bool: ...

    def engagements(self, incident_id: str | None = None) -> list[EngagementRecord]: ...

    # recent incidents (min_impacted_services)
    def record_incident_open(
        self,
        incident_id: str,
        *,
        service_id: str | None,
        service_name: str | None,
        triggered_at: datetime,
    ) -> None: ...

    def record_incident_resolved(self, incident_id: str) -> None: ...

    def open_incidents(self, *, window: timedelta = ...) -> list[OpenIncidentRow]: ...

    # small facts (the poll cursor, the readiness probe)
    def record_handled(
        self,
        incident_id: str,
        *,
        status: str,
        priority: str | None,
        urgency: str | None,
        service_id: str | None,
        observed_at: datetime,
    ) -> None: ...

    def handled_incidents(self, incident_ids: Sequence[str]) -> dict[str, HandledIncident]: ...

    def pending_incidents(self, incident_ids: Sequence[str]) -> set[str]: ...

    def get_state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str) -> None: ...


class Leader(Protocol):
    """Who runs the reconcile loop: exactly one replica at a time."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_leader(self) -> bool: ...
