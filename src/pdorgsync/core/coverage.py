"""The coverage audit (SPEC §3): rules COV001–COV010 over observed state, the org file and
the rendered final schedules.

Why it exists: nobody should discover a hole in on-call coverage during an incident.
Input is what the shell observed (a :class:`Snapshot`, the rendered ``final_schedule``
entries per schedule id, users' contact methods and notification rules), the org file
and, for COV008, what the policy files ask of each department. Output is an
:class:`AuditReport` value the renderers print.

``audit`` runs the rules, one function per rule: ``coverage_rules.py`` (COV001–COV005,
a department's objects) and ``coverage_people.py`` (COV006–COV010, people and
engagements); what they look at (a department's objects, who is on call) is
``coverage_objects.py``, the gap arithmetic ``coverage_gaps.py``. This module is the
audit's public face: the shell imports from it only.

Pure: no network, disk, clock or logging. ``now`` is a parameter; interval arithmetic is
``core/intervals.py``'s, never re-implemented here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from pdorgsync.core.coverage_gaps import department_coverage
from pdorgsync.core.coverage_objects import (
    EngagementNeed,
    find_objects,
    first_level_users,
)
from pdorgsync.core.coverage_people import (
    ENGAGEMENT_ABILITY,
    cov006,
    cov007,
    cov008,
    cov009,
    cov010,
)
from pdorgsync.core.coverage_rules import cov001, cov002, cov003, cov004, cov005
from pdorgsync.core.schedules import Shift
from pdorgsync.models.audit import AuditReport, DepartmentCoverage, Finding
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy
from pdorgsync.models.snapshot import Snapshot

__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "ENGAGEMENT_ABILITY",
    "audit",
    "engagements_from_policies",
    "horizon",
]

DEFAULT_HORIZON_DAYS = 28


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
        findings.extend(cov001(org, dept, objs))
        findings.extend(cov002(dept, cov, horizon_days))
        findings.extend(cov003(dept, objs, snapshot, rendered))
        findings.extend(cov004(dept, objs, snapshot, rendered, horizon_days))
        findings.extend(cov005(dept, objs, snapshot))
        findings.extend(cov006(dept, snapshot))
        findings.extend(cov007(org, dept, snapshot, rendered, horizon_days))
        findings.extend(cov009(dept, objs, rendered))
    needs = list(engagements)
    findings.extend(cov008(org, snapshot, needs, missing_abilities))
    findings.extend(cov010(org, needs, missing_abilities))
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
