"""Planning a department's schedule: layer diff that never rewrites the past.

PagerDuty keeps on-call history in schedule layers: a layer is never deleted, only
ended (CONTRACT §9.1), and editing a layer's ``users`` or ``rotation_virtual_start``
in place recomputes every shift of that layer, past ones included (§9.2). So:

* A layer that has not started yet (``start`` after the effective time) has no
  past: it is edited in place, keeping its id.
* A started layer whose users, rotation or restrictions differ from the file is
  **ended** at the effective time and a **new layer** with the same name starts
  then, anchored at the file's ``start`` (``rotation_virtual_start``), so the
  rotation position is the one the file describes and history stays intact.
* An open layer no longer in the file is ended at the effective time.
* Ended layers (``end`` set) are ignored when diffing. Layers that have already
  ended are history and are **not** re-sent: PagerDuty replaces a past layer
  ``start`` with the time of the request (terraform-provider-pagerduty issue #200,
  ``util/util.go``), so a re-sent ended layer could be moved after its own end, and a
  PUT leaves the layers it does not mention as they are (Terraform never re-sends
  ended layers, ``flattenScheduleLayers``). Open layers are re-sent with their ids.
* Every time written is on a whole minute (PagerDuty zeroes seconds): "now" for
  ending and replacing a layer is the next whole minute (never in the past, so
  PagerDuty has nothing to rewrite), and a new schedule's layers start at the
  current whole minute at the earliest (at most a minute back, which PagerDuty
  would move to the request time anyway), so a new schedule leaves no gap.

The effective time is the plan's ``now``, or with ``at_next_handoff`` the next
hand-off (turn boundary) of the layer being replaced, so nobody's current shift is
cut short. Layers are matched by name (then by id for duplicates), never by
position, and ``rotation_virtual_start`` is compared as an instant (PagerDuty
returns it in the schedule's zone, not the offset it was sent with).

Layer order: the file lists layers lowest priority first; requests list them in
that order and ``Snapshot`` keeps observed layers in that order too (``observe``
normalises the API's order), so rendering uses one convention throughout.

Pure: no clock (``now`` is a parameter), no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pdorgsync.core import schedules
from pdorgsync.core.intervals import as_zone, local_to_utc, to_utc
from pdorgsync.core.planning_context import DepartmentPlan, PlanContext
from pdorgsync.models import snapshot as snap
from pdorgsync.models import zones
from pdorgsync.models.org import DAYS, Department, Layer, Org
from pdorgsync.models.plan import Change, FieldDiff, OnCallImpact, OnCallShift, Request

IMPACT_DAYS = 7


@dataclass(frozen=True)
class SchedulePlan:
    """What the schedule needs: ``body`` is None when nothing changes."""

    body: dict[str, Any] | None
    diff: dict[str, FieldDiff]
    before: list[snap.ScheduleLayer]  # active layers now (for the impact)
    after: list[snap.ScheduleLayer]  # every layer once applied


def next_whole_minute(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole minute (itself when it is one)."""
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + timedelta(minutes=1)


def iso(value: datetime) -> str:
    """An instant as ISO-8601 in UTC (what we send; CONTRACT §9.2)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def anchor(layer: Layer, zone: str) -> datetime:
    """The layer's ``start`` as an instant: naive values are local to the department.

    Same conversion as the renderer (``LayerSpec.from_org``), DST gaps included.
    """
    start = layer.start
    return local_to_utc(start, as_zone(zone)) if start.tzinfo is None else to_utc(start)


def restrictions_of(layer: Layer) -> list[snap.Restriction]:
    out = []
    for r in layer.restrictions:
        out.append(
            snap.Restriction(
                type="weekly_restriction" if r.day else "daily_restriction",
                start_time_of_day=f"{r.start}:00",
                duration_seconds=round(r.hours * 3600),
                start_day_of_week=DAYS.index(r.day) + 1 if r.day else None,
            )
        )
    return out


def _restriction_key(r: snap.Restriction) -> tuple[str, str, int, int]:
    tod = r.start_time_of_day if len(r.start_time_of_day) > 5 else f"{r.start_time_of_day}:00"
    dow = r.start_day_of_week if r.type == "weekly_restriction" and r.start_day_of_week else 0
    return (r.type, tod, r.duration_seconds, dow)


def same_rotation(a: snap.ScheduleLayer, b: snap.ScheduleLayer) -> bool:
    """Whether two layers put the same people on call at the same times (ignoring start/end)."""
    return (
        a.rotation_turn_length_seconds == b.rotation_turn_length_seconds
        and a.rotation_virtual_start == b.rotation_virtual_start  # aware: compares instants
        and a.user_ids == b.user_ids
        and sorted(map(_restriction_key, a.restrictions))
        == sorted(map(_restriction_key, b.restrictions))
    )


def next_handoff(layer: snap.ScheduleLayer, zone: str, now: datetime) -> datetime:
    """The next turn boundary of ``layer`` after ``now`` (wall-clock aware, see core.schedules).

    ``now`` itself when the layer has no further hand-off (it ends first).
    """
    found = schedules.next_handoff(schedules.LayerSpec.from_snapshot(layer), zone, now)
    return found if found is not None else now


def desired_layers(
    dept: Department, zone: str, user_ids: dict[str, str]
) -> list[snap.ScheduleLayer]:
    """The file's layers as snapshot layers (id "", start = anchor), lowest priority first."""
    assert dept.schedule is not None
    out = []
    for layer in dept.schedule.layers:
        start = anchor(layer, zone)
        out.append(
            snap.ScheduleLayer(
                id="",
                name=layer.name,
                start=start,
                end=None,
                rotation_virtual_start=start,
                rotation_turn_length_seconds=layer.turn_seconds,
                user_ids=[user_ids[e] for e in layer.users],
                restrictions=restrictions_of(layer),
            )
        )
    return out


def layer_summary(layer: snap.ScheduleLayer, emails: dict[str, str]) -> dict[str, Any]:
    """A human-comparable view of a layer for the diff."""
    return {
        "rotation_seconds": layer.rotation_turn_length_seconds,
        "rotation_virtual_start": iso(layer.rotation_virtual_start),
        "users": [emails.get(u, u) for u in layer.user_ids],
        "restrictions": [
            {
                "type": r.type,
                "start_time_of_day": r.start_time_of_day,
                "duration_seconds": r.duration_seconds,
                **({"start_day_of_week": r.start_day_of_week} if r.start_day_of_week else {}),
            }
            for r in layer.restrictions
        ],
    }


def layer_body(layer: snap.ScheduleLayer) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if layer.id:
        body["id"] = layer.id
    body |= {
        "name": layer.name,
        "start": iso(layer.start),
        "end": iso(layer.end) if layer.end else None,  # explicit null keeps it open (§9.1)
        "rotation_virtual_start": iso(layer.rotation_virtual_start),
        "rotation_turn_length_seconds": layer.rotation_turn_length_seconds,
        "users": [{"user": {"id": u, "type": "user_reference"}} for u in layer.user_ids],
        "restrictions": [
            {
                "type": r.type,
                "start_time_of_day": r.start_time_of_day,
                "duration_seconds": r.duration_seconds,
                **({"start_day_of_week": r.start_day_of_week} if r.start_day_of_week else {}),
            }
            for r in layer.restrictions
        ],
    }
    return body


def active_layers(layers: list[snap.ScheduleLayer], now: datetime) -> list[snap.ScheduleLayer]:
    return [la for la in layers if la.end is None or la.end > now]


Changed = dict[str, tuple[snap.ScheduleLayer | None, snap.ScheduleLayer | None]]


def plan_layers(
    observed: list[snap.ScheduleLayer] | None,
    wanted: list[snap.ScheduleLayer],
    *,
    zone: str,
    now: datetime,
    at_next_handoff: bool,
    created: datetime | None = None,
) -> tuple[list[snap.ScheduleLayer], Changed, set[str]]:
    """The layers once applied (lowest priority first), what changed per name, and restacked names.

    PagerDuty (and the sandbox) edit a layer in place when the PUT carries its id and
    append layers without an id on top. A replacement layer therefore lands above
    every existing one; to keep the file's priority order, every open layer the file
    lists after a replaced one is re-added too (ended now, re-created with the same
    rotation, so nobody's on-call time changes). Those are the "restacked" names.
    The relative order of layers that are kept is not compared: responses have not
    always listed layers in request order (CONTRACT §9.2), so it is no signal.
    """
    if observed is None:  # a new schedule: layers start at their anchors, or now if past
        return _fresh_layers(wanted, created if created is not None else now)
    by_name, leftovers = _open_layers(observed)

    def when(layer: snap.ScheduleLayer) -> datetime:
        return next_handoff(layer, zone, now) if at_next_handoff else now

    replaced: dict[str, snap.ScheduleLayer] = {}  # id -> the layer as it will be
    appended: list[snap.ScheduleLayer] = []
    changed: Changed = {}
    restacked: set[str] = set()
    stacking = False
    for want in wanted:
        old = by_name.pop(want.name, None)
        in_order = old is not None and not stacking
        if old is not None and in_order and same_rotation(old, want):
            continue
        effective = when(old) if old is not None else now
        start = max(effective, want.rotation_virtual_start)
        if old is not None and in_order and old.start >= effective:
            # Not started yet: no past to protect, so edit in place and keep its id.
            new = want.model_copy(update={"id": old.id, "start": max(old.start, start)})
            replaced[old.id] = new
            changed[want.name] = (old, new)
            continue
        stacking = True
        if old is not None:
            replaced[old.id] = old.model_copy(update={"end": max(effective, old.start)})
            if same_rotation(old, want):
                restacked.add(want.name)
        new = want.model_copy(update={"start": start})
        appended.append(new)
        changed[want.name] = (old, new)
    for old in [*by_name.values(), *leftovers]:
        replaced[old.id] = old.model_copy(update={"end": max(when(old), old.start)})
        changed.setdefault(old.name, (old, None))
    layers = [replaced.get(la.id, la) for la in observed] + appended
    return layers, changed, restacked


def _fresh_layers(
    wanted: list[snap.ScheduleLayer], begin: datetime
) -> tuple[list[snap.ScheduleLayer], Changed, set[str]]:
    """A new schedule's layers. ``begin`` is the current whole minute: at most a minute
    in the past, which PagerDuty turns into the request time anyway, so a new schedule
    has nobody missing between its creation and the next whole minute."""
    fresh = [w.model_copy(update={"start": max(begin, w.start)}) for w in wanted]
    return fresh, {w.name: (None, w) for w in fresh}, set()


def _open_layers(
    observed: list[snap.ScheduleLayer],
) -> tuple[dict[str, snap.ScheduleLayer], list[snap.ScheduleLayer]]:
    """Open layers by name (the first of a name wins) and the open duplicates (ended)."""
    by_name: dict[str, snap.ScheduleLayer] = {}
    leftovers: list[snap.ScheduleLayer] = []
    for la in observed:
        if la.end is not None:
            continue  # history (or already retiring): never diffed, re-sent unchanged
        if la.name in by_name:
            leftovers.append(la)
        else:
            by_name[la.name] = la
    return by_name, leftovers


def plan_schedule(
    org: Org,
    dept: Department,
    observed: snap.Schedule | None,
    *,
    user_ids: dict[str, str],
    emails: dict[str, str],
    now: datetime,
    at_next_handoff: bool,
    description: str,
    adopt: bool,
) -> SchedulePlan:
    """The schedule body to send (None if it already matches) and the field diff."""
    zone = org.zone_of(dept)
    wanted = desired_layers(dept, zone, user_ids)
    history = {
        la.id
        for la in (observed.layers or [] if observed is not None else [])
        if la.end is not None and la.end <= now
    }
    layers, changed, restacked = plan_layers(
        observed.layers if observed is not None else None,
        wanted,
        zone=zone,
        now=next_whole_minute(now),
        at_next_handoff=at_next_handoff,
        created=now.replace(second=0, microsecond=0),
    )
    diff = _field_diff(observed, dept.schedule_name, zone, description)
    for name, (old, new) in changed.items():
        after = layer_summary(new, emails) if new else None
        if after is not None and name in restacked:
            after["note"] = "re-added on top of the replaced layer to keep the file's layer order"
        diff[f"layers.{name}"] = FieldDiff(
            before=layer_summary(old, emails) if old else None, after=after
        )
    before_layers = active_layers(observed.layers or [], now) if observed is not None else []
    if not diff and not adopt:
        return SchedulePlan(None, {}, before_layers, layers)
    body = {
        "schedule": {
            "type": "schedule",
            "name": dept.schedule_name,
            "time_zone": zone,
            "description": description,
            "schedule_layers": [layer_body(la) for la in layers if la.id not in history],
        }
    }
    return SchedulePlan(body, diff, before_layers, layers)


def _field_diff(
    observed: snap.Schedule | None, name: str, zone: str, description: str
) -> dict[str, FieldDiff]:
    """The schedule's own fields that differ (description and zone as PagerDuty keeps them)."""
    diff: dict[str, FieldDiff] = {}
    fields = {"name": name, "time_zone": zone, "description": description}
    for field, value in fields.items():
        before = getattr(observed, field) if observed is not None else None
        if field == "description":
            if observed is not None and normalise_text(before) == normalise_text(value):
                continue
        elif field == "time_zone":
            if zones.matches(before, value):  # PagerDuty returns `UTC` for `Etc/UTC`
                continue
        elif before == value:
            continue
        diff[field] = FieldDiff(before=before, after=value)
    return diff


def plan_schedule_change(
    ctx: PlanContext, d: DepartmentPlan, impact: bool
) -> tuple[Change | None, OnCallImpact | None]:
    """The department's schedule change (None: it matches) and, with ``impact``, who is
    on call over the next days before and after it."""
    dept = d.dept
    match = d.matches["schedule"]
    obj: snap.Schedule | None = match.obj
    ref = f"schedule:{dept.key}"
    if obj is not None and obj.type == "schedule_v3":
        # SPEC §1 "Shift-based (v3) schedules": PagerDuty upgraded it; the v2 layer
        # model cannot describe it, so it is neither rewritten nor recreated.
        reason = (
            "PagerDuty upgraded it to a shift-based (v3) schedule: pdorgsync leaves it as "
            "it is (edit it in PagerDuty, or remove the schedule block from the file)"
        )
        skip = Change(
            action="skip", kind="schedule", department=dept.key, name=obj.name, id=obj.id,
            ref=ref, reason=reason,
        )  # fmt: skip
        return skip, None
    result = plan_schedule(
        ctx.org,
        dept,
        obj,
        user_ids=d.people,
        emails=ctx.emails,
        now=ctx.now,
        at_next_handoff=ctx.at_next_handoff,
        description=ctx.description(dept),
        adopt=match.adopt,
    )
    if result.body is None:
        return None, None
    method, path = ("POST", "/schedules") if obj is None else ("PUT", f"/schedules/{obj.id}")
    change = Change(
        action="create" if obj is None else "adopt" if match.adopt else "update",
        kind="schedule",
        department=dept.key,
        name=dept.schedule_name,
        id=None if obj is None else obj.id,
        diff=result.diff,
        ref=ref,
        marker=ctx.org.marker(dept.key),
        requests=[Request(method=method, path=path, body=result.body)],
    )
    if not impact:
        return change, None
    after = [la for la in result.after if la.end is None or la.end > ctx.now]
    zone = ctx.org.zone_of(dept)
    return change, on_call_impact(
        dept, zone, dept.schedule_name, result.before, after, ctx.emails, ctx.now
    )


def normalise_text(value: str | None) -> str:
    """Descriptions as PagerDuty keeps them: line endings, trailing blanks and edges ignored."""
    if not value:
        return ""
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def on_call_impact(
    dept: Department,
    zone: str,
    schedule_name: str,
    before: list[snap.ScheduleLayer],
    after: list[snap.ScheduleLayer],
    emails: dict[str, str],
    now: datetime,
    days: int = IMPACT_DAYS,
) -> OnCallImpact:
    """Who is on call over the next ``days`` before and after the change (D's renderer)."""
    since = now
    until = now + timedelta(days=days)
    tz = ZoneInfo(zone)

    def shifts(layers: list[snap.ScheduleLayer]) -> list[OnCallShift]:
        specs = [schedules.LayerSpec.from_snapshot(la) for la in layers]
        return [
            OnCallShift(start=s.start, end=s.end, user=emails.get(s.user_id, s.user_id))
            for s in schedules.render_schedule(specs, [], tz, since, until)
        ]

    return OnCallImpact(
        department=dept.key,
        schedule=schedule_name,
        time_zone=zone,
        since=since,
        until=until,
        before=shifts(before),
        after=shifts(after),
    )
