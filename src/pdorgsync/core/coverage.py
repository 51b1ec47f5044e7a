"""The coverage audit (SPEC §3): rules COV001–COV009 over observed state, the org file and
the rendered final schedules.

Why it exists: nobody should discover a hole in on-call coverage during an incident.
Input is what the shell observed (a :class:`Snapshot`, the rendered ``final_schedule``
entries per schedule id, users' contact methods and notification rules), the org file
and, for COV008, what the policy files ask of each department. Output is an
:class:`AuditReport` value the renderers print.

Pure: no network, disk, clock or logging. ``now`` is a parameter; interval arithmetic is
``core/intervals.py``'s, never re-implemented here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pdorgsync.core.coverage_gaps import (
    V3_SCHEDULE_TYPES,
    department_coverage,
    describe_pattern,
    format_hours,
    gap_details,
    horizon_words,
    pattern_key,
)
from pdorgsync.core.schedules import Shift
from pdorgsync.models.audit import AuditReport, DepartmentCoverage, Finding, Gap, Severity
from pdorgsync.models.org import Department, Org
from pdorgsync.models.policy import Policy
from pdorgsync.models.snapshot import EscalationPolicy, Schedule, Service, Snapshot, Team, User

_Obj = TypeVar("_Obj", Team, Schedule, EscalationPolicy, Service)

DEFAULT_HORIZON_DAYS = 28
MAX_GAP_FINDINGS = 5  # per department; the rest are summed up in one more finding


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


def engagements_from_policies(policies: Iterable[Policy]) -> list[EngagementNeed]:
    """Every (department, as) the policies may engage, with the policy's name."""
    return [
        EngagementNeed(spec.department, spec.as_, policy.name)
        for policy in policies
        for spec in policy.engage
    ]


def horizon(now: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS) -> tuple[datetime, datetime]:
    """``[now, now + horizon_days)``; ``now`` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    since = now.replace(microsecond=0)
    return since, since + timedelta(days=horizon_days)


# ---------------------------------------------------------------------------- matching


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


def _schedule_people(
    schedule_id: str, snapshot: Snapshot, rendered: Mapping[str, Sequence[Shift]]
) -> list[str]:
    """User ids on call in the horizon through a schedule (its rendered final schedule;
    the schedule's listed users when it was not rendered)."""
    if schedule_id in rendered:
        return _unique(s.user_id for s in rendered[schedule_id] if s.user_id and s.end > s.start)
    schedule = snapshot.schedule_by_id(schedule_id)
    if schedule is None or schedule.type in V3_SCHEDULE_TYPES:
        return []
    ids = list(schedule.user_ids)
    for layer in schedule.layers or []:
        ids.extend(layer.user_ids)
    return _unique(ids)


def first_level_users(ep: EscalationPolicy | None) -> list[str]:
    """User ids the first escalation level pages directly (permanently on call)."""
    if ep is None or not ep.rules:
        return []
    return [t.id for t in ep.rules[0].targets if t.type in ("user_reference", "user")]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _level_people(
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
                people.extend(_schedule_people(target.id, snapshot, rendered))
        levels.append(_unique(people))
    return levels


def on_call_people(
    org: Org, snapshot: Snapshot, rendered: Mapping[str, Sequence[Shift]], dept: Department
) -> list[str]:
    """SPEC §3 "on call": at any time in the horizon, through a schedule (the department's
    own, or one its escalation policy targets) or as a direct user target."""
    objs = find_objects(org, snapshot, dept)
    people: list[str] = []
    if objs.schedule is not None:
        people.extend(_schedule_people(objs.schedule.id, snapshot, rendered))
    if objs.escalation_policy is not None:
        for level in _level_people(objs.escalation_policy, snapshot, rendered):
            people.extend(level)
    return _unique(people)


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
    return [i for i in _unique(ids) if snapshot.user_by_id(i) is not None]


# ---------------------------------------------------------------------------- rules


def _owner(name: str) -> str:
    """``Finance's``, ``Sales'`` — the possessive a reader expects."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _finding(
    rule: str, severity: Severity, dept: str | None, message: str, **details: Any
) -> Finding:
    return Finding(rule=rule, severity=severity, department=dept, message=message, details=details)


def _cov001(org: Org, dept: Department, objs: DepartmentObjects) -> list[Finding]:
    """Missing service, schedule or escalation policy (warning only, and no schedule
    needed, for ``coverage: none``)."""
    none = dept.coverage == "none"
    missing = [
        kind
        for kind, obj in (
            ("schedule", objs.schedule),
            ("escalation_policy", objs.escalation_policy),
            ("service", objs.service),
        )
        if obj is None and not (none and kind == "schedule")
    ]
    if not missing:
        return []
    severity: Severity = "warning" if none else "critical"
    expected = {
        "schedule": dept.schedule_name,
        "escalation_policy": dept.escalation_policy_name,
        "service": dept.service_name,
    }
    details: dict[str, Any] = {
        "missing": missing,
        "expected_names": {k: expected[k] for k in missing},
        "in_org_file": {
            "schedule": dept.schedule is not None,
            "escalation_policy": dept.escalation_policy is not None,
            "service": dept.service is not None,
        },
    }
    if objs.absent:
        details["absent_from_pagerduty"] = True
        message = (
            f"{dept.name} does not exist in PagerDuty: no team, schedule, escalation policy "
            "or service was found (run pdorgsync apply)"
        )
    else:
        words = {
            "schedule": "on-call schedule",
            "escalation_policy": "escalation policy",
            "service": "service",
        }
        named = [f"{words[k]} ({expected[k]!r})" for k in missing]
        listing = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " or " + named[-1]
        message = f"{dept.name} has no {listing} in PagerDuty"
        if not none and "schedule" in missing:
            if first_level_users(objs.escalation_policy):
                message += ": its escalation policy pages people directly, with no rotation"
            else:
                message += ", so nobody is ever on call for it"
    return [_finding("COV001", severity, dept.key, message, **details)]


def _cov002(dept: Department, cov: DepartmentCoverage, days: int) -> list[Finding]:
    """Gaps inside the required window, one finding per recurring weekly pattern."""
    if dept.coverage == "none" or cov.schedule_id is None or not cov.gaps:
        return []
    zone = ZoneInfo(cov.time_zone)
    when = horizon_words(days)
    window = "around the clock" if dept.coverage == "always" else "during its business hours"
    if cov.covered_seconds == 0:
        message = (
            f"{dept.name} has nobody on call at all {window} {when} "
            f"({format_hours(cov.required_seconds)} uncovered)"
        )
        return [
            _finding(
                "COV002",
                "critical",
                dept.key,
                message,
                schedule_id=cov.schedule_id,
                coverage_ratio=cov.coverage_ratio,
                gap_hours=round(cov.gap_hours, 2),
                gaps=[gap_details(g, zone) for g in cov.gaps],
            )
        ]
    patterns: dict[tuple[str, ...], list[Gap]] = {}
    for gap in cov.gaps:
        patterns.setdefault(pattern_key(gap, zone), []).append(gap)
    ordered = sorted(
        patterns.values(), key=lambda gaps: (-sum(g.hours for g in gaps), gaps[0].start)
    )
    findings: list[Finding] = []
    for gaps in ordered[:MAX_GAP_FINDINGS]:
        span = describe_pattern(gaps, zone)
        if len(gaps) > 1:
            often = f" {len(gaps)} times"
        elif gaps[0].duration < timedelta(days=7):
            local = gaps[0].start.astimezone(zone)
            often = f" on {local.day} {local:%b}"
        else:
            often = ""
        findings.append(
            _finding(
                "COV002",
                "critical",
                dept.key,
                f"{dept.name} has nobody on call {span}{often} {when}",
                schedule_id=cov.schedule_id,
                pattern=span,
                occurrences=len(gaps),
                gap_hours=round(sum(g.hours for g in gaps), 2),
                gaps=[gap_details(g, zone) for g in gaps],
            )
        )
    rest = [g for gaps in ordered[MAX_GAP_FINDINGS:] for g in gaps]
    if rest:
        findings.append(
            _finding(
                "COV002",
                "critical",
                dept.key,
                f"{dept.name} has {len(rest)} more gaps in on-call coverage "
                f"({format_hours(sum(g.duration.total_seconds() for g in rest))} in total) {when}",
                schedule_id=cov.schedule_id,
                occurrences=len(rest),
                gap_hours=round(sum(g.hours for g in rest), 2),
                gaps=[gap_details(g, zone) for g in sorted(rest, key=lambda g: g.start)],
            )
        )
    return findings


def _user_label(snapshot: Snapshot, user_id: str) -> str:
    user = snapshot.user_by_id(user_id)
    return user.name if user else user_id


def _cov003_004(
    dept: Department,
    objs: DepartmentObjects,
    snapshot: Snapshot,
    rendered: Mapping[str, Sequence[Shift]],
    days: int,
) -> list[Finding]:
    ep = objs.escalation_policy
    if ep is None:
        return []
    findings: list[Finding] = []
    levels = _level_people(ep, snapshot, rendered)
    everyone = _unique(p for level in levels for p in level)
    if len(ep.rules) <= 1:
        findings.append(
            _finding(
                "COV003",
                "warning",
                dept.key,
                f"{_owner(dept.name)} escalation policy {ep.name!r} has a single level: if nobody "
                "answers, nobody else is paged",
                escalation_policy_id=ep.id,
                levels=len(ep.rules),
                people=everyone,
            )
        )
    elif len(everyone) == 1:
        findings.append(
            _finding(
                "COV003",
                "warning",
                dept.key,
                f"Every level of {_owner(dept.name)} escalation policy {ep.name!r} reaches only "
                f"{_user_label(snapshot, everyone[0])}: there is nobody to escalate to",
                escalation_policy_id=ep.id,
                levels=len(ep.rules),
                people=everyone,
            )
        )
    for number, rule in enumerate(ep.rules, start=1):
        for target in rule.targets:
            if target.type in ("user_reference", "user") and snapshot.user_by_id(target.id) is None:
                findings.append(
                    _finding(
                        "COV004",
                        "critical",
                        dept.key,
                        f"Level {number} of {_owner(dept.name)} escalation policy {ep.name!r} pages "
                        f"user {target.id}, who no longer exists in PagerDuty",
                        escalation_policy_id=ep.id,
                        level=number,
                        target=target.model_dump(),
                        problem="missing_user",
                    )
                )
            elif target.type in ("schedule_reference", "schedule", "schedule_v3_reference"):
                schedule = snapshot.schedule_by_id(target.id)
                if schedule is None:
                    problem, what = (
                        "missing_schedule",
                        f"schedule {target.id}, which no longer exists",
                    )
                elif schedule.type in V3_SCHEDULE_TYPES and target.id not in rendered:
                    continue  # shift-based, on-call not readable: COV009, not "nobody"
                elif not _schedule_people(target.id, snapshot, rendered):
                    problem, what = (
                        "empty_schedule",
                        f"the schedule {schedule.name!r}, which has nobody on call {horizon_words(days)}",
                    )
                else:
                    continue
                findings.append(
                    _finding(
                        "COV004",
                        "critical",
                        dept.key,
                        f"Level {number} of {_owner(dept.name)} escalation policy {ep.name!r} pages {what}",
                        escalation_policy_id=ep.id,
                        level=number,
                        target=target.model_dump(),
                        problem=problem,
                    )
                )
    return findings


def _cov005(dept: Department, objs: DepartmentObjects, snapshot: Snapshot) -> list[Finding]:
    service, ep = objs.service, objs.escalation_policy
    if service is None:
        return []
    findings: list[Finding] = []
    if ep is not None and service.escalation_policy_id != ep.id:
        actual = (
            snapshot.escalation_policy_by_id(service.escalation_policy_id)
            if service.escalation_policy_id
            else None
        )
        where = (
            repr(actual.name)
            if actual
            else (service.escalation_policy_id or "no escalation policy")
        )
        findings.append(
            _finding(
                "COV005",
                "critical",
                dept.key,
                f"{_owner(dept.name)} service {service.name!r} sends its incidents to {where}, "
                f"not to {ep.name!r}",
                service_id=service.id,
                escalation_policy_id=service.escalation_policy_id,
                expected_escalation_policy_id=ep.id,
                problem="not_routed",
            )
        )
    if service.status == "disabled":
        findings.append(
            _finding(
                "COV005",
                "critical",
                dept.key,
                f"{_owner(dept.name)} service {service.name!r} is disabled: it opens no incidents "
                "and pages nobody",
                service_id=service.id,
                status=service.status,
                problem="disabled",
            )
        )
    return findings


def _cov006(dept: Department, snapshot: Snapshot) -> list[Finding]:
    email = dept.point_of_contact
    if email is None:
        return [
            _finding(
                "COV006",
                "warning",
                dept.key,
                f"{dept.name} has no point of contact: responders cannot tell whom to recruit",
                problem="missing",
            )
        ]
    user = snapshot.user_by_email(email)
    if user is None:
        return [
            _finding(
                "COV006",
                "warning",
                dept.key,
                f"{_owner(dept.name)} point of contact {email} is not a PagerDuty user",
                email=email,
                problem="not_a_user",
            )
        ]
    if user.contact_methods is not None and not user.contact_methods:
        return [
            _finding(
                "COV006",
                "warning",
                dept.key,
                f"{_owner(dept.name)} point of contact {user.name} ({email}) has no contact method "
                "in PagerDuty and cannot be reached",
                email=email,
                user_id=user.id,
                problem="unreachable",
            )
        ]
    return []


def _has_high_urgency_rule(user: User) -> bool | None:
    if user.notification_rules is None:
        return None  # not fetched: say nothing rather than guess
    return any(rule.urgency == "high" for rule in user.notification_rules)


def _cov007(
    org: Org,
    dept: Department,
    snapshot: Snapshot,
    rendered: Mapping[str, Sequence[Shift]],
    days: int,
) -> list[Finding]:
    findings: list[Finding] = []
    for user_id in on_call_people(org, snapshot, rendered, dept):
        user = snapshot.user_by_id(user_id)
        if user is None or _has_high_urgency_rule(user) is not False:
            continue
        findings.append(
            _finding(
                "COV007",
                "warning",
                dept.key,
                f"{user.name} is on call for {dept.name} {horizon_words(days)} but has no "
                "high-urgency notification rule, so urgent pages may never reach them",
                user_id=user.id,
                email=user.email,
            )
        )
    return findings


# The plan-gated ability each engagement kind needs (PagerDuty abilities, CONTRACT §4).
ENGAGEMENT_ABILITY = {"responder": "coordinated_responding", "subscriber": "teams"}


def _cov008(
    org: Org,
    snapshot: Snapshot,
    engagements: Iterable[EngagementNeed],
    missing_abilities: Sequence[str] = (),
) -> list[Finding]:
    needs: dict[tuple[str, str], list[str]] = {}
    for need in engagements:
        policies = needs.setdefault((need.department, need.as_), [])
        if need.policy and need.policy not in policies:
            policies.append(need.policy)
    findings: list[Finding] = []
    for (key, as_), policies in needs.items():
        names = ", ".join(policies) if policies else "a policy"
        dept = org.department(key)
        if dept is None:
            findings.append(
                _finding(
                    "COV008",
                    "critical",
                    key,
                    f"Policy {names} engages department {key!r}, which is not in the org file",
                    **{"as": as_},
                    policies=policies,
                    problem="unknown_department",
                )
            )
            continue
        lacking = ENGAGEMENT_ABILITY.get(as_)
        if lacking in missing_abilities:
            # Not something `apply` can fix: the account's plan lacks the feature.
            findings.append(
                _finding(
                    "COV010",
                    "info",
                    key,
                    f"Policy {names} engages {dept.name} as {as_}, but this PagerDuty "
                    f"account has no {lacking!r} ability (a plan-gated feature): the "
                    "engagement is skipped",
                    **{"as": as_},
                    policies=policies,
                    ability=lacking,
                )
            )
            continue
        objs = find_objects(org, snapshot, dept)
        if as_ == "responder" and objs.escalation_policy is None:
            what, problem = (
                "no escalation policy to send a responder request to",
                "no_escalation_policy",
            )
        elif as_ == "subscriber" and objs.team is None:
            what, problem = "no team to subscribe to status updates", "no_team"
        else:
            continue
        findings.append(
            _finding(
                "COV008",
                "critical",
                key,
                f"Policy {names} engages {dept.name} as {as_}, but {dept.name} has {what} in "
                "PagerDuty: the engagement will be skipped",
                **{"as": as_},
                policies=policies,
                problem=problem,
            )
        )
    return findings


def _cov009(
    dept: Department, objs: DepartmentObjects, rendered: Mapping[str, Sequence[Shift]]
) -> list[Finding]:
    schedule = objs.schedule
    if schedule is None or schedule.type not in V3_SCHEDULE_TYPES or schedule.id in rendered:
        return []
    return [
        _finding(
            "COV009",
            "warning",
            dept.key,
            f"{_owner(dept.name)} schedule {schedule.name!r} is a shift-based (v3) schedule; its "
            "coverage was not checked",
            schedule_id=schedule.id,
            type=schedule.type,
        )
    ]


def audit(
    org: Org,
    snapshot: Snapshot,
    rendered: Mapping[str, Sequence[Shift]],
    *,
    now: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    engagements: Iterable[EngagementNeed] = (),
    api_calls: int | None = None,
    missing_abilities: Sequence[str] = (),
) -> AuditReport:
    """Run every rule for every department of ``org``.

    ``rendered`` maps schedule id to its final schedule entries over the horizon
    (overrides included), as PagerDuty rendered them; ``snapshot`` users carry contact
    methods and notification rules where the shell fetched them.
    """
    since, until = horizon(now, horizon_days)
    findings: list[Finding] = []
    departments: list[DepartmentCoverage] = []
    for dept in org.departments:
        objs = find_objects(org, snapshot, dept)
        cov = department_coverage(
            org,
            dept,
            objs.schedule,
            rendered,
            since,
            until,
            always_paged=any(
                snapshot.user_by_id(u) for u in first_level_users(objs.escalation_policy)
            ),
        )
        departments.append(cov)
        findings.extend(_cov001(org, dept, objs))
        findings.extend(_cov002(dept, cov, horizon_days))
        findings.extend(_cov003_004(dept, objs, snapshot, rendered, horizon_days))
        findings.extend(_cov005(dept, objs, snapshot))
        findings.extend(_cov006(dept, snapshot))
        findings.extend(_cov007(org, dept, snapshot, rendered, horizon_days))
        findings.extend(_cov009(dept, objs, rendered))
    findings.extend(_cov008(org, snapshot, engagements, missing_abilities))
    order = {d.key: i for i, d in enumerate(org.departments)}
    findings.sort(key=lambda f: (-f.rank, order.get(f.department or "", len(order)), f.rule))
    return AuditReport(
        org=org.org,
        generated_at=since,
        since=since,
        until=until,
        horizon_days=horizon_days,
        findings=findings,
        departments=departments,
        api_calls=api_calls,
    )
