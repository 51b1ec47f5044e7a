"""The pure diff: desired org + observed snapshot -> Plan (SPEC §1 "Precise semantics").

Matching: an object carrying this department's ownership marker first, else an
object of exactly the derived name. A same-named object without the marker is a
conflict unless ``defaults.adopt_existing`` (then ``adopt``); one carrying another
owner's marker is always a conflict. Unknown users, names that cannot be taken and
references that do not resolve are conflicts too, and a conflict blocks the whole
department: none of its objects is created or changed. Owned objects nobody wants
any more are orphans, deleted only with ``prune``.

Changes come out in apply order: teams, memberships, schedules, escalation
policies, services; then deletes in reverse (services before the policies they
use, policies before the schedules they target, memberships, teams last).

Never modifies or deletes an object it does not own: every update/delete targets a
marker-matched object or one being adopted in the same plan.

This module matches and drives; the changes come from one module per thing planned:
``planning_objects`` (team, escalation policy, service), ``planning_memberships``,
``planning_schedules`` (layers) and ``planning_deletes`` (orphans); what they share
is ``planning_context``.

Pure: no network, disk, clock or logging; ``now`` and ``locate`` are parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pdorgsync.core.planning_context import (
    KIND_LABEL,
    STAKEHOLDER_ROLES,
    DepartmentPlan,
    Locate,
    Match,
    Path,
    PlanContext,
)
from pdorgsync.core.planning_deletes import find_orphans, plan_deletes
from pdorgsync.core.planning_memberships import plan_memberships
from pdorgsync.core.planning_objects import plan_escalation_policy, plan_service, plan_team
from pdorgsync.core.planning_schedules import plan_schedule_change
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import Department, Org
from pdorgsync.models.plan import Change, Conflict, OnCallImpact, Plan

# Apply order; deletes run in the reverse dependency order.
PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("team", ("create", "update", "adopt")),
    ("team_membership", ("create", "update")),
    ("schedule", ("create", "update", "adopt", "skip")),
    ("escalation_policy", ("create", "update", "adopt")),
    ("service", ("create", "update", "adopt")),
    ("service", ("delete",)),
    ("escalation_policy", ("delete",)),
    ("schedule", ("delete",)),
    ("team_membership", ("delete",)),
    ("team", ("delete",)),
]


class _Named(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str | None: ...


def plan(
    org: Org,
    snapshot: snap.Snapshot,
    *,
    now: datetime,
    prune: bool = False,
    at_next_handoff: bool = False,
    locate: Locate | None = None,
    impact: bool = True,
    teams: bool = True,
) -> Plan:
    """Build the plan that makes ``snapshot`` match ``org`` (see the module docstring).

    ``teams=False``: the account lacks PagerDuty's plan-gated "teams" ability, so no
    team or membership is planned and escalation policies get no team.
    """
    ctx = PlanContext.build(
        org,
        snapshot,
        now=now,
        at_next_handoff=at_next_handoff,
        locate=locate or (lambda _p: None),
        teams_enabled=teams,
    )
    depts = _match_departments(ctx)
    changes: list[Change] = []
    impacts: list[OnCallImpact] = []
    for d in depts.values():
        if not d.conflicts:
            _plan_department(ctx, d, depts, impact, changes, impacts)
    conflicts = [c for d in depts.values() for c in d.conflicts]
    orphans = find_orphans(ctx, depts)
    if prune:
        deletes, refused = plan_deletes(ctx, depts, orphans, changes)
        changes += deletes
        conflicts += refused
    order = {(kind, action): i for i, (kind, actions) in enumerate(PHASES) for action in actions}
    return Plan(
        org=org.org,
        generated_at=now,
        effective_at=now,
        at_next_handoff=at_next_handoff,
        prune=prune,
        changes=sorted(changes, key=lambda c: order[(c.kind, c.action)]),  # stable
        conflicts=conflicts,
        orphans=orphans,
        impacts=impacts,
    )


def _plan_department(
    ctx: PlanContext,
    d: DepartmentPlan,
    depts: dict[str, DepartmentPlan],
    impact: bool,
    changes: list[Change],
    impacts: list[OnCallImpact],
) -> None:
    """Append an unblocked department's changes (and on-call impact) in apply order."""
    dept = d.dept
    found: list[Change | None] = []
    if ctx.teams_enabled:
        found.append(plan_team(ctx, d))
        found.extend(plan_memberships(ctx, d))
    if dept.schedule:
        change, on_call = plan_schedule_change(ctx, d, impact)
        found.append(change)
        if on_call is not None:
            impacts.append(on_call)
    if dept.escalation_policy:
        found.append(plan_escalation_policy(ctx, d, depts))
    if dept.service:
        found.append(plan_service(ctx, d))
    changes.extend(c for c in found if c is not None)


# -- matching -------------------------------------------------------------------------------

_Index = tuple[dict[tuple[str, str], _Named], dict[str, list[_Named]]]


def _index(owners: dict[str, tuple[str, str]], objs: Sequence[_Named]) -> _Index:
    """Objects by ownership marker (the first one) and by name (all, in snapshot order)."""
    by_marker: dict[tuple[str, str], _Named] = {}
    by_name: dict[str, list[_Named]] = {}
    for obj in objs:
        owner = owners.get(obj.id)
        if owner is not None:
            by_marker.setdefault(owner, obj)
        by_name.setdefault(obj.name, []).append(obj)
    return by_marker, by_name


def _match_departments(ctx: PlanContext) -> dict[str, DepartmentPlan]:
    """Every department of the file, matched to the observed objects, with its conflicts."""
    # Indexed once, so matching and delete checks stay linear in the departments.
    index = {kind: _index(ctx.owners[kind], objs) for kind, objs in ctx.objects.items()}
    depts: dict[str, DepartmentPlan] = {}
    for position, dept in enumerate(ctx.org.departments):
        d = DepartmentPlan(dept, position)
        _unknown_users(ctx, d)
        for kind in ("team", "schedule", "escalation_policy", "service"):
            if kind == "team" and not ctx.teams_enabled:
                continue
            _match(ctx, index[kind], kind, d)
        depts[dept.key] = d
    _references(ctx, depts)
    return depts


def _desired_name(kind: str, dept: Department) -> str | None:
    if kind == "team":
        return dept.team_name
    if kind == "schedule":
        return dept.schedule_name if dept.schedule else None
    if kind == "escalation_policy":
        return dept.escalation_policy_name if dept.escalation_policy else None
    return dept.service_name if dept.service else None


def _name_path(kind: str, d: DepartmentPlan) -> Path:
    block = {"team": "team", "schedule": "schedule"}.get(kind, kind)
    section = getattr(d.dept, block)
    if section is not None and getattr(section, "name", None):
        return ("departments", d.index, block, "name")
    return ("departments", d.index, "name")


def _match(ctx: PlanContext, index: _Index, kind: str, d: DepartmentPlan) -> None:
    """Match ``d``'s object of ``kind``: its marker first, else exactly its name."""
    name = _desired_name(kind, d.dept)
    if name is None:
        return
    label = KIND_LABEL[kind]
    by_marker, by_name = index
    mine = by_marker.get((ctx.org.org, d.dept.key))
    if mine is not None:
        d.matches[kind] = Match(mine)
        if mine.name == name or kind == "schedule":
            return  # no rename that could clash (schedule names are never refused)
        taken = [o for o in by_name.get(name, ()) if o.id != mine.id]
        if taken:
            reason = (
                f"cannot rename {label} {mine.name!r} ({mine.id}): another "
                f"{label} named {name!r} exists ({taken[0].id})"
            )
            d.conflicts.append(_conflict(ctx, kind, d, name, reason))
        return
    named = list(by_name.get(name, ()))
    if not named:
        d.matches[kind] = Match()
        return
    if len(named) > 1:
        ids = ", ".join(o.id for o in named)
        reason = f"{len(named)} {label}s named {name!r} exist ({ids}); rename or delete all but one"
        d.conflicts.append(_conflict(ctx, kind, d, name, reason))
        return
    adopted, refused = _named_match(ctx, kind, name, named[0])
    if adopted is not None:
        d.matches[kind] = adopted
    if refused is not None:
        d.conflicts.append(_conflict(ctx, kind, d, name, refused))


def _named_match(
    ctx: PlanContext, kind: str, name: str, obj: _Named
) -> tuple[Match | None, str | None]:
    """The one object of the department's name without its marker: adopt it, or why not."""
    label = KIND_LABEL[kind]
    owner = ctx.owners[kind].get(obj.id)
    v3 = getattr(obj, "type", "schedule") == "schedule_v3"
    if v3 and ctx.org.defaults.adopt_existing:
        return Match(obj, adopt=True), None  # planned as ``skip``: never written
    if v3:
        return None, (
            f"{label} {name!r} ({obj.id}) is a shift-based (v3) schedule, which pdorgsync "
            "cannot manage"
        )
    if owner is not None:
        return None, (
            f"{label} {name!r} ({obj.id}) is managed by pdorgsync for org={owner[0]}, "
            f"department={owner[1]}"
        )
    if ctx.org.defaults.adopt_existing:
        return Match(obj, adopt=True), None
    return None, (
        f"a {label} named {name!r} ({obj.id}) exists without the pdorgsync marker; "
        "rename it, or set defaults.adopt_existing: true to adopt it"
    )


def _conflict(ctx: PlanContext, kind: str, d: DepartmentPlan, name: str, reason: str) -> Conflict:
    return Conflict(
        kind=kind,
        department=d.dept.key,
        name=name,
        reason=reason,
        location=ctx.locate(_name_path(kind, d)),
    )


def _user_positions(d: DepartmentPlan) -> list[tuple[str, Path]]:
    """Every email the department names, with where in the file it names it."""
    dept = d.dept
    paths: list[tuple[str, Path]] = []
    if dept.point_of_contact:
        paths.append((dept.point_of_contact, ("departments", d.index, "point_of_contact")))
    paths += [(e, ("departments", d.index, "members", i)) for i, e in enumerate(dept.members)]
    if dept.schedule:
        for li, layer in enumerate(dept.schedule.layers):
            for ui, email in enumerate(layer.users):
                paths.append(
                    (email, ("departments", d.index, "schedule", "layers", li, "users", ui))
                )
    if dept.escalation_policy:
        for lv, level in enumerate(dept.escalation_policy.levels):
            for ti, target in enumerate(level.targets):
                if target.startswith("user:"):
                    path: Path = ("departments", d.index, "escalation_policy", "levels", lv)
                    paths.append((target[5:], (*path, "targets", ti)))
    return paths


def _unknown_users(ctx: PlanContext, d: DepartmentPlan) -> None:
    """Resolve the people the department names (``d.people``); a conflict for each
    person who cannot fill the position the file gives them."""
    unfit = False
    for email in d.dept.all_people():
        user_id = ctx.user_ids.get(email)
        if user_id is None or ctx.base_roles.get(user_id, "user") in STAKEHOLDER_ROLES:
            unfit = True
            continue
        d.people[email] = user_id
        d.account_roles[user_id] = ctx.base_roles.get(user_id, "user")
    if not unfit:
        return  # the usual case: no position (and no file path) to report
    seen: set[str] = set()
    for email, path in _user_positions(d):
        if email in seen:
            continue
        if email in ctx.user_ids:
            role = ctx.base_roles.get(ctx.user_ids[email], "user")
            if role not in STAKEHOLDER_ROLES:
                continue
            # SPEC §1 "Account roles": a stakeholder seat is always a team observer
            # and cannot be paged, so it cannot fill any position the file gives.
            reason = (
                f"{email} has a stakeholder seat ({role}): PagerDuty cannot page them "
                "and keeps them a team observer; give them a full user license or "
                "remove them from this position"
            )
        else:
            reason = f"{email} is not a PagerDuty user (pdorgsync never creates users)"
        seen.add(email)
        d.conflicts.append(
            Conflict(
                kind="user",
                department=d.dept.key,
                name=email,
                reason=reason,
                location=ctx.locate(path),
            )
        )


def _references(ctx: PlanContext, depts: dict[str, DepartmentPlan]) -> None:
    """EP targets and the service's EP must resolve; repeat until nothing new is blocked."""
    changed = True
    while changed:
        changed = False
        for d in depts.values():
            if d.conflicts:
                continue
            reason = _unresolved(d, depts)
            if reason:
                kind, path, text = reason
                d.conflicts.append(
                    Conflict(
                        kind=kind,
                        department=d.dept.key,
                        name=_desired_name(kind, d.dept) or d.dept.name,
                        reason=text,
                        location=ctx.locate(path),
                    )
                )
                changed = True


def _unresolved(
    d: DepartmentPlan, depts: dict[str, DepartmentPlan]
) -> tuple[str, Path, str] | None:
    dept = d.dept
    ep = dept.escalation_policy
    base: Path = ("departments", d.index)
    if ep:
        for lv, level in enumerate(ep.levels):
            for ti, target in enumerate(level.targets):
                if target == "schedule" and dept.schedule is None:
                    return (
                        "escalation_policy",
                        (*base, "escalation_policy", "levels", lv, "targets", ti),
                        "targets its own schedule, but the department has no schedule block",
                    )
                if target.startswith("schedule:"):
                    key = target[9:]
                    other = depts.get(key)
                    path = (*base, "escalation_policy", "levels", lv, "targets", ti)
                    if other is None or other.dept.schedule is None:
                        return (
                            "escalation_policy",
                            path,
                            f"targets the schedule of department {key!r}, which has none in the file",
                        )
                    existing = other.matches.get("schedule")
                    if other.conflicts and (existing is None or existing.obj is None):
                        return (
                            "escalation_policy",
                            path,
                            f"targets the schedule of department {key!r}, which is blocked by a conflict and does not exist yet",
                        )
    if dept.service and not ep:
        return (
            "service",
            (*base, "service"),
            "a service needs the department's escalation policy, but the department has no escalation_policy block",
        )
    return None
