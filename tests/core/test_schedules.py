"""Rotation rendering: who is on call when, as PagerDuty would render it."""

from __future__ import annotations

import itertools
import time as wallclock
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdorgsync.core.intervals import Interval, normalize, total
from pdorgsync.core.schedules import (
    LayerSpec,
    OverrideSpec,
    RestrictionSpec,
    Shift,
    coverage,
    covered,
    next_handoff,
    render_layer,
    render_schedule,
    rotation_position,
)
from pdorgsync.models import org as org_models
from pdorgsync.models import snapshot as snap

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
H = timedelta(hours=1)
D = timedelta(days=1)


def local(tz: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def layer(
    rvs: datetime,
    turn: timedelta,
    users: tuple[str, ...] = ("a", "b"),
    restrictions: tuple[RestrictionSpec, ...] = (),
    start: datetime | None = None,
    end: datetime | None = None,
) -> LayerSpec:
    return LayerSpec(
        start=rvs if start is None else start,
        end=end,
        rotation_virtual_start=rvs,
        turn_seconds=int(turn.total_seconds()),
        users=users,
        restrictions=restrictions,
    )


def table(shifts: list[Shift], tz: tzinfo) -> list[tuple[str, str, str]]:
    fmt = "%Y-%m-%d %H:%M"
    return [
        (s.start.astimezone(tz).strftime(fmt), s.end.astimezone(tz).strftime(fmt), s.user_id)
        for s in shifts
    ]


def test_weekly_handoff_stays_at_nine_local_across_berlin_dst_end() -> None:
    """A weekly Monday 09:00 rotation still hands off at 09:00 after 2026-10-25 (169 h week)."""
    spec = layer(local(BERLIN, 2026, 10, 12, 9), timedelta(weeks=1))
    got = render_layer(spec, BERLIN, local(BERLIN, 2026, 10, 12), local(BERLIN, 2026, 11, 9, 9))
    assert table(got, BERLIN) == [
        ("2026-10-12 09:00", "2026-10-19 09:00", "a"),
        ("2026-10-19 09:00", "2026-10-26 09:00", "b"),
        ("2026-10-26 09:00", "2026-11-02 09:00", "a"),
        ("2026-11-02 09:00", "2026-11-09 09:00", "b"),
    ]
    assert got[1].duration == timedelta(hours=169)


def test_daily_restriction_on_a_24x7_rotation() -> None:
    """A daily 09:00+8h restriction leaves the layer on call 09:00-17:00 each day only."""
    spec = layer(
        local(BERLIN, 2026, 3, 2, 0),
        D,
        restrictions=(RestrictionSpec("daily", time(9), 8 * H),),
    )
    got = render_layer(spec, BERLIN, local(BERLIN, 2026, 3, 27), local(BERLIN, 2026, 3, 31))
    assert table(got, BERLIN) == [
        ("2026-03-27 09:00", "2026-03-27 17:00", "b"),  # day 25 of the rotation
        ("2026-03-28 09:00", "2026-03-28 17:00", "a"),
        ("2026-03-29 09:00", "2026-03-29 17:00", "b"),  # spring-forward day: still 8 h
        ("2026-03-30 09:00", "2026-03-30 17:00", "a"),
    ]
    assert all(s.duration == 8 * H for s in got)


def test_weekly_restriction_crossing_sunday_into_monday() -> None:
    """A weekly Sunday 20:00 +16 h window runs into Monday noon, across the Monday hand-off."""
    spec = layer(
        datetime(2026, 1, 5, tzinfo=UTC),
        timedelta(weeks=1),
        restrictions=(RestrictionSpec("weekly", time(20), 16 * H, start_day_of_week=7),),
    )
    got = render_layer(
        spec, UTC, datetime(2026, 5, 4, tzinfo=UTC), datetime(2026, 5, 18, tzinfo=UTC)
    )
    assert table(got, UTC) == [
        ("2026-05-04 00:00", "2026-05-04 12:00", "b"),  # tail of the window from 05-03; k = 17
        ("2026-05-10 20:00", "2026-05-11 00:00", "b"),
        ("2026-05-11 00:00", "2026-05-11 12:00", "a"),
        ("2026-05-17 20:00", "2026-05-18 00:00", "a"),
    ]


def test_restriction_splits_turn_at_handoff() -> None:
    """A restriction window spanning a hand-off is shared by the two users of the turns."""
    spec = layer(
        datetime(2026, 6, 1, 12, tzinfo=UTC),
        D,
        restrictions=(RestrictionSpec("daily", time(10), 4 * H),),
    )
    got = render_layer(
        spec, UTC, datetime(2026, 6, 2, tzinfo=UTC), datetime(2026, 6, 3, tzinfo=UTC)
    )
    assert table(got, UTC) == [
        ("2026-06-02 10:00", "2026-06-02 12:00", "a"),
        ("2026-06-02 12:00", "2026-06-02 14:00", "b"),
    ]


def test_layer_that_ends_yields_nothing_after_its_end() -> None:
    """A layer with an end has nobody on call from then on; before its start, nobody either."""
    start, end = datetime(2026, 2, 2, tzinfo=UTC), datetime(2026, 2, 4, 6, tzinfo=UTC)
    spec = layer(datetime(2026, 1, 1, tzinfo=UTC), D, start=start, end=end)
    got = render_layer(
        spec, UTC, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 10, tzinfo=UTC)
    )
    assert got[0].start == start
    assert got[-1].end == end
    assert total(covered(got)) == end - start
    assert render_layer(spec, UTC, end, end + D) == []


def test_upper_layer_with_restrictions_lets_lower_show_through() -> None:
    """Outside the upper layer's windows the lower layer's user is on call."""
    lower = layer(datetime(2026, 4, 6, tzinfo=UTC), timedelta(weeks=1), users=("low",))
    upper = layer(
        datetime(2026, 4, 6, tzinfo=UTC),
        D,
        users=("up",),
        restrictions=(RestrictionSpec("daily", time(9), 8 * H),),
    )
    got = render_schedule(
        [lower, upper],
        [],
        UTC,
        datetime(2026, 4, 7, tzinfo=UTC),
        datetime(2026, 4, 8, 12, tzinfo=UTC),
    )
    assert table(got, UTC) == [
        ("2026-04-07 00:00", "2026-04-07 09:00", "low"),
        ("2026-04-07 09:00", "2026-04-07 17:00", "up"),
        ("2026-04-07 17:00", "2026-04-08 09:00", "low"),
        ("2026-04-08 09:00", "2026-04-08 12:00", "up"),
    ]


def test_override_in_the_middle_of_a_shift_splits_it() -> None:
    """An override replaces everyone for its span; the shift resumes afterwards."""
    spec = layer(datetime(2026, 4, 6, tzinfo=UTC), timedelta(weeks=1), users=("a",))
    override = OverrideSpec(
        datetime(2026, 4, 7, 10, tzinfo=UTC), datetime(2026, 4, 7, 14, tzinfo=UTC), "x"
    )
    got = render_schedule(
        [spec], [override], UTC, datetime(2026, 4, 7, tzinfo=UTC), datetime(2026, 4, 8, tzinfo=UTC)
    )
    assert table(got, UTC) == [
        ("2026-04-07 00:00", "2026-04-07 10:00", "a"),
        ("2026-04-07 10:00", "2026-04-07 14:00", "x"),
        ("2026-04-07 14:00", "2026-04-08 00:00", "a"),
    ]


def test_override_by_the_on_call_user_merges_into_one_shift() -> None:
    """Touching shifts of the same user come back as one shift."""
    spec = layer(datetime(2026, 4, 6, tzinfo=UTC), D, users=("a", "b"))
    override = OverrideSpec(
        datetime(2026, 4, 7, tzinfo=UTC), datetime(2026, 4, 7, 6, tzinfo=UTC), "a"
    )
    got = render_schedule(
        [spec],
        [override],
        UTC,
        datetime(2026, 4, 6, tzinfo=UTC),
        datetime(2026, 4, 7, 12, tzinfo=UTC),
    )
    assert table(got, UTC) == [
        ("2026-04-06 00:00", "2026-04-07 06:00", "a"),
        ("2026-04-07 06:00", "2026-04-07 12:00", "b"),
    ]


@pytest.mark.parametrize(
    ("rvs", "expected_first"),
    [
        (datetime(2016, 1, 4, 9, tzinfo=BERLIN), "b"),  # ten years before: k ≈ 3,700
        (datetime(2026, 1, 5, 9, tzinfo=BERLIN), "b"),  # k = 15
        (datetime(2026, 1, 30, 9, tzinfo=BERLIN), "a"),  # anchor after since: k = -10
    ],
)
def test_rotation_anchor_far_before_or_after_since(rvs: datetime, expected_first: str) -> None:
    """The turn index is computed arithmetically whether the anchor lies before or after since."""
    spec = layer(rvs, D, users=("a", "b"), start=datetime(2000, 1, 1, tzinfo=UTC))
    since = local(BERLIN, 2026, 1, 20, 12)
    got = render_layer(spec, BERLIN, since, since + 3 * D)
    assert got[0].user_id == expected_first
    assert [s.start.astimezone(BERLIN).time() for s in got[1:]] == [time(9)] * 3


@pytest.mark.parametrize("hours", [12, 36])
def test_n_hour_rotation_keeps_local_handoff_times_across_dst(hours: int) -> None:
    """12 h and 36 h rotations hand off at the same local times before and after a change."""
    spec = layer(local(NY, 2026, 10, 20, 8), hours * H, users=("a", "b", "c"))
    got = render_layer(spec, NY, local(NY, 2026, 10, 20, 8), local(NY, 2026, 11, 10, 8))
    starts = {s.start.astimezone(NY).time() for s in got}
    assert starts == {time(8), time(20)}
    assert [s.user_id for s in got[:4]] == ["a", "b", "c", "a"]
    durations = {s.duration for s in got}
    assert durations == {hours * H, hours * H + H}  # the turn holding the fall-back is 1 h longer


def test_hourly_rotation_over_spring_forward_skips_the_missing_hour() -> None:
    """Hand-offs stay on the hour; the 02:00 turn does not exist and is skipped."""
    spec = layer(local(NY, 2026, 3, 1, 0), H, users=("a", "b", "c"))
    got = render_layer(spec, NY, local(NY, 2026, 3, 8, 0), local(NY, 2026, 3, 8, 5))
    assert table(got, NY) == [
        ("2026-03-08 00:00", "2026-03-08 01:00", "a"),
        ("2026-03-08 01:00", "2026-03-08 03:00", "b"),
        ("2026-03-08 03:00", "2026-03-08 04:00", "a"),
        ("2026-03-08 04:00", "2026-03-08 05:00", "b"),
    ]
    assert total(covered(got)) == 4 * H


def test_rendering_28_days_of_an_hourly_rotation_is_fast() -> None:
    """672 one-hour turns with restrictions render in well under a second."""
    spec = layer(
        datetime(2020, 1, 1, tzinfo=UTC),
        H,
        users=tuple(f"u{i}" for i in range(7)),
        restrictions=(RestrictionSpec("daily", time(7, 30), 10 * H),),
    )
    since = datetime(2026, 3, 1, tzinfo=BERLIN)
    began = wallclock.perf_counter()
    got = render_schedule([spec], [], BERLIN, since, since + 28 * D)
    assert wallclock.perf_counter() - began < 1.0
    assert total(covered(got)) == 28 * 10 * H


def test_coverage_percentage() -> None:
    """Coverage is the share of the window with someone on call, in percent."""
    since = datetime(2026, 1, 1, tzinfo=UTC)
    shifts = [Shift(since, since + 6 * H, "a"), Shift(since + 12 * H, since + 30 * H, "b")]
    assert coverage(shifts, since, since + D) == pytest.approx(75.0)
    assert coverage([], since, since + D) == 0.0


def test_next_handoff_and_rotation_position() -> None:
    """The planner learns who is on call now and when the next hand-off is, DST included."""
    spec = layer(local(BERLIN, 2026, 10, 12, 9), timedelta(weeks=1), end=local(BERLIN, 2026, 11, 2))
    now = local(BERLIN, 2026, 10, 22, 15)
    assert next_handoff(spec, BERLIN, now) == local(BERLIN, 2026, 10, 26, 9)
    assert next_handoff(spec, BERLIN, local(BERLIN, 2026, 10, 26, 9)) is None  # ends 11-02 first
    assert next_handoff(spec, BERLIN, local(BERLIN, 2026, 10, 1)) == spec.start
    position = rotation_position(spec, BERLIN, now)
    assert position is not None
    assert (position.user_id, position.turn_index, position.on_call) == ("b", 1, True)
    assert position.turn_end == local(BERLIN, 2026, 10, 26, 9)
    assert rotation_position(spec, BERLIN, local(BERLIN, 2026, 11, 4)) is None


def test_layer_spec_from_snapshot_and_org() -> None:
    """PagerDuty layers and org.yaml layers produce the same rotation."""
    observed = snap.ScheduleLayer(
        id="PL1",
        name="Primary",
        start=datetime(2026, 1, 5, 8, tzinfo=UTC),
        rotation_virtual_start=datetime(2026, 1, 5, 8, tzinfo=UTC),
        rotation_turn_length_seconds=604800,
        user_ids=["PA", "PB"],
        restrictions=[
            snap.Restriction(
                type="weekly_restriction",
                start_time_of_day="09:00:00",
                duration_seconds=8 * 3600,
                start_day_of_week=1,
            )
        ],
    )
    filed = org_models.Layer(
        name="Primary",
        rotation="weekly",
        start=datetime(2026, 1, 5, 9),
        users=["a@acme.test", "b@acme.test"],
        restrictions=[org_models.Restriction(day="mon", start="09:00", hours=8)],
    )
    from_pd = LayerSpec.from_snapshot(observed)
    from_file = LayerSpec.from_org(filed, "Europe/Berlin", ["PA", "PB"])
    assert from_pd == from_file
    assert from_pd.restrictions[0] == RestrictionSpec("weekly", time(9), 8 * H, 1)


# --------------------------------------------------------------------- properties

ZONES = [UTC, NY, BERLIN]


@st.composite
def layers(draw: st.DrawFn) -> LayerSpec:
    rvs = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(-2000, 4000)))
    turn = draw(st.sampled_from([1, 5, 8, 12, 24, 36, 168])) * H
    start = rvs + timedelta(hours=draw(st.integers(-100, 500)))
    end = draw(st.none() | st.integers(1, 2000).map(lambda h: start + timedelta(hours=h)))
    restrictions = draw(
        st.lists(
            st.builds(
                RestrictionSpec,
                kind=st.just("daily"),
                start_time=st.builds(time, st.integers(0, 23), st.sampled_from([0, 30])),
                duration=st.integers(1, 24).map(lambda h: h * H),
            )
            | st.builds(
                RestrictionSpec,
                kind=st.just("weekly"),
                start_time=st.builds(time, st.integers(0, 23)),
                duration=st.integers(1, 168).map(lambda h: h * H),
                start_day_of_week=st.integers(1, 7),
            ),
            max_size=2,
        )
    )
    users = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4))
    return LayerSpec(start, end, rvs, int(turn.total_seconds()), tuple(users), tuple(restrictions))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(layers(), min_size=1, max_size=3),
    st.lists(
        st.tuples(st.integers(0, 900), st.integers(0, 100), st.sampled_from("xyz")), max_size=3
    ),
    st.sampled_from(ZONES),
    st.integers(0, 8000),
    st.integers(0, 800),
)
def test_render_schedule_shifts_are_disjoint_and_inside_the_window(
    specs: list[LayerSpec],
    raw_overrides: list[tuple[int, int, str]],
    tz: tzinfo,
    since_h: int,
    length_h: int,
) -> None:
    """Final shifts never overlap, lie in [since, until), merge same-user neighbours,
    and cover exactly the union of what the layers and overrides cover."""
    since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=since_h, minutes=13)
    until = since + timedelta(hours=length_h)
    overrides = [
        OverrideSpec(since + timedelta(hours=s - 50), since + timedelta(hours=s - 50 + n), u)
        for s, n, u in raw_overrides
    ]
    got = render_schedule(specs, overrides, tz, since, until)
    for shift in got:
        assert since <= shift.start < shift.end <= until
    for first, second in itertools.pairwise(got):
        assert first.end <= second.start
        assert first.end < second.start or first.user_id != second.user_id
    expected = normalize(
        [s.interval for spec in specs for s in render_layer(spec, tz, since, until)]
        + [
            Interval(max(o.start, since), min(o.end, until))
            for o in overrides
            if o.start < until and o.end > since
        ]
    )
    assert covered(got) == expected
    assert coverage(got, since, until) == pytest.approx(
        100.0 * (total(expected) / (until - since)) if until > since else 100.0
    )


@settings(max_examples=80, deadline=None)
@given(layers(), st.sampled_from(ZONES), st.integers(-3000, 8000), st.integers(1, 400))
def test_render_layer_matches_rotation_position(
    spec: LayerSpec, tz: tzinfo, since_h: int, length_h: int
) -> None:
    """Every rendered instant's user is the user rotation_position reports, on call."""
    since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=since_h, minutes=7)
    until = since + timedelta(hours=length_h)
    got = render_layer(spec, tz, since, until)
    for shift in got[:20]:
        for moment in (shift.start, shift.end - timedelta(seconds=1)):
            position = rotation_position(spec, tz, moment)
            assert position is not None
            assert position.on_call
            assert position.user_id == shift.user_id
        assert spec.start <= shift.start
        assert spec.end is None or shift.end <= spec.end


def test_hourly_rotation_over_fall_back_has_one_two_hour_turn() -> None:
    """Berlin 2026-10-25: the 02:00 turn starts at the first 02:00 and lasts until 03:00 CET."""
    spec = layer(local(BERLIN, 2026, 10, 1, 0), H, users=("a", "b", "c"))
    got = render_layer(spec, BERLIN, local(BERLIN, 2026, 10, 25, 1), local(BERLIN, 2026, 10, 25, 4))
    assert [(s.start.astimezone(BERLIN).strftime("%H:%M%z"), s.duration) for s in got] == [
        ("01:00+0200", H),
        ("02:00+0200", 2 * H),
        ("03:00+0100", H),
    ]


def _oracle(spec: LayerSpec, tz: tzinfo, moment: datetime) -> str | None:
    """Who the layer has on call at ``moment``, by brute force (turn by turn, day by day)."""
    if moment < spec.start or (spec.end is not None and moment >= spec.end):
        return None
    anchor = spec.rotation_virtual_start.astimezone(tz).replace(tzinfo=None)
    turn = timedelta(seconds=spec.turn_seconds)

    def handoff(k: int) -> datetime:
        if k == 0:
            return spec.rotation_virtual_start
        return (anchor + k * turn).replace(tzinfo=tz).astimezone(UTC)

    k = (moment - spec.rotation_virtual_start) // turn  # a first guess; the walk decides
    while handoff(k) > moment:
        k -= 1
    while handoff(k + 1) <= moment:
        k += 1
    if spec.restrictions:
        today = moment.astimezone(tz).date()
        inside = False
        for r in spec.restrictions:
            for back in range(0, 9):
                day = today - timedelta(days=back)
                if r.kind == "weekly" and day.isoweekday() != r.start_day_of_week:
                    continue
                begin = datetime.combine(day, r.start_time)
                lo = begin.replace(tzinfo=tz).astimezone(UTC)
                hi = (begin + r.duration).replace(tzinfo=tz).astimezone(UTC)
                inside = inside or lo <= moment < hi
        if not inside:
            return None
    return spec.users[k % len(spec.users)]


@settings(max_examples=80, deadline=None)
@given(
    layers(),
    st.sampled_from(ZONES),
    st.integers(-1000, 5000),
    st.integers(1, 400),
    st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=25),
)
def test_render_layer_matches_brute_force(
    spec: LayerSpec, tz: tzinfo, since_h: int, length_h: int, samples: list[float]
) -> None:
    """At any instant, the rendered layer names exactly the user a turn-by-turn walk finds."""
    since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=since_h, minutes=7)
    until = since + timedelta(hours=length_h)
    got = render_layer(spec, tz, since, until)
    for fraction in samples:
        moment = since + (until - since) * fraction
        moment -= timedelta(microseconds=moment.microsecond)
        if not since <= moment < until:
            continue
        rendered = next((s.user_id for s in got if s.start <= moment < s.end), None)
        assert rendered == _oracle(spec, tz, moment)
        for shift in got[:30]:  # boundaries too: the instant a shift starts is on, its end is off
            if shift.start >= since:
                assert _oracle(spec, tz, shift.start) == shift.user_id


@settings(max_examples=80, deadline=None)
@given(layers(), st.sampled_from(ZONES), st.integers(-3000, 8000))
def test_next_handoff_is_the_next_turn_boundary(spec: LayerSpec, tz: tzinfo, after_h: int) -> None:
    """next_handoff lies after ``after``, starts a turn, and no turn starts in between."""
    after = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=after_h, minutes=11)
    got = next_handoff(spec, tz, after)
    if got is None:
        assert spec.end is not None
        return
    assert got > after
    if after < spec.start:
        assert got == spec.start
        return
    position = rotation_position(spec, tz, got)
    assert position is not None
    assert position.turn_start == got
    before = rotation_position(spec, tz, got - timedelta(seconds=1))
    assert before is not None
    assert before.turn_start <= after


@pytest.mark.parametrize("tz", [NY, BERLIN])
@pytest.mark.parametrize("turn", [D, 7 * D, 2 * D])
def test_day_multiple_rotations_always_hand_off_at_the_same_local_time(
    tz: tzinfo, turn: timedelta
) -> None:
    """Across a whole year (both DST changes), every hand-off is at 09:30 local."""
    spec = layer(local(tz, 2025, 12, 29, 9, 30), turn, users=("a", "b", "c"))
    got = render_layer(spec, tz, local(tz, 2026, 1, 1), local(tz, 2027, 1, 1))
    assert {s.start.astimezone(tz).time() for s in got[1:]} == {time(9, 30)}
    assert total(covered(got)) == local(tz, 2027, 1, 1) - local(tz, 2026, 1, 1)


def test_sub_hour_turns_step_in_elapsed_time() -> None:
    """A 90-minute rotation (API-only) keeps exact 90-minute turns through the spring change."""
    spec = layer(local(NY, 2026, 3, 7, 0), timedelta(minutes=90), users=("a", "b"))
    got = render_layer(spec, NY, local(NY, 2026, 3, 8, 0), local(NY, 2026, 3, 8, 6))
    assert {s.duration for s in got[:-1]} == {timedelta(minutes=90)}  # the last is clipped
    assert [s.start.astimezone(NY).strftime("%H:%M") for s in got[:3]] == [
        "00:00",
        "01:30",
        "04:00",
    ]
    assert total(covered(got)) == 5 * H  # 00:00-06:00 local is 5 real hours that day
