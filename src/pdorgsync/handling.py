"""One stored event, handled: parse, facts, the recent-incident state, the pure
``core.policies.evaluate``, then ``engagements.Engager`` performs what it decided.

Split from ``worker.py``, which owns the loop around it (claims, retries, dead
letters); what the worker reports through is ``WorkerHooks``. ``engage --event``
performs an evaluation through ``perform_engagements`` with the same ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pdorgsync import upkeep
from pdorgsync.core.policies import (
    RECENT_WINDOW,
    Evaluation,
    IncidentFacts,
    OpenIncident,
    RecentIncidents,
    evaluate,
)
from pdorgsync.engagements import EngagementOutcome, Engager
from pdorgsync.errors import (
    PagerDutyError,
    PdOrgSyncError,
)
from pdorgsync.logs import get_logger
from pdorgsync.models.events import EnvelopeError, WebhookEnvelope, parse_envelope
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy
from pdorgsync.state import StateStore, open_state
from pdorgsync.state.records import PurgeResult

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi
    from pdorgsync.settings import Settings


# The worker's events, under the worker's logger name.
log = get_logger("pdorgsync.worker")


def _noop_engagement(_department: str, _as: str, _outcome: str) -> None:
    return None


def _noop_event(_event_type: str, _status: str, _seconds: float) -> None:
    return None


def _noop_poll(_result: str, _queued: Mapping[str, int]) -> None:
    return None


def _noop_purge(_result: PurgeResult) -> None:
    return None


@dataclass(frozen=True)
class WorkerHooks:
    """Metric hook points of the worker for the daemon.

    ``on_engagement(department, as, outcome)`` with outcome ``engaged``,
    ``already_engaged``, ``skipped`` or ``failed`` (the labels of
    ``pdorgsync_engagements_total``); ``on_event(event_type, status, seconds)``
    once per processed event, status ``done``, ``ignored``, ``retry`` or ``dead``;
    ``on_poll(result, queued)`` once per catch-up poll, result ``ok``, ``baseline``
    or ``failed``, ``queued`` the events queued by type; ``on_purge(result)`` after
    each retention purge.
    """

    on_engagement: Callable[[str, str, str], None] = field(default=_noop_engagement)
    on_event: Callable[[str, str, float], None] = field(default=_noop_event)
    on_poll: Callable[[str, Mapping[str, int]], None] = field(default=_noop_poll)
    on_purge: Callable[[PurgeResult], None] = field(default=_noop_purge)


@dataclass(frozen=True)
class EventResult:
    """What ``handle_event`` did with one event."""

    status: str  # done | ignored
    reason: str
    incident_id: str | None = None
    evaluation: Evaluation | None = None
    outcomes: list[EngagementOutcome] = field(default_factory=list)


def perform_engagements(
    *,
    settings: Settings,
    client: PagerDutyApi,
    org: Org,
    facts: IncidentFacts,
    evaluation: Evaluation,
) -> list[EngagementOutcome]:
    """Perform an evaluation's engagements once (``engage --event`` / ``--replay``).

    Uses the same ledger (``STATE_PATH``) as the daemon, so a payload engaged here
    is never engaged again by the daemon, and vice versa.
    """
    with open_state(settings) as inbox:
        engager = Engager(
            inbox=inbox,
            client=client,
            org=org,
            from_email=settings.require_from_email(),
            incident_notes=settings.incident_notes,
        )
        return engager.engage_all(facts.id, evaluation.engagements, event_id=None)


@dataclass(frozen=True)
class EventContext:
    """What handling one event needs of the worker that claimed it."""

    inbox: StateStore
    engager: Engager
    org: Org
    policies: Sequence[Policy]
    clock: Callable[[], datetime]
    on_engagement: Callable[[str, str, str], None]


def handle_envelope(
    raw: dict[str, Any],
    ctx: EventContext,
    *,
    source: str,
    event_id: str | None,
    dry_run: bool = False,
    history_known: bool = False,
) -> EventResult:
    try:
        envelope: WebhookEnvelope = parse_envelope(raw)
    except EnvelopeError as exc:
        raise PdOrgSyncError(str(exc)) from None
    event = envelope.event
    incident_id = event.incident_id
    if (
        event.agent is not None
        and "user" in event.agent.type
        and event.agent.id == ctx.engager.bot_user_id()
    ):
        return EventResult("ignored", "our own change (agent is the bot user)", incident_id)
    if event.resource_type not in ("incident", "") or event.data.get("type") != "incident":
        return EventResult("ignored", f"{event.event_type} carries no incident", incident_id)
    if source == "poll":
        facts = IncidentFacts.from_api_incident(event.data)
    else:
        facts = IncidentFacts.from_webhook_data(event.data)
    now = ctx.clock()
    occurred = event.occurred_at if event.occurred_at is not None else now
    when = min(occurred, now)
    recent = recent_with(ctx, event.event_type, facts, when, persist=not dry_run)
    evaluation = evaluate(
        event.event_type,
        facts,
        ctx.org,
        ctx.policies,
        recent,
        when,
        ctx.engager.directory.managed_labels(),
    )
    for skipped in evaluation.skipped:
        if skipped.kind != "duplicate":
            log.warning(
                "engagement.skipped",
                incident_id=facts.id,
                department=skipped.department,
                as_=skipped.as_,
                policy=skipped.policy,
                reason=skipped.reason,
            )
            ctx.on_engagement(skipped.department, skipped.as_, "skipped")
    if dry_run:
        return EventResult("done", "dry run", facts.id, evaluation)
    wanted = [(e.department, e.as_) for e in evaluation.engagements]
    before = {k for k in wanted if ctx.inbox.has_engagement(facts.id, *k)}
    try:
        outcomes = ctx.engager.engage_all(
            facts.id, evaluation.engagements, event_id=event_id, history_known=history_known
        )
    except PagerDutyError:
        # A partial failure: what this pass recorded counts as engaged, the rest failed.
        for key in dict.fromkeys(wanted):
            if key in before:
                continue
            done = ctx.inbox.has_engagement(facts.id, *key)
            ctx.on_engagement(*key, "engaged" if done else "failed")
        raise
    for result in outcomes:
        ctx.on_engagement(result.department, result.as_, result.outcome)
    upkeep.record_handled(ctx.inbox, facts, when)  # what the catch-up poll compares with
    matched = ", ".join(evaluation.matched) or "no policy matched"
    return EventResult("done", matched, facts.id, evaluation, outcomes)


def recent_with(
    ctx: EventContext, event_type: str, facts: IncidentFacts, when: datetime, *, persist: bool
) -> RecentIncidents:
    """The recent-incident value with this event folded in (and stored, unless dry run)."""
    rows = ctx.inbox.open_incidents(window=RECENT_WINDOW)
    recent = RecentIncidents(
        tuple(OpenIncident(r.incident_id, r.service_id, r.triggered_at) for r in rows)
    ).with_event(event_type, facts, when)
    if persist:
        entry = next((i for i in recent.incidents if i.incident_id == facts.id), None)
        if entry is None:
            ctx.inbox.record_incident_resolved(facts.id)
        elif entry.triggered_at >= ctx.clock() - RECENT_WINDOW:
            ctx.inbox.record_incident_open(
                facts.id,
                service_id=entry.service_id,
                service_name=facts.service_name,
                triggered_at=entry.triggered_at,
            )
    return recent
