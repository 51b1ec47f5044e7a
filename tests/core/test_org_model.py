"""The org model: field rules and the cross-file rules of check_org / org_warnings."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pdorgsync.models.org import Org
from pdorgsync.models.org_checks import check_org, org_warnings


def dept(key: str, **extra: Any) -> dict[str, Any]:
    """A complete department (schedule, escalation policy, service, contact, members)."""
    email = f"{key}@acme.test"
    base: dict[str, Any] = {
        "key": key,
        "name": key.title(),
        "point_of_contact": email,
        "members": [email],
        "schedule": {
            "layers": [
                {
                    "name": "Primary",
                    "rotation": "weekly",
                    "start": "2026-01-05T09:00:00",
                    "users": [email],
                }
            ]
        },
        "escalation_policy": {"levels": [{"targets": ["schedule"]}]},
        "service": {},
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def org(*departments: dict[str, Any], **extra: Any) -> Org:
    return Org.model_validate(
        {"version": 1, "org": "acme", "departments": list(departments), **extra}
    )


def test_complete_departments_have_no_problems_or_warnings() -> None:
    """Distinct complete departments pass every cross-file rule without warnings."""
    value = org(dept("support"), dept("sales"))
    assert check_org(value) == []
    assert org_warnings(value) == []


def test_duplicate_department_key() -> None:
    """A department key used twice is an error on the second one."""
    problems = check_org(org(dept("ops"), dept("ops", name="Other")))
    assert (
        ("departments", 1, "key"),
        "department key 'ops' is already used by departments[0]",
    ) in problems


@pytest.mark.parametrize(
    ("second", "path", "kind"),
    [
        ({"team": {"name": "Ops"}}, ("departments", 1, "team", "name"), "team"),
        ({"schedule": None, "escalation_policy": None, "service": None, "name": "OPS"}, ("departments", 1, "name"), "team"),
        ({"schedule": {"name": "Ops On-Call", "layers": [{"name": "A", "rotation": "daily", "start": "2026-01-05", "users": ["x@acme.test"]}]}}, ("departments", 1, "schedule", "name"), "schedule"),
        ({"escalation_policy": {"name": "ops escalation", "levels": [{"targets": ["schedule"]}]}}, ("departments", 1, "escalation_policy", "name"), "escalation policy"),
        ({"service": {"name": "Ops"}}, ("departments", 1, "service", "name"), "service"),
    ],
)  # fmt: skip
def test_derived_names_clash_across_departments(
    second: dict[str, Any], path: tuple[str | int, ...], kind: str
) -> None:
    """Two departments deriving the same PagerDuty object name (any case) is an error."""
    problems = check_org(org(dept("ops"), dept("web", **second)))
    assert [p for p, _ in problems] == [path]
    assert problems[0][1].startswith(f"{kind} name ")
    assert "department 'ops'" in problems[0][1]


def test_missing_objects_do_not_clash() -> None:
    """Departments without a schedule or service cannot clash on those names."""
    first = dept("ops", schedule=None, service=None, escalation_policy=None)
    second = dept("web", schedule=None, service=None, escalation_policy=None, team={"name": "W"})
    assert check_org(org(first, second)) == []


def test_layer_names_unique_within_schedule() -> None:
    """A schedule may not have two layers with the same name."""
    layer = {
        "name": "Primary",
        "rotation": "daily",
        "start": "2026-01-05",
        "users": ["ops@acme.test"],
    }
    value = org(dept("ops", schedule={"layers": [layer, layer]}))
    assert check_org(value) == [
        (
            ("departments", 0, "schedule", "layers", 1, "name"),
            "layer name 'Primary' is already used by layers[0] of this schedule",
        )
    ]


def test_own_schedule_target_requires_a_schedule() -> None:
    """Target `schedule` needs the department's own schedule."""
    value = org(dept("hr", schedule=None))
    assert check_org(value) == [
        (
            ("departments", 0, "escalation_policy", "levels", 0, "targets", 0),
            "target 'schedule' needs a schedule in department 'hr', which has none",
        )
    ]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("schedule:nowhere", "no department with key 'nowhere' (known: ops, hr)"),
        ("schedule:hr", "department 'hr' has no schedule to target"),
    ],
)
def test_other_department_schedule_reference(target: str, message: str) -> None:
    """`schedule:<key>` must name a department that has a schedule."""
    value = org(
        dept("ops", escalation_policy={"levels": [{"targets": ["schedule", target]}]}),
        dept(
            "hr", schedule=None, escalation_policy={"levels": [{"targets": ["user:hr@acme.test"]}]}
        ),
    )
    assert check_org(value) == [
        (("departments", 0, "escalation_policy", "levels", 0, "targets", 1), message)
    ]


def test_unchecked_departments_are_not_judged() -> None:
    """References to departments the loader could not validate raise no false alarm."""
    value = org(dept("ops", escalation_policy={"levels": [{"targets": ["schedule:hr"]}]}))
    assert check_org(value, unchecked_keys=frozenset({"hr"})) == []


def test_same_target_twice_in_a_level() -> None:
    """A level names each target once; `schedule:<own key>` is the own schedule."""
    value = org(
        dept("ops", escalation_policy={"levels": [{"targets": ["schedule", "schedule:ops"]}]})
    )
    assert check_org(value) == [
        (
            ("departments", 0, "escalation_policy", "levels", 0, "targets", 1),
            "'schedule:ops' is already a target of this level",
        )
    ]


def test_blank_service_label_name() -> None:
    """service_labels keys must name a service."""
    value = org(dept("ops"), service_labels={" ": ["billing"]})
    assert check_org(value) == [(("service_labels", " "), "service name must not be empty")]


def test_business_hours_defaults_and_extra_block_are_fine() -> None:
    """coverage business_hours without a block means Mon–Fri 09:00–17:00; a spare block is fine."""
    value = org(
        dept("ops", coverage="business_hours"),
        dept(
            "web",
            coverage="always",
            business_hours={"days": ["sat"], "start": "10:00", "end": "12:00"},
        ),
    )
    assert check_org(value) == []
    hours = value.departments[0].effective_business_hours
    assert (hours.days, hours.start, hours.end) == (
        ["mon", "tue", "wed", "thu", "fri"],
        "09:00",
        "17:00",
    )


def test_warnings_for_incomplete_departments() -> None:
    """Missing schedule, policy, service, contact or members are warnings, located at the department."""
    value = org(
        dept(
            "ops",
            schedule=None,
            escalation_policy=None,
            service=None,
            point_of_contact=None,
            members=[],
        ),
    )
    warnings = org_warnings(value)
    assert [path for path, _ in warnings] == [("departments", 0)] * 4 + [
        ("departments", 0, "members")
    ]
    text = " | ".join(message for _, message in warnings)
    for fragment in (
        "no schedule",
        "no escalation_policy",
        "no service",
        "no point_of_contact",
        "no members",
    ):
        assert fragment in text


def test_coverage_none_needs_no_schedule() -> None:
    """A department with coverage none is not warned about a missing schedule."""
    value = org(
        dept(
            "exec",
            coverage="none",
            schedule=None,
            escalation_policy={"levels": [{"targets": ["user:exec@acme.test"]}]},
        )
    )
    assert org_warnings(value) == []


def test_service_labels_for_a_managed_service_are_ignored_with_warning() -> None:
    """A service_labels entry naming a managed service is flagged: the department's labels win."""
    value = org(dept("ops"), service_labels={"OPS": ["billing"]})
    [(path, message)] = org_warnings(value)
    assert path == ("service_labels", "OPS")
    assert "ignored" in message


@pytest.mark.parametrize(
    ("rotation", "ok"),
    [("daily", True), ("weekly", True), ("1h", True), ("8760h", True), ("0h", False), ("8761h", False), ("fortnightly", False), ("24", False)],
)  # fmt: skip
def test_rotation_values(rotation: str, ok: bool) -> None:
    """Rotations are daily, weekly or <N>h with 1 <= N <= 8760 (SPEC §1)."""
    layer = {"name": "A", "rotation": rotation, "start": "2026-01-05", "users": ["ops@acme.test"]}
    if ok:
        org(dept("ops", schedule={"layers": [layer]}))
    else:
        with pytest.raises(ValidationError, match="expected daily, weekly or <N>h"):
            org(dept("ops", schedule={"layers": [layer]}))


def test_adopt_existing_rejects_yaml11_words() -> None:
    """`adopt_existing: on` is a string under YAML 1.2 and so not a boolean."""
    with pytest.raises(ValidationError):
        org(defaults={"adopt_existing": "on"})
    assert org(defaults={"adopt_existing": True}).defaults.adopt_existing is True


def layer_with(**changes: Any) -> dict[str, Any]:
    """A department whose one layer has ``changes`` applied."""
    base = dept("ops")
    base["schedule"]["layers"][0].update(changes)
    return base


def error_at(data: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        org(data)
    (error,) = caught.value.errors()
    return tuple(error["loc"]), str(error["msg"])


@pytest.mark.parametrize(
    ("window", "refused"),
    [
        ({"start": "00:00", "hours": 24}, "a daily window of 24 hours is the whole day"),
        ({"day": "mon", "start": "00:00", "hours": 168}, "a weekly window of 168 hours is the whole week"),
        ({"start": "09:00", "hours": 25}, "a daily window (no 'day') lasts less than 24 hours"),
        ({"day": "mon", "start": "09:00", "hours": 169}, "a weekly window lasts less than 168 hours"),
        ({"start": "22:00", "hours": 23.5}, None),
        ({"day": "sun", "start": "22:00", "hours": 167}, None),
    ],
)  # fmt: skip
def test_full_length_restrictions_are_refused(window: dict[str, Any], refused: str | None) -> None:
    """A window as long as its period (PagerDuty code 3001) is an error on `hours` that says to omit it."""
    data = layer_with(restrictions=[window])
    if refused is None:
        org(data)
        return
    path, message = error_at(data)
    assert path == ("departments", 0, "schedule", "layers", 0, "restrictions", 0, "hours")
    assert refused in message
    if "whole" in refused:
        assert "omit this restriction" in message


@pytest.mark.parametrize(
    "start", ["2026-01-05T09:00:30", "2026-01-05T09:00:00.5", "2026-01-05T09:00:01+01:00"]
)
def test_layer_start_with_seconds_is_refused(start: str) -> None:
    """PagerDuty zeroes seconds, so a start with seconds is an error naming the whole minute to write."""
    path, message = error_at(layer_with(start=start))
    assert path == ("departments", 0, "schedule", "layers", 0, "start")
    assert "write '" + start[:17] + "00" in message


@pytest.mark.parametrize(
    ("zone", "instead"),
    [("Europe/Kyiv", "Europe/Kiev"), ("UTC", "Etc/UTC"), ("US/Eastern", "America/New_York"), ("US/Mountain", "America/Denver")],
)  # fmt: skip
def test_zone_pagerduty_refuses_names_the_accepted_identifier(zone: str, instead: str) -> None:
    """An IANA name outside PagerDuty's list is an error naming the accepted identifier of the same zone."""
    path, message = error_at(dept("ops", time_zone=zone))
    assert path == ("departments", 0, "time_zone")
    assert f"PagerDuty does not accept the time zone {zone!r}; write {instead!r}" in message


def test_accepted_zones_validate() -> None:
    """Every identifier in PagerDuty's documented list is valid in the file."""
    from pdorgsync.models.zones import ACCEPTED

    assert {"Europe/Kiev", "Etc/UTC"} <= set(ACCEPTED)
    for zone in ACCEPTED:
        org(dept("ops", time_zone=zone))
