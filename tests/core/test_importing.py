"""The import mapping (core/importing.py): the choices a round trip depends on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdorgsync.core import import_values, importing
from pdorgsync.core.import_values import local_start
from pdorgsync.core.importing import import_account
from pdorgsync.core.planning import plan
from pdorgsync.core.planning_schedules import anchor
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import Layer

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
USERS = [
    snap.User(id="PU1", name="Ann", email="ann@x.test"),
    snap.User(id="PU2", name="Bob", email="bob@x.test"),
    snap.User(id="PU3", name="Cy", email="cy@x.test", role="admin"),
    snap.User(id="PU4", name="Di", email="di@x.test", role="read_only_user"),
    snap.User(id="PU5", name="Ed", email="ed@x.test"),
]


def weekly(day: int, start: str, hours: int) -> snap.Restriction:
    return snap.Restriction(
        type="weekly_restriction",
        start_time_of_day=start,
        duration_seconds=hours * 3600,
        start_day_of_week=day,
    )


def layer(name: str = "Primary", **fields: object) -> snap.ScheduleLayer:
    values: dict[str, object] = {
        "id": f"PL{name}",
        "name": name,
        "start": datetime(2026, 1, 5, 14, 0, tzinfo=UTC),
        "rotation_virtual_start": datetime(2026, 1, 5, 14, 0, tzinfo=UTC),
        "rotation_turn_length_seconds": 604800,
        "user_ids": ["PU1", "PU2"],
    }
    values.update(fields)
    return snap.ScheduleLayer.model_validate(values)


def account(
    *,
    members: list[snap.TeamMember] | None = None,
    layers: list[snap.ScheduleLayer] | None = None,
    zone: str = "America/New_York",
    team_name: str = "Platform",
    team_description: str | None = None,
    urgency: str | None = "high",
) -> snap.Snapshot:
    team = snap.Team(
        id="PT1",
        name=team_name,
        description=team_description,
        members=members
        if members is not None
        else [
            snap.TeamMember(user_id="PU1", role="manager"),
            snap.TeamMember(user_id="PU2", role="responder"),
        ],
    )
    schedule = snap.Schedule(
        id="PS1",
        name="Platform On-Call",
        time_zone=zone,
        team_ids=["PT1"],
        layers=layers if layers is not None else [layer()],
    )
    ep = snap.EscalationPolicy(
        id="PE1",
        name="Platform Escalation",
        rules=[
            snap.EscalationRule(
                escalation_delay_in_minutes=10,
                targets=[snap.Ref(id="PS1", type="schedule_reference")],
            )
        ],
        team_ids=["PT1"],
    )
    service = snap.Service(
        id="PV1", name="Platform", escalation_policy_id="PE1", urgency=urgency, team_ids=["PT1"]
    )
    return snap.Snapshot(
        users=USERS,
        teams=[team],
        schedules=[schedule],
        escalation_policies=[ep],
        services=[service],
    )


def department(snapshot: snap.Snapshot) -> dict[str, Any]:
    (dept,) = import_account(snapshot, org_id="x", now=NOW).data["departments"]
    assert isinstance(dept, dict)
    return dept


def texts(snapshot: snap.Snapshot, category: str | None = None) -> list[str]:
    imported = import_account(snapshot, org_id="x", now=NOW)
    return [n.text for n in imported.notes if category is None or n.category == category]


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("Platform SRE", "engineering"),
        ("Customer Support", "support"),
        ("Marketing & PR", "marketing"),
        ("Product Design", "product"),
        ("Executive Team", "executive"),
        ("Sales EMEA", "sales"),
        ("People Ops", "hr"),
        ("Billing & Finance", "finance"),
        ("Security Engineering", "security"),
        ("Legal", "legal"),
        ("Facilities", "other"),
    ],
)
def test_function_is_guessed_from_the_team_name(name: str, function: str) -> None:
    """Team-name words pick the function, the most specific first; unknown names are other."""
    assert import_values.guess_function(name)[0] == function


def test_unsure_function_is_other_with_a_comment() -> None:
    """A name that suggests nothing is `other`, and the comment says so on that line."""
    imported = import_account(account(team_name="Facilities"), org_id="x", now=NOW)
    assert imported.data["departments"][0]["function"] == "other"
    (note,) = [n for n in imported.notes if n.path == ("departments", 0, "function")]
    assert note.inline
    assert "not guessed" in note.text


def test_keys_are_unique_slugs_and_markers_keep_theirs() -> None:
    """Slugs of clashing names get -2; a team carrying this org's marker keeps its key."""
    base = account()
    teams = [
        snap.Team(id="PT1", name="R&D", members=[]),
        snap.Team(id="PT2", name="R D", members=[]),
        snap.Team(
            id="PT3",
            name="Ops",
            members=[],
            description="Ops\n\nManaged by pdorgsync (org=x, department=operations)",
        ),
    ]
    imported = import_account(base.model_copy(update={"teams": teams}), org_id="x", now=NOW)
    assert [d["key"] for d in imported.data["departments"]] == ["operations", "r-d", "r-d-2"]


def test_a_marker_key_is_never_taken_by_a_slug() -> None:
    """Team "A" slugs to `a`, but the team marked `a` keeps it; "A" becomes `a-2`."""
    teams = [
        snap.Team(id="PT1", name="A", members=[]),
        snap.Team(
            id="PT2",
            name="B",
            members=[],
            description="B\n\nManaged by pdorgsync (org=x, department=a)",
        ),
    ]
    imported = import_account(account().model_copy(update={"teams": teams}), org_id="x", now=NOW)
    keys = {d["name"]: d["key"] for d in imported.data["departments"]}
    assert keys == {"A": "a-2", "B": "a"}


def test_another_orgs_team_is_left_out() -> None:
    """A team managed by another pdorgsync org cannot be adopted: a comment, not a department."""
    marker = "Platform\n\nManaged by pdorgsync (org=other, department=platform)"
    imported = import_account(account(team_description=marker), org_id="x", now=NOW)
    assert imported.data["departments"] == []
    assert imported.counts()[importing.UNFIT_TEAM] == 1


def test_point_of_contact_prefers_a_manager_by_choice_over_an_admin() -> None:
    """Admins are managers by account role (no drift); another manager is flagged."""
    members = [
        snap.TeamMember(user_id="PU3", role="manager"),  # admin: fixed manager
        snap.TeamMember(user_id="PU2", role="manager"),
        snap.TeamMember(user_id="PU1", role="manager"),
        snap.TeamMember(user_id="PU4", role="observer"),  # stakeholder seat
        snap.TeamMember(user_id="PU5", role="observer"),
    ]
    snapshot = account(members=members)
    dept = department(snapshot)
    assert dept["point_of_contact"] == "ann@x.test"
    assert dept["members"] == ["ann@x.test", "bob@x.test", "cy@x.test"]
    (extra,) = texts(snapshot, importing.EXTRA_MANAGER)
    assert extra.startswith("bob@x.test ")
    (observer,) = texts(snapshot, importing.OBSERVER)
    assert observer.startswith("ed@x.test ")
    assert any("guessed: the team has 3 managers" in t for t in texts(snapshot))


def test_no_manager_means_no_point_of_contact_and_a_comment() -> None:
    """Without a team manager nobody is made point of contact (that would add a manager)."""
    snapshot = account(members=[snap.TeamMember(user_id="PU2", role="responder")])
    assert "point_of_contact" not in department(snapshot)
    assert any("no manager" in t for t in texts(snapshot))


def test_utc_is_written_etc_utc() -> None:
    """PagerDuty's `UTC` is written as the accepted identifier `Etc/UTC`."""
    imported = import_account(account(zone="UTC"), org_id="x", now=NOW)
    assert imported.data["defaults"]["time_zone"] == "Etc/UTC"


def test_start_in_the_repeated_autumn_hour_keeps_its_offset() -> None:
    """01:30 EST on the fall-back night is written with -05:00; it loads as that instant."""
    zone = "America/New_York"
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, the second 01:30
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert local_start(first, zone) == "2026-11-01T01:30:00"
    assert local_start(second, zone) == "2026-11-01T01:30:00-05:00"
    for moment in (first, second):
        written = Layer(
            name="L", rotation="daily", start=local_start(moment, zone), users=["a@b.c"]
        )  # pydantic parses the string
        assert anchor(written, zone) == moment


def test_seconds_are_dropped_from_layer_starts() -> None:
    """Layer starts are written on whole minutes (PagerDuty keeps schedule times to the minute)."""
    moment = datetime(2026, 3, 2, 14, 0, 42, tzinfo=UTC)
    assert local_start(moment, "Etc/UTC") == "2026-03-02T14:00:00"


def test_weekday_windows_become_business_hours() -> None:
    """Mon-Fri 09:00-17:00 windows in the zone: coverage business_hours with that block."""
    restrictions = [weekly(day, "09:00:00", 8) for day in range(1, 6)]
    dept = department(account(layers=[layer(restrictions=restrictions)], zone="Europe/Berlin"))
    assert dept["coverage"] == "business_hours"
    assert dept["business_hours"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    }
    assert dept["schedule"]["layers"][0]["restrictions"][0] == {
        "day": "mon",
        "start": "09:00",
        "hours": 8,
    }


@pytest.mark.parametrize(
    ("restrictions", "coverage"),
    [
        ([], "always"),
        ([weekly(6, "09:00:00", 48)], "always"),  # weekend only: no business_hours block fits
        ([weekly(1, "09:00:00", 8), weekly(2, "10:00:00", 8)], "always"),  # uneven days
    ],
)
def test_coverage_other_patterns(restrictions: list[snap.Restriction], coverage: str) -> None:
    """24x7 is always; windows no business_hours block describes stay always, with a comment."""
    snapshot = account(layers=[layer(restrictions=restrictions)])
    assert department(snapshot)["coverage"] == coverage
    assert bool(restrictions) == any("leaves gaps" in t for t in texts(snapshot))


def test_full_period_restriction_is_not_written() -> None:
    """A 24 h daily window is no restriction at all: the layer is written without one."""
    full = snap.Restriction(
        type="daily_restriction", start_time_of_day="00:00:00", duration_seconds=86400
    )
    dept = department(account(layers=[layer(restrictions=[full])]))
    assert "restrictions" not in dept["schedule"]["layers"][0]


def test_layers_keep_the_snapshot_order_and_skip_ended_ones() -> None:
    """Lowest priority first as observed; an ended layer is a comment; one ending later too."""
    layers = [
        layer("Base"),
        layer("Gone", end=NOW - timedelta(days=1)),
        layer("Soon", end=NOW + timedelta(days=3)),
        layer("Top", user_ids=["PU2"]),
    ]
    snapshot = account(layers=layers)
    names = [la["name"] for la in department(snapshot)["schedule"]["layers"]]
    assert names == ["Base", "Top"]
    imported = import_account(snapshot, org_id="x", now=NOW)
    assert imported.counts() == {importing.ENDED_LAYER: 1, importing.ENDING_LAYER: 1}
    result = plan(imported.org(), snapshot, now=NOW)
    assert {c.action for c in result.changes} == {"adopt"}
    assert all(i.before == i.after for i in result.impacts)


def test_support_hours_service_goes_to_service_labels() -> None:
    """A service whose urgency follows support hours is not managed: it gets a labels entry."""
    imported = import_account(account(urgency=None), org_id="x", now=NOW)
    assert "service" not in imported.data["departments"][0]
    assert imported.data["service_labels"] == {"Platform": []}
    assert imported.counts() == {importing.UNFIT_SERVICE: 1}


def test_order_of_the_api_lists_does_not_matter() -> None:
    """Same account listed in another order: the same document and notes."""
    snapshot = account(team_name="Facilities")
    extra = snap.Team(id="PT0", name="Zeta Support", members=[])
    first = snapshot.model_copy(update={"teams": [*snapshot.teams, extra]})
    second = snapshot.model_copy(
        update={"teams": [extra, *snapshot.teams], "users": list(reversed(snapshot.users))}
    )
    a = import_account(first, org_id="x", now=NOW)
    b = import_account(second, org_id="x", now=NOW)
    assert a == b


def test_org_id_comes_from_markers_then_the_mail_domain() -> None:
    """`--org` default: this account's pdorgsync org, else the users' mail domain."""
    assert importing.guess_org_id(account()) == "x"
    owned = account(team_description="P\n\nManaged by pdorgsync (org=acme, department=p)")
    assert importing.guess_org_id(owned) == "acme"


def test_zone_of_the_department_is_the_schedules() -> None:
    """The department's time_zone is its schedule's; the most common zone is the default."""
    imported = import_account(account(zone="Asia/Kolkata"), org_id="x", now=NOW)
    assert imported.data["defaults"]["time_zone"] == "Asia/Kolkata"
    assert "time_zone" not in imported.data["departments"][0]


@pytest.mark.parametrize("ref_type", ["schedule_reference", "schedule_v3_reference"])
def test_v3_schedule_and_the_policy_targeting_it_stay_out(ref_type: str) -> None:
    """A shift-based schedule is a comment; a policy targeting it cannot be written either."""
    base = account()
    (schedule,) = base.schedules
    upgraded = schedule.model_copy(update={"type": "schedule_v3", "layers": None})
    (ep,) = base.escalation_policies
    rule = snap.EscalationRule(
        escalation_delay_in_minutes=5, targets=[snap.Ref(id="PS1", type=ref_type)]
    )
    snapshot = base.model_copy(
        update={
            "schedules": [upgraded],
            "escalation_policies": [ep.model_copy(update={"rules": [rule]})],
        }
    )
    imported = import_account(snapshot, org_id="x", now=NOW)
    dept = imported.data["departments"][0]
    assert "schedule" not in dept
    assert "escalation_policy" not in dept
    assert "service" not in dept
    assert imported.counts() == {
        importing.V3_SCHEDULE: 1,
        importing.UNFIT_EP: 1,
        importing.UNFIT_SERVICE: 1,
    }
    assert plan(imported.org(), snapshot, now=NOW).conflicts == []
