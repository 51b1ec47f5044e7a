"""Planning the objects nobody wants any more: orphans, and their deletes with ``prune``.

An orphan is an object carrying this org's marker that no department of the file
matched. With ``prune`` each is deleted, unless PagerDuty would refuse the delete
after the plan's other changes (a policy this plan does not manage still targets
the schedule, a service still uses the policy) or it is a shift-based (v3) schedule:
then it is a conflict instead. Pure like the rest of ``core``.
"""

from __future__ import annotations

from pdorgsync.core.planning_context import DepartmentPlan, PlanContext
from pdorgsync.core.planning_objects import COLLECTION
from pdorgsync.models.plan import Change, Conflict, FieldDiff, Orphan, Request

# object id -> (id, name) of what still uses it: EPs targeting a schedule, services of an EP
Users = dict[str, list[tuple[str, str]]]


def find_orphans(ctx: PlanContext, depts: dict[str, DepartmentPlan]) -> list[Orphan]:
    """Objects with this org's marker that no department kept, services first."""
    kinds = ("service", "escalation_policy", "schedule", "team")
    kept: dict[str, set[str]] = {kind: set() for kind in kinds}
    for d in depts.values():
        for kind, m in d.matches.items():
            if m.obj is not None:
                kept[kind].add(m.obj.id)
    orphans: list[Orphan] = []
    for kind in kinds if ctx.teams_enabled else kinds[:-1]:
        owners, kept_ids = ctx.owners[kind], kept[kind]
        for obj in ctx.objects[kind]:
            owner = owners.get(obj.id)
            if owner is None or owner[0] != ctx.org.org or obj.id in kept_ids:
                continue
            orphans.append(Orphan(kind=kind, department=owner[1], name=obj.name, id=obj.id))
    return orphans


def plan_deletes(
    ctx: PlanContext,
    depts: dict[str, DepartmentPlan],
    orphans: list[Orphan],
    changes: list[Change],
) -> tuple[list[Change], list[Conflict]]:
    """With ``prune``: the deletes of ``orphans``, and the conflicts of those refused.

    ``changes`` are the plan's other changes (what it updates or adopts is handled).
    """
    deleted = {(o.kind, o.id) for o in orphans}
    updated = {(c.kind, c.id) for c in changes if c.action in ("update", "adopt") and c.id}
    kept_ids = {
        m.obj.id
        for d in depts.values()
        if not d.conflicts
        for m in d.matches.values()
        if m.obj is not None
    }
    users = _users(ctx)
    v3 = {s.id for s in ctx.snap.schedules if s.type == "schedule_v3"}
    deletes: list[Change] = []
    conflicts: list[Conflict] = []
    for orphan in orphans:
        reason = _delete_blocker(orphan, users, deleted | updated, kept_ids)
        if orphan.kind == "schedule" and orphan.id in v3:
            reason = "not deleted: it is a shift-based (v3) schedule, which pdorgsync never changes"
        if reason:
            conflicts.append(
                Conflict(
                    kind=orphan.kind, department=orphan.department, name=orphan.name, reason=reason
                )
            )
            continue
        deletes.append(_delete(orphan, users))
    return deletes, conflicts


def _users(ctx: PlanContext) -> dict[str, Users]:
    """What still uses each schedule (escalation policies) and policy (services)."""
    policies: Users = {}  # schedule id -> EPs targeting it
    for ep in ctx.snap.escalation_policies:
        for target_id in dict.fromkeys(t.id for r in ep.rules for t in r.targets):
            policies.setdefault(target_id, []).append((ep.id, ep.name))
    services: Users = {}  # EP id -> services using it
    for svc in ctx.snap.services:
        if svc.escalation_policy_id:
            services.setdefault(svc.escalation_policy_id, []).append((svc.id, svc.name))
    return {"schedule": policies, "escalation_policy": services}


def _delete_blocker(
    orphan: Orphan, users: dict[str, Users], handled: set[tuple[str, str]], kept_ids: set[str]
) -> str | None:
    """Why PagerDuty would refuse this delete after the plan's other changes, if it would.

    ``handled``: objects deleted, updated or adopted by the plan; ``kept_ids``: objects
    a managed, unblocked department keeps (then its desired state wins).
    """
    using = users.get(orphan.kind, {}).get(orphan.id, [])
    if orphan.kind == "schedule":
        for ep_id, ep_name in using:
            if ("escalation_policy", ep_id) not in handled and ep_id not in kept_ids:
                return f"not deleted: escalation policy {ep_name!r} ({ep_id}) still targets it and pdorgsync does not manage that policy"
    if orphan.kind == "escalation_policy":
        for svc_id, svc_name in using:
            if ("service", svc_id) not in handled and svc_id not in kept_ids:
                return f"not deleted: service {svc_name!r} ({svc_id}) still uses it and pdorgsync does not manage that service"
    return None


def _delete(orphan: Orphan, users: dict[str, Users]) -> Change:
    path = f"{COLLECTION[orphan.kind]}/{orphan.id}"
    blockers: list[str] = []
    if orphan.kind == "escalation_policy":
        blockers = [orphan.id]
    elif orphan.kind == "schedule":
        blockers = [ep_id for ep_id, _ in users["schedule"].get(orphan.id, [])]
    return Change(
        action="delete",
        kind=orphan.kind,
        department=orphan.department,
        name=orphan.name,
        id=orphan.id,
        diff={"name": FieldDiff(before=orphan.name, after=None)},
        ref=f"{orphan.kind}:{orphan.department}",
        requests=[Request(method="DELETE", path=path)],
        blocked_by_incidents_of=blockers,
    )
