"""The pure planner on hand-built org files and snapshots (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click
import pytest

from pdorgsync.core.planning import plan
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import Org
from pdorgsync.models.plan import Plan
from tests.support.plans import request_body

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday
MARK = "Managed by pdorgsync (org=acme, department={})"

USERS = [
    snap.User(id="PSAM001", name="Sam", email="sam@acme.test"),
    snap.User(id="PTIA002", name="Tia", email="tia@acme.test"),
    snap.User(id="PUMA003", name="Uma", email="uma@acme.test"),
    snap.User(id="PALX004", name="Alex", email="alex@acme.test"),
]


def org_of(*departments: dict[str, Any], adopt: bool = False) -> Org:
    return Org.model_validate(
        {
            "version": 1,
            "org": "acme",
            "defaults": {"time_zone": "Etc/UTC", "adopt_existing": adopt},
            "departments": list(departments),
        }
    )


def support(**overrides: Any) -> dict[str, Any]:
    dept: dict[str, Any] = {
        "key": "support",
        "name": "Customer Support",
        "point_of_contact": "sam@acme.test",
        "members": ["sam@acme.test", "tia@acme.test"],
        "schedule": {
            "layers": [
                {
                    "name": "Primary",
                    "rotation": "weekly",
                    "start": "2026-01-05T09:00:00",
                    "users": ["sam@acme.test", "tia@acme.test"],
                }
            ]
        },
        "escalation_policy": {"levels": [{"delay_minutes": 15, "targets": ["schedule"]}]},
        "service": {"description": "Intake", "urgency": "high"},
    }
    dept.update(overrides)
    return dept


def engineering() -> dict[str, Any]:
    return {"key": "engineering", "name": "Engineering", "members": ["alex@acme.test"]}


def layer(**overrides: Any) -> snap.ScheduleLayer:
    values: dict[str, Any] = {
        "id": "PLAY001",
        "name": "Primary",
        "start": datetime(2026, 1, 5, 9, tzinfo=UTC),
        "rotation_virtual_start": datetime(2026, 1, 5, 9, tzinfo=UTC),
        "rotation_turn_length_seconds": 604800,
        "user_ids": ["PSAM001", "PTIA002"],
    }
    values.update(overrides)
    return snap.ScheduleLayer(**values)


def in_sync(layers: list[snap.ScheduleLayer] | None = None, **extra: Any) -> snap.Snapshot:
    """The account exactly as ``support()`` wants it."""
    values: dict[str, Any] = {
        "users": USERS,
        "teams": [
            snap.Team(
                id="PTEAM01",
                name="Customer Support",
                description="Customer Support\n\n" + MARK.format("support"),
                members=[
                    snap.TeamMember(user_id="PSAM001", role="manager"),
                    snap.TeamMember(user_id="PTIA002", role="responder"),
                ],
            )
        ],
        "schedules": [
            snap.Schedule(
                id="PSCHED1",
                name="Customer Support On-Call",
                description="Customer Support\n\n" + MARK.format("support"),
                time_zone="Etc/UTC",
                layers=layers if layers is not None else [layer()],
            )
        ],
        "escalation_policies": [
            snap.EscalationPolicy(
                id="PEP0001",
                name="Customer Support Escalation",
                description="Customer Support\n\n" + MARK.format("support"),
                num_loops=0,
                rules=[
                    snap.EscalationRule(
                        escalation_delay_in_minutes=15,
                        targets=[snap.Ref(id="PSCHED1", type="schedule_reference")],
                    )
                ],
                team_ids=["PTEAM01"],
            )
        ],
        "services": [
            snap.Service(
                id="PSVC001",
                name="Customer Support",
                description="Intake\n\n" + MARK.format("support"),
                escalation_policy_id="PEP0001",
                urgency="high",
            )
        ],
    }
    values.update(extra)
    return snap.Snapshot(**values)


def actions(p: Plan) -> list[tuple[str, str, str]]:
    return [(c.action, c.kind, c.name) for c in p.changes]


def test_empty_account_creates_everything_in_dependency_order() -> None:
    """An empty account gets team, memberships, schedule, policy and service, in that order."""
    p = plan(org_of(support()), snap.Snapshot(users=USERS), now=NOW)
    assert [(a, k) for a, k, _n in actions(p)] == [
        ("create", "team"),
        ("create", "team_membership"),
        ("create", "team_membership"),
        ("create", "schedule"),
        ("create", "escalation_policy"),
        ("create", "service"),
    ]
    assert p.summary == {"create": 6, "update": 0, "delete": 0, "adopt": 0}
    assert p.has_changes


def test_create_report_has_null_ids_and_from_null() -> None:
    """A create in the JSON report has id null and every field from null (SPEC §3)."""
    report = plan(org_of(support()), snap.Snapshot(users=USERS), now=NOW).to_report()
    service = next(c for c in report["changes"] if c["kind"] == "service")
    assert service["id"] is None
    assert service["diff"]["name"] == {"from": None, "to": "Customer Support"}
    assert all(v["from"] is None for v in service["diff"].values())
    assert set(report) == {"changes", "conflicts", "orphans", "summary"}


def test_created_objects_reference_each_other_by_placeholder() -> None:
    """The policy targets the schedule being created and the service that policy."""
    p = plan(org_of(support()), snap.Snapshot(users=USERS), now=NOW)
    ep = next(c for c in p.changes if c.kind == "escalation_policy")
    body = request_body(ep)
    rule = body["escalation_policy"]["escalation_rules"][0]
    assert rule["targets"][0]["id"] == "{{schedule:support}}"
    svc = next(c for c in p.changes if c.kind == "service")
    assert "{{escalation_policy:support}}" in str(svc.requests[0].body)
    membership = next(c for c in p.changes if c.kind == "team_membership")
    assert membership.requests[0].path.startswith("/teams/{{team:support}}/users/")


def test_point_of_contact_is_manager_and_members_responders() -> None:
    """The point of contact joins as manager even when not listed in members."""
    p = plan(org_of(support(members=["tia@acme.test"])), snap.Snapshot(users=USERS), now=NOW)
    roles = {c.name: c.diff["role"].after for c in p.changes if c.kind == "team_membership"}
    assert roles == {"sam@acme.test": "manager", "tia@acme.test": "responder"}


def test_account_in_sync_plans_nothing() -> None:
    """An account that matches the file yields no changes, conflicts or orphans."""
    p = plan(org_of(support()), in_sync(), now=NOW)
    assert p.changes == []
    assert p.conflicts == []
    assert p.orphans == []
    assert not p.has_changes


def test_instants_not_strings_are_compared() -> None:
    """rotation_virtual_start returned in another offset is the same instant: no change."""
    berlin = timezone_offset(1)
    same = layer(rotation_virtual_start=datetime(2026, 1, 5, 10, tzinfo=berlin))
    assert plan(org_of(support()), in_sync([same]), now=NOW).changes == []


def timezone_offset(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours))


def test_description_whitespace_is_normalised() -> None:
    """Trailing blanks and CRLF line endings in descriptions are not a change."""
    base = in_sync()
    team = base.teams[0].model_copy(
        update={"description": "Customer Support  \r\n\r\n" + MARK.format("support") + "\n"}
    )
    assert plan(org_of(support()), base.model_copy(update={"teams": [team]}), now=NOW).changes == []


def test_changing_layer_users_ends_old_layer_and_adds_new() -> None:
    """A started layer is ended now and a new one starts now: exactly one schedule update."""
    org = org_of(support(schedule={"layers": [{**_primary(), "users": ["tia@acme.test"]}]}))
    p = plan(org, in_sync(), now=NOW)
    assert actions(p) == [("update", "schedule", "Customer Support On-Call")]
    change = p.changes[0]
    layers = request_body(change)["schedule"]["schedule_layers"]
    assert layers[0]["id"] == "PLAY001"
    assert layers[0]["end"] == "2026-03-04T12:00:00Z"
    assert "id" not in layers[1]
    assert layers[1]["start"] == "2026-03-04T12:00:00Z"
    assert layers[1]["rotation_virtual_start"] == "2026-01-05T09:00:00Z"
    assert layers[1]["end"] is None
    after = change.diff["layers.Primary"].after
    assert isinstance(after, dict)
    assert after["users"] == ["tia@acme.test"]


def _primary() -> dict[str, Any]:
    return {
        "name": "Primary",
        "rotation": "weekly",
        "start": "2026-01-05T09:00:00",
        "users": ["sam@acme.test", "tia@acme.test"],
    }


def test_at_next_handoff_times_the_change_at_the_turn_boundary() -> None:
    """With at_next_handoff the old layer ends at the next weekly hand-off, not now."""
    org = org_of(support(schedule={"layers": [{**_primary(), "users": ["tia@acme.test"]}]}))
    p = plan(org, in_sync(), now=NOW, at_next_handoff=True)
    layers = request_body(p.changes[0])["schedule"]["schedule_layers"]
    assert layers[0]["end"] == "2026-03-09T09:00:00Z"  # the next Monday 09:00
    assert layers[1]["start"] == "2026-03-09T09:00:00Z"


def test_ended_layers_are_ignored_and_not_resent() -> None:
    """Ended layers are history: no diff, and never re-sent (PagerDuty would move their past start to now)."""
    old = layer(id="POLD001", end=datetime(2026, 2, 1, tzinfo=UTC), user_ids=["PUMA003"])
    assert plan(org_of(support()), in_sync([old, layer()]), now=NOW).changes == []
    org = org_of(support(schedule={"layers": [{**_primary(), "users": ["tia@acme.test"]}]}))
    p = plan(org, in_sync([old, layer()]), now=NOW)
    ids = [la.get("id") for la in request_body(p.changes[0])["schedule"]["schedule_layers"]]
    assert ids == ["PLAY001", None]  # the open layer (ended now) and its replacement
    assert set(p.changes[0].diff) == {"layers.Primary"}


def test_times_written_are_whole_minutes_not_in_the_past() -> None:
    """Planned at 12:00:30, the old layer ends and the new one starts at 12:01:00, never with seconds."""
    org = org_of(support(schedule={"layers": [{**_primary(), "users": ["tia@acme.test"]}]}))
    p = plan(org, in_sync(), now=NOW + timedelta(seconds=30, microseconds=5))
    layers = request_body(p.changes[0])["schedule"]["schedule_layers"]
    assert layers[0]["end"] == "2026-03-04T12:01:00Z"
    assert layers[1]["start"] == "2026-03-04T12:01:00Z"


def test_new_schedule_layers_start_now_not_in_the_past() -> None:
    """A new schedule's layer anchored in the past starts at the current whole minute, so
    nobody is missing between its creation and the next minute (rotation kept)."""
    p = plan(org_of(support()), snap.Snapshot(users=USERS), now=NOW + timedelta(seconds=1))
    schedule = next(c for c in p.changes if c.kind == "schedule")
    (only,) = request_body(schedule)["schedule"]["schedule_layers"]
    assert only["start"] == "2026-03-04T12:00:00Z"
    assert only["rotation_virtual_start"] == "2026-01-05T09:00:00Z"


def test_utc_returned_by_pagerduty_is_etc_utc() -> None:
    """A schedule PagerDuty returns with `UTC` matches the file's `Etc/UTC`: no drift."""
    base = in_sync()
    utc = base.schedules[0].model_copy(update={"time_zone": "UTC"})
    assert (
        plan(org_of(support()), base.model_copy(update={"schedules": [utc]}), now=NOW).changes == []
    )
    berlin = base.schedules[0].model_copy(update={"time_zone": "Europe/Berlin"})
    p = plan(org_of(support()), base.model_copy(update={"schedules": [berlin]}), now=NOW)
    assert p.changes[0].diff["time_zone"].after == "Etc/UTC"


def test_layers_match_by_name_not_position() -> None:
    """Reordered layers in the response do not produce a change."""
    two = {
        "layers": [
            _primary(),
            {**_primary(), "name": "Weekend", "users": ["uma@acme.test"]},
        ]
    }
    weekend = layer(id="PLAY002", name="Weekend", user_ids=["PUMA003"])
    p = plan(org_of(support(schedule=two)), in_sync([weekend, layer()]), now=NOW)
    assert p.changes == []


def test_future_layer_is_edited_in_place() -> None:
    """A layer that has not started has no past: it keeps its id and is edited in place."""
    future = datetime(2026, 6, 1, 9, tzinfo=UTC)
    observed = layer(start=future, rotation_virtual_start=future)
    wanted = {**_primary(), "start": "2026-06-01T09:00:00", "users": ["uma@acme.test"]}
    p = plan(org_of(support(schedule={"layers": [wanted]})), in_sync([observed]), now=NOW)
    layers = request_body(p.changes[0])["schedule"]["schedule_layers"]
    assert len(layers) == 1
    assert layers[0]["id"] == "PLAY001"
    assert layers[0]["users"] == [{"user": {"id": "PUMA003", "type": "user_reference"}}]


def test_removed_layer_is_ended_not_dropped() -> None:
    """A layer gone from the file is ended now and still sent with its id."""
    weekend = layer(id="PLAY002", name="Weekend", user_ids=["PUMA003"])
    p = plan(org_of(support()), in_sync([layer(), weekend]), now=NOW)
    layers = request_body(p.changes[0])["schedule"]["schedule_layers"]
    ended = next(la for la in layers if la.get("id") == "PLAY002")
    assert ended["end"] == "2026-03-04T12:00:00Z"
    assert p.changes[0].diff["layers.Weekend"].after is None


def test_unknown_user_is_a_located_conflict_blocking_only_its_department() -> None:
    """An unknown email blocks its department (with file position); others are planned."""
    org = org_of(support(members=["sam@acme.test", "ghost@acme.test"]), engineering())
    located = plan(
        org, snap.Snapshot(users=USERS), now=NOW, locate=lambda path: f"org.yaml:{len(path)}:1"
    )
    assert [(c.kind, c.department, c.name) for c in located.conflicts] == [
        ("user", "support", "ghost@acme.test")
    ]
    assert located.conflicts[0].location == "org.yaml:4:1"  # departments/0/members/1
    assert {c.department for c in located.changes} == {"engineering"}
    assert located.has_changes


def test_unowned_same_named_service_is_a_conflict() -> None:
    """A same-named service without the marker is a conflict and nothing touches it."""
    account = in_sync()
    unowned = account.services[0].model_copy(update={"description": "hand-made"})
    p = plan(org_of(support()), account.model_copy(update={"services": [unowned]}), now=NOW)
    assert [(c.kind, c.name) for c in p.conflicts] == [("service", "Customer Support")]
    assert "adopt_existing" in p.conflicts[0].reason
    assert p.changes == []


def test_adopt_existing_adopts_and_sets_the_marker() -> None:
    """With adopt_existing the unowned service is adopted: marker added, id kept."""
    account = in_sync()
    unowned = account.services[0].model_copy(update={"description": "hand-made"})
    snapshot = account.model_copy(update={"services": [unowned]})
    p = plan(org_of(support(), adopt=True), snapshot, now=NOW)
    assert actions(p) == [("adopt", "service", "Customer Support")]
    change = p.changes[0]
    assert change.id == "PSVC001"
    assert change.requests[0].method == "PUT"
    assert MARK.format("support") in str(change.diff["description"].after)


def test_object_owned_by_another_department_is_a_conflict() -> None:
    """A same-named object carrying another department's marker is never taken over."""
    account = in_sync()
    theirs = account.services[0].model_copy(update={"description": MARK.format("sales")})
    p = plan(
        org_of(support(), adopt=True), account.model_copy(update={"services": [theirs]}), now=NOW
    )
    assert p.conflicts[0].kind == "service"
    assert "department=sales" in p.conflicts[0].reason


def test_removed_department_is_an_orphan_deleted_only_with_prune() -> None:
    """Owned objects of a department that left the file are orphans; prune deletes them."""
    org = org_of(engineering())
    without = plan(org, in_sync(), now=NOW)
    assert {(o.kind, o.id) for o in without.orphans} == {
        ("team", "PTEAM01"),
        ("schedule", "PSCHED1"),
        ("escalation_policy", "PEP0001"),
        ("service", "PSVC001"),
    }
    assert not any(c.action == "delete" for c in without.changes)
    pruned = plan(org, in_sync(), now=NOW, prune=True)
    deletes = [(c.kind, c.id) for c in pruned.changes if c.action == "delete"]
    assert deletes == [
        ("service", "PSVC001"),
        ("escalation_policy", "PEP0001"),
        ("schedule", "PSCHED1"),
        ("team", "PTEAM01"),
    ]


def test_orphan_schedule_used_by_unowned_policy_is_not_deleted() -> None:
    """Prune does not delete a schedule an unmanaged policy still targets; it says why."""
    account = in_sync()
    foreign = snap.EscalationPolicy(
        id="PEPX999",
        name="Platform Escalation",
        rules=[
            snap.EscalationRule(
                escalation_delay_in_minutes=5,
                targets=[snap.Ref(id="PSCHED1", type="schedule_reference")],
            )
        ],
    )
    eps = [*account.escalation_policies, foreign]
    p = plan(
        org_of(engineering()),
        account.model_copy(update={"escalation_policies": eps}),
        now=NOW,
        prune=True,
    )
    assert ("delete", "schedule") not in [(c.action, c.kind) for c in p.changes]
    assert any("Platform Escalation" in c.reason for c in p.conflicts)


def test_membership_changes_role_and_removes_strangers() -> None:
    """A wrong role is updated, an unlisted member removed (after policy updates)."""
    account = in_sync()
    team = account.teams[0].model_copy(
        update={
            "members": [
                snap.TeamMember(user_id="PSAM001", role="responder"),
                snap.TeamMember(user_id="PTIA002", role="responder"),
                snap.TeamMember(user_id="PUMA003", role="responder"),
            ]
        }
    )
    p = plan(org_of(support()), account.model_copy(update={"teams": [team]}), now=NOW)
    assert actions(p) == [
        ("update", "team_membership", "sam@acme.test"),
        ("delete", "team_membership", "uma@acme.test"),
    ]
    assert p.changes[1].requests[0].method == "DELETE"


def test_reference_to_blocked_department_schedule_is_a_conflict() -> None:
    """A policy targeting another department's schedule that cannot be created is blocked."""
    eng = {
        **engineering(),
        "escalation_policy": {"levels": [{"targets": ["schedule:support"]}]},
    }
    org = org_of(support(members=["ghost@acme.test"]), eng)
    p = plan(org, snap.Snapshot(users=USERS), now=NOW)
    assert {c.department for c in p.conflicts} == {"support", "engineering"}
    assert p.changes == []


def test_escalation_defaults_and_team_ownership() -> None:
    """A level without delay escalates after 30 minutes; the policy belongs to the team."""
    dept = support(escalation_policy={"levels": [{"targets": ["user:alex@acme.test"]}]})
    p = plan(org_of(dept), snap.Snapshot(users=USERS), now=NOW)
    body = request_body(next(c for c in p.changes if c.kind == "escalation_policy"))
    ep = body["escalation_policy"]
    assert ep["num_loops"] == 0
    assert ep["escalation_rules"][0]["escalation_delay_in_minutes"] == 30
    assert ep["teams"] == [{"id": "{{team:support}}", "type": "team_reference"}]


@pytest.mark.parametrize(
    ("field", "value"),
    [("urgency", "low"), ("description", "Something else")],
)
def test_service_field_change_is_one_update(field: str, value: str) -> None:
    """Changing one service field in the file yields one service update with that diff."""
    dept = support(service={"description": "Intake", "urgency": "high", field: value})
    p = plan(org_of(dept), in_sync(), now=NOW)
    assert actions(p) == [("update", "service", "Customer Support")]
    assert field in p.changes[0].diff


def test_on_call_impact_shows_before_and_after() -> None:
    """A schedule change comes with who is on call over the next 7 days before and after."""
    org = org_of(support(schedule={"layers": [{**_primary(), "users": ["uma@acme.test"]}]}))
    p = plan(org, in_sync(), now=NOW)
    (impact,) = p.impacts
    assert impact.since == NOW
    assert impact.until == NOW + timedelta(days=7)
    assert {s.user for s in impact.before} <= {"sam@acme.test", "tia@acme.test"}
    assert {s.user for s in impact.after} == {"uma@acme.test"}
    assert impact.changed


def test_replacing_a_lower_layer_restacks_the_layers_above() -> None:
    """A replaced lower layer is re-added below the higher ones, which are re-added too."""
    two = {
        "layers": [
            {**_primary(), "users": ["tia@acme.test"]},
            {**_primary(), "name": "Weekend", "users": ["uma@acme.test"]},
        ]
    }
    weekend = layer(id="PLAY002", name="Weekend", user_ids=["PUMA003"])
    p = plan(org_of(support(schedule=two)), in_sync([layer(), weekend]), now=NOW)
    assert actions(p) == [("update", "schedule", "Customer Support On-Call")]
    layers = request_body(p.changes[0])["schedule"]["schedule_layers"]
    assert [(la.get("id"), la["name"], la["end"]) for la in layers] == [
        ("PLAY001", "Primary", "2026-03-04T12:00:00Z"),
        ("PLAY002", "Weekend", "2026-03-04T12:00:00Z"),
        (None, "Primary", None),
        (None, "Weekend", None),
    ]
    (impact,) = p.impacts
    assert {s.user for s in impact.after} == {"uma@acme.test"}  # Weekend still on top


def test_text_report_is_terraform_like_with_impact_and_call_count() -> None:
    """Text report: symbols, field diff, on-call before/after, summary, API calls last."""
    from pdorgsync.core.render.plan_text import render_plan_text

    org = org_of(support(schedule={"layers": [{**_primary(), "users": ["uma@acme.test"]}]}))
    text = render_plan_text(plan(org, in_sync(), now=NOW), api_calls=7)
    assert '~ update schedule "Customer Support On-Call" (support) [PSCHED1]' in text
    assert "before:" in text
    assert "uma@acme.test" in text
    assert "Plan: 0 to create, 1 to update, 0 to delete, 0 to adopt" in text
    assert text.rstrip().splitlines()[-1] == "API calls: 7"
    assert "\x1b[" not in text
    # Colour is the shell's: it passes click.style when stdout is a terminal.
    coloured = render_plan_text(plan(org, in_sync(), now=NOW), api_calls=7, style=click.style)
    assert "\x1b[" in coloured


def test_markdown_report_lists_conflicts_and_orphans() -> None:
    """Markdown report: conflict table with the file location, call count last."""
    from pdorgsync.core.render.plan_markdown import render_plan_markdown

    org = org_of(support(members=["ghost@acme.test"]), engineering())
    snapshot = in_sync().model_copy(update={"users": USERS})
    md = render_plan_markdown(
        plan(org, snapshot, now=NOW, locate=lambda _p: "org.yaml:3:5"), api_calls=3
    )
    assert "| support | user | ghost@acme.test |" in md
    assert "org.yaml:3:5" in md
    assert md.rstrip().endswith("_API calls: 3_")
