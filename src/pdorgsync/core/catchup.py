"""The catch-up poll's decision (SPEC §5): which events did we miss for this incident?

PURE: no network, disk, clock or logging. The worker lists open incidents and
hands each one here with the state it last handled for it; what comes back is
the list of event types to queue, so that policies see a polled incident under
the type it stands for (SPEC §2: ``on`` holds whatever the event's source).

- never handled, created after the baseline: ``incident.triggered``;
- never handled, created before the baseline: it was not open when the baseline
  was taken (or it would have been recorded), so it has been ``incident.reopened``;
- handled as resolved, open now: ``incident.reopened``;
- handled as open: a status change is ``incident.acknowledged`` /
  ``incident.unacknowledged``, a new service ``incident.service_updated``, a new
  priority ``incident.priority_updated``.

An escalation or a reassignment cannot be told from the incident object (the
REST incident carries no escalation level), and an urgency change has no event
type of its own: neither is queued; the next event of the incident sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pdorgsync.core.policies import IncidentFacts

__all__ = ["Handled", "missed_event_types"]


class Handled(Protocol):
    """The state of an incident as it was last handled (the inbox's record)."""

    @property
    def status(self) -> str: ...

    @property
    def priority(self) -> str | None: ...

    @property
    def service_id(self) -> str | None: ...


def missed_event_types(
    facts: IncidentFacts, handled: Handled | None, *, baseline_at: datetime
) -> tuple[str, ...]:
    """The event types that take ``handled`` to ``facts``, in the order they are queued."""
    if not facts.is_open:
        return ()
    if handled is None:
        if facts.created_at >= baseline_at:
            return ("incident.triggered",)
        return ("incident.reopened",)
    missed: list[str] = []
    if handled.status == "resolved":
        missed.append("incident.reopened")
    elif handled.status != facts.status:
        if facts.status == "acknowledged":
            missed.append("incident.acknowledged")
        elif facts.status == "triggered":
            missed.append("incident.unacknowledged")
    if handled.service_id != facts.service_id:
        missed.append("incident.service_updated")
    if handled.priority != facts.priority:
        missed.append("incident.priority_updated")
    return tuple(missed)
