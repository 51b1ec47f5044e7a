"""Planning a department's team memberships: who is on the team, and in which role.

Members are responders and the point of contact a manager, except where PagerDuty
fixes the team role of an account role (``DepartmentPlan.team_role``). A membership
the file does not ask for is deleted. Pure like the rest of ``core``.
"""

from __future__ import annotations

from pdorgsync.core.planning_context import DepartmentPlan, PlanContext
from pdorgsync.models import snapshot as snap
from pdorgsync.models.plan import Change, FieldDiff, Request


def plan_memberships(ctx: PlanContext, d: DepartmentPlan) -> list[Change]:
    """The membership changes that make the team's members and roles the file's."""
    dept = d.dept
    observed: snap.Team | None = d.matches["team"].obj
    team_id = d.id_or_placeholder("team")
    wanted: dict[str, str] = {}
    for email in dept.members:
        user_id = d.people[email]
        wanted[user_id] = d.team_role(user_id, "responder")
    if dept.point_of_contact:
        contact = d.people[dept.point_of_contact]
        wanted[contact] = d.team_role(contact, "manager")
    have = {m.user_id: m.role for m in (observed.members or [])} if observed else {}
    changes: list[Change] = []
    for user_id, role in wanted.items():
        if have.get(user_id) == role:
            continue
        action = "update" if user_id in have else "create"
        changes.append(
            _membership(d, ctx.emails[user_id], user_id, team_id, action, have.get(user_id), role)
        )
    for user_id, role in have.items():
        if user_id not in wanted:
            email = ctx.emails.get(user_id, user_id)
            changes.append(_membership(d, email, user_id, team_id, "delete", role, None))
    return changes


def _membership(
    d: DepartmentPlan,
    email: str,
    user_id: str,
    team_id: str,
    action: str,
    before: str | None,
    after: str | None,
) -> Change:
    path = f"/teams/{team_id}/users/{user_id}"
    request = (
        Request(method="DELETE", path=path)
        if action == "delete"
        else Request(method="PUT", path=path, body={"role": after})
    )
    return Change(
        action=action,
        kind="team_membership",
        department=d.dept.key,
        name=email,
        id=user_id if action != "create" else None,
        diff={"role": FieldDiff(before=before, after=after)},
        ref=f"team_membership:{d.dept.key}:{email}",
        requests=[request],
    )
