"""Coverage audit rules about a department's objects: COV001–COV005, one function each.

COV001 missing objects, COV002 gaps in the required window, COV003 nobody to escalate
to, COV004 escalation targets that page nobody, COV005 a service not routed to the
department's policy or disabled. Each takes what the rule reads and returns its
findings in a stable order. Split from ``coverage.py``; pure like the rest of ``core``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pdorgsync.core.coverage_gaps import (
    V3_SCHEDULE_TYPES,
    describe_pattern,
    format_hours,
    gap_details,
    horizon_words,
    pattern_key,
)
from pdorgsync.core.coverage_objects import (
    DepartmentObjects,
    finding,
    first_level_users,
    level_people,
    possessive,
    schedule_people,
    unique,
    user_label,
)
from pdorgsync.core.schedules import Shift
from pdorgsync.models.audit import DepartmentCoverage, Finding, Gap, Severity
from pdorgsync.models.org import Department, Org
from pdorgsync.models.snapshot import Ref, Snapshot

MAX_GAP_FINDINGS = 5  # per department; the rest are summed up in one more finding


def cov001(org: Org, dept: Department, objs: DepartmentObjects) -> list[Finding]:
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
    return [finding("COV001", severity, dept.key, message, **details)]


def cov002(dept: Department, cov: DepartmentCoverage, days: int) -> list[Finding]:
    """Gaps inside the required window, one finding per recurring weekly pattern."""
    if dept.coverage == "none" or cov.schedule_id is None or not cov.gaps:
        return []
    zone = ZoneInfo(cov.time_zone)
    if cov.covered_seconds == 0:
        return [_nobody_at_all(dept, cov, days, zone)]
    patterns: dict[tuple[str, ...], list[Gap]] = {}
    for gap in cov.gaps:
        patterns.setdefault(pattern_key(gap, zone), []).append(gap)
    ordered = sorted(
        patterns.values(), key=lambda gaps: (-sum(g.hours for g in gaps), gaps[0].start)
    )
    findings = [
        _gap_pattern(dept, cov.schedule_id, gaps, days, zone) for gaps in ordered[:MAX_GAP_FINDINGS]
    ]
    rest = [g for gaps in ordered[MAX_GAP_FINDINGS:] for g in gaps]
    if rest:
        findings.append(
            finding(
                "COV002",
                "critical",
                dept.key,
                f"{dept.name} has {len(rest)} more gaps in on-call coverage "
                f"({format_hours(sum(g.duration.total_seconds() for g in rest))} in total) "
                f"{horizon_words(days)}",
                schedule_id=cov.schedule_id,
                occurrences=len(rest),
                gap_hours=round(sum(g.hours for g in rest), 2),
                gaps=[gap_details(g, zone) for g in sorted(rest, key=lambda g: g.start)],
            )
        )
    return findings


def _nobody_at_all(dept: Department, cov: DepartmentCoverage, days: int, zone: ZoneInfo) -> Finding:
    window = "around the clock" if dept.coverage == "always" else "during its business hours"
    message = (
        f"{dept.name} has nobody on call at all {window} {horizon_words(days)} "
        f"({format_hours(cov.required_seconds)} uncovered)"
    )
    return finding(
        "COV002",
        "critical",
        dept.key,
        message,
        schedule_id=cov.schedule_id,
        coverage_ratio=cov.coverage_ratio,
        gap_hours=round(cov.gap_hours, 2),
        gaps=[gap_details(g, zone) for g in cov.gaps],
    )


def _gap_pattern(
    dept: Department, schedule_id: str, gaps: list[Gap], days: int, zone: ZoneInfo
) -> Finding:
    span = describe_pattern(gaps, zone)
    if len(gaps) > 1:
        often = f" {len(gaps)} times"
    elif gaps[0].duration < timedelta(days=7):
        local = gaps[0].start.astimezone(zone)
        often = f" on {local.day} {local:%b}"
    else:
        often = ""
    return finding(
        "COV002",
        "critical",
        dept.key,
        f"{dept.name} has nobody on call {span}{often} {horizon_words(days)}",
        schedule_id=schedule_id,
        pattern=span,
        occurrences=len(gaps),
        gap_hours=round(sum(g.hours for g in gaps), 2),
        gaps=[gap_details(g, zone) for g in gaps],
    )


def cov003(
    dept: Department,
    objs: DepartmentObjects,
    snapshot: Snapshot,
    rendered: Mapping[str, Sequence[Shift]],
) -> list[Finding]:
    """An escalation policy with a single level, or whose levels all reach one person."""
    ep = objs.escalation_policy
    if ep is None:
        return []
    everyone = unique(p for level in level_people(ep, snapshot, rendered) for p in level)
    if len(ep.rules) <= 1:
        message = (
            f"{possessive(dept.name)} escalation policy {ep.name!r} has a single level: if "
            "nobody answers, nobody else is paged"
        )
    elif len(everyone) == 1:
        message = (
            f"Every level of {possessive(dept.name)} escalation policy {ep.name!r} reaches only "
            f"{user_label(snapshot, everyone[0])}: there is nobody to escalate to"
        )
    else:
        return []
    return [
        finding(
            "COV003",
            "warning",
            dept.key,
            message,
            escalation_policy_id=ep.id,
            levels=len(ep.rules),
            people=everyone,
        )
    ]


def cov004(
    dept: Department,
    objs: DepartmentObjects,
    snapshot: Snapshot,
    rendered: Mapping[str, Sequence[Shift]],
    days: int,
) -> list[Finding]:
    """Escalation targets that page nobody: a deleted user, a deleted or empty schedule."""
    ep = objs.escalation_policy
    if ep is None:
        return []
    findings: list[Finding] = []
    for number, rule in enumerate(ep.rules, start=1):
        for target in rule.targets:
            found = _target_problem(target, snapshot, rendered, days)
            if found is None:
                continue
            problem, what = found
            findings.append(
                finding(
                    "COV004",
                    "critical",
                    dept.key,
                    f"Level {number} of {possessive(dept.name)} escalation policy {ep.name!r} "
                    f"pages {what}",
                    escalation_policy_id=ep.id,
                    level=number,
                    target=target.model_dump(),
                    problem=problem,
                )
            )
    return findings


def _target_problem(
    target: Ref, snapshot: Snapshot, rendered: Mapping[str, Sequence[Shift]], days: int
) -> tuple[str, str] | None:
    """(problem, what the level pages) when ``target`` pages nobody, else None."""
    if target.type in ("user_reference", "user"):
        if snapshot.user_by_id(target.id) is None:
            return "missing_user", f"user {target.id}, who no longer exists in PagerDuty"
        return None
    if target.type not in ("schedule_reference", "schedule", "schedule_v3_reference"):
        return None
    schedule = snapshot.schedule_by_id(target.id)
    if schedule is None:
        return "missing_schedule", f"schedule {target.id}, which no longer exists"
    if schedule.type in V3_SCHEDULE_TYPES and target.id not in rendered:
        return None  # shift-based, on-call not readable: COV009, not "nobody"
    if not schedule_people(target.id, snapshot, rendered):
        return (
            "empty_schedule",
            f"the schedule {schedule.name!r}, which has nobody on call {horizon_words(days)}",
        )
    return None


def cov005(dept: Department, objs: DepartmentObjects, snapshot: Snapshot) -> list[Finding]:
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
            finding(
                "COV005",
                "critical",
                dept.key,
                f"{possessive(dept.name)} service {service.name!r} sends its incidents to {where}, "
                f"not to {ep.name!r}",
                service_id=service.id,
                escalation_policy_id=service.escalation_policy_id,
                expected_escalation_policy_id=ep.id,
                problem="not_routed",
            )
        )
    if service.status == "disabled":
        findings.append(
            finding(
                "COV005",
                "critical",
                dept.key,
                f"{possessive(dept.name)} service {service.name!r} is disabled: it opens no incidents "
                "and pages nobody",
                service_id=service.id,
                status=service.status,
                problem="disabled",
            )
        )
    return findings
