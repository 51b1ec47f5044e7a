"""PagerDuty's time zones: which identifiers it accepts and which names tzdata says are the same zone."""

from __future__ import annotations

import json

import pytest

from pdorgsync.models import zones
from tests.support.paths import SHARED_PAGERDUTY, in_ci

SHARED = SHARED_PAGERDUTY / "time_zones.json"


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("UTC", "Etc/UTC"),
        ("Etc/Zulu", "Etc/UTC"),
        ("Europe/Kyiv", "Europe/Kiev"),
        ("US/Eastern", "America/New_York"),
        ("US/Pacific", "America/Los_Angeles"),
        ("America/Nuuk", "America/Godthab"),
        ("Asia/Calcutta", "Asia/Kolkata"),
        ("Europe/Berlin", "Europe/Berlin"),
        ("Mars/Olympus", None),
    ],
)
def test_accepted_equivalent_is_found_by_tzdata(name: str, accepted: str | None) -> None:
    """The accepted identifier for a zone comes from tzdata's links and zone data."""
    assert zones.accepted_equivalent(name) == accepted


def test_a_returned_utc_matches_etc_utc_but_two_accepted_names_do_not() -> None:
    """`UTC` as PagerDuty returns it is `Etc/UTC`; two names PagerDuty accepts are compared as written."""
    assert zones.matches("UTC", "Etc/UTC")
    assert zones.matches("Etc/UTC", "Etc/UTC")
    assert not zones.matches("Europe/Berlin", "Etc/UTC")
    assert not zones.matches("Europe/Copenhagen", "Europe/Berlin")  # same rules, someone chose it
    assert not zones.matches(None, "Etc/UTC")


def test_accepted_list_is_pagerdutys_documented_list() -> None:
    """The shipped copy names the same identifiers as PagerDuty's documented list, each once."""
    assert len(zones.ACCEPTED) == len(set(zones.ACCEPTED))
    # The contract pack, where it is checked out next to the repository (always in CI).
    if SHARED.is_file() or in_ci():
        documented = {z["id"] for z in json.loads(SHARED.read_text("utf-8"))["time_zones"]}
        assert set(zones.ACCEPTED) == documented
    assert {"Etc/UTC", "Europe/Kiev", "America/New_York"} <= set(zones.ACCEPTED)
    assert "UTC" not in zones.ACCEPTED


def test_a_zone_without_equivalent_gets_zones_with_the_same_offsets_suggested() -> None:
    """America/Toronto has no accepted equivalent in tzdata: the message names zones that keep its offsets."""
    message = zones.zone_problem("America/Toronto")
    assert message is not None
    assert "PagerDuty does not accept the time zone 'America/Toronto'" in message
    assert "'America/New_York'" in message
    assert "America/New_York" in zones.same_offsets("America/Toronto")
    assert "Europe/Berlin" not in zones.same_offsets("America/Toronto")
