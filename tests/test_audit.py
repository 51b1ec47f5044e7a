"""The audit shell against the sandbox: what it reads, what it finds, what it costs."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from pdorgsync.audit import parse_final_schedule, run_audit
from pdorgsync.core.coverage import Engagement
from pdorgsync.models.org import Org
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 02:00 in Chicago
MARK = "Managed by pdorgsync (org=acme, department={})"


def _user(name: str, email: str, urgencies: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "email": email,
        "contact_methods": [{"type": "email_contact_method", "address": email, "label": "Work"}],
        "notification_rules": [{"contact_method": "work", "urgency": u} for u in urgencies],
    }


def _weekdays(days: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "type": "weekly_restriction",
            "start_day_of_week": d,
            "start_time_of_day": "09:00:00",
            "duration_seconds": 8 * 3600,
        }
        for d in days
    ]


SMALL_SEED: dict[str, Any] = {
    "users": [
        _user("Fiona Grant", "fiona.grant@acme.test", ["high"]),
        _user("George Adams", "george.adams@acme.test", ["low"]),
        _user("Ivan Petrov", "ivan.petrov@acme.test", ["high"]),
    ],
    "teams": [{"name": "Finance", "description": "Finance\n\n" + MARK.format("finance")}],
    "schedules": [
        {
            "name": "Finance On-Call",
            "description": "Finance\n\n" + MARK.format("finance"),
            "time_zone": "America/Chicago",
            "layers": [
                {
                    "name": "Primary",
                    "start": "2026-01-05T09:00:00-06:00",
                    "rotation_turn_length_seconds": 604800,
                    "users": ["fiona.grant@acme.test", "george.adams@acme.test"],
                    "restrictions": _weekdays([1, 2, 3, 4]),  # Mon-Thu: Fridays are a gap
                }
            ],
        }
    ],
    "escalation_policies": [
        {
            "name": "Finance Escalation",
            "description": "Finance\n\n" + MARK.format("finance"),
            "team": "Finance",
            "rules": [
                {"delay_minutes": 30, "targets": ["schedule:Finance On-Call"]},
                {"targets": ["user:fiona.grant@acme.test"]},
            ],
        }
    ],
    "services": [
        {
            "name": "Finance Operations",
            "description": "Billing\n\n" + MARK.format("finance"),
            "escalation_policy": "Finance Escalation",
        }
    ],
}

SMALL_ORG = Org.model_validate(
    {
        "version": 1,
        "org": "acme",
        "departments": [
            {
                "key": "finance",
                "name": "Finance",
                "function": "finance",
                "point_of_contact": "fiona.grant@acme.test",
                "members": ["fiona.grant@acme.test", "george.adams@acme.test"],
                "coverage": "business_hours",
                "time_zone": "America/Chicago",
                "service": {"name": "Finance Operations"},
            }
        ],
    }
)


@pytest.fixture
def small() -> Iterator[tuple[Sandbox, PagerDutyClient]]:
    with Sandbox(copy.deepcopy(SMALL_SEED)) as box:
        url = box.base_url
        assert url is not None
        client = PagerDutyClient("sandbox", url, "fiona.grant@acme.test", sleep=lambda _s: None)
        yield box, client
        assert box.validation_errors == []


def test_audit_names_the_friday_gap_and_the_low_urgency_person(
    small: tuple[Sandbox, PagerDutyClient],
) -> None:
    """Layer restricted to Mon-Thu: every Friday 09:00-17:00 Chicago time is a gap."""
    _, client = small
    report = run_audit(client, SMALL_ORG, now=NOW)
    by_rule = {f.rule: f for f in report.findings}
    assert by_rule["COV002"].message == (
        "Finance has nobody on call Fri 09:00 – Fri 17:00 (8 h) 4 times in the next 28 days"
    )
    assert [g["local_start"] for g in by_rule["COV002"].details["gaps"]] == [
        "2026-03-06T09:00:00-06:00",
        "2026-03-13T09:00:00-05:00",  # after the US change to daylight time on 8 March
        "2026-03-20T09:00:00-05:00",
        "2026-03-27T09:00:00-05:00",
    ]
    assert by_rule["COV007"].details["email"] == "george.adams@acme.test"
    assert set(by_rule) == {"COV002", "COV007"}
    (dept,) = report.departments
    assert dept.coverage_ratio == pytest.approx(16 / 20)


def test_api_calls_are_counted_exactly_and_do_not_grow_with_the_horizon(
    small: tuple[Sandbox, PagerDutyClient],
) -> None:
    """5 list walks + 1 rendered schedule + 1 request per person on call: 8 for 28 days as
    for 90; 7 for one week, when only Fiona is on call."""
    box, client = small
    counts = []
    for days in (7, 28, 90, 28):
        before = len(box.requests)
        report = run_audit(client, SMALL_ORG, now=NOW, horizon_days=days)
        assert report.api_calls == len(box.requests) - before
        counts.append(report.api_calls)
    assert counts == [7, 8, 8, 8]
    routes = {path for _method, path, _status in box.requests[-8:]}
    assert any(p.startswith("/schedules/") for p in routes)


def test_department_absent_from_pagerduty_is_reported_not_crashed(
    small: tuple[Sandbox, PagerDutyClient],
) -> None:
    """A department that was never applied: COV001 saying so, full gap, no exception."""
    _, client = small
    org = SMALL_ORG.model_copy(
        update={
            "departments": [
                *SMALL_ORG.departments,
                SMALL_ORG.departments[0].model_copy(
                    update={"key": "hr", "name": "Human Resources", "service": None}
                ),
            ]
        }
    )
    report = run_audit(client, org, now=NOW, engagements=[Engagement("hr", "subscriber", "p")])
    hr = [f for f in report.findings if f.department == "hr"]
    assert {f.rule for f in hr} == {"COV001", "COV008"}
    assert next(f for f in hr if f.rule == "COV001").details["absent_from_pagerduty"] is True
    assert report.departments[1].coverage_ratio == 0.0


def test_overrides_count_as_coverage(small: tuple[Sandbox, PagerDutyClient]) -> None:
    """An override on Friday fills that Friday's gap (final_schedule includes overrides)."""
    box, client = small
    seed = copy.deepcopy(SMALL_SEED)
    seed["schedules"][0]["overrides"] = [
        {
            "start": "2026-03-06T09:00:00-06:00",
            "end": "2026-03-06T17:00:00-06:00",
            "user": "ivan.petrov@acme.test",
        }
    ]
    box.reset(seed)
    report = run_audit(client, SMALL_ORG, now=NOW)
    gaps = next(f for f in report.findings if f.rule == "COV002").details["gaps"]
    assert len(gaps) == 3
    assert gaps[0]["local_start"] == "2026-03-13T09:00:00-05:00"


def test_final_schedule_entries_without_user_are_not_shifts() -> None:
    """An entry with no user is nobody on call."""
    shifts = parse_final_schedule(
        {
            "final_schedule": {
                "rendered_schedule_entries": [
                    {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z", "user": None},
                    {
                        "start": "2026-03-03T00:00:00Z",
                        "end": "2026-03-04T00:00:00Z",
                        "user": {"id": "PU1", "type": "user_reference"},
                    },
                ]
            }
        }
    )
    assert [(s.user_id, s.start.day) for s in shifts] == [("PU1", 3)]
