"""The org-file blocks of one imported department (``core.importing``): its schedule
(layers), escalation policy (levels and targets), people (point of contact, members)
and coverage, or a note saying why a block cannot be written. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pdorgsync.core import schedules
from pdorgsync.core.import_context import (
    ACCOUNT_MANAGER_ROLES,
    EMPTY_LAYER,
    ENDED_LAYER,
    ENDING_LAYER,
    EXTRA_MANAGER,
    HORIZON_DAYS,
    OBSERVER,
    OVERRIDE,
    STAKEHOLDER_ROLES,
    UNFIT_EP,
    UNFIT_SCHEDULE,
    DeptDraft,
    ImportState,
)
from pdorgsync.core.import_values import (
    Unfit,
    business_hours_of,
    description_text,
    guess_function,
    local_start,
    restriction_of,
    rotation_name,
    zone_name,
)
from pdorgsync.core.intervals import Interval, clip
from pdorgsync.models import snapshot as snap


def schedule_block(st: ImportState, d: DeptDraft) -> dict[str, Any] | None:
    """The department's ``schedule`` block, or None with a note saying why it does not fit."""
    s = d.schedule
    if s is None:
        return None
    try:
        st.check_claimable(s, "schedule", "schedule", d.key)
        if s.layers is None:
            raise Unfit("its layers could not be read")
        layers = _layers(st, d, s, s.layers, zone_name(s.time_zone))
        if not layers:
            raise Unfit("it has no layer in use")
    except Unfit as why:
        d.note("schedule", f"schedule {s.name!r} ({s.id}) not imported: {why}", UNFIT_SCHEDULE)
        return None
    found = sorted(st.overrides.get(s.id, ()), key=lambda o: (o.start, o.end, o.user_id))
    for o in found:
        user = st.users.get(o.user_id)
        d.note(
            "schedule",
            f"override of schedule {s.name!r}: {user.email if user else o.user_id} "
            f"from {o.start.isoformat()} to {o.end.isoformat()}; overrides are one-off "
            "and not part of the org file (apply leaves them as they are)",
            OVERRIDE,
        )
    block: dict[str, Any] = {}
    if s.name != f"{d.team.name} On-Call":
        block["name"] = s.name
    block["layers"] = layers
    return block


def _layers(
    st: ImportState,
    d: DeptDraft,
    s: snap.Schedule,
    source: Sequence[snap.ScheduleLayer],
    zone: str,
) -> list[dict[str, Any]]:
    """The layers the org file can hold; ended, ending and empty ones become notes.
    Raises ``Unfit`` for a layer name the org file refuses."""
    layers: list[dict[str, Any]] = []
    names: set[str] = set()
    for layer in source:
        if layer.end is not None:
            ended = layer.end <= st.now
            d.note(
                "schedule",
                f"layer {layer.name!r} of schedule {s.name!r} "
                + (
                    f"ended at {layer.end.isoformat()}: history, not imported"
                    if ended
                    else f"ends at {layer.end.isoformat()}; the org file has no "
                    "layer end, so it is not imported (PagerDuty keeps it until then)"
                ),
                ENDED_LAYER if ended else ENDING_LAYER,
            )
            continue
        if not layer.user_ids:
            d.note(
                "schedule",
                f"layer {layer.name!r} of schedule {s.name!r} has no users: not imported",
                EMPTY_LAYER,
            )
            continue
        if not layer.name.strip() or len(layer.name) > 100 or layer.name in names:
            raise Unfit(f"layer name {layer.name!r} is empty, too long or repeated")
        names.add(layer.name)
        restrictions = [restriction_of(r) for r in layer.restrictions]
        out: dict[str, Any] = {
            "name": layer.name,
            "rotation": rotation_name(layer.rotation_turn_length_seconds),
            "start": local_start(layer.rotation_virtual_start, zone),
            "users": [st.email(u, "layer user") for u in layer.user_ids],
        }
        if restrictions and all(r is not None for r in restrictions):
            out["restrictions"] = restrictions
        layers.append(out)
    return layers


def ep_block(st: ImportState, d: DeptDraft) -> dict[str, Any] | None:
    """The department's ``escalation_policy`` block, or None with a note saying why not."""
    ep = d.ep
    if ep is None:
        return None
    try:
        st.check_claimable(ep, "escalation_policy", "escalation policy", d.key)
        if not ep.rules:
            raise Unfit("it has no escalation rule")
        if not 0 <= ep.num_loops <= 9:
            raise Unfit(f"it loops {ep.num_loops} times (at most 9)")
        levels: list[dict[str, Any]] = []
        for number, rule in enumerate(ep.rules, 1):
            targets: list[str] = []
            for t in rule.targets:
                kind = t.type.removesuffix("_reference")
                if kind == "user":
                    target = f"user:{st.email(t.id, 'target user')}"
                elif kind == "schedule":
                    owner = st.schedule_owner.get(t.id)
                    found = st.snap.schedule_by_id(t.id)
                    label = f"{found.name!r} ({t.id})" if found else t.id
                    if owner is None:
                        raise Unfit(
                            f"level {number} targets schedule {label}, which is not "
                            "imported as any department's schedule"
                        )
                    target = "schedule" if owner == d.key else f"schedule:{owner}"
                elif kind == "schedule_v3":
                    raise Unfit(f"level {number} targets a shift-based (v3) schedule ({t.id})")
                else:
                    raise Unfit(f"level {number} targets a {t.type}")
                if target in targets:
                    raise Unfit(f"level {number} names {target} twice")
                targets.append(target)
            if not 1 <= len(targets) <= 10:
                raise Unfit(f"level {number} has {len(targets)} targets (1 to 10)")
            if rule.escalation_delay_in_minutes < 0:
                raise Unfit(f"level {number} has a negative delay")
            levels.append({"delay_minutes": rule.escalation_delay_in_minutes, "targets": targets})
    except Unfit as why:
        d.note(
            "escalation_policy",
            f"escalation policy {ep.name!r} ({ep.id}) not imported: {why}",
            UNFIT_EP,
        )
        return None
    block: dict[str, Any] = {}
    if ep.name != f"{d.team.name} Escalation":
        block["name"] = ep.name
    block["loops"] = ep.num_loops
    block["levels"] = levels
    return block


def department_block(
    st: ImportState, d: DeptDraft, schedule: dict[str, Any] | None, ep: dict[str, Any] | None
) -> dict[str, Any]:
    team = d.team
    data: dict[str, Any] = {"key": d.key, "name": team.name}
    function, found = guess_function(team.name)
    data["function"] = function
    if function == "other":
        d.note(
            "function",
            "not guessed from the team name: engineering, support, marketing, product, "
            "executive, sales, hr, finance, security or legal?",
            inline=True,
        )
    elif len(found) > 1:
        d.note("function", f"guessed; the name also suggests {', '.join(found[1:])}", inline=True)
    poc, members = people(st, d)
    if poc:
        data["point_of_contact"] = poc
    data["members"] = members
    zone = zone_name(d.schedule.time_zone) if d.schedule is not None and schedule else None
    data.update(coverage(st, d, zone))
    if zone is not None:
        data["time_zone"] = zone
    if schedule is not None:
        data["schedule"] = schedule
    if ep is not None:
        data["escalation_policy"] = ep
    if d.service is not None:
        service: dict[str, Any] = {}
        if d.service.name != team.name:
            service["name"] = d.service.name
        text = description_text(d.service.description)
        if text:
            service["description"] = text
        service["urgency"] = d.service.urgency
        data["service"] = service
    return data


def people(st: ImportState, d: DeptDraft) -> tuple[str | None, list[str]]:
    members = d.team.members or []
    emails: dict[str, str] = {}
    managers: list[str] = []
    fixed: set[str] = set()
    known = [(st.users.get(m.user_id), m) for m in members]
    for user, m in sorted(known, key=lambda um: (um[0].email if um[0] else "", um[1].user_id)):
        if user is None or not user.email:
            continue
        if m.role == "observer" or user.role in STAKEHOLDER_ROLES:
            if user.role not in STAKEHOLDER_ROLES:
                d.note(
                    "members",
                    f"{user.email} is an observer of the team; the org file has no "
                    "observers (apply removes the membership unless you list them)",
                    OBSERVER,
                )
            continue
        emails[user.email] = m.role
        if m.role == "manager":
            managers.append(user.email)
            if user.role in ACCOUNT_MANAGER_ROLES:
                fixed.add(user.email)
    managers.sort(key=lambda e: (e in fixed, e))
    poc = managers[0] if managers else None
    if not managers:
        d.note("members", "the team has no manager, so no point_of_contact: name one")
    elif len(managers) > 1:
        d.note("point_of_contact", f"guessed: the team has {len(managers)} managers", inline=True)
        for email in managers[1:]:
            if email in fixed:
                continue  # the account role keeps them managers (SPEC §1): no drift
            d.note(
                "members",
                f"{email} is also a manager of the team; the org file has one point "
                "of contact, so apply makes them a responder",
                EXTRA_MANAGER,
            )
    return poc, sorted(emails)


def coverage(st: ImportState, d: DeptDraft, zone: str | None) -> dict[str, Any]:
    """``coverage`` (and ``business_hours``) from who the schedule puts on call."""
    if d.schedule is None or zone is None or not d.schedule.layers:
        d.note("coverage", "no schedule imported: nothing says who is on call", inline=True)
        return {"coverage": "none"}
    since = st.now
    until = since + timedelta(days=HORIZON_DAYS)
    specs = [schedules.LayerSpec.from_snapshot(la) for la in d.schedule.layers]
    shifts = schedules.render_schedule(specs, [], zone, since, until)
    cover = clip(schedules.covered(shifts), since, until)
    if cover == [Interval(since, until)]:
        return {"coverage": "always"}
    hours = business_hours_of(cover, zone, since, until)
    if hours is not None:
        return {"coverage": "business_hours", "business_hours": hours}
    d.note(
        "coverage",
        "the schedule leaves gaps that no business_hours block describes; audit reports them",
        inline=True,
    )
    return {"coverage": "always"}
