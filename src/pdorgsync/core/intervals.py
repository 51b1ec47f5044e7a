"""Interval arithmetic on aware datetimes: the ground the coverage audit stands on.

Gaps in on-call coverage are "required window minus on-call shifts", so union,
subtraction and intersection must be exact. Every interval is half-open
``[start, end)`` and stored in UTC: comparing aware datetimes of *different* zones
is unreliable around DST folds (PEP 495 makes such ``==`` False), so nothing here
ever compares two zones. Inputs may be in any zone; outputs are UTC.

Wall-clock rule (shared with ``core.schedules``): a local time is turned into an
instant with PEP 495 ``fold=0``. A local time that does not exist (the hour skipped
when clocks go forward) is moved forward by the length of the gap (02:30 on
2026-03-08 in New York becomes 03:30 EDT); a local time that happens twice (clocks
go back) means its first occurrence (01:30 EDT, not 01:30 EST). This is
deterministic and keeps a 09:00-17:00 business day at 8 h on both sides of a change.

Pure: no clock, no I/O, no logging. ``now``-like values are always parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, overload
from zoneinfo import ZoneInfo

from pdorgsync.models.org import BusinessHours

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZERO = timedelta(0)


def to_utc(moment: datetime) -> datetime:
    """``moment`` as a UTC datetime; refuses naive datetimes (they name no instant)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def local_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """The instant of naive local time ``wall`` in ``tz`` (module rule: gap → forward, fold → first)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def wall_clock(moment: datetime, tz: tzinfo) -> datetime:
    """The naive local wall-clock reading of instant ``moment`` in ``tz``."""
    return to_utc(moment).astimezone(tz).replace(tzinfo=None, fold=0)


def as_zone(tz: tzinfo | str) -> tzinfo:
    """A zone from a ``tzinfo`` (``ZoneInfo``, ``UTC``) or an IANA name."""
    return ZoneInfo(tz) if isinstance(tz, str) else tz


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """Half-open ``[start, end)`` between two instants; stored in UTC, ``start <= end``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = to_utc(self.start), to_utc(self.end)
        if end < start:
            raise ValueError(f"interval ends before it starts: {start} > {end}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def empty(self) -> bool:
        return self.start == self.end

    def contains(self, moment: datetime) -> bool:
        return self.start <= to_utc(moment) < self.end


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted union: overlapping and touching intervals merged, zero-length ones dropped."""
    out: list[Interval] = []
    for iv in sorted(i for i in intervals if i.start < i.end):
        if out and iv.start <= out[-1].end:
            if iv.end > out[-1].end:
                out[-1] = Interval(out[-1].start, iv.end)
        else:
            out.append(iv)
    return out


def union(*groups: Iterable[Interval]) -> list[Interval]:
    """Normalized union of any number of interval collections."""
    return normalize(iv for group in groups for iv in group)


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """Normalized set of instants in both ``a`` and ``b`` (linear sweep)."""
    left, right = normalize(a), normalize(b)
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i].start, right[j].start)
        end = min(left[i].end, right[j].end)
        if start < end:
            out.append(Interval(start, end))
        if left[i].end <= right[j].end:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """Normalized set of instants in ``a`` but not in ``b`` (linear sweep)."""
    right = normalize(b)
    out: list[Interval] = []
    j = 0
    for iv in normalize(a):
        start = iv.start
        while j < len(right) and right[j].end <= start:
            j += 1
        k = j
        while k < len(right) and right[k].start < iv.end:
            if right[k].start > start:
                out.append(Interval(start, right[k].start))
            start = max(start, right[k].end)
            if start >= iv.end:
                break
            k += 1
        if start < iv.end:
            out.append(Interval(start, iv.end))
    return out


def total(intervals: Iterable[Interval]) -> timedelta:
    """Length of the union (overlaps counted once)."""
    return sum((iv.duration for iv in normalize(intervals)), ZERO)


def clip(intervals: Iterable[Interval], since: datetime, until: datetime) -> list[Interval]:
    """The normalized part of ``intervals`` inside ``[since, until)``."""
    return intersect(intervals, always_window(since, until))


def always_window(since: datetime, until: datetime) -> list[Interval]:
    """The 24x7 requirement over ``[since, until)``: one interval, or none if empty."""
    window = Interval(since, until)
    return [] if window.empty else [window]


def _parse_time(value: str | time) -> time:
    if isinstance(value, time):
        return value
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes or 0))


@overload
def business_windows(
    bh: BusinessHours, tz: tzinfo | str, since: datetime, until: datetime, /
) -> list[Interval]: ...


@overload
def business_windows(
    days: Sequence[str],
    start: str | time,
    end: str | time,
    tz: tzinfo | str,
    since: datetime,
    until: datetime,
    /,
) -> list[Interval]: ...


def business_windows(first: BusinessHours | Sequence[str], *rest: Any) -> list[Interval]:
    """Business-hour windows inside ``[since, until)``, in the department's own zone.

    Call as ``business_windows(days, start, end, tz, since, until)`` with ``days`` like
    ``["mon", "fri"]`` and ``start``/``end`` as ``"HH:MM"`` (or ``time``), or as
    ``business_windows(business_hours, tz, since, until)`` with an org-file
    ``BusinessHours``. Each day's window is ``[start, end)`` on the local wall clock
    (module rule for times skipped or repeated by DST), so it keeps its local hours
    across a change. ``end <= start`` means the window ends the next day.
    """
    if isinstance(first, BusinessHours):
        return _business_windows(first.days, first.start, first.end, *rest)
    return _business_windows(first, *rest)


def _business_windows(
    days: Sequence[str],
    start: str | time,
    end: str | time,
    tz: tzinfo | str,
    since: datetime,
    until: datetime,
) -> list[Interval]:
    zone = as_zone(tz)
    unknown = [d for d in days if d.lower()[:3] not in DAY_NAMES]
    if unknown:
        raise ValueError(f"unknown day name(s) {unknown}: expected mon, tue, ..., sun")
    weekdays = {DAY_NAMES.index(d.lower()[:3]) for d in days}
    start_t, end_t = _parse_time(start), _parse_time(end)
    lo, hi = to_utc(since), to_utc(until)
    if hi <= lo or not weekdays:
        return []
    windows: list[Interval] = []
    day: date = wall_clock(lo, zone).date() - timedelta(days=1)
    last: date = wall_clock(hi, zone).date()
    while day <= last:
        if day.weekday() in weekdays:
            begin = local_to_utc(datetime.combine(day, start_t), zone)
            end_day = day if end_t > start_t else day + timedelta(days=1)
            finish = local_to_utc(datetime.combine(end_day, end_t), zone)
            if begin < finish:
                windows.append(Interval(begin, finish))
        day += timedelta(days=1)
    return clip(windows, lo, hi)
