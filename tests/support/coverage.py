"""Hand-built org, snapshot and rendered shifts for the coverage audit tests (pure).

One Finance department, always covered, with a schedule, a two-level escalation policy
and a routed service; each keyword argument breaks one piece of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pdorgsync.core.schedules import Shift
from pdorgsync.models.org import Org
from pdorgsync.models.snapshot import (
    ContactMethod,
    EscalationPolicy,
    EscalationRule,
    NotificationRule,
    Ref,
    Schedule,
    Service,
    Snapshot,
    Team,
    User,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
MARK = "Finance\n\nManaged by pdorgsync (org=acme, department=finance)"


def make_org(**dept: Any) -> Org:
    base: dict[str, Any] = {
        "key": "finance",
        "name": "Finance",
        "function": "finance",
        "point_of_contact": "fiona@acme.test",
        "members": ["fiona@acme.test", "george@acme.test"],
        "coverage": "always",
        "time_zone": "Etc/UTC",
    }
    base.update(dept)
    return Org.model_validate({"version": 1, "org": "acme", "departments": [base]})


def user(uid: str, name: str, email: str, *, reachable: bool = True, high: bool = True) -> User:
    return User(
        id=uid,
        name=name,
        email=email,
        contact_methods=[ContactMethod(id=f"C{uid}", type="email_contact_method", address=email)]
        if reachable
        else [],
        notification_rules=[
            NotificationRule(
                id=f"N{uid}", urgency="high" if high else "low", contact_method_id=f"C{uid}"
            )
        ],
    )


def ref(kind: str, oid: str) -> Ref:
    return Ref(id=oid, type=f"{kind}_reference")


def make_snapshot(
    *,
    users: Sequence[User] | None = None,
    rules: Sequence[Sequence[Ref]] | None = None,
    schedule_type: str = "schedule",
    service_ep: str | None = "PEP0001",
    service_status: str = "active",
    drop: Sequence[str] = (),
) -> Snapshot:
    users = (
        list(users)
        if users is not None
        else [
            user("PU00001", "Fiona Grant", "fiona@acme.test"),
            user("PU00002", "George Adams", "george@acme.test"),
        ]
    )
    rules = rules if rules is not None else [[ref("schedule", "PS00001")], [ref("user", "PU00002")]]
    return Snapshot(
        users=users,
        teams=[] if "team" in drop else [Team(id="PT00001", name="Finance", description=MARK)],
        schedules=[]
        if "schedule" in drop
        else [
            Schedule(
                id="PS00001",
                name="Finance On-Call",
                type=schedule_type,
                description=MARK,
                time_zone="Etc/UTC",
            )
        ],
        escalation_policies=[]
        if "escalation_policy" in drop
        else [
            EscalationPolicy(
                id="PEP0001",
                name="Finance Escalation",
                description=MARK,
                rules=[
                    EscalationRule(escalation_delay_in_minutes=30, targets=list(r)) for r in rules
                ],
            ),
            EscalationPolicy(id="PEP0009", name="Platform Escalation"),
        ],
        services=[]
        if "service" in drop
        else [
            Service(
                id="PSV0001",
                name="Finance",
                description=MARK,
                status=service_status,
                escalation_policy_id=service_ep,
            )
        ],
    )


def daily_shifts(
    users: Sequence[str] = ("PU00001", "PU00002"),
    *,
    start: datetime = NOW - timedelta(days=1),
    days: int = 31,
    skip: Sequence[int] = (),
) -> list[Shift]:
    """One 24 h shift per day, users in turn; weekdays in ``skip`` (0 = Mon) left empty."""
    out = []
    for i in range(days):
        begin = start + timedelta(days=i)
        if begin.weekday() in skip:
            continue
        out.append(Shift(begin, begin + timedelta(days=1), users[i % len(users)]))
    return out
