"""What the coverage audit looks at for a department: its PagerDuty objects and its people.

Matching (ownership marker first, then exact name, through the snapshot's indexes so
the audit stays linear in departments), the schedules to render, who is on call
through a schedule or an escalation level, and the finding helpers every rule uses.
Split from ``coverage.py``; pure like the rest of ``core``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pdorgsync.core.coverage_gaps import V3_SCHEDULE_TYPES
from pdorgsync.core.schedules import Shift
from pdorgsync.models.audit import Finding, Severity
from pdorgsync.models.org import Department, Org
from pdorgsync.models.snapshot import EscalationPolicy, Schedule, Service, Snapshot, Team

_Obj = TypeVar("_Obj", Team, Schedule, EscalationPolicy, Service)


@dataclass(frozen=True)
class EngagementNeed:
    """Something a policy file asks of a department (COV008)."""

    department: str
    as_: Literal["responder", "subscriber"]
    policy: str | None = None


@dataclass(frozen=True)
class DepartmentObjects:
    """The PagerDuty objects that belong to one department (marker first, then exact name)."""

    team: Team | None = None
    schedule: Schedule | None = None
    escalation_policy: EscalationPolicy | None = None
    service: Service | None = None

    @property
    def absent(self) -> bool:
        return not (self.team or self.schedule or self.escalation_policy or self.service)


def _pick(
    snapshot: Snapshot, cls: type[_Obj], kind: str, org: Org, key: str, name: str
) -> _Obj | None:
    """The department's object of ``kind``: ownership marker first, then exact name
    (indexed look-ups: the audit stays linear in departments)."""
    found = snapshot.by_marker(kind, org.org, key) or snapshot.by_name(kind, name)
    return found if isinstance(found, cls) else None


def find_objects(org: Org, snapshot: Snapshot, dept: Department) -> DepartmentObjects:
    """The department's team, schedule, escalation policy and service as observed."""
    return DepartmentObjects(
        team=_pick(snapshot, Team, "team", org, dept.key, dept.team_name),
        schedule=_pick(snapshot, Schedule, "schedule", org, dept.key, dept.schedule_name),
        escalation_policy=_pick(
            snapshot,
            EscalationPolicy,
            "escalation_policy",
            org,
            dept.key,
            dept.escalation_policy_name,
        ),
        service=_pick(snapshot, Service, "service", org, dept.key, dept.service_name),
    )


def schedules_to_render(org: Org, snapshot: Snapshot) -> list[tuple[str, str]]:
    """``(schedule id, time zone)`` of every schedule the audit needs rendered: each
    department's own schedule and every schedule its escalation policy targets.

    Shift-based (v3) schedules are included: the shell reads their computed on-call
    from ``/v3/schedules/{id}`` where PagerDuty gives it (else COV009).
    """
    wanted: dict[str, str] = {}
    for dept in org.departments:
        objs = find_objects(org, snapshot, dept)
        zone = org.zone_of(dept)
        ids: list[str] = []
        if objs.schedule is not None:
            ids.append(objs.schedule.id)
        if objs.escalation_policy is not None:
            ids.extend(
                t.id
                for rule in objs.escalation_policy.rules
                for t in rule.targets
                if t.type in ("schedule_reference", "schedule", "schedule_v3_reference")
            )
        for schedule_id in ids:
            schedule = snapshot.schedule_by_id(schedule_id)
            if schedule is None:
                continue
            wanted.setdefault(
                schedule_id, zone if schedule is objs.schedule else schedule.time_zone
            )
    return list(wanted.items())


def schedule_people(
    schedule_id: str, snapshot: Snapshot, rendered: Mapping[str, Sequence[Shift]]
) -> list[str]:
    """User ids on call in the horizon through a schedule (its rendered final schedule;
    the schedule's listed users when it was not rendered)."""
    if schedule_id in rendered:
        return unique(s.user_id for s in rendered[schedule_id] if s.user_id and s.end > s.start)
    schedule = snapshot.schedule_by_id(schedule_id)
    if schedule is None or schedule.type in V3_SCHEDULE_TYPES:
        return []
    ids = list(schedule.user_ids)
    for layer in schedule.layers or []:
        ids.extend(layer.user_ids)
    return unique(ids)


def first_level_users(ep: EscalationPolicy | None) -> list[str]:
    """User ids the first escalation level pages directly (permanently on call)."""
    if ep is None or not ep.rules:
        return []
    return [t.id for t in ep.rules[0].targets if t.type in ("user_reference", "user")]


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def level_people(
    ep: EscalationPolicy, snapshot: Snapshot, rendered: Mapping[str, Sequence[Shift]]
) -> list[list[str]]:
    """Per level, the distinct people it can page in the horizon."""
    levels: list[list[str]] = []
    for rule in ep.rules:
        people: list[str] = []
        for target in rule.targets:
            if target.type in ("user_reference", "user"):
                people.append(target.id)
            elif target.type in ("schedule_reference", "schedule", "schedule_v3_reference"):
                people.extend(schedule_people(target.id, snapshot, rendered))
        levels.append(unique(people))
    return levels


def on_call_people(
    org: Org, snapshot: Snapshot, rendered: Mapping[str, Sequence[Shift]], dept: Department
) -> list[str]:
    """SPEC §3 "on call": at any time in the horizon, through a schedule (the department's
    own, or one its escalation policy targets) or as a direct user target."""
    objs = find_objects(org, snapshot, dept)
    people: list[str] = []
    if objs.schedule is not None:
        people.extend(schedule_people(objs.schedule.id, snapshot, rendered))
    if objs.escalation_policy is not None:
        for level in level_people(objs.escalation_policy, snapshot, rendered):
            people.extend(level)
    return unique(people)


def people_who_matter(
    org: Org, snapshot: Snapshot, rendered: Mapping[str, Sequence[Shift]]
) -> list[str]:
    """User ids whose contact methods and notification rules the audit reads
    (COV006/COV007): points of contact and everyone on call in the horizon."""
    ids: list[str] = []
    for dept in org.departments:
        if dept.point_of_contact:
            user = snapshot.user_by_email(dept.point_of_contact)
            if user is not None:
                ids.append(user.id)
        ids.extend(on_call_people(org, snapshot, rendered, dept))
    return [i for i in unique(ids) if snapshot.user_by_id(i) is not None]


def possessive(name: str) -> str:
    """``Finance's``, ``Sales'`` — the possessive a reader expects."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def finding(
    rule: str, severity: Severity, dept: str | None, message: str, **details: Any
) -> Finding:
    return Finding(rule=rule, severity=severity, department=dept, message=message, details=details)


def user_label(snapshot: Snapshot, user_id: str) -> str:
    user = snapshot.user_by_id(user_id)
    return user.name if user else user_id
