"""Who is on call in a sandbox schedule, by ``core.schedules`` (the one renderer).

The sandbox must never disagree with the planner and the audit about rotations,
so it converts its stored layers to ``LayerSpec`` and lets the pure core do the
arithmetic; this module only translates and formats.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pdorgsync.core.schedules import (
    LayerSpec,
    OverrideSpec,
    RestrictionSpec,
    Shift,
    coverage,
    render_layer,
    render_schedule,
)
from pdorgsync.models.snapshot import Restriction
from pdorgsync.sandbox.state import State, iso


def layer_spec(layer: dict[str, Any]) -> LayerSpec:
    return LayerSpec(
        start=layer.get("history_start", layer["start"]),  # past on-call is kept (routes_schedules)
        end=layer["end"],
        rotation_virtual_start=layer["rotation_virtual_start"],
        turn_seconds=layer["rotation_turn_length_seconds"],
        users=tuple(layer["users"]),
        restrictions=tuple(
            RestrictionSpec.from_snapshot(Restriction(**r)) for r in layer["restrictions"]
        ),
    )


def override_specs(schedule: dict[str, Any]) -> list[OverrideSpec]:
    return [OverrideSpec(o["start"], o["end"], o["user_id"]) for o in schedule["overrides"]]


def final_shifts(schedule: dict[str, Any], since: datetime, until: datetime) -> list[Shift]:
    layers = [layer_spec(layer) for layer in schedule["layers"]]
    return render_schedule(layers, override_specs(schedule), schedule["time_zone"], since, until)


def layer_shifts(
    schedule: dict[str, Any], layer: dict[str, Any], since: datetime, until: datetime
) -> list[Shift]:
    return render_layer(layer_spec(layer), schedule["time_zone"], since, until)


def entries(state: State, shifts: list[Shift], zone: str) -> list[dict[str, Any]]:
    return [
        {"start": iso(s.start, zone), "end": iso(s.end, zone), "user": state.ref("user", s.user_id)}
        for s in shifts
    ]


def subschedule(
    state: State, name: str, shifts: list[Shift], zone: str, since: datetime, until: datetime
) -> dict[str, Any]:
    return {
        "name": name,
        "rendered_schedule_entries": entries(state, shifts, zone),
        "rendered_coverage_percentage": percentage(shifts, since, until),
    }


def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime] | None:
    """PagerDuty: one bound given defaults the other to two weeks away; none, no window."""
    if since is None and until is None:
        return None
    if since is None:
        assert until is not None
        since = until - timedelta(weeks=2)
    if until is None:
        until = since + timedelta(weeks=2)
    return since, until


def override_shifts(schedule: dict[str, Any], since: datetime, until: datetime) -> list[Shift]:
    """The overrides sub-schedule: overrides alone, later ones on top, clipped."""
    return render_schedule([], override_specs(schedule), schedule["time_zone"], since, until)


def percentage(shifts: list[Shift], since: datetime, until: datetime) -> float:
    """``rendered_coverage_percentage`` as PagerDuty shows it (two decimals)."""
    return round(coverage(shifts, since, until), 2)
