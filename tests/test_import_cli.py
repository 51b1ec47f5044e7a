"""`pdorgsync import` end to end over HTTP on the sandbox (SPEC §6).

The account is built by hand, as a company's would be: no ownership markers,
multi-layer schedules with restrictions in two DST zones, escalation policies
with several levels targeting their own schedule, another team's schedule and
users, services, plus things the org file cannot hold. The round trip must be
exact: import -> validate -> plan (adopt only, nobody's on-call time changes) ->
apply -> plan (nothing), and who is on call for 28 days is the same throughout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner, Result

from pdorgsync.cli import main
from pdorgsync.errors import TemporaryPagerDutyError
from pdorgsync.importer import read_account
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from tests.support.cli import isolated_cli

BOT = "bot@globex.test"
PEOPLE = ["ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"]


def _user(name: str, role: str = "user") -> dict[str, Any]:
    email = f"{name}@globex.test"
    return {
        "name": name.title(),
        "email": email,
        "role": role,
        "contact_methods": [{"type": "email_contact_method", "label": "Work", "address": email}],
        "notification_rules": [{"urgency": "high", "contact_method": "Work"}],
    }


def _layer(name: str, start: str, seconds: int, users: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "start": start,
        "rotation_virtual_start": start,
        "rotation_turn_length_seconds": seconds,
        "users": [f"{u}@globex.test" for u in users],
        **extra,
    }


def hand_made_account(now: datetime) -> dict[str, Any]:
    """Globex's account, made in PagerDuty's UI: pdorgsync never wrote any of it."""
    ended_start = (now - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:00Z")
    ended_end = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:00Z")
    override_start = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:00Z")
    override_end = (now + timedelta(days=2, hours=4)).strftime("%Y-%m-%dT%H:%M:00Z")
    weekdays = [
        {
            "type": "weekly_restriction",
            "start_day_of_week": day,
            "start_time_of_day": "09:00:00",
            "duration_seconds": 8 * 3600,
        }
        for day in range(1, 6)
    ]
    return {
        "users": [_user("bot", "admin")] + [_user(p) for p in PEOPLE],
        "teams": [
            {
                "name": "Platform SRE",
                "description": "Keeps the lights on",
                "members": [
                    {"user": "ann@globex.test", "role": "manager"},
                    {"user": "bob@globex.test", "role": "responder"},
                    {"user": "cat@globex.test", "role": "responder"},
                ],
            },
            {
                "name": "Customer Care",
                "members": [
                    {"user": "dan@globex.test", "role": "manager"},
                    {"user": "eve@globex.test", "role": "responder"},
                    {"user": "fay@globex.test", "role": "responder"},
                ],
            },
            {
                "name": "Finance",
                "members": [
                    {"user": "gus@globex.test", "role": "manager"},
                    {"user": "hal@globex.test", "role": "responder"},
                ],
            },
        ],
        "schedules": [
            {
                "name": "SRE Primary",
                "time_zone": "America/New_York",
                "teams": ["Platform SRE"],
                "overrides": [
                    {"start": override_start, "end": override_end, "user": "eve@globex.test"}
                ],
                "layers": [
                    _layer("Old rota", ended_start, 86400, ["cat"], end=ended_end),
                    _layer("Week", "2026-01-05T09:00:00-05:00", 604800, ["ann", "bob", "cat"]),
                    _layer(
                        "Nights",
                        "2026-02-02T18:00:00-05:00",
                        86400,
                        ["bob", "cat"],
                        restrictions=[
                            {
                                "type": "daily_restriction",
                                "start_time_of_day": "18:00:00",
                                "duration_seconds": 14 * 3600,
                            }
                        ],
                    ),
                ],
            },
            {
                "name": "SRE Secondary",
                "time_zone": "America/New_York",
                "teams": ["Platform SRE"],
                "layers": [_layer("Only", "2026-01-05T09:00:00-05:00", 604800, ["bob"])],
            },
            {
                "name": "Care Rota",
                "time_zone": "Europe/Berlin",
                "teams": ["Customer Care"],
                "layers": [
                    _layer(
                        "Business",
                        "2026-03-02T09:00:00+01:00",
                        604800,
                        ["dan", "eve", "fay"],
                        restrictions=weekdays,
                    )
                ],
            },
            {
                "name": "Finance On-Call",
                "time_zone": "Etc/UTC",
                "layers": [_layer("Primary", "2026-01-01T08:00:00Z", 12 * 3600, ["gus", "hal"])],
            },
            {
                "name": "Legacy",
                "time_zone": "Etc/UTC",
                "layers": [_layer("L", "2026-01-01T00:00:00Z", 604800, ["hal"])],
            },
        ],
        "escalation_policies": [
            {
                "name": "SRE Escalation",
                "team": "Platform SRE",
                "num_loops": 2,
                "rules": [
                    {"delay_minutes": 5, "targets": ["schedule:SRE Primary"]},
                    {
                        "delay_minutes": 10,
                        "targets": ["user:ann@globex.test", "schedule:Care Rota"],
                    },
                    {"delay_minutes": 15, "targets": ["user:bob@globex.test"]},
                ],
            },
            {
                "name": "Care Escalation",
                "team": "Customer Care",
                "rules": [
                    {"delay_minutes": 30, "targets": ["schedule:Care Rota"]},
                    {
                        "delay_minutes": 30,
                        "targets": ["schedule:SRE Primary", "user:dan@globex.test"],
                    },
                ],
            },
            {
                "name": "Finance Escalation",
                "team": "Finance",
                "rules": [
                    {"delay_minutes": 30, "targets": ["schedule:Finance On-Call"]},
                    {"delay_minutes": 60, "targets": ["user:gus@globex.test"]},
                ],
            },
            {
                "name": "Status Escalation",
                "rules": [{"delay_minutes": 30, "targets": ["user:ann@globex.test"]}],
            },
        ],
        "services": [
            {
                "name": "Checkout",
                "description": "Checkout and payments",
                "escalation_policy": "SRE Escalation",
                "urgency": "high",
            },
            {"name": "Help Desk", "escalation_policy": "Care Escalation", "urgency": "low"},
            {"name": "Ledger", "escalation_policy": "Finance Escalation", "urgency": "high"},
            {"name": "Status Page", "escalation_policy": "Status Escalation", "urgency": "high"},
        ],
    }


@pytest.fixture
def globex(_sandbox_server: Sandbox) -> Iterator[Sandbox]:
    """The sandbox holding Globex's hand-made account; fails on traffic PagerDuty would refuse."""
    _sandbox_server.reset(hand_made_account(datetime.now(UTC)))
    yield _sandbox_server
    errors = list(_sandbox_server.validation_errors)
    _sandbox_server.reset(None)
    assert errors == []


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, globex: Sandbox) -> Path:
    assert globex.base_url is not None
    return isolated_cli(monkeypatch, tmp_path, api_url=globex.base_url, from_email=BOT)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def writes(sandbox: Sandbox) -> list[tuple[str, str, int]]:
    return [r for r in sandbox.requests if r[0] != "GET"]


def on_call(sandbox: Sandbox, since: datetime, until: datetime) -> dict[str, list[Any]]:
    """Every schedule's rendered final schedule over [since, until), as the API returns it."""
    assert sandbox.base_url is not None
    client = PagerDutyClient(sandbox.token, sandbox.base_url, BOT, sleep=lambda _s: None)
    out: dict[str, list[Any]] = {}
    for schedule in client.list_all("/schedules"):
        detail = client.get(
            f"/schedules/{schedule['id']}",
            {"since": since.isoformat(), "until": until.isoformat()},
        )["schedule"]
        entries = detail["final_schedule"]["rendered_schedule_entries"]
        out[schedule["name"]] = [
            (
                datetime.fromisoformat(e["start"]).astimezone(UTC),
                datetime.fromisoformat(e["end"]).astimezone(UTC),
                e["user"]["id"],
            )
            for e in entries
        ]
    return out


def test_round_trip_adopts_only_and_keeps_who_is_on_call(workdir: Path, globex: Sandbox) -> None:
    """import -> validate 0 -> plan: adopt only, on-call unchanged -> apply -> plan 0; 28 days equal."""
    since = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=5)
    until = since + timedelta(days=28)
    before = on_call(globex, since, until)
    assert any(before.values())

    imported = run("import")
    assert imported.exit_code == 0, imported.stderr
    assert writes(globex) == []  # read-only: not one write request
    assert "reading schedules" in imported.stderr  # progress per collection
    text = (workdir / "org.yaml").read_text(encoding="utf-8")
    assert "adopt_existing: true" in text

    assert run("validate", "--policies", str(workdir / "none")).exit_code == 0

    plan = run("plan", "--format", "json")
    assert plan.exit_code == 2, plan.stdout + plan.stderr
    report = json.loads(plan.stdout)
    assert report["conflicts"] == []
    assert {c["action"] for c in report["changes"]} == {"adopt"}
    adopted = {(c["kind"], c["name"]) for c in report["changes"]}
    assert adopted == {
        ("team", "Platform SRE"),
        ("team", "Customer Care"),
        ("team", "Finance"),
        ("schedule", "SRE Primary"),
        ("schedule", "Care Rota"),
        ("schedule", "Finance On-Call"),
        ("escalation_policy", "SRE Escalation"),
        ("escalation_policy", "Care Escalation"),
        ("escalation_policy", "Finance Escalation"),
        ("service", "Checkout"),
        ("service", "Help Desk"),
        ("service", "Ledger"),
    }
    for change in report["changes"]:  # adopting adds the marker and changes nothing else
        assert set(change["diff"]) <= {"description"}, change
    preview = run("plan").stdout
    assert preview.count("unchanged over the next 7 days:") == 3
    assert "    before:" not in preview

    applied = run("apply", "--yes")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    again = run("plan")
    assert again.exit_code == 0, again.stdout
    assert on_call(globex, since, until) == before


def test_import_maps_the_account_and_lists_what_does_not_fit(workdir: Path) -> None:
    """Layers in order with restrictions, targets across departments; leftovers as comments + counts."""
    result = run("import", "--output", "-")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith("%YAML 1.2\n")
    assert "org: globex" in text
    assert "- key: platform-sre" in text
    assert '- {start: "18:00", hours: 14}' in text
    assert "- {delay_minutes: 10, targets: [user:ann@globex.test, schedule:customer-care]}" in text
    assert 'business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}' in text
    assert "time_zone: Europe/Berlin" in text
    assert "# layer 'Old rota' of schedule 'SRE Primary' ended at" in text  # a comment
    assert "SRE Secondary" in text  # the second schedule too
    assert "Status Page: []" in text  # unmanaged service: a labels skeleton
    assert "1 x layer that has ended" in result.stderr
    assert "1 x second schedule of a team" in result.stderr
    assert "1 x escalation policy with no team" in result.stderr
    assert "1 x schedule with no team" in result.stderr  # Legacy
    assert "1 x schedule override" in result.stderr
    assert "# override of schedule 'SRE Primary': eve@globex.test from " in text


def test_second_import_is_byte_identical_and_needs_force(workdir: Path, globex: Sandbox) -> None:
    """The file is refused without --force (unchanged), and --force writes the same bytes."""
    assert run("import").exit_code == 0
    first = (workdir / "org.yaml").read_bytes()
    (workdir / "org.yaml").write_text("mine\n", encoding="utf-8")
    refused = run("import")
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        "error: org.yaml already exists: pass --force to overwrite it"
    ]
    assert (workdir / "org.yaml").read_text(encoding="utf-8") == "mine\n"
    assert run("import", "--force").exit_code == 0
    assert (workdir / "org.yaml").read_bytes() == first
    assert writes(globex) == []
    assert sorted(p.name for p in workdir.iterdir()) == ["org.yaml"]  # no temp file left


def test_org_id_option_names_the_org(workdir: Path) -> None:
    """--org sets the org id; a bad one is a one-line error and nothing is written."""
    assert run("import", "--org", "globex-eu").exit_code == 0
    assert "org: globex-eu\n" in (workdir / "org.yaml").read_text(encoding="utf-8")
    bad = run("import", "--org", "Globex!", "-o", "other.yaml")
    assert bad.exit_code == 1
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (workdir / "other.yaml").exists()


def test_bad_token_is_one_line_and_writes_nothing(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token PagerDuty refuses: exit 1, one error line, no file."""
    monkeypatch.setenv("PDORGSYNC_API_TOKEN", "refused-test-key-9c2e")
    result = run("import")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "401" in errors[0] or "token" in errors[0].lower()
    assert "Traceback" not in result.stderr
    assert not (workdir / "org.yaml").exists()


@responses.activate
def test_pagination_ceiling_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An account past PagerDuty's 10,000-result ceiling: exit 1, one line naming it, no file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PDORGSYNC_API_URL", "https://api.pagerduty.com")
    monkeypatch.setenv("PDORGSYNC_API_TOKEN", "ceiling-test-key-4b7d")
    monkeypatch.setenv("PDORGSYNC_RATE_LIMIT_PER_MINUTE", "0")

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        offset = int(request.params.get("offset", 0))
        users = [
            {"id": f"P{offset + i:06d}", "name": "x", "email": f"u{offset + i}@x.test"}
            for i in range(100)
        ]
        body = {"users": users, "limit": 100, "offset": offset, "more": True}
        return 200, {}, json.dumps(body)

    responses.add(
        responses.GET,
        "https://api.pagerduty.com/abilities",
        json={"abilities": ["teams", "coordinated_responding"]},
    )
    responses.add_callback(responses.GET, "https://api.pagerduty.com/users", callback=page)
    result = run("import")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "10000" in errors[0].replace(",", "")
    assert not (tmp_path / "org.yaml").exists()


def test_unreachable_api_is_a_temporary_error(tmp_path: Path) -> None:
    """Nobody listening: the read fails with one clear PagerDuty error (the CLI prints it)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = PagerDutyClient(
        "unreachable-test-key-1f3a",
        f"http://127.0.0.1:{port}",
        BOT,
        sleep=lambda _s: None,
        max_attempts=2,
    )
    with pytest.raises(TemporaryPagerDutyError) as info:
        read_account(client)
    assert "\n" not in str(info.value)


def test_missing_output_folder_is_one_line_and_reads_nothing(
    workdir: Path, globex: Sandbox
) -> None:
    """An output path in a folder that does not exist: exit 1, one line, nothing left behind."""
    result = run("import", "--output", "nowhere/org.yaml")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: cannot write nowhere/org.yaml: folder nowhere does not exist"]
    assert sorted(p.name for p in workdir.iterdir()) == []
    assert globex.requests == []  # refused before reading the account
