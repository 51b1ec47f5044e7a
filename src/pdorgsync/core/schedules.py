"""Rotation arithmetic: schedule layers, restrictions and overrides -> on-call shifts.

One implementation shared by the sandbox (``final_schedule`` of ``GET /schedules/{id}``),
the planner (who is on call now, when is the next hand-off) and the audit (gaps), so
the three can never disagree. Pure: no clock, no I/O, no logging; every instant is a
parameter, every output is UTC (see ``core.intervals`` for why).

PagerDuty semantics followed here (CONTRACT §5, §6, §9.2):

* Turn ``k`` (``k`` may be negative) of a layer covers ``[H(k), H(k+1))`` and belongs
  to ``users[k mod n]``; ``H(0)`` is ``rotation_virtual_start``. The layer only yields
  on-call time inside ``[start, end)``.
* **DST decision.** When the turn length is a whole number of hours, hand-offs step
  on the *local wall clock* of the schedule's zone: ``H(k)`` is the local reading of
  ``rotation_virtual_start`` plus ``k`` turns, turned back into an instant. A weekly
  Monday 09:00 hand-off therefore stays at 09:00 local across a change (that week is
  167 h or 169 h long), and a 12 h rotation keeps handing off at 08:00/20:00. A hand-off
  that falls in the skipped hour moves forward by the gap; one that falls in the
  repeated hour happens at its first occurrence (``intervals.local_to_utc``). For an
  hourly rotation this makes the turn spanning the spring change 0 h long (skipped:
  the rotation still advances) and the one spanning the autumn change 2 h long. Turn
  lengths that are not whole hours (only possible through the API) step in elapsed
  time instead.
* Restrictions are windows on the schedule zone's wall clock: a daily one repeats
  every local day, a weekly one every local week from ``start_day_of_week``
  (1 = Monday … 7 = Sunday); both may cross midnight or the week's end. With
  restrictions a user is on call only where a window meets their turn; outside every
  window the layer has nobody.
* ``render_schedule``: a later (higher) layer replaces lower ones wherever it has
  someone; overrides replace every layer (a later override replaces an earlier one
  where they overlap); touching shifts of one user merge; gaps are simply absent.

Why one module of a little over 450 lines: hand-offs, restrictions and rendering are
one model of PagerDuty's rotation, and every piece follows the DST decision above;
split, that decision would have to be kept consistent across modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Literal

from pdorgsync.core.intervals import (
    Interval,
    as_zone,
    local_to_utc,
    normalize,
    to_utc,
    total,
    wall_clock,
)
from pdorgsync.models import org as org_models
from pdorgsync.models import snapshot as snap_models

HOUR = 3600
DAY_NUMBERS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


def _normalise_span(span: Shift | OverrideSpec, what: str) -> None:
    """Store ``start``/``end`` in UTC on a frozen span; refuse one that ends before it starts."""
    start, end = to_utc(span.start), to_utc(span.end)
    if end < start:
        raise ValueError(f"{what} ends before it starts: {start} > {end}")
    object.__setattr__(span, "start", start)
    object.__setattr__(span, "end", end)


@dataclass(frozen=True, slots=True, order=True)
class Shift:
    """``user_id`` is on call during ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime
    user_id: str

    def __post_init__(self) -> None:
        _normalise_span(self, "shift")

    @property
    def user(self) -> str:
        """Alias of ``user_id``."""
        return self.user_id

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class OverrideSpec:
    """A schedule override: ``user_id`` replaces everyone during ``[start, end)``."""

    start: datetime
    end: datetime
    user_id: str

    def __post_init__(self) -> None:
        _normalise_span(self, "override")

    @property
    def user(self) -> str:
        return self.user_id


@dataclass(frozen=True, slots=True)
class RestrictionSpec:
    """A daily or weekly on-call window in the schedule's zone (PagerDuty ``Restriction``)."""

    kind: Literal["daily", "weekly"]
    start_time: time
    duration: timedelta
    start_day_of_week: int | None = None  # 1 = Monday … 7 = Sunday (PagerDuty numbering)

    def __post_init__(self) -> None:
        if self.kind not in ("daily", "weekly"):
            raise ValueError(f"restriction kind must be daily or weekly, got {self.kind!r}")
        if self.kind == "weekly" and self.start_day_of_week not in range(1, 8):
            raise ValueError(
                f"a weekly restriction needs start_day_of_week 1..7, got {self.start_day_of_week!r}"
            )
        if self.duration < timedelta(0):
            raise ValueError(f"restriction duration must not be negative, got {self.duration}")

    @classmethod
    def from_snapshot(cls, restriction: snap_models.Restriction) -> RestrictionSpec:
        kind: Literal["daily", "weekly"] = (
            "weekly" if restriction.type == "weekly_restriction" else "daily"
        )
        return cls(
            kind=kind,
            start_time=time.fromisoformat(restriction.start_time_of_day),
            duration=timedelta(seconds=restriction.duration_seconds),
            start_day_of_week=restriction.start_day_of_week if kind == "weekly" else None,
        )

    @classmethod
    def from_org(cls, restriction: org_models.Restriction) -> RestrictionSpec:
        return cls(
            kind="weekly" if restriction.day else "daily",
            start_time=org_models.parse_hhmm(restriction.start),
            duration=restriction.duration,
            start_day_of_week=DAY_NUMBERS[restriction.day] if restriction.day else None,
        )

    def windows(self, tz: tzinfo | str, since: datetime, until: datetime) -> list[Interval]:
        """This restriction's windows meeting ``[since, until)``, clipped to it, normalized."""
        zone = as_zone(tz)
        lo, hi = to_utc(since), to_utc(until)
        if hi <= lo or self.duration <= timedelta(0):
            return []
        first = wall_clock(lo, zone).date()
        last = wall_clock(hi, zone).date()
        if self.kind == "daily":
            step = timedelta(days=1)
            day = first - timedelta(days=self.duration.days + 1)
        else:
            step = timedelta(weeks=1)
            assert self.start_day_of_week is not None  # checked in __post_init__
            monday = first - timedelta(days=first.weekday())
            day = monday + timedelta(days=self.start_day_of_week - 1)
            day -= step * (self.duration.days // 7 + 1)
        found: list[Interval] = []
        while day <= last:
            wall = datetime.combine(day, self.start_time)
            begin, finish = local_to_utc(wall, zone), local_to_utc(wall + self.duration, zone)
            if begin < hi and finish > lo and begin < finish:
                found.append(Interval(max(begin, lo), min(finish, hi)))
            day += step
        return normalize(found)


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """One schedule layer as rotation arithmetic needs it (instants stored in UTC)."""

    start: datetime
    end: datetime | None
    rotation_virtual_start: datetime
    turn_seconds: int
    users: tuple[str, ...]
    restrictions: tuple[RestrictionSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.turn_seconds <= 0:
            raise ValueError(f"rotation turn length must be positive, got {self.turn_seconds}")
        object.__setattr__(self, "start", to_utc(self.start))
        object.__setattr__(self, "end", None if self.end is None else to_utc(self.end))
        object.__setattr__(self, "rotation_virtual_start", to_utc(self.rotation_virtual_start))
        object.__setattr__(self, "users", tuple(self.users))
        object.__setattr__(self, "restrictions", tuple(self.restrictions))

    @classmethod
    def from_snapshot(cls, layer: snap_models.ScheduleLayer) -> LayerSpec:
        return cls(
            start=layer.start,
            end=layer.end,
            rotation_virtual_start=layer.rotation_virtual_start,
            turn_seconds=layer.rotation_turn_length_seconds,
            users=tuple(layer.user_ids),
            restrictions=tuple(RestrictionSpec.from_snapshot(r) for r in layer.restrictions),
        )

    @classmethod
    def from_org(
        cls,
        layer: org_models.Layer,
        tz: tzinfo | str,
        user_ids: Sequence[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> LayerSpec:
        """A layer from ``org.yaml``; ``user_ids`` are the PagerDuty ids of ``layer.users``.

        A ``start`` without offset is local time in ``tz`` (SPEC §1). It is the rotation
        anchor and, unless ``start`` is given (the layer's real start), the layer start.
        """
        anchor = layer.start
        anchor = local_to_utc(anchor, as_zone(tz)) if anchor.tzinfo is None else to_utc(anchor)
        return cls(
            start=anchor if start is None else start,
            end=end,
            rotation_virtual_start=anchor,
            turn_seconds=layer.turn_seconds,
            users=tuple(user_ids),
            restrictions=tuple(RestrictionSpec.from_org(r) for r in layer.restrictions),
        )


@dataclass(frozen=True, slots=True)
class RotationPosition:
    """Where a layer's rotation stands at one instant."""

    turn_index: int  # k: turn [turn_start, turn_end) belongs to users[k mod n]
    user_id: str
    turn_start: datetime
    turn_end: datetime
    on_call: bool  # False when a restriction excludes the instant


class _Handoffs:
    """``H(k)`` for one layer in one zone (see the module's DST decision)."""

    def __init__(self, layer: LayerSpec, tz: tzinfo) -> None:
        self.layer = layer
        self.tz = tz
        self.turn = timedelta(seconds=layer.turn_seconds)
        self.wall = layer.turn_seconds % HOUR == 0
        self.anchor_wall = wall_clock(layer.rotation_virtual_start, tz)

    def at(self, k: int) -> datetime:
        if k == 0:
            return self.layer.rotation_virtual_start
        if self.wall:
            return local_to_utc(self.anchor_wall + k * self.turn, self.tz)
        return self.layer.rotation_virtual_start + k * self.turn

    def index(self, moment: datetime) -> int:
        """The ``k`` with ``H(k) <= moment < H(k+1)`` (the last such for 0-length turns)."""
        if self.wall:
            k = (wall_clock(moment, self.tz) - self.anchor_wall) // self.turn
        else:
            k = (moment - self.layer.rotation_virtual_start) // self.turn
        while self.at(k) > moment:
            k -= 1
        while self.at(k + 1) <= moment:
            k += 1
        return k


def _bounds(layer: LayerSpec, since: datetime, until: datetime) -> tuple[datetime, datetime]:
    lo = max(to_utc(since), layer.start)
    hi = to_utc(until) if layer.end is None else min(to_utc(until), layer.end)
    return lo, hi


def _restriction_windows(
    layer: LayerSpec, tz: tzinfo, lo: datetime, hi: datetime
) -> list[Interval]:
    return normalize(w for r in layer.restrictions for w in r.windows(tz, lo, hi))


def _restrict(turns: list[Shift], windows: list[Interval]) -> list[Shift]:
    """Each turn cut to the windows it meets (both inputs sorted and disjoint)."""
    out: list[Shift] = []
    j = 0
    for turn in turns:
        while j < len(windows) and windows[j].end <= turn.start:
            j += 1
        k = j
        while k < len(windows) and windows[k].start < turn.end:
            start, end = max(turn.start, windows[k].start), min(turn.end, windows[k].end)
            if start < end:
                out.append(Shift(start, end, turn.user_id))
            k += 1
    return out


def render_layer(
    layer: LayerSpec, tz: tzinfo | str, since: datetime, until: datetime
) -> list[Shift]:
    """Who this layer puts on call in ``[since, until)``: sorted, disjoint, unmerged turns."""
    zone = as_zone(tz)
    lo, hi = _bounds(layer, since, until)
    if lo >= hi or not layer.users:
        return []
    handoffs = _Handoffs(layer, zone)
    n = len(layer.users)
    k = handoffs.index(lo)
    turns: list[Shift] = []
    begin = handoffs.at(k)
    while begin < hi:
        # max(): a zone whose clocks jump by more than one turn must not run time backwards.
        finish = max(handoffs.at(k + 1), begin)
        start, end = max(begin, lo), min(finish, hi)
        if start < end:
            turns.append(Shift(start, end, layer.users[k % n]))
        begin, k = finish, k + 1
    if layer.restrictions:
        return _restrict(turns, _restriction_windows(layer, zone, lo, hi))
    return turns


def _cut(shifts: list[Shift], cover: list[Interval]) -> list[Shift]:
    """``shifts`` (sorted, disjoint) minus the normalized ``cover``, users kept."""
    out: list[Shift] = []
    j = 0
    for shift in shifts:
        start = shift.start
        while j < len(cover) and cover[j].end <= start:
            j += 1
        k = j
        while k < len(cover) and cover[k].start < shift.end and start < shift.end:
            if cover[k].start > start:
                out.append(Shift(start, cover[k].start, shift.user_id))
            start = max(start, cover[k].end)
            k += 1
        if start < shift.end:
            out.append(Shift(start, shift.end, shift.user_id))
    return out


def _paint(base: list[Shift], top: list[Shift]) -> list[Shift]:
    """``top`` laid over ``base``: wherever ``top`` has someone, ``base`` is hidden."""
    if not top:
        return base
    cover = normalize(s.interval for s in top)
    return sorted([*_cut(base, cover), *top])


def merge_shifts(shifts: Iterable[Shift]) -> list[Shift]:
    """Sorted shifts with touching or overlapping shifts of the same user joined.

    Expects shifts of different users not to overlap (as ``render_schedule`` produces).
    """
    out: list[Shift] = []
    for shift in sorted(s for s in shifts if s.start < s.end):
        last = out[-1] if out else None
        if last and last.user_id == shift.user_id and shift.start <= last.end:
            if shift.end > last.end:
                out[-1] = Shift(last.start, shift.end, last.user_id)
        else:
            out.append(shift)
    return out


def render_schedule(
    layers: Sequence[LayerSpec],
    overrides: Iterable[OverrideSpec],
    tz: tzinfo | str,
    since: datetime,
    until: datetime,
) -> list[Shift]:
    """The final schedule over ``[since, until)``: layers lowest priority first, overrides on top.

    Returns sorted, non-overlapping shifts inside the window, one user's touching
    shifts merged; time with nobody on call has no shift.
    """
    zone = as_zone(tz)
    lo, hi = to_utc(since), to_utc(until)
    final: list[Shift] = []
    for layer in layers:
        final = _paint(final, render_layer(layer, zone, lo, hi))
    laid: list[Shift] = []
    for override in overrides:
        start, end = max(override.start, lo), min(override.end, hi)
        if start < end:
            laid = _paint(laid, [Shift(start, end, override.user_id)])
    return merge_shifts(_paint(final, laid))


def covered(shifts: Iterable[Shift]) -> list[Interval]:
    """The normalized time during which anyone in ``shifts`` is on call."""
    return normalize(s.interval for s in shifts)


def coverage(shifts: Iterable[Shift], since: datetime, until: datetime) -> float:
    """Percentage (0-100) of ``[since, until)`` with someone on call, like PagerDuty's
    ``rendered_coverage_percentage``; an empty window counts as fully covered (100.0).
    Not rounded: round for display only."""
    lo, hi = to_utc(since), to_utc(until)
    if hi <= lo:
        return 100.0
    window = Interval(lo, hi)
    inside = [
        Interval(max(s.start, lo), min(s.end, hi)) for s in shifts if s.start < hi and s.end > lo
    ]
    return 100.0 * (total(inside) / window.duration)


def rotation_position(layer: LayerSpec, tz: tzinfo | str, at: datetime) -> RotationPosition | None:
    """The turn in progress at ``at``; None if the layer has not started, has ended or is empty."""
    zone = as_zone(tz)
    moment = to_utc(at)
    if not layer.users or moment < layer.start or (layer.end and moment >= layer.end):
        return None
    handoffs = _Handoffs(layer, zone)
    k = handoffs.index(moment)
    on_call = not layer.restrictions or any(
        w.contains(moment)
        for w in _restriction_windows(layer, zone, moment, moment + timedelta(seconds=1))
    )
    return RotationPosition(
        turn_index=k,
        user_id=layer.users[k % len(layer.users)],
        turn_start=handoffs.at(k),
        turn_end=handoffs.at(k + 1),
        on_call=on_call,
    )


def next_handoff(layer: LayerSpec, tz: tzinfo | str, after: datetime) -> datetime | None:
    """The first turn boundary strictly after ``after`` while the layer runs.

    Before the layer starts that is the layer's ``start``; None once the layer has
    ended or when it ends before the next boundary. Boundaries count even when the
    next turn's user is the same person (one-user rotations) and ignore restrictions.
    """
    zone = as_zone(tz)
    moment = to_utc(after)
    if layer.end is not None and moment >= layer.end:
        return None
    if moment < layer.start:
        return layer.start
    handoffs = _Handoffs(layer, zone)
    k = handoffs.index(moment) + 1
    boundary = handoffs.at(k)
    while boundary <= moment:
        k += 1
        boundary = handoffs.at(k)
    if layer.end is not None and boundary >= layer.end:
        return None
    return boundary
