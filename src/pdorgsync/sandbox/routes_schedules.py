"""Schedules, their layers and overrides (CONTRACT §5, §6, §9.1-9.3).

PagerDuty rules kept here: layers are never deleted, only ended (``end``); a PUT
edits the layers whose ``id`` it carries, adds those without one, and leaves
layers it does not mention as they are; times come back in the schedule's zone;
a schedule an escalation policy targets cannot be deleted (400, 2001).

Quirks of the live API emulated here (each cited where it is done):

* ``schedule_layers`` come back in the reverse of the order they were written;
* seconds are zeroed in layer ``start``, ``end`` and ``rotation_virtual_start``;
* a past ``start`` is replaced with the time of the request (history is kept);
* a restriction as long as its period is refused (code 3001);
* only PagerDuty's documented time zones are accepted (``state.check_zone``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pdorgsync.sandbox import rendering
from pdorgsync.sandbox.protocol import (
    ApiError,
    Body,
    Call,
    invalid,
    matches_query,
    not_found,
    paginate,
    route,
)
from pdorgsync.sandbox.state import State, check_zone, iso, parse_time

TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
SCHEDULE_INVALID = 3001  # CONTRACT §4: "schedule invalid"


def _whole_minute(moment: datetime) -> datetime:
    """PagerDuty keeps layer times to the minute: it zeroes seconds (terraform-provider-
    pagerduty PR #483 and issue #659, whose ``ValidateRFC3339`` asks for "a full minute")."""
    return moment.replace(second=0, microsecond=0)


def _restriction(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise invalid(f"{where} must be an object")
    kind = raw.get("type")
    if kind not in ("daily_restriction", "weekly_restriction"):
        raise invalid(f"{where}.type must be daily_restriction or weekly_restriction")
    start = raw.get("start_time_of_day")
    if not isinstance(start, str) or not TIME_OF_DAY.match(start):
        raise invalid(f"{where}.start_time_of_day must be HH:MM:SS")
    duration = raw.get("duration_seconds")
    limit = 86400 if kind == "daily_restriction" else 604800
    if not isinstance(duration, int) or not 0 < duration <= limit:
        raise invalid(f"{where}.duration_seconds must be between 1 and {limit}")
    if duration == limit:
        # A window as long as its period is refused with code 3001 (hashicorp/terraform
        # #11135; terraform-provider-pagerduty PR #439 checks daily windows "shorter than
        # a day" before sending).
        raise ApiError(
            400,
            SCHEDULE_INVALID,
            "Schedule Invalid",
            [f"{where}: Restriction duration must be less than the restriction period"],
        )
    out: dict[str, Any] = {"type": kind, "start_time_of_day": start, "duration_seconds": duration}
    if kind == "weekly_restriction":
        day = raw.get("start_day_of_week")
        if not isinstance(day, int) or not 1 <= day <= 7:
            raise invalid(f"{where}.start_day_of_week must be 1 (Monday) to 7 (Sunday)")
        out["start_day_of_week"] = day
    return out


def _layer(state: State, raw: Any, where: str, current: dict[str, Any] | None) -> dict[str, Any]:
    """A layer from a request, merged over ``current`` (fields absent keep their value)."""
    if not isinstance(raw, dict):
        raise invalid(f"{where} must be an object")
    merged = dict(current or {})
    for key in ("start", "rotation_virtual_start"):
        if key in raw or current is None:
            merged[key] = _whole_minute(parse_time(raw.get(key), f"{where}.{key}"))
    if "end" in raw:
        end = raw["end"]
        merged["end"] = None if end is None else _whole_minute(parse_time(end, f"{where}.end"))
    merged.setdefault("end", None)
    now = _whole_minute(state.now())
    if merged["start"] < now and (merged["end"] is None or merged["end"] > now):
        # PagerDuty sets a past layer `start` to the time of the request: the start it
        # returns is the layer's last update (terraform-provider-pagerduty issue #200 and
        # PR #343, `util/util.go` SuppressScheduleLayerStartDiff; PR #35, confirmed by
        # PagerDuty support). A layer that ends by now keeps its start (Terraform ends
        # removed layers with `end` = now and their old start, `resource_pagerduty_schedule.go`).
        merged["start"] = now
    # PagerDuty keeps past on-call when a layer changes (its history view); the sandbox
    # renders a layer from the earliest start it ever had.
    prior = (current or {}).get("history_start")
    merged["history_start"] = merged["start"] if prior is None else min(prior, merged["start"])
    if "rotation_turn_length_seconds" in raw or current is None:
        turn = raw.get("rotation_turn_length_seconds")
        if not isinstance(turn, int) or turn <= 0:
            raise invalid(f"{where}.rotation_turn_length_seconds must be a positive integer")
        merged["rotation_turn_length_seconds"] = turn
    if "users" in raw or current is None:
        users = raw.get("users")
        if not isinstance(users, list) or not users:
            raise invalid(f"{where}.users must list at least one user")
        ids = []
        for i, item in enumerate(users):
            user = item.get("user") if isinstance(item, dict) else None
            _, user_id = state.resolve_ref(user, ("user",), f"{where}.users[{i}].user")
            ids.append(user_id)
        merged["users"] = ids
    if "restrictions" in raw or current is None:
        restrictions = raw.get("restrictions") or []
        if not isinstance(restrictions, list):
            raise invalid(f"{where}.restrictions must be a list")
        merged["restrictions"] = [
            _restriction(r, f"{where}.restrictions[{i}]") for i, r in enumerate(restrictions)
        ]
    if "name" in raw or current is None:
        merged["name"] = str(raw.get("name") or f"Layer {where.rsplit('[', 1)[-1].rstrip(']')}")
    if merged["end"] is not None and merged["end"] < merged["history_start"]:
        raise invalid(f"{where}.end must not be before start")
    merged.setdefault("id", state.new_id())
    return merged


def _apply_layers(state: State, schedule: dict[str, Any], raw_layers: Any, creating: bool) -> None:
    if not isinstance(raw_layers, list) or (creating and not raw_layers):
        raise invalid("Schedule must have at least one schedule layer")
    by_id = {layer["id"]: layer for layer in schedule["layers"]}
    layers = list(schedule["layers"])
    for i, raw in enumerate(raw_layers):
        where = f"schedule_layers[{i}]"
        layer_id = raw.get("id") if isinstance(raw, dict) else None
        if layer_id is not None and not creating:
            if layer_id not in by_id:
                raise invalid(f"{where}.id {layer_id} is not a layer of this schedule")
            updated = _layer(state, raw, where, by_id[layer_id])
            layers[layers.index(by_id[layer_id])] = updated
        else:
            layers.append(_layer(state, raw, where, None))
    schedule["layers"] = layers


def _teams(state: State, raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise invalid("teams must be a list of team references")
    return [state.resolve_ref(t, ("team",), f"teams[{i}]")[1] for i, t in enumerate(raw)]


def _active_user_ids(schedule: dict[str, Any], now: datetime) -> list[str]:
    seen: list[str] = []
    for layer in schedule["layers"]:
        if layer["end"] is None or layer["end"] > now:
            seen += [u for u in layer["users"] if u not in seen]
    return seen


def layer_out(layer: dict[str, Any], state: State, zone: str) -> dict[str, Any]:
    return {
        "id": layer["id"],
        "name": layer["name"],
        "start": iso(layer["start"], zone),
        "end": iso(layer["end"], zone),
        "rotation_virtual_start": iso(layer["rotation_virtual_start"], zone),
        "rotation_turn_length_seconds": layer["rotation_turn_length_seconds"],
        "users": [{"user": state.ref("user", u)} for u in layer["users"]],
        "restrictions": [dict(r) for r in layer["restrictions"]],
    }


def schedule_out(
    state: State,
    schedule: dict[str, Any],
    *,
    layers: bool = True,
    span: tuple[datetime, datetime] | None = None,
    zone: str | None = None,
) -> dict[str, Any]:
    zone = zone or schedule["time_zone"]
    out: dict[str, Any] = {
        "id": schedule["id"],
        "type": "schedule",
        "name": schedule["name"],
        "time_zone": schedule["time_zone"],
        "users": [state.ref("user", u) for u in _active_user_ids(schedule, state.now())],
        "teams": [state.ref("team", t) for t in schedule["team_ids"]],
        "escalation_policies": [
            state.ref("escalation_policy", ep)
            for ep in state.escalation_policies_targeting("schedule", schedule["id"])
        ],
    }
    if schedule["description"] is not None:  # the description types it as a non-nullable string
        out["description"] = schedule["description"]
    if layers:
        # PagerDuty lists layers in the reverse of the order they were written (highest
        # priority first): PagerDuty/public-support-scripts `schedule_layer_reorganizer`;
        # terraform-provider-pagerduty reverses them on read (`flattenScheduleLayers`).
        written = list(reversed(schedule["layers"]))
        out["schedule_layers"] = [layer_out(layer, state, zone) for layer in written]
        final = {"name": "Final Schedule", "rendered_schedule_entries": []}
        overrides: dict[str, Any] = {"name": "Overrides", "rendered_schedule_entries": []}
        if span is not None:
            since, until = span
            for rendered, layer in zip(out["schedule_layers"], written, strict=True):
                shifts = rendering.layer_shifts(schedule, layer, since, until)
                rendered["rendered_schedule_entries"] = rendering.entries(state, shifts, zone)
                rendered["rendered_coverage_percentage"] = rendering.percentage(
                    shifts, since, until
                )
            final, overrides = (
                rendering.subschedule(state, name, shifts, zone, since, until)
                for name, shifts in (
                    ("Final Schedule", rendering.final_shifts(schedule, since, until)),
                    ("Overrides", rendering.override_shifts(schedule, since, until)),
                )
            )
        out["final_schedule"] = final
        out["overrides_subschedule"] = overrides
    return state.stamp("schedule", out)


def _span(call: Call) -> tuple[datetime, datetime] | None:
    since = parse_time(call.arg("since"), "since") if call.arg("since") else None
    until = parse_time(call.arg("until"), "until") if call.arg("until") else None
    span = rendering.window(since, until)
    if span is not None and span[1] < span[0]:
        raise invalid("until must not be before since")
    return span


@route("GET", "/schedules")
def list_schedules(state: State, call: Call) -> tuple[int, Body]:
    """AS#430: the list never carries final_schedule; layers only with include[]."""
    team_ids = set(call.args("team_ids"))
    found = [
        s
        for s in sorted(state.schedules.values(), key=lambda s: s["name"].lower())
        if not s.get("v3")  # upgraded schedules are listed only under /v3/schedules
        and matches_query(call, s["name"])
        and (not team_ids or team_ids & set(s["team_ids"]))
    ]
    page = paginate(call, found, "schedules")
    with_layers = "schedule_layers" in call.args("include")
    items = []
    for schedule in page["schedules"]:
        item = schedule_out(state, schedule, layers=with_layers)
        item.pop("final_schedule", None)
        item.pop("overrides_subschedule", None)
        items.append(item)
    page["schedules"] = items
    return 200, page


@route("POST", "/schedules")
def create_schedule(state: State, call: Call) -> tuple[int, Body]:
    body = call.wrapped("schedule")
    schedule: dict[str, Any] = {
        "id": state.new_id(),
        "name": str(body.get("name") or "New Schedule"),
        "description": body.get("description"),
        "time_zone": check_zone(body.get("time_zone")),
        "team_ids": _teams(state, body.get("teams", [])),
        "layers": [],
        "overrides": [],
    }
    _apply_layers(state, schedule, body.get("schedule_layers"), creating=True)
    state.schedules[schedule["id"]] = schedule
    return 201, {"schedule": schedule_out(state, schedule)}


@route("GET", "/schedules/{id}")
def get_schedule(state: State, call: Call) -> tuple[int, Body]:
    schedule = state.get("schedule", call.params["id"])
    zone = check_zone(call.arg("time_zone")) if call.arg("time_zone") else None
    return 200, {"schedule": schedule_out(state, schedule, span=_span(call), zone=zone)}


@route("PUT", "/schedules/{id}")
def update_schedule(state: State, call: Call) -> tuple[int, Body]:
    schedule = state.get("schedule", call.params["id"])
    body = call.wrapped("schedule")
    updated = dict(schedule, layers=list(schedule["layers"]))
    updated["time_zone"] = check_zone(body.get("time_zone"))  # required on PUT too
    for key in ("name", "description"):
        if key in body:
            updated[key] = body[key]
    if "teams" in body:
        updated["team_ids"] = _teams(state, body["teams"])
    if "schedule_layers" in body:
        _apply_layers(state, updated, body["schedule_layers"], creating=False)
    state.schedules[schedule["id"]] = updated
    return 200, {"schedule": schedule_out(state, updated)}


@route("DELETE", "/schedules/{id}")
def delete_schedule(state: State, call: Call) -> tuple[int, Body]:
    schedule = state.get("schedule", call.params["id"])
    users = state.escalation_policies_targeting("schedule", schedule["id"])
    if users:
        names = ", ".join(state.summary("escalation_policy", ep) for ep in users)
        raise invalid(f"Schedule can't be deleted: it is used by escalation policies ({names})")
    del state.schedules[schedule["id"]]
    return 204, None


@route("GET", "/schedules/{id}/users")
def schedule_users(state: State, call: Call) -> tuple[int, Body]:
    from pdorgsync.sandbox.routes_users import user_out

    schedule = state.get("schedule", call.params["id"])
    since, until = _span(call) or (state.now(), state.now())
    if since == until:
        user_ids = _active_user_ids(schedule, state.now())
    else:
        user_ids = list(
            dict.fromkeys(s.user_id for s in rendering.final_shifts(schedule, since, until))
        )
    return 200, {"users": [user_out(state, state.users[u]) for u in user_ids]}


def override_out(state: State, override: dict[str, Any], zone: str) -> dict[str, Any]:
    return {
        "id": override["id"],
        "type": "override",
        "start": iso(override["start"], zone),
        "end": iso(override["end"], zone),
        "user": state.ref("user", override["user_id"]),
    }


@route("GET", "/schedules/{id}/overrides")
def list_overrides(state: State, call: Call) -> tuple[int, Body]:
    """The description documents 201 for this read; the sandbox follows it."""
    schedule = state.get("schedule", call.params["id"])
    since = parse_time(call.arg("since"), "since")
    until = parse_time(call.arg("until"), "until")
    found = [o for o in schedule["overrides"] if o["start"] < until and o["end"] > since]
    zone = schedule["time_zone"]
    return 201, {"overrides": [override_out(state, o, zone) for o in found]}


@route("POST", "/schedules/{id}/overrides")
def create_overrides(state: State, call: Call) -> tuple[int, Body]:
    """Multi-status: each override gets its own ``status`` (201 or 400) and ``errors``."""
    schedule = state.get("schedule", call.params["id"])
    raw = call.body.get("overrides") if isinstance(call.body, dict) else None
    if not isinstance(raw, list) or not raw:
        raise invalid("overrides must be a non-empty list")
    results = []
    for i, item in enumerate(raw):
        try:
            start = parse_time(item.get("start"), f"overrides[{i}].start")
            end = parse_time(item.get("end"), f"overrides[{i}].end")
            _, user_id = state.resolve_ref(item.get("user"), ("user",), f"overrides[{i}].user")
            if end <= start:
                raise invalid(f"overrides[{i}]: end must be after start")
        except Exception as exc:
            errors = getattr(exc, "errors", None) or [str(exc)]
            results.append({"status": 400, "errors": errors, "override": dict(item)})
            continue
        override = {"id": state.new_id(), "start": start, "end": end, "user_id": user_id}
        schedule["overrides"].append(override)
        results.append(
            {"status": 201, "override": override_out(state, override, schedule["time_zone"])}
        )
    return 201, results


@route("DELETE", "/schedules/{id}/overrides/{override_id}")
def delete_override(state: State, call: Call) -> tuple[int, Body]:
    schedule = state.get("schedule", call.params["id"])
    kept = [o for o in schedule["overrides"] if o["id"] != call.params["override_id"]]
    if len(kept) == len(schedule["overrides"]):
        raise not_found(f"Override {call.params['override_id']}")
    schedule["overrides"] = kept
    return 204, None
