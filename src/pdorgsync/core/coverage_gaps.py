"""On-call coverage over a horizon: required window minus on-call shifts, the week-by-hour
heat map, and the words that describe a gap to a manager.

Part of the coverage audit (``core/coverage.py`` runs the rules). The interval
arithmetic itself is ``core/intervals.py``'s; this module only decides *which*
intervals to combine (24x7 or business hours in the department's own zone, across DST).

Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pdorgsync.core import intervals as iv
from pdorgsync.core.intervals import Interval
from pdorgsync.core.schedules import Shift
from pdorgsync.models.audit import DepartmentCoverage, Gap
from pdorgsync.models.org import Department, Org
from pdorgsync.models.snapshot import Schedule

V3_SCHEDULE_TYPES = ("schedule_v3", "schedule_v3_reference")
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def required_windows(
    org: Org, dept: Department, since: datetime, until: datetime
) -> list[Interval]:
    """When the department must be reachable: 24x7, or its business hours in its own zone."""
    if dept.coverage == "always":
        return iv.always_window(since, until)
    if dept.coverage == "business_hours":
        return list(
            iv.business_windows(
                dept.effective_business_hours, ZoneInfo(org.zone_of(dept)), since, until
            )
        )
    return []


def _shift_intervals(shifts: Sequence[Shift], since: datetime, until: datetime) -> list[Interval]:
    raw = [Interval(s.start, s.end) for s in shifts if s.user_id and s.end > s.start]
    return iv.clip(raw, since, until)


def _seconds(intervals: Iterable[Interval]) -> float:
    return iv.total(intervals).total_seconds()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    """An instant as whole microseconds since the epoch: exact integer arithmetic."""
    return (moment - _EPOCH) // _MICROSECOND


def _overlaps(cells: Sequence[tuple[int, int]], spans: Sequence[Interval]) -> list[int]:
    """Microseconds of each cell inside the normalized ``spans``, in one merge sweep.

    ``cells`` are ``(start, end)`` with non-decreasing starts and ends (local hours in
    order); ``spans`` sorted and disjoint. Costs cells + spans, not cells x spans.
    """
    starts = [_micros(span.start) for span in spans]
    ends = [_micros(span.end) for span in spans]
    count = len(ends)
    out: list[int] = []
    first = 0
    for start, end in cells:  # the audit's innermost loop: plain comparisons, no min/max calls
        while first < count and ends[first] <= start:
            first += 1
        inside = 0
        k = first
        while k < count and starts[k] < end:
            span_end, span_start = ends[k], starts[k]
            inside += (end if end < span_end else span_end) - (
                start if start > span_start else span_start
            )
            k += 1
        out.append(inside)
    return out


@lru_cache(maxsize=64)
def _hour_cells(
    zone: ZoneInfo, since: datetime, until: datetime
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """Every local hour of the horizon, clipped to it: ``(weekday, hour)`` and
    ``(start, end)`` in epoch microseconds, in time order.

    The same for every department of a zone, so it is computed once per audit.
    """
    where: list[tuple[int, int]] = []
    cells: list[tuple[int, int]] = []
    horizon = iv.always_window(since, until)
    if not horizon:
        return (), ()
    low, high = horizon[0].start, horizon[0].end
    day = iv.wall_clock(since, zone).date()
    last = iv.wall_clock(until, zone).date()
    while day <= last:
        for hour in range(24):
            start = iv.local_to_utc(datetime.combine(day, time(hour)), zone)
            end = iv.local_to_utc(datetime.combine(day, time(0)) + timedelta(hours=hour + 1), zone)
            if end <= start:
                continue  # the hour skipped when clocks go forward
            start, end = max(start, low), min(end, high)  # the cell inside the horizon
            if end > start:
                where.append((day.weekday(), hour))
                cells.append((_micros(start), _micros(end)))
        day += timedelta(days=1)
    return tuple(where), tuple(cells)


def heatmap(
    zone: ZoneInfo,
    since: datetime,
    until: datetime,
    covered: Sequence[Interval],
    required: Sequence[Interval],
) -> tuple[list[list[float | None]], list[list[bool]]]:
    """Week-by-hour grid in local time: ``[weekday][hour]`` fraction of that hour covered over
    the horizon (None where the horizon holds no such hour), and whether it is required.

    Local hours are built from wall-clock dates, so a DST day's skipped hour has no time
    and a repeated hour counts twice as long, as it really is.
    """
    total = [[0] * 24 for _ in range(7)]
    on = [[0] * 24 for _ in range(7)]
    need = [[False] * 24 for _ in range(7)]
    where, cells = _hour_cells(zone, since, until)
    covered_us = _overlaps(cells, iv.normalize(covered))
    required_us = _overlaps(cells, iv.normalize(required))
    for (weekday, hour), (start, end), on_us, need_us in zip(
        where, cells, covered_us, required_us, strict=True
    ):
        total[weekday][hour] += end - start
        on[weekday][hour] += on_us
        if need_us > 0:
            need[weekday][hour] = True
    grid: list[list[float | None]] = [
        [(on[d][h] / total[d][h]) if total[d][h] > 0 else None for h in range(24)] for d in range(7)
    ]
    return grid, need


def department_coverage(
    org: Org,
    dept: Department,
    schedule: Schedule | None,
    rendered: Mapping[str, Sequence[Shift]],
    since: datetime,
    until: datetime,
    *,
    always_paged: bool = False,
) -> DepartmentCoverage:
    """Required window minus on-call intervals, clipped to the horizon.

    ``always_paged``: the first escalation level targets a user directly, so someone
    is paged at any time whatever the schedule says (PagerDuty's "permanent" on-call).

    Without a schedule nobody is on call (ratio 0, the whole window is a gap); a
    shift-based (v3) schedule whose on-call PagerDuty did not give cannot be measured
    (ratio None); ``coverage: none``
    has no required window (ratio None).
    """
    zone_name = org.zone_of(dept)
    zone = ZoneInfo(zone_name)
    base: dict[str, Any] = {
        "key": dept.key,
        "name": dept.name,
        "coverage": dept.coverage,
        "time_zone": zone_name,
        "schedule_id": schedule.id if schedule else None,
        "schedule_name": schedule.name if schedule else None,
    }
    if schedule is not None and schedule.type in V3_SCHEDULE_TYPES and schedule.id not in rendered:
        return DepartmentCoverage(**base)  # shift-based and not readable: COV009
    covered = (
        iv.always_window(since, until)
        if always_paged
        else _shift_intervals(rendered.get(schedule.id, []) if schedule else [], since, until)
    )
    required = iv.union(required_windows(org, dept, since, until))
    grid, need = heatmap(zone, since, until, covered, required)
    if dept.coverage == "none":
        return DepartmentCoverage(
            **base, heatmap=grid if schedule else None, required=need if schedule else None
        )
    gaps = iv.subtract(required, covered)
    required_s = _seconds(required)
    covered_s = _seconds(iv.intersect(required, covered))
    return DepartmentCoverage(
        **base,
        coverage_ratio=covered_s / required_s if required_s > 0 else 1.0,
        required_seconds=required_s,
        covered_seconds=covered_s,
        gaps=[Gap(start=g.start, end=g.end) for g in gaps],
        heatmap=grid,
        required=need,
    )


def format_hours(seconds: float) -> str:
    """``8 h``, ``1.5 h``, ``45 min`` — how long, for a manager."""
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    hours = seconds / 3600
    return f"{hours:.0f} h" if abs(hours - round(hours)) < 0.05 else f"{hours:.1f} h"


def format_local(moment: datetime, zone: ZoneInfo, *, with_date: bool = False) -> str:
    local = moment.astimezone(zone)
    day = DAY_NAMES[local.weekday()]
    if with_date:
        return f"{day} {local.day} {local:%b %H:%M}"
    return f"{day} {local:%H:%M}"


def describe_span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """``Fri 09:00 – Fri 17:00`` (dates added when the span is a week or longer)."""
    long = end - start >= timedelta(days=7)
    return (
        f"{format_local(start, zone, with_date=long)} – {format_local(end, zone, with_date=long)}"
    )


def horizon_words(days: int) -> str:
    return "in the next day" if days == 1 else f"in the next {days} days"


def gap_details(gap: Gap, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "start": gap.start.astimezone(UTC).isoformat(),
        "end": gap.end.astimezone(UTC).isoformat(),
        "local_start": gap.start.astimezone(zone).isoformat(),
        "local_end": gap.end.astimezone(zone).isoformat(),
        "hours": round(gap.hours, 2),
    }


def pattern_key(gap: Gap, zone: ZoneInfo) -> tuple[str, ...]:
    """Gaps of under a day recur by time of day (weekdays collected); longer ones by
    their weekly span."""
    seconds = str(round(gap.duration.total_seconds()))
    if gap.duration < timedelta(days=1):
        start, end = gap.start.astimezone(zone), gap.end.astimezone(zone)
        return ("daily", f"{start:%H:%M}", f"{end:%H:%M}", seconds)
    return ("span", describe_span(gap.start, gap.end, zone), seconds)


def _day_list(days: Sequence[int]) -> str:
    """``Mon–Fri`` for a run of three or more days, else ``Mon, Wed``."""
    days = sorted(set(days))
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}–{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[d] for d in run)
    return ", ".join(parts)


def describe_pattern(gaps: Sequence[Gap], zone: ZoneInfo) -> str:
    """How a group of same-shaped gaps reads: ``Fri 09:00 – Fri 17:00 (8 h)`` or
    ``09:00 – 10:00 on Mon–Fri (1 h each)``."""
    first = gaps[0]
    length = format_hours(first.duration.total_seconds())
    weekdays = {g.start.astimezone(zone).weekday() for g in gaps}
    if len(weekdays) == 1 or first.duration >= timedelta(days=1):
        return f"{describe_span(first.start, first.end, zone)} ({length})"
    start, end = first.start.astimezone(zone), first.end.astimezone(zone)
    overnight = " (overnight)" if end.date() != start.date() else ""
    return (
        f"{start:%H:%M} – {end:%H:%M}{overnight} on "
        f"{_day_list([g.start.astimezone(zone).weekday() for g in gaps])} ({length} each)"
    )
