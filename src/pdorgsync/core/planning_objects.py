"""Planning a department's objects: its team, escalation policy and service.

Each public function turns a matched department (``DepartmentPlan``) into the change
that creates, adopts or updates one object, or none when it already matches. The
schedule is ``planning_schedules``'s, memberships ``planning_memberships``'s.
Pure like the rest of ``core``: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any

from pdorgsync.core.planning_context import DepartmentPlan, PlanContext
from pdorgsync.core.planning_schedules import normalise_text
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import EscalationPolicy as EscalationPolicySpec
from pdorgsync.models.plan import Change, FieldDiff, Kind, Request, placeholder

COLLECTION = {
    "team": "/teams",
    "schedule": "/schedules",
    "escalation_policy": "/escalation_policies",
    "service": "/services",
}

Compare = dict[str, tuple[Any, Any]]  # field -> (observed, wanted)


def object_change(
    ctx: PlanContext,
    kind: Kind,
    d: DepartmentPlan,
    name: str,
    body: dict[str, Any],
    compare: Compare,
) -> Change | None:
    """Create, adopt or update ``kind`` of ``d`` (None: it matches and is not adopted)."""
    match = d.matches[kind]
    marker = ctx.org.marker(d.dept.key)
    ref = f"{kind}:{d.dept.key}"
    if match.obj is None:
        return Change(
            action="create",
            kind=kind,
            department=d.dept.key,
            name=name,
            diff={f: FieldDiff(before=None, after=w) for f, (_o, w) in compare.items()},
            ref=ref,
            requests=[Request(method="POST", path=COLLECTION[kind], body={kind: body})],
            marker=marker,
        )
    diff = {f: FieldDiff(before=o, after=w) for f, (o, w) in compare.items() if o != w}
    if not diff and not match.adopt:
        return None
    path = f"{COLLECTION[kind]}/{match.obj.id}"
    return Change(
        action="adopt" if match.adopt else "update",
        kind=kind,
        department=d.dept.key,
        name=name,
        id=match.obj.id,
        diff=diff,
        ref=ref,
        marker=marker,
        requests=[Request(method="PUT", path=path, body={kind: body})],
    )


def plan_team(ctx: PlanContext, d: DepartmentPlan) -> Change | None:
    """The team's change: its name and description."""
    dept = d.dept
    obj: snap.Team | None = d.matches["team"].obj
    description = ctx.description(dept)
    body = {"type": "team", "name": dept.team_name, "description": description}
    compare = {
        "name": (obj.name if obj else None, dept.team_name),
        "description": (
            normalise_text(obj.description) if obj else None,
            normalise_text(description) if obj else description,
        ),
    }
    return object_change(ctx, "team", d, dept.team_name, body, compare)


def plan_escalation_policy(
    ctx: PlanContext, d: DepartmentPlan, depts: dict[str, DepartmentPlan]
) -> Change | None:
    """The escalation policy's change: levels (targets resolved to ids), loops and team."""
    dept = d.dept
    spec = dept.escalation_policy
    assert spec is not None
    obj: snap.EscalationPolicy | None = d.matches["escalation_policy"].obj
    rules, shown = _rules(ctx, d, depts, spec)
    team_id = d.id_or_placeholder("team")
    description = ctx.description(dept)
    body: dict[str, Any] = {
        "type": "escalation_policy",
        "name": dept.escalation_policy_name,
        "description": description,
        "num_loops": spec.loops,
        "escalation_rules": rules,
        "teams": [{"id": team_id, "type": "team_reference"}],
    }
    if not ctx.teams_enabled:
        del body["teams"]  # setting it needs the "teams" ability (402 otherwise)
    if obj is None:
        compare: Compare = {
            "name": (None, dept.escalation_policy_name),
            "description": (None, description),
            "num_loops": (None, spec.loops),
            "escalation_rules": (None, shown),
            "team": (None, dept.team_name),
        }
    else:
        compare = {
            "name": (obj.name, dept.escalation_policy_name),
            "description": (normalise_text(obj.description), normalise_text(description)),
            "num_loops": (obj.num_loops, spec.loops),
            "escalation_rules": _rules_diff(ctx, obj, rules, shown),
            "team": _team_diff(ctx, obj.team_ids, team_id),
        }
    if not ctx.teams_enabled:
        compare.pop("team", None)
    name = dept.escalation_policy_name
    return object_change(ctx, "escalation_policy", d, name, body, compare)


def _rules(
    ctx: PlanContext,
    d: DepartmentPlan,
    depts: dict[str, DepartmentPlan],
    spec: EscalationPolicySpec,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The levels as PagerDuty takes them, and as the plan shows them (by name)."""
    rules: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    for level in spec.levels:
        targets: list[dict[str, str]] = []
        names: list[str] = []
        for target in level.targets:
            if target.startswith("user:"):
                targets.append({"id": d.people[target[5:]], "type": "user_reference"})
                names.append(target)
                continue
            other = depts[target[9:]] if target != "schedule" else d
            found = other.matches.get("schedule")
            v3 = found is not None and getattr(found.obj, "type", None) == "schedule_v3"
            # An upgraded schedule is referenced as schedule_v3_reference (developer
            # docs, "Schedules v2 to v3 Upgrade"): keep pointing at it, same id.
            ref_type = "schedule_v3_reference" if v3 else "schedule_reference"
            targets.append({"id": other.id_or_placeholder("schedule"), "type": ref_type})
            names.append(f"schedule:{other.dept.schedule_name}")
        rules.append({"escalation_delay_in_minutes": level.delay_minutes, "targets": targets})
        shown.append({"delay_minutes": level.delay_minutes, "targets": names})
    return rules, shown


def _rules_diff(
    ctx: PlanContext,
    obj: snap.EscalationPolicy,
    rules: list[dict[str, Any]],
    shown: list[dict[str, Any]],
) -> tuple[Any, Any]:
    """(observed, wanted) levels, by name; compared by target kind and id."""
    have_rules = [
        (r.escalation_delay_in_minutes, [(_kind(t.type), t.id) for t in r.targets])
        for r in obj.rules
    ]
    want_rules = [
        (r["escalation_delay_in_minutes"], [(_kind(t["type"]), t["id"]) for t in r["targets"]])
        for r in rules
    ]
    if have_rules == want_rules:
        return shown, shown  # the usual case: no observed names to look up
    observed_rules = [
        {
            "delay_minutes": r.escalation_delay_in_minutes,
            "targets": [_target_name(ctx, t) for t in r.targets],
        }
        for r in obj.rules
    ]
    return observed_rules, shown


def _target_name(ctx: PlanContext, ref: snap.Ref) -> str:
    if _kind(ref.type) == "user":
        return f"user:{ctx.emails.get(ref.id, ref.id)}"
    found = ctx.snap.schedule_by_id(ref.id)
    return f"schedule:{found.name if found else ref.id}"


def _team_diff(ctx: PlanContext, have: list[str], team_id: str) -> tuple[Any, Any]:
    """(observed, wanted) teams of an escalation policy, by name."""
    wanted = [_team_name(ctx, team_id)]
    if have == [team_id]:
        return wanted, wanted  # the usual case: one name to look up, not two
    return [_team_name(ctx, t) for t in have], wanted


def _team_name(ctx: PlanContext, team_id: str) -> str:
    found = ctx.snap.team_by_id(team_id)
    if found is not None:
        return found.name
    for dept in ctx.org.departments:
        if team_id == placeholder("team", dept.key):
            return dept.team_name
    return team_id


def plan_service(ctx: PlanContext, d: DepartmentPlan) -> Change | None:
    """The service's change: name, description, escalation policy and urgency."""
    dept = d.dept
    spec = dept.service
    assert spec is not None
    obj: snap.Service | None = d.matches["service"].obj
    ep_id = d.id_or_placeholder("escalation_policy")
    description = ctx.description(dept, spec.description)
    body = {
        "type": "service",
        "name": dept.service_name,
        "description": description,
        "escalation_policy": {"id": ep_id, "type": "escalation_policy_reference"},
        "incident_urgency_rule": {"type": "constant", "urgency": spec.urgency},
    }
    ep_name = dept.escalation_policy_name
    if obj is None:
        compare: Compare = {
            "name": (None, dept.service_name),
            "description": (None, description),
            "escalation_policy": (None, ep_name),
            "urgency": (None, spec.urgency),
        }
    else:
        have_ep = obj.escalation_policy_id
        observed_ep: str | None = ep_name
        if have_ep != ep_id:
            found = ctx.snap.escalation_policy_by_id(have_ep) if have_ep else None
            observed_ep = found.name if found else have_ep
        compare = {
            "name": (obj.name, dept.service_name),
            "description": (normalise_text(obj.description), normalise_text(description)),
            "escalation_policy": (observed_ep, ep_name),
            "urgency": (obj.urgency, spec.urgency),
        }
    return object_change(ctx, "service", d, dept.service_name, body, compare)


def _kind(reference_type: str) -> str:
    return reference_type.removesuffix("_reference")
