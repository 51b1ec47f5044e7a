"""Interval arithmetic: exact against a minute-set model, and DST-correct business hours."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdorgsync.core.intervals import (
    Interval,
    always_window,
    business_windows,
    clip,
    intersect,
    local_to_utc,
    normalize,
    subtract,
    total,
    union,
)
from pdorgsync.models.org import BusinessHours

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
BASE = datetime(2026, 3, 7, tzinfo=UTC)
ZONES = [UTC, NY, BERLIN, ZoneInfo("Asia/Kolkata")]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def at(minute: int, zone: tzinfo = UTC) -> datetime:
    return (BASE + timedelta(minutes=minute)).astimezone(zone)


@st.composite
def intervals(draw: st.DrawFn) -> Interval:
    """Intervals on a minute grid (so a set of minutes is an exact model), in mixed zones."""
    start = draw(st.integers(0, 600))
    length = draw(st.integers(0, 120))
    return Interval(
        at(start, draw(st.sampled_from(ZONES))), at(start + length, draw(st.sampled_from(ZONES)))
    )


interval_lists = st.lists(intervals(), max_size=12)


def minutes(ivs: list[Interval]) -> set[int]:
    out: set[int] = set()
    for iv in ivs:
        first = int((iv.start - BASE) / timedelta(minutes=1))
        last = int((iv.end - BASE) / timedelta(minutes=1))
        out.update(range(first, last))
    return out


def is_normal(ivs: list[Interval]) -> bool:
    return all(iv.start < iv.end for iv in ivs) and all(
        a.end < b.start for a, b in itertools.pairwise(ivs)
    )


def test_normalize_merges_overlapping_and_adjacent_and_drops_empty() -> None:
    """Overlapping and touching intervals become one; zero-length ones vanish."""
    got = normalize(
        [
            Interval(at(50), at(60)),
            Interval(at(0), at(10)),
            Interval(at(10), at(20)),
            Interval(at(15), at(30)),
            Interval(at(40), at(40)),
        ]
    )
    assert got == [Interval(at(0), at(30)), Interval(at(50), at(60))]


def test_interval_is_stored_in_utc_and_compares_across_zones() -> None:
    """The same instant written in two zones is the same interval."""
    assert Interval(at(0, NY), at(60, BERLIN)) == Interval(at(0), at(60))
    assert Interval(at(0, NY), at(60)).start.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "end"),
    [(datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC)), (at(10), at(5))],
)
def test_interval_rejects_naive_or_reversed_bounds(start: datetime, end: datetime) -> None:
    """A naive datetime names no instant, and an interval cannot end before it starts."""
    with pytest.raises(ValueError, match=r"naive|before"):
        Interval(start, end)


def test_subtract_splits_and_trims() -> None:
    """Removing a hole from the middle leaves both sides; removing an overlap trims."""
    got = subtract(
        [Interval(at(0), at(100))], [Interval(at(20), at(30)), Interval(at(90), at(200))]
    )
    assert got == [Interval(at(0), at(20)), Interval(at(30), at(90))]


def test_clip_and_always_window() -> None:
    """Clipping keeps only the part inside the horizon; an empty horizon needs nothing."""
    assert clip([Interval(at(0), at(100))], at(50), at(70)) == [Interval(at(50), at(70))]
    assert always_window(at(5), at(5)) == []
    assert always_window(at(5), at(6)) == [Interval(at(5), at(6))]


@settings(max_examples=100, deadline=None)
@given(interval_lists)
def test_normalize_matches_model(a: list[Interval]) -> None:
    """normalize covers exactly the same minutes, sorted and disjoint."""
    got = normalize(a)
    assert is_normal(got)
    assert minutes(got) == minutes(a)


@settings(max_examples=100, deadline=None)
@given(interval_lists, interval_lists)
def test_union_is_idempotent_and_commutative(a: list[Interval], b: list[Interval]) -> None:
    """a ∪ a = normalize(a) and a ∪ b = b ∪ a."""
    assert union(a, a) == normalize(a)
    assert union(a, b) == union(b, a)
    assert minutes(union(a, b)) == minutes(a) | minutes(b)


@settings(max_examples=100, deadline=None)
@given(interval_lists, interval_lists)
def test_subtract_and_intersect_partition_a(a: list[Interval], b: list[Interval]) -> None:
    """(a − b) ∪ (a ∩ b) = a, a − b misses b, and the totals add up."""
    diff, common = subtract(a, b), intersect(a, b)
    assert is_normal(diff)
    assert is_normal(common)
    assert union(diff, common) == normalize(a)
    assert intersect(diff, b) == []
    assert minutes(diff) == minutes(a) - minutes(b)
    assert minutes(common) == minutes(a) & minutes(b)
    assert total(diff) + total(common) == total(a)
    assert total(a) == timedelta(minutes=len(minutes(a)))


@settings(max_examples=100, deadline=None)
@given(interval_lists, st.integers(0, 700), st.integers(0, 200))
def test_clip_stays_inside_the_horizon(a: list[Interval], start: int, length: int) -> None:
    """Clipped intervals lie inside [since, until) and keep everything that was there."""
    since, until = at(start, NY), at(start + length, BERLIN)
    got = clip(a, since, until)
    assert all(since <= iv.start and iv.end <= until for iv in got)
    assert minutes(got) == minutes(a) & set(range(start, start + length))


# ------------------------------------------------------------------ business hours


@pytest.mark.parametrize(
    ("tz", "change"),
    [
        (NY, datetime(2026, 3, 8)),
        (NY, datetime(2026, 11, 1)),
        (BERLIN, datetime(2026, 3, 29)),
        (BERLIN, datetime(2026, 10, 25)),
    ],
)
def test_business_day_is_eight_hours_on_both_sides_of_a_dst_change(
    tz: tzinfo, change: datetime
) -> None:
    """09:00-17:00 stays 09:00-17:00 local (8 h) in the weeks before and after a change."""
    since = (change - timedelta(days=7)).replace(tzinfo=tz)
    until = (change + timedelta(days=8)).replace(tzinfo=tz)
    windows = business_windows(WEEKDAYS, "09:00", "17:00", tz, since, until)
    assert len(windows) == 10
    for window in windows:
        local_start, local_end = window.start.astimezone(tz), window.end.astimezone(tz)
        assert (local_start.time(), local_end.time()) == (time(9), time(17))
        assert local_start.strftime("%a").lower() in WEEKDAYS
        assert window.duration == timedelta(hours=8)
    offsets = {w.start.astimezone(tz).utcoffset() for w in windows}
    assert len(offsets) == 2  # the change really lies inside the horizon


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([NY, BERLIN]),
    st.integers(0, 364 * 24),
    st.integers(0, 21 * 24),
    st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1),
)
def test_business_windows_properties(
    tz: tzinfo, start_h: int, length_h: int, days: set[str]
) -> None:
    """Windows are disjoint, inside the horizon, on the listed days, 8 h unless clipped."""
    since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=start_h, minutes=17)
    until = since + timedelta(hours=length_h)
    windows = business_windows(sorted(days), "09:00", "17:00", tz, since, until)
    assert is_normal(windows)
    for window in windows:
        assert since <= window.start
        assert window.end <= until
        assert window.start.astimezone(tz).strftime("%a").lower() in days
        if window.start != since and window.end != until:
            assert window.duration == timedelta(hours=8)


def test_business_windows_accepts_the_org_file_model() -> None:
    """business_windows(bh, tz, since, until) equals the spelled-out call."""
    bh = BusinessHours(days=["mon", "wed"], start="08:30", end="18:00")
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    assert business_windows(bh, "Europe/Berlin", since, until) == business_windows(
        ["mon", "wed"], "08:30", "18:00", BERLIN, since, until
    )


def test_business_windows_nonexistent_and_ambiguous_local_times() -> None:
    """A skipped local time moves forward by the gap; a repeated one means its first occurrence."""
    spring = business_windows(
        ["sun"],
        "00:00",
        "02:30",
        NY,
        datetime(2026, 3, 8, tzinfo=UTC),
        datetime(2026, 3, 9, 12, tzinfo=UTC),
    )
    assert spring == [
        Interval(datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    ]
    autumn = business_windows(
        ["sun"],
        "01:30",
        "03:00",
        NY,
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 2, 12, tzinfo=UTC),
    )
    assert autumn == [
        Interval(datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 8, tzinfo=UTC))
    ]
    assert local_to_utc(datetime(2026, 3, 8, 2, 30), NY) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_business_windows_crossing_midnight() -> None:
    """end <= start means the window ends the next day (a night shift)."""
    got = business_windows(
        ["fri"],
        "22:00",
        "06:00",
        UTC,
        datetime(2026, 5, 1, tzinfo=UTC),
        datetime(2026, 5, 3, tzinfo=UTC),
    )
    assert got == [
        Interval(datetime(2026, 5, 1, 22, tzinfo=UTC), datetime(2026, 5, 2, 6, tzinfo=UTC))
    ]


def test_business_windows_rejects_unknown_day_names() -> None:
    """A misspelt day is a clear error, not a silent gap in the requirement."""
    with pytest.raises(ValueError, match="unknown day"):
        business_windows(["mon", "fryday"], "09:00", "17:00", UTC, at(0), at(10_000))
