"""Coverage audit rules about people and engagements: COV006–COV010, one function each.

COV006 the point of contact, COV007 people on call without a high-urgency rule,
COV008 engagements a policy file asks for that would be skipped, COV009 shift-based
(v3) schedules whose coverage is not read, COV010 engagements the account's plan
cannot make. Split from ``coverage.py``; pure like the rest of ``core``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pdorgsync.core.coverage_gaps import V3_SCHEDULE_TYPES, horizon_words
from pdorgsync.core.coverage_objects import (
    DepartmentObjects,
    EngagementNeed,
    find_objects,
    finding,
    on_call_people,
    possessive,
)
from pdorgsync.core.schedules import Shift
from pdorgsync.models.audit import Finding
from pdorgsync.models.org import Department, Org
from pdorgsync.models.snapshot import Snapshot, User

# The plan-gated ability each engagement kind needs (PagerDuty abilities, CONTRACT §4).
ENGAGEMENT_ABILITY = {"responder": "coordinated_responding", "subscriber": "teams"}


def cov006(dept: Department, snapshot: Snapshot) -> list[Finding]:
    email = dept.point_of_contact
    if email is None:
        return [
            finding(
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
            finding(
                "COV006",
                "warning",
                dept.key,
                f"{possessive(dept.name)} point of contact {email} is not a PagerDuty user",
                email=email,
                problem="not_a_user",
            )
        ]
    if user.contact_methods is not None and not user.contact_methods:
        return [
            finding(
                "COV006",
                "warning",
                dept.key,
                f"{possessive(dept.name)} point of contact {user.name} ({email}) has no contact method "
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


def cov007(
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
            finding(
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


def _needs(engagements: Iterable[EngagementNeed]) -> dict[tuple[str, str], list[str]]:
    """(department, as) -> the names of the policies asking for it, in first-seen order."""
    needs: dict[tuple[str, str], list[str]] = {}
    for need in engagements:
        policies = needs.setdefault((need.department, need.as_), [])
        if need.policy and need.policy not in policies:
            policies.append(need.policy)
    return needs


def cov008(
    org: Org,
    snapshot: Snapshot,
    engagements: Iterable[EngagementNeed],
    missing_abilities: Sequence[str] = (),
) -> list[Finding]:
    """Engagements that would be skipped: unknown department, or no policy / team to use."""
    findings: list[Finding] = []
    for (key, as_), policies in _needs(engagements).items():
        names = ", ".join(policies) if policies else "a policy"
        dept = org.department(key)
        if dept is None:
            findings.append(
                finding(
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
        if ENGAGEMENT_ABILITY.get(as_) in missing_abilities:
            continue  # COV010
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
            finding(
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


def cov010(
    org: Org, engagements: Iterable[EngagementNeed], missing_abilities: Sequence[str] = ()
) -> list[Finding]:
    """Engagements of a known department the account's plan lacks the ability for."""
    findings: list[Finding] = []
    for (key, as_), policies in _needs(engagements).items():
        names = ", ".join(policies) if policies else "a policy"
        dept = org.department(key)
        lacking = ENGAGEMENT_ABILITY.get(as_)
        if dept is None or lacking not in missing_abilities:
            continue
        # Not something `apply` can fix: the account's plan lacks the feature.
        findings.append(
            finding(
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
    return findings


def cov009(
    dept: Department, objs: DepartmentObjects, rendered: Mapping[str, Sequence[Shift]]
) -> list[Finding]:
    schedule = objs.schedule
    if schedule is None or schedule.type not in V3_SCHEDULE_TYPES or schedule.id in rendered:
        return []
    return [
        finding(
            "COV009",
            "warning",
            dept.key,
            f"{possessive(dept.name)} schedule {schedule.name!r} is a shift-based (v3) schedule; its "
            "coverage was not checked",
            schedule_id=schedule.id,
            type=schedule.type,
        )
    ]
