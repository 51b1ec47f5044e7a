"""Property: for any org file, plan + apply on the sandbox, then a second plan is empty.

This is what "normalise what PagerDuty normalises" has to guarantee: zones and
offsets of rotation_virtual_start, restrictions, description whitespace, default
fields, layer order. Runs few examples: each one is a full apply against the sandbox.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdorgsync.core.planning import plan
from pdorgsync.models.org import Org
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox

PEOPLE = [
    "alex.rivera@acme.test",
    "blake.chen@acme.test",
    "casey.ng@acme.test",
    "sam.patel@acme.test",
    "tia.morgan@acme.test",
    "maya.lopez@acme.test",
]
ZONES = ["Etc/UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

people = st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3, unique=True)
starts = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1)).map(
    lambda d: d.replace(second=0, microsecond=0).isoformat()
)
restriction = st.one_of(
    st.fixed_dictionaries(
        {
            "start": st.sampled_from(["00:00", "08:30", "09:00", "22:00"]),
            "hours": st.integers(1, 95).map(lambda q: q / 4),  # 24 h: PagerDuty refuses (3001)
        }
    ),
    st.fixed_dictionaries(
        {
            "day": st.sampled_from(DAYS),
            "start": st.sampled_from(["00:00", "09:00", "18:45"]),
            "hours": st.integers(1, 167),
        }
    ),
)


@st.composite
def departments(draw: st.DrawFn, key: str) -> dict[str, Any]:
    dept: dict[str, Any] = {
        "key": key,
        "name": draw(st.sampled_from(["Ops", "Support Desk", "R&D", "Sales  Team"])) + f" {key}",
        "members": draw(people),
        "time_zone": draw(st.sampled_from(ZONES)),
    }
    if draw(st.booleans()):
        dept["point_of_contact"] = draw(st.sampled_from(PEOPLE))
    has_schedule = draw(st.booleans())
    if has_schedule:
        names = draw(
            st.lists(
                st.sampled_from(["Primary", "Secondary", "Weekend"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        dept["schedule"] = {
            "layers": [
                {
                    "name": name,
                    "rotation": draw(st.sampled_from(["daily", "weekly", "12h", "168h", "8h"])),
                    "start": draw(starts),
                    "users": draw(people),
                    "restrictions": draw(st.lists(restriction, max_size=2)),
                }
                for name in names
            ]
        }
    targets = st.sampled_from(
        (["schedule"] if has_schedule else []) + [f"user:{p}" for p in PEOPLE]
    )
    if draw(st.booleans()):
        dept["escalation_policy"] = {
            "loops": draw(st.integers(0, 3)),
            "levels": [
                {
                    "delay_minutes": draw(st.integers(0, 60)),
                    "targets": draw(st.lists(targets, min_size=1, max_size=2, unique=True)),
                }
                for _ in range(draw(st.integers(1, 3)))
            ],
        }
        if draw(st.booleans()):
            dept["service"] = {
                "description": draw(st.sampled_from(["", "  Intake  ", "Line one\nline two\n"]))
                or None,
                "urgency": draw(st.sampled_from(["high", "low", "severity_based"])),
            }
    return dept


@st.composite
def orgs(draw: st.DrawFn) -> Org:
    keys = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2, unique=True))
    return Org.model_validate(
        {"version": 1, "org": "acme", "departments": [draw(departments(k)) for k in keys]}
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(org=orgs())
def test_second_plan_after_apply_is_empty(
    org: Org, empty_sandbox: Sandbox, empty_pd: PagerDutyClient, account_seed: dict[str, Any]
) -> None:
    """Any valid org file: apply succeeds and the very next plan has no changes."""
    empty_sandbox.reset({"users": json.loads(json.dumps(account_seed["users"]))})
    now = datetime.now(UTC).replace(microsecond=0)
    first = plan(org, observe(empty_pd, org), now=now, impact=False)
    report = apply(empty_pd, first)
    assert report.ok, [r.error for r in report.results if r.error]
    second = plan(org, observe(empty_pd, org), now=now, impact=False)
    assert second.to_report()["changes"] == []
    assert empty_sandbox.validation_errors == []
