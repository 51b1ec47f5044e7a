"""Policy evaluation (SPEC §2): (event, incident, org, recent incidents) → engagements.

PURE: no network, disk, clock, environment or logging. Time comes in as ``now``;
the recent-incident state comes in as a value and a new value goes out. The
webhook worker, ``engage --event`` and ``engage --replay`` all call
``evaluate``, so what a dry run explains is exactly what the worker does.

Every condition is a small predicate returning ``None`` (holds) or the reason
it failed, in words a user understands ("priority P3 is not one of P1, P2").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pdorgsync.errors import PdOrgSyncError
from pdorgsync.models.org import Department, Org, parse_marker
from pdorgsync.models.policy import PLACEHOLDER_RE, EngageSpec, Policy

As = Literal["responder", "subscriber"]

#: SPEC §2: ``min_impacted_services`` counts incidents triggered in this window.
RECENT_WINDOW = timedelta(minutes=60)


class IncidentDataError(PdOrgSyncError):
    """An incident object (webhook ``data`` or API incident) lacks what evaluation needs."""


def _parse_time(value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise IncidentDataError(f"incident {what} missing or not a string: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise IncidentDataError(f"incident {what} is not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise IncidentDataError(f"incident {what} has no UTC offset: {value!r}")
    return parsed


def _ref_field(data: Mapping[str, Any], key: str, attr: str) -> str | None:
    ref = data.get(key)
    if isinstance(ref, Mapping):
        value = ref.get(attr)
        return str(value) if value is not None else None
    return None


@dataclass(frozen=True)
class IncidentFacts:
    """What policies look at, from a webhook's ``data`` or an API incident."""

    id: str
    number: int | None
    title: str
    html_url: str | None
    status: str  # triggered | acknowledged | resolved
    priority: str | None  # priority name ("P1"), None when unset
    urgency: str | None  # high | low
    service_id: str | None
    service_name: str | None
    created_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    @classmethod
    def _from(cls, data: Mapping[str, Any], number_key: str) -> IncidentFacts:
        if not isinstance(data, Mapping):
            raise IncidentDataError(f"incident data is not an object: {type(data).__name__}")
        incident_id = data.get("id")
        if not isinstance(incident_id, str) or not incident_id:
            raise IncidentDataError("incident data has no 'id'")
        number = data.get(number_key, data.get("number", data.get("incident_number")))
        priority = data.get("priority")
        priority_name = None
        if isinstance(priority, Mapping):
            # Webhooks carry the name in `summary`; API incidents may also have `name`.
            raw = priority.get("name") or priority.get("summary")
            priority_name = str(raw) if raw else None
        title = data.get("title")
        return cls(
            id=incident_id,
            number=number if isinstance(number, int) and not isinstance(number, bool) else None,
            title=title if isinstance(title, str) else "",
            html_url=data.get("html_url") if isinstance(data.get("html_url"), str) else None,
            status=str(data.get("status") or "triggered"),
            priority=priority_name,
            urgency=data.get("urgency") if isinstance(data.get("urgency"), str) else None,
            service_id=_ref_field(data, "service", "id"),
            service_name=_ref_field(data, "service", "summary")
            or _ref_field(data, "service", "name"),
            created_at=_parse_time(data.get("created_at"), "created_at"),
        )

    @classmethod
    def from_webhook_data(cls, data: Mapping[str, Any]) -> IncidentFacts:
        """From a V3 webhook's ``event.data`` when ``data.type`` is ``incident``."""
        return cls._from(data, "number")

    @classmethod
    def from_api_incident(cls, incident: Mapping[str, Any]) -> IncidentFacts:
        """From a REST ``GET /incidents`` item (``incident_number`` instead of ``number``)."""
        return cls._from(incident, "incident_number")


@dataclass(frozen=True)
class OpenIncident:
    """An open incident as policy evaluation counts it (``RecentIncidents``)."""

    incident_id: str
    service_id: str | None
    triggered_at: datetime


@dataclass(frozen=True)
class RecentIncidents:
    """Open incidents known from received events: the state behind ``min_impacted_services``.

    A value: ``with_event`` returns a new one. Triggered/reopened add, resolved
    removes, any other incident event teaches us an open incident we had not seen.
    """

    incidents: tuple[OpenIncident, ...] = ()

    def impacted_services(self, now: datetime) -> int:
        """Distinct services with open incidents triggered in the last 60 minutes."""
        since = now - RECENT_WINDOW
        return len(
            {
                inc.service_id or f"incident:{inc.incident_id}"
                for inc in self.incidents
                if since <= inc.triggered_at <= now
            }
        )

    def with_event(
        self, event_type: str, facts: IncidentFacts, occurred_at: datetime
    ) -> RecentIncidents:
        others = tuple(i for i in self.incidents if i.incident_id != facts.id)
        known = next((i for i in self.incidents if i.incident_id == facts.id), None)
        if event_type == "incident.resolved" or not facts.is_open:
            return replace(self, incidents=others)
        if event_type == "incident.triggered":
            entry = OpenIncident(facts.id, facts.service_id, min(facts.created_at, occurred_at))
        elif event_type == "incident.reopened":
            entry = OpenIncident(facts.id, facts.service_id, occurred_at)
        elif known is not None:
            entry = OpenIncident(facts.id, facts.service_id, known.triggered_at)
        else:
            entry = OpenIncident(facts.id, facts.service_id, facts.created_at)
        return replace(self, incidents=(*others, entry))

    @classmethod
    def from_history(
        cls, incidents: Iterable[tuple[IncidentFacts, datetime | None]], at: datetime
    ) -> RecentIncidents:
        """The state as it was at ``at``, from past incidents and their ``resolved_at``.

        Used where no webhook stream exists (``engage --replay``, ``engage --event``):
        an incident counts if it was triggered in the hour before ``at`` and was
        not yet resolved at ``at``.
        """
        since = at - RECENT_WINDOW
        return cls(
            incidents=tuple(
                OpenIncident(facts.id, facts.service_id, facts.created_at)
                for facts, resolved_at in incidents
                if since <= facts.created_at <= at and (resolved_at is None or resolved_at > at)
            )
        )

    def pruned(self, now: datetime) -> RecentIncidents:
        """Drop incidents triggered before the window: they can no longer count."""
        since = now - RECENT_WINDOW
        return replace(self, incidents=tuple(i for i in self.incidents if i.triggered_at >= since))


def managed_service_labels(
    org: Org, services: Iterable[tuple[str, str | None]]
) -> dict[str, list[str]]:
    """``{service id: labels}`` for services pdorgsync manages, from (id, description) pairs.

    A service is ours when its description carries this org's ownership marker.
    """
    labels: dict[str, list[str]] = {}
    for service_id, description in services:
        marker = parse_marker(description)
        if marker is None or marker[0] != org.org:
            continue
        dept = org.department(marker[1])
        if dept is not None and dept.service is not None:
            labels[service_id] = list(dept.service.labels)
    return labels


def service_labels(
    facts: IncidentFacts, org: Org, managed: Mapping[str, Sequence[str]] | None
) -> set[str]:
    """SPEC §1: a managed service's labels (by id), otherwise ``service_labels`` by name.

    ``managed=None`` means the managed services' ids are unknown (offline dry run):
    then a managed service is recognised by its derived name instead.
    """
    if managed is not None and facts.service_id is not None and facts.service_id in managed:
        return set(managed[facts.service_id])
    if managed is None and facts.service_name is not None:
        for dept in org.departments:
            if dept.service is not None and dept.service_name == facts.service_name:
                return set(dept.service.labels)
    if facts.service_name is not None:
        return set(org.service_labels.get(facts.service_name, []))
    return set()


@dataclass(frozen=True)
class Engagement:
    """One engagement evaluation decided: a department engaged on an incident, and how.

    Not ``core.coverage_objects.EngagementNeed`` (what a policy file may ask, for the audit)."""

    department: str
    as_: As
    policy: str
    message: str


SkipKind = Literal["duplicate", "no_escalation_policy", "no_team", "unknown_department"]


@dataclass(frozen=True)
class SkippedEngagement:
    """An engagement a policy asked for but that will not be performed, and why."""

    department: str
    as_: As
    policy: str
    kind: SkipKind
    reason: str


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    matched: bool
    reason: str | None  # the first condition that failed, None when matched


@dataclass(frozen=True)
class Evaluation:
    engagements: list[Engagement] = field(default_factory=list)
    results: list[PolicyResult] = field(default_factory=list)
    skipped: list[SkippedEngagement] = field(default_factory=list)

    @property
    def matched(self) -> list[str]:
        return [r.policy for r in self.results if r.matched]


def _any_of(values: Iterable[str]) -> str:
    return ", ".join(values)


@dataclass(frozen=True)
class _Context:
    event_type: str
    facts: IncidentFacts
    labels: set[str]
    impacted: int


def _failed_condition(policy: Policy, ctx: _Context) -> str | None:
    """The first condition of ``policy`` that does not hold, in words; None if all hold."""
    facts, when = ctx.facts, policy.when
    if ctx.event_type not in policy.on:
        return f"event {ctx.event_type} is not one of {_any_of(policy.on)}"
    if when.priorities is not None:
        wanted = {p.casefold() for p in when.priorities}
        if facts.priority is None:
            return f"incident has no priority (wanted one of {_any_of(when.priorities)})"
        if facts.priority.casefold() not in wanted:
            return f"priority {facts.priority} is not one of {_any_of(when.priorities)}"
    if when.urgencies is not None:
        if facts.urgency is None:
            return f"incident has no urgency (wanted one of {_any_of(when.urgencies)})"
        if facts.urgency not in when.urgencies:
            return f"urgency {facts.urgency} is not one of {_any_of(when.urgencies)}"
    if when.services is not None and facts.service_name not in when.services:
        shown = repr(facts.service_name) if facts.service_name else "unknown"
        return f"service {shown} is not one of {_any_of(repr(s) for s in when.services)}"
    if when.labels is not None and not ctx.labels.intersection(when.labels):
        service = repr(facts.service_name) if facts.service_name else "the service"
        has = f"labels {_any_of(sorted(ctx.labels))}" if ctx.labels else "no labels"
        return f"{service} has {has}, none of {_any_of(when.labels)}"
    if when.title_regex is not None and not when.title_regex.search(facts.title):
        return f"title {facts.title!r} does not match /{when.title_regex.pattern}/"
    if when.min_impacted_services is not None and ctx.impacted < when.min_impacted_services:
        return (
            f"{ctx.impacted} impacted service{'s' if ctx.impacted != 1 else ''} in the last "
            f"{RECENT_WINDOW // timedelta(minutes=1)} minutes, fewer than {when.min_impacted_services}"
        )
    return None


def render_message(template: str, facts: IncidentFacts, policy: str, department: str) -> str:
    """Fill SPEC §1 placeholders; validation guarantees every placeholder is known."""
    values = {
        "incident.id": facts.id,
        "incident.number": str(facts.number) if facts.number is not None else "?",
        "incident.title": facts.title,
        "incident.html_url": facts.html_url or "",
        "incident.priority": facts.priority or "no priority",
        "incident.urgency": facts.urgency or "unknown",
        "incident.service": facts.service_name or "unknown service",
        "policy.name": policy,
        "department.name": department,
    }
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def evaluate(
    event_type: str,
    facts: IncidentFacts,
    org: Org,
    policies: Sequence[Policy],
    recent: RecentIncidents,
    now: datetime,
    managed_service_labels: Mapping[str, Sequence[str]] | None = None,
) -> Evaluation:
    """Run every policy on one incident event.

    ``recent`` should already include this event (the caller folds it in with
    ``with_event``); it is folded in again here, harmlessly, so the incident
    itself always counts towards ``min_impacted_services``. A department is
    engaged at most once per ``as``: the first policy (in load order) wins and
    later ones are recorded as skipped duplicates.
    """
    if facts.is_open:
        recent = recent.with_event(event_type, facts, now)
    ctx = _Context(
        event_type=event_type,
        facts=facts,
        labels=service_labels(facts, org, managed_service_labels),
        impacted=recent.impacted_services(now),
    )
    results: list[PolicyResult] = []
    engagements: list[Engagement] = []
    skipped: list[SkippedEngagement] = []
    engaged_by: dict[tuple[str, str], str] = {}
    for policy in policies:
        reason = _failed_condition(policy, ctx)
        results.append(PolicyResult(policy.name, reason is None, reason))
        if reason is not None:
            continue
        for spec in policy.engage:
            key = (spec.department, spec.as_)
            dept = org.department(spec.department)
            why = _cannot_engage(spec, dept, engaged_by.get(key))
            if why is not None:
                skipped.append(SkippedEngagement(spec.department, spec.as_, policy.name, *why))
                continue
            assert dept is not None  # _cannot_engage said why otherwise
            engaged_by[key] = policy.name
            engagements.append(
                Engagement(
                    department=spec.department,
                    as_=spec.as_,
                    policy=policy.name,
                    message=render_message(spec.template, facts, policy.name, dept.name),
                )
            )
    return Evaluation(engagements=engagements, results=results, skipped=skipped)


def _cannot_engage(
    spec: EngageSpec, dept: Department | None, engaged_by: str | None
) -> tuple[SkipKind, str] | None:
    """Why a matched policy's engagement is skipped (kind, reason), or None to engage.

    ``engaged_by``: the policy that already engaged this department in this ``as``.
    """
    if engaged_by is not None:
        return "duplicate", f"already engaged as {spec.as_} by policy {engaged_by}"
    if dept is None:
        return "unknown_department", f"department {spec.department!r} is not in the org file"
    if spec.as_ == "responder" and dept.escalation_policy is None:
        return (
            "no_escalation_policy",
            f"department {spec.department!r} has no escalation policy to send a "
            "responder request to (audit COV008)",
        )
    return None
