"""The coverage audit's rules over hand-built org, snapshot and rendered schedules (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdorgsync.core.coverage import audit, engagements_from_policies
from pdorgsync.core.coverage_objects import EngagementNeed, people_who_matter, schedules_to_render
from pdorgsync.core.schedules import Shift
from pdorgsync.models.audit import AuditReport, Finding
from pdorgsync.models.org import Org
from pdorgsync.models.policy import PolicyFile
from pdorgsync.models.snapshot import Snapshot, User
from tests.support.coverage import NOW, daily_shifts, make_org, make_snapshot, ref, user


def run(
    org: Org | None = None,
    snapshot: Snapshot | None = None,
    shifts: Sequence[Shift] | None = None,
    **kwargs: Any,
) -> AuditReport:
    rendered = {"PS00001": list(shifts if shifts is not None else daily_shifts())}
    return audit(org or make_org(), snapshot or make_snapshot(), rendered, now=NOW, **kwargs)


def rules(report: AuditReport, rule: str) -> list[Finding]:
    return [f for f in report.findings if f.rule == rule]


def test_a_complete_department_has_no_findings_and_full_coverage() -> None:
    """Schedule, two-level EP, routed service, reachable people: a clean audit."""
    report = run()
    assert report.findings == []
    (dept,) = report.departments
    assert dept.coverage_ratio == 1.0
    assert dept.gaps == []
    assert report.since == NOW
    assert report.until == NOW + timedelta(days=28)


# ---------------------------------------------------------------- COV001


def test_cov001_names_each_missing_piece_as_critical() -> None:
    """A missing schedule and service are named, with the names pdorgsync expects."""
    report = run(snapshot=make_snapshot(drop=["schedule", "service"]))
    (finding,) = rules(report, "COV001")
    assert finding.severity == "critical"
    assert finding.details["missing"] == ["schedule", "service"]
    assert "'Finance On-Call'" in finding.message
    assert "nobody is ever on call" in finding.message
    dept = report.departments[0]
    assert dept.coverage_ratio == 0.0
    assert [(g.start, g.end) for g in dept.gaps] == [(NOW, NOW + timedelta(days=28))]


def test_cov001_missing_schedule_but_first_level_pages_a_person() -> None:
    """No rotation, but level 1 pages Fiona directly: reported, yet counted as covered."""
    snap = make_snapshot(
        drop=["schedule"], rules=[[ref("user", "PU00001")], [ref("user", "PU00002")]]
    )
    report = run(snapshot=snap)
    (finding,) = rules(report, "COV001")
    assert "pages people directly" in finding.message
    assert report.departments[0].coverage_ratio == 1.0
    assert rules(report, "COV002") == []


def test_cov001_department_absent_from_pagerduty_is_a_finding_not_a_crash() -> None:
    """Nothing in PagerDuty for a department: one clear finding telling to apply."""
    report = run(snapshot=make_snapshot(drop=["team", "schedule", "escalation_policy", "service"]))
    (finding,) = rules(report, "COV001")
    assert finding.details["absent_from_pagerduty"] is True
    assert "does not exist in PagerDuty" in finding.message
    assert report.fails_on("critical")


def test_cov001_coverage_none_ignores_schedule_and_warns_for_the_rest() -> None:
    """coverage: none — no schedule is fine, a missing EP/service is only a warning."""
    org = make_org(coverage="none")
    report = run(org=org, snapshot=make_snapshot(drop=["schedule", "escalation_policy"]))
    (finding,) = rules(report, "COV001")
    assert finding.severity == "warning"
    assert finding.details["missing"] == ["escalation_policy"]
    assert report.departments[0].coverage_ratio is None
    assert not report.fails_on("critical")


def test_cov001_objects_matched_by_marker_even_when_renamed() -> None:
    """An owned object renamed in the UI still counts (marker wins over name)."""
    snap = make_snapshot()
    renamed = snap.model_copy(
        update={"services": [snap.services[0].model_copy(update={"name": "Money stuff"})]}
    )
    assert rules(run(snapshot=renamed), "COV001") == []


# ---------------------------------------------------------------- COV002


def test_cov002_weekly_gap_is_described_in_local_time_with_count() -> None:
    """Nobody on Fridays: one finding naming the weekly window and how often."""
    report = run(shifts=daily_shifts(skip=[4]))
    (finding,) = rules(report, "COV002")
    assert finding.severity == "critical"
    assert finding.message == (
        "Finance has nobody on call Fri 08:00 – Sat 08:00 (24 h) 4 times in the next 28 days"
    )
    assert finding.details["occurrences"] == 4
    assert finding.details["gaps"][0]["start"] == "2026-03-06T08:00:00+00:00"
    dept = report.departments[0]
    assert dept.coverage_ratio == pytest.approx(24 / 28)
    assert dept.longest_gap is not None
    assert dept.longest_gap.hours == 24


def test_cov002_gap_outside_business_hours_is_not_a_finding() -> None:
    """A business-hours department does not need anyone at the weekend."""
    org = make_org(coverage="business_hours")
    report = run(org=org, shifts=daily_shifts(skip=[5, 6]))
    assert rules(report, "COV002") == []
    assert report.departments[0].coverage_ratio == 1.0


def test_cov002_empty_schedule_says_nobody_at_all() -> None:
    """A schedule with no shifts: one finding, not one per business day."""
    org = make_org(coverage="business_hours")
    report = run(org=org, shifts=[])
    (finding,) = rules(report, "COV002")
    assert "nobody on call at all during its business hours" in finding.message
    assert "(160 h uncovered)" in finding.message
    assert report.departments[0].coverage_ratio == 0.0


def test_gaps_follow_business_hours_across_a_dst_change() -> None:
    """New York 09:00-17:00 keeps its local hours across 8 March 2026; UTC-fixed shifts don't."""
    zone = ZoneInfo("America/New_York")
    org = make_org(coverage="business_hours", time_zone="America/New_York")
    # Shifts pinned to 14:00-22:00 UTC, which is 09:00-17:00 only while EST lasts.
    shifts = [
        Shift(datetime(2026, 3, d, 14, tzinfo=UTC), datetime(2026, 3, d, 22, tzinfo=UTC), "PU00001")
        for d in range(1, 31)
    ]
    report = audit(
        org,
        make_snapshot(),
        {"PS00001": shifts},
        now=datetime(2026, 3, 2, 12, tzinfo=UTC),
        horizon_days=14,
    )
    gaps = report.departments[0].gaps
    local = [(g.start.astimezone(zone), g.end.astimezone(zone)) for g in gaps]
    # Week of 2 March (EST): covered. From Monday 9 March (EDT): 09:00-10:00 uncovered daily.
    assert [s.date().isoformat() for s, _ in local] == [
        "2026-03-09",
        "2026-03-10",
        "2026-03-11",
        "2026-03-12",
        "2026-03-13",
    ]
    assert all((s.hour, e.hour) == (9, 10) for s, e in local)
    assert all(g.hours == 1 for g in gaps)
    (finding,) = rules(report, "COV002")
    assert finding.message == (
        "Finance has nobody on call 09:00 – 10:00 on Mon–Fri (1 h each) 5 times in the next 14 days"
    )
    assert next(g["local_start"] for g in finding.details["gaps"]) == "2026-03-09T09:00:00-04:00"
    dept = report.departments[0]
    assert dept.required_seconds == 10 * 8 * 3600  # ten business days of 8 h, both sides of DST
    assert dept.coverage_ratio == pytest.approx(75 / 80)
    # Shifts following the local wall clock instead leave no gap at all.
    local_shifts = [
        Shift(
            datetime(2026, 3, d, 9, tzinfo=zone), datetime(2026, 3, d, 17, tzinfo=zone), "PU00001"
        )
        for d in range(1, 31)
    ]
    clean = audit(
        org,
        make_snapshot(),
        {"PS00001": local_shifts},
        now=datetime(2026, 3, 2, 12, tzinfo=UTC),
        horizon_days=14,
    )
    assert clean.departments[0].gaps == []


def test_heatmap_cells_show_weekday_hours_in_local_time() -> None:
    """The Friday gap shows as empty Friday cells; other cells are fully covered."""
    dept = run(shifts=daily_shifts(skip=[4])).departments[0]
    assert dept.heatmap is not None
    assert dept.required is not None
    assert dept.heatmap[4][12] == 0.0  # Friday noon: nobody
    assert dept.heatmap[2][12] == 1.0  # Wednesday noon: covered
    assert dept.heatmap[5][7] == 0.0  # Saturday 07:00 is still the Friday shift's gap
    assert all(all(row) for row in dept.required)


# ---------------------------------------------------------------- COV003


def test_cov003_single_level_policy() -> None:
    """An EP with one level: nobody to escalate to."""
    report = run(snapshot=make_snapshot(rules=[[ref("schedule", "PS00001")]]))
    (finding,) = rules(report, "COV003")
    assert finding.severity == "warning"
    assert "single level" in finding.message


def test_cov003_every_level_reaches_the_same_person() -> None:
    """Two levels that both page only Fiona are no escalation path."""
    snap = make_snapshot(rules=[[ref("schedule", "PS00001")], [ref("user", "PU00001")]])
    report = run(snapshot=snap, shifts=daily_shifts(users=["PU00001"]))
    (finding,) = rules(report, "COV003")
    assert "reaches only Fiona Grant" in finding.message
    assert finding.details["people"] == ["PU00001"]


def test_cov003_two_levels_two_people_is_fine() -> None:
    """Two levels reaching two people: a real path."""
    snap = make_snapshot(rules=[[ref("schedule", "PS00001")], [ref("user", "PU00001")]])
    assert rules(run(snapshot=snap), "COV003") == []


# ---------------------------------------------------------------- COV004


def test_cov004_level_targets_empty_schedule_and_missing_user() -> None:
    """Both kinds of dead target are critical, one finding each, naming the level."""
    snap = make_snapshot(rules=[[ref("schedule", "PS00001")], [ref("user", "PGONE01")]])
    report = run(snapshot=snap, shifts=[])
    found = rules(report, "COV004")
    assert {f.details["problem"] for f in found} == {"empty_schedule", "missing_user"}
    assert all(f.severity == "critical" for f in found)
    assert any(f.message.startswith("Level 2 of Finance's escalation policy") for f in found)


def test_cov004_not_raised_for_populated_targets() -> None:
    """A schedule with people on call and an existing user are live targets."""
    assert rules(run(), "COV004") == []


# ---------------------------------------------------------------- COV005


@pytest.mark.parametrize(
    ("ep", "status", "problem"),
    [("PEP0009", "active", "not_routed"), ("PEP0001", "disabled", "disabled")],
)
def test_cov005_service_misrouted_or_disabled(ep: str, status: str, problem: str) -> None:
    """A service routed elsewhere or disabled pages nobody in the department."""
    report = run(snapshot=make_snapshot(service_ep=ep, service_status=status))
    (finding,) = rules(report, "COV005")
    assert finding.severity == "critical"
    assert finding.details["problem"] == problem


def test_cov005_misrouted_message_names_both_policies() -> None:
    """The message says where incidents go instead."""
    (finding,) = rules(run(snapshot=make_snapshot(service_ep="PEP0009")), "COV005")
    assert "'Platform Escalation'" in finding.message
    assert "'Finance Escalation'" in finding.message


def test_cov005_routed_active_service_is_fine() -> None:
    """Routed to the department EP and active: no finding."""
    assert rules(run(snapshot=make_snapshot(service_status="warning")), "COV005") == []


# ---------------------------------------------------------------- COV006


@pytest.mark.parametrize(
    ("org", "users", "problem"),
    [
        (make_org(point_of_contact=None), None, "missing"),
        (make_org(point_of_contact="nobody@acme.test"), None, "not_a_user"),
        (
            None,
            [
                user("PU00001", "Fiona Grant", "fiona@acme.test", reachable=False),
                user("PU00002", "George Adams", "george@acme.test"),
            ],
            "unreachable",
        ),
    ],
)
def test_cov006_point_of_contact_problems(
    org: Org | None, users: list[User] | None, problem: str
) -> None:
    """Missing, unknown or unreachable point of contact is a warning."""
    report = run(org=org, snapshot=make_snapshot(users=users))
    (finding,) = rules(report, "COV006")
    assert finding.severity == "warning"
    assert finding.details["problem"] == problem


def test_cov006_not_judged_when_contact_methods_were_not_fetched() -> None:
    """Unknown reachability is not reported as unreachable."""
    users = [
        User(id="PU00001", name="Fiona Grant", email="fiona@acme.test"),
        user("PU00002", "George Adams", "george@acme.test"),
    ]
    assert rules(run(snapshot=make_snapshot(users=users)), "COV006") == []


# ---------------------------------------------------------------- COV007


def test_cov007_on_call_user_without_high_urgency_rule() -> None:
    """George is on call but only has a low-urgency rule."""
    users = [
        user("PU00001", "Fiona Grant", "fiona@acme.test"),
        user("PU00002", "George Adams", "george@acme.test", high=False),
    ]
    report = run(snapshot=make_snapshot(users=users))
    (finding,) = rules(report, "COV007")
    assert finding.severity == "warning"
    assert finding.details["user_id"] == "PU00002"
    assert finding.message.startswith("George Adams is on call for Finance")


def test_cov007_user_not_on_call_in_horizon_is_ignored() -> None:
    """A low-urgency-only user who is never on call is not this audit's concern."""
    users = [
        user("PU00001", "Fiona Grant", "fiona@acme.test"),
        user("PU00002", "George Adams", "george@acme.test"),
        user("PU00003", "Ivan Petrov", "ivan@acme.test", high=False),
    ]
    assert rules(run(snapshot=make_snapshot(users=users)), "COV007") == []


# ---------------------------------------------------------------- COV008


def test_cov008_engaged_department_lacks_ep_and_team() -> None:
    """Responder needs an EP, subscriber needs a team: both missing → two findings."""
    snap = make_snapshot(drop=["escalation_policy", "team"])
    needs = [
        EngagementNeed("finance", "responder", "billing-impact"),
        EngagementNeed("finance", "subscriber", "billing-impact"),
        EngagementNeed("finance", "responder", "finance-major"),
    ]
    report = run(snapshot=snap, engagements=needs)
    found = rules(report, "COV008")
    assert {f.details["problem"] for f in found} == {"no_escalation_policy", "no_team"}
    responder = next(f for f in found if f.details["as"] == "responder")
    assert responder.details["policies"] == ["billing-impact", "finance-major"]
    assert all(f.severity == "critical" for f in found)


def test_cov008_engaged_department_with_ep_and_team_is_fine() -> None:
    """Everything the policies need exists: no finding."""
    needs = [EngagementNeed("finance", "responder"), EngagementNeed("finance", "subscriber")]
    assert rules(run(engagements=needs), "COV008") == []


def test_engagements_are_read_from_policy_files() -> None:
    """Each engage entry of each policy becomes one need with the policy name."""
    policies = PolicyFile.model_validate(
        {"policies": [{"name": "p1", "engage": [{"department": "finance", "as": "subscriber"}]}]}
    )
    assert engagements_from_policies(policies.policies) == [
        EngagementNeed("finance", "subscriber", "p1")
    ]


# ---------------------------------------------------------------- COV009 and plumbing


def test_v3_schedule_is_flagged_when_its_on_call_is_not_given() -> None:
    """A shift-based schedule PagerDuty gave no on-call for: a warning, no ratio, no crash."""
    snap = make_snapshot(schedule_type="schedule_v3")
    report = audit(make_org(), snap, {}, now=NOW)
    (finding,) = rules(report, "COV009")
    assert finding.severity == "warning"
    assert report.departments[0].coverage_ratio is None
    assert rules(report, "COV004") == []  # not "paging nobody"
    assert schedules_to_render(make_org(), snap) == [("PS00001", "Etc/UTC")]


def test_v3_schedule_with_computed_on_call_is_measured() -> None:
    """Where PagerDuty gives a v3 schedule's on-call, coverage is measured as for any other."""
    snap = make_snapshot(schedule_type="schedule_v3")
    report = run(snapshot=snap)
    assert rules(report, "COV009") == []
    assert report.departments[0].coverage_ratio == 1.0


def test_schedules_and_people_the_shell_must_fetch() -> None:
    """The shell renders the department schedule and fetches PoC plus on-call users."""
    org, snap = make_org(), make_snapshot()
    assert schedules_to_render(org, snap) == [("PS00001", "Etc/UTC")]
    assert people_who_matter(org, snap, {"PS00001": daily_shifts(users=["PU00001"])}) == [
        "PU00001",
        "PU00002",
    ]


def test_findings_are_worst_first_and_fail_on_thresholds() -> None:
    """Critical before warning; --fail-on decides the exit."""
    snap = make_snapshot(rules=[[ref("schedule", "PS00001")]], service_ep="PEP0009")
    report = run(snapshot=snap)
    assert [f.severity for f in report.findings] == ["critical", "warning"]
    assert report.fails_on("critical")
    assert report.fails_on("warning")
    assert not report.fails_on("never")
    only_warning = run(snapshot=make_snapshot(rules=[[ref("schedule", "PS00001")]]))
    assert not only_warning.fails_on("critical")
    assert only_warning.fails_on("warning")


# ---------------------------------------------------------------- properties

_ZONES = ["Etc/UTC", "America/New_York", "Europe/London", "Australia/Adelaide", "Asia/Kolkata"]


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(_ZONES),
    coverage=st.sampled_from(["always", "business_hours"]),
    start_offset=st.integers(min_value=0, max_value=60 * 24 * 120),
    days=st.integers(min_value=1, max_value=35),
    raw=st.lists(st.tuples(st.integers(0, 60 * 24 * 40), st.integers(0, 60 * 24 * 3)), max_size=25),
)
def test_gaps_and_ratio_are_consistent(
    zone: str,
    coverage: str,
    start_offset: int,
    days: int,
    raw: list[tuple[int, int]],
) -> None:
    """Gaps lie in the horizon, never overlap a shift, and gaps + covered = required."""
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=start_offset)
    shifts = [
        Shift(now + timedelta(minutes=a - 600), now + timedelta(minutes=a - 600 + n), "PU00001")
        for a, n in raw
        if n > 0
    ]
    org = make_org(coverage=coverage, time_zone=zone)
    report = audit(org, make_snapshot(), {"PS00001": shifts}, now=now, horizon_days=days)
    dept = report.departments[0]
    assert dept.coverage_ratio is not None
    assert 0.0 <= dept.coverage_ratio <= 1.0
    gap_seconds = sum(g.duration.total_seconds() for g in dept.gaps)
    assert gap_seconds + dept.covered_seconds == pytest.approx(dept.required_seconds)
    for gap in dept.gaps:
        assert report.since <= gap.start < gap.end <= report.until
        assert all(gap.end <= s.start or s.end <= gap.start for s in shifts)
    assert (rules(report, "COV002") != []) == bool(dept.gaps)
    assert dept.heatmap is not None
    assert all(v is None or 0.0 <= v <= 1.0 for row in dept.heatmap for v in row)
