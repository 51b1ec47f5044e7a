"""``GET /oncalls``: who is on call, per escalation policy level, from rendered schedules.

Rows are computed, never stored: a user target is on call permanently
(``start``/``end`` null), a schedule target yields one row per final-schedule
shift meeting the window (CONTRACT §6).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pdorgsync.sandbox import rendering
from pdorgsync.sandbox.protocol import Body, Call, invalid, paginate, route
from pdorgsync.sandbox.state import State, check_zone, iso, parse_time

MAX_AHEAD = timedelta(days=90)
SHIFT_REACH = timedelta(days=35)  # how far a shift is followed beyond the window


def oncall_rows(state: State, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Internal rows ``{ep_id, level, schedule_id|None, user_id, start|None, end|None}``."""
    rows: list[dict[str, Any]] = []
    for ep in sorted(state.escalation_policies.values(), key=lambda e: e["name"].lower()):
        for level, rule in enumerate(ep["escalation_rules"], start=1):
            for target in rule["targets"]:
                kind = target["type"].removesuffix("_reference")
                if kind == "user":
                    rows.append(
                        {
                            "ep_id": ep["id"],
                            "level": level,
                            "schedule_id": None,
                            "user_id": target["id"],
                            "start": None,
                            "end": None,
                        }
                    )
                    continue
                schedule = state.schedules.get(target["id"])
                if schedule is None:
                    continue
                # PagerDuty reports whole shifts, not shifts clipped to the window; a
                # zero-length window asks "who is on call at this instant".
                shifts = rendering.final_shifts(schedule, since - SHIFT_REACH, until + SHIFT_REACH)
                for shift in shifts:
                    if not (shift.start < until or shift.start <= since) or shift.end <= since:
                        continue
                    rows.append(
                        {
                            "ep_id": ep["id"],
                            "level": level,
                            "schedule_id": schedule["id"],
                            "user_id": shift.user_id,
                            "start": shift.start,
                            "end": shift.end,
                        }
                    )
    return rows


def on_call_users(state: State, ep_id: str, level: int = 1) -> list[str]:
    """Users on call right now at ``level`` of an escalation policy (for assignments)."""
    now = state.now()
    users = [
        r["user_id"]
        for r in oncall_rows(state, now, now)
        if r["ep_id"] == ep_id and r["level"] == level
    ]
    return list(dict.fromkeys(users))


@route("GET", "/oncalls")
def list_oncalls(state: State, call: Call) -> tuple[int, Body]:
    now = state.now()
    since = parse_time(call.arg("since"), "since") if call.arg("since") else now
    until = parse_time(call.arg("until"), "until") if call.arg("until") else since
    if until < since:
        raise invalid("until must not be before since")
    if until - now > MAX_AHEAD:
        raise invalid("The window may reach at most 90 days into the future")
    zone = check_zone(call.arg("time_zone")) if call.arg("time_zone") else None
    user_ids = set(call.args("user_ids"))
    ep_ids = set(call.args("escalation_policy_ids"))
    schedule_ids = set(call.args("schedule_ids"))
    rows = [
        r
        for r in oncall_rows(state, since, until)
        if (not user_ids or r["user_id"] in user_ids)
        and (not ep_ids or r["ep_id"] in ep_ids)
        and (
            not schedule_ids
            or r["schedule_id"] in schedule_ids
            or (r["schedule_id"] is None and "null" in schedule_ids)
        )
    ]
    if call.flag("earliest"):
        first: dict[tuple[str, int, str], dict[str, Any]] = {}
        for r in rows:
            key = (r["ep_id"], r["level"], r["user_id"])
            if key not in first:
                first[key] = r
        rows = list(first.values())
    page = paginate(call, rows, "oncalls")
    page["oncalls"] = [
        {
            "escalation_policy": state.ref("escalation_policy", r["ep_id"]),
            "escalation_level": r["level"],
            "schedule": _schedule_ref(state, r["schedule_id"]) if r["schedule_id"] else None,
            "user": state.ref("user", r["user_id"]),
            "start": iso(r["start"], zone),
            "end": iso(r["end"], zone),
        }
        for r in page["oncalls"]
    ]
    return 200, page


def _schedule_ref(state: State, schedule_id: str) -> dict[str, Any]:
    """CONTRACT §6: ``/oncalls`` rows may carry a ``schedule_v3_reference`` (upgraded)."""
    ref = state.ref("schedule", schedule_id)
    if state.is_v3_schedule(schedule_id):
        ref.update(
            type="schedule_v3_reference", self=f"{state.base_url}/v3/schedules/{schedule_id}"
        )
    return ref
