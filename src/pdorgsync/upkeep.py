"""The worker's periodic chores: the catch-up poll (SPEC §5) and retention (SPEC §4).

**Catch-up poll** (``POLL_INTERVAL``, default 5 minutes, ``0`` off): list the open
incidents created within ``POLL_WINDOW`` and, for each one whose state differs
from what the worker last handled, queue the events it missed under the type
each stands for (``core.catchup``). Nothing is lost when PagerDuty drops or stops
deliveries, and a policy never fires on a type outside its ``on``. On the very
first poll of a state store there is nothing it could have missed: the open
incidents are recorded as they are (the baseline, ``worker.poll_baseline``) and
none is engaged; ``pdorgsync engage --replay`` engages older incidents on purpose.

**Retention** (``INBOX_RETENTION``, default 30 days), once an hour:
``Inbox.purge_expired``, the code ``pdorgsync inbox purge`` runs too.

What it must never do: queue a missed change twice (the synthetic event id
fingerprints the incident's state and what was handled before), or purge what
an incident can still need (the ledger of an open incident).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pdorgsync.core.catchup import missed_event_types
from pdorgsync.core.policies import IncidentFacts
from pdorgsync.errors import InboxError, PdOrgSyncError
from pdorgsync.logs import get_logger
from pdorgsync.models.events import parse_envelope
from pdorgsync.state import StateStore
from pdorgsync.state.records import HandledIncident, PurgeResult

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

__all__ = [
    "POLL_BASELINE",
    "POLL_CURSOR",
    "PURGE_CURSOR",
    "PURGE_EVERY",
    "note_poll_attempt",
    "poll_due",
    "poll_incidents",
    "purge",
    "purge_due",
    "record_handled",
]

log = get_logger("pdorgsync.worker")

POLL_CURSOR = "poll_cursor"
POLL_BASELINE = "poll_baseline_at"
PURGE_CURSOR = "purge_cursor"
PURGE_EVERY = timedelta(hours=1)

PollHook = Callable[[str, Mapping[str, int]], None]


def _since(inbox: StateStore, key: str) -> datetime | None:
    last = inbox.get_state(key)
    try:
        return datetime.fromisoformat(last) if last else None
    except ValueError:
        return None


# -- the catch-up poll ------------------------------------------------------------------


def poll_due(inbox: StateStore, now: datetime, interval: float | None) -> bool:
    """At start, then every ``interval`` seconds (never when ``interval`` is None)."""
    if interval is None:
        return False
    previous = _since(inbox, POLL_CURSOR)
    return previous is None or (now - previous).total_seconds() >= interval


def note_poll_attempt(inbox: StateStore, now: datetime) -> None:
    """A failed poll waits for the next interval too (rather than hammering the API)."""
    with contextlib.suppress(InboxError):  # the next poll will try again anyway
        inbox.set_state(POLL_CURSOR, now.isoformat())


def poll_incidents(
    inbox: StateStore, client: PagerDutyApi, now: datetime, window: timedelta, on_poll: PollHook
) -> int:
    """Queue what was missed for the open incidents created within ``window``.

    Each missed event becomes a synthetic event (source ``poll``). Incidents with
    an event still waiting in the inbox are left to it: the next poll compares
    with what that event handled. Returns how many events were queued.
    """
    baseline_at = _since(inbox, POLL_BASELINE)
    incidents = [
        incident
        for incident in client.list_all(
            "/incidents",
            {
                "statuses[]": ["triggered", "acknowledged"],
                # No `until`: it defaults to the server's now, immune to clock skew.
                "since": (now - window).isoformat(),
            },
        )
        if isinstance(incident.get("id"), str) and incident["id"]
    ]
    if baseline_at is None:
        return _record_baseline(inbox, incidents, now, on_poll)
    ids = [str(incident["id"]) for incident in incidents]
    # Waiting events first: one finishing between the two reads then shows as handled,
    # never as an incident nobody handled (with several replicas, workers run meanwhile).
    waiting = inbox.pending_incidents(ids)
    handled = inbox.handled_incidents(ids)
    queued: dict[str, int] = {}
    for incident in incidents:
        if incident["id"] in waiting:
            continue
        try:
            facts = IncidentFacts.from_api_incident(incident)
        except PdOrgSyncError as exc:
            log.warning("worker.poll_skipped", incident_id=incident["id"], error=str(exc))
            continue
        before = handled.get(facts.id)
        for event_type in missed_event_types(facts, before, baseline_at=baseline_at):
            body = _poll_envelope(incident, event_type, now, before)
            text = json.dumps(body, sort_keys=True)
            if inbox.store(parse_envelope(body), text, source="poll").stored:
                queued[event_type] = queued.get(event_type, 0) + 1
    inbox.set_state(POLL_CURSOR, now.isoformat())
    total = sum(queued.values())
    log.info("worker.polled", incidents=len(incidents), queued=total, types=queued)
    on_poll("ok", queued)
    return total


def record_handled(inbox: StateStore, facts: IncidentFacts, at: datetime) -> None:
    """Remember this state of the incident as handled: what the next poll compares with."""
    inbox.record_handled(
        facts.id,
        status=facts.status,
        priority=facts.priority,
        urgency=facts.urgency,
        service_id=facts.service_id,
        observed_at=at,
    )


def _record_baseline(
    inbox: StateStore, incidents: list[dict[str, Any]], now: datetime, on_poll: PollHook
) -> int:
    for incident in incidents:
        try:
            facts = IncidentFacts.from_api_incident(incident)
        except PdOrgSyncError:
            continue  # nothing to remember; the next polls skip it with a warning
        record_handled(inbox, facts, now)
    inbox.set_state(POLL_BASELINE, now.isoformat())
    inbox.set_state(POLL_CURSOR, now.isoformat())
    log.info(
        "worker.poll_baseline",
        open_incidents=len(incidents),
        note="open incidents from before the first start are recorded, not engaged;"
        " `pdorgsync engage --replay` engages them on purpose",
    )
    on_poll("baseline", {})
    return 0


def _poll_envelope(
    incident: dict[str, Any], event_type: str, now: datetime, handled: HandledIncident | None
) -> dict[str, Any]:
    incident_id = str(incident["id"])
    priority = incident.get("priority") if isinstance(incident.get("priority"), dict) else {}
    service = incident.get("service") if isinstance(incident.get("service"), dict) else {}
    fingerprint = json.dumps(
        [
            event_type,
            incident.get("status"),
            incident.get("urgency"),
            (priority or {}).get("id"),
            (service or {}).get("id"),
            handled.observed_at.isoformat() if handled is not None else None,
        ],
        sort_keys=True,
    )
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return {
        "event": {
            "id": f"poll:{incident_id}:{event_type}:{digest}",
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": now.isoformat(),
            "agent": None,
            "client": {"name": "pdorgsync catch-up poll"},
            "data": {**incident, "type": "incident"},
        }
    }


# -- retention --------------------------------------------------------------------------


def purge_due(inbox: StateStore, now: datetime, retention: timedelta | None) -> bool:
    """At start, then once an hour (never without a retention)."""
    if retention is None:
        return False
    previous = _since(inbox, PURGE_CURSOR)
    return previous is None or now - previous >= PURGE_EVERY


def purge(
    inbox: StateStore, now: datetime, retention: timedelta, on_purge: Callable[[PurgeResult], None]
) -> PurgeResult:
    """Apply ``retention`` now (what ``pdorgsync inbox purge`` does by hand)."""
    result = inbox.purge_expired(now - retention)
    inbox.set_state(PURGE_CURSOR, now.isoformat())
    log.info(
        "inbox.purged",
        events=result.events,
        ledger=result.ledger,
        incidents=result.incidents,
        retention_seconds=retention.total_seconds(),
    )
    on_purge(result)
    return result
