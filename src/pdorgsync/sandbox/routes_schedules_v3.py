"""Shift-based (v3) schedules, read side: what an upgraded schedule looks like.

PagerDuty developer docs, "Schedules v2 to v3 Upgrade", and the ``/v3/schedules``
operations of PagerDuty's OpenAPI description: an upgraded schedule keeps its id,
leaves ``GET /schedules`` and is listed by ``GET /v3/schedules`` as
``schedule_v3_reference`` items; ``GET /v3/schedules/{id}`` answers 400 for an id
that was not upgraded (CONTRACT §9.11) and, with ``include[]=final_schedule`` and
``since``/``until``, the computed on-call as ``computed_shift_assignments``.

The sandbox upgrades a schedule in place (``State.upgrade_schedule`` or
``"upgraded_to_v3": true`` in a seed) and renders its on-call from the layers it
had, which is what the upgrade promises: same people on call.
"""

from __future__ import annotations

from typing import Any

from pdorgsync.sandbox import rendering
from pdorgsync.sandbox.protocol import Body, Call, invalid, matches_query, paginate, route
from pdorgsync.sandbox.routes_schedules import _span
from pdorgsync.sandbox.state import State, iso


def _v3_ref(state: State, schedule: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": schedule["id"],
        "type": "schedule_v3_reference",
        "summary": schedule["name"],
        "self": f"{state.base_url}/v3/schedules/{schedule['id']}",
        "html_url": state.html_url("schedule", schedule["id"]),
    }


@route("GET", "/v3/schedules")
def list_v3_schedules(state: State, call: Call) -> tuple[int, Body]:
    team_ids = set(call.args("team_ids"))
    found = [
        _v3_ref(state, s)
        for s in sorted(state.schedules.values(), key=lambda s: s["name"].lower())
        if s.get("v3")
        and matches_query(call, s["name"])
        and (not team_ids or team_ids & set(s["team_ids"]))
    ]
    return 200, paginate(call, found, "schedules")


@route("GET", "/v3/schedules/{id}")
def get_v3_schedule(state: State, call: Call) -> tuple[int, Body]:
    schedule = state.schedules.get(call.params["id"])
    if schedule is None or not schedule.get("v3"):
        # CONTRACT §9.11: the v3 endpoints answer 400 for ids that are not shift-based.
        raise invalid(f"Schedule {call.params['id']} is not a shift-based schedule")
    out: dict[str, Any] = {
        "id": schedule["id"],
        "type": "schedule_v3",
        "name": schedule["name"],
        "time_zone": schedule["time_zone"],
        "teams": [state.ref("team", t) for t in schedule["team_ids"]],
        "escalation_policies": [
            state.ref("escalation_policy", ep)
            for ep in state.escalation_policies_targeting("schedule", schedule["id"])
        ],
        "self": f"{state.base_url}/v3/schedules/{schedule['id']}",
        "html_url": state.html_url("schedule", schedule["id"]),
    }
    if schedule["description"] is not None:
        out["description"] = schedule["description"]
    span = _span(call)
    if "final_schedule" in call.args("include") and span is not None:
        since, until = span
        shifts = rendering.final_shifts(schedule, since, until)
        out["final_schedule"] = {
            "type": "final_schedule",
            "rendered_coverage_percentage": rendering.percentage(shifts, since, until),
            "computed_shift_assignments": [
                {
                    "type": "computed_shift_assignment",
                    "start_time": iso(max(s.start, since)),
                    "end_time": iso(min(s.end, until)),
                    "member": {"type": "user_member", "user_id": s.user_id},
                    "source": {"type": "schedule_rotation"},
                }
                for s in shifts
                if s.user_id
            ],
        }
    return 200, {"schedule": out}
