"""The sandbox as a product: lifecycle, determinism, injected trouble, seeds, PagerDuty rules."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from pdorgsync.cli import main
from pdorgsync.errors import ConfigError, PermanentPagerDutyError
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox, load_seed
from tests.support.paths import ROOT, shared_pagerduty

AUTH = {
    "Authorization": "Token token=sandbox",
    "Accept": "application/vnd.pagerduty+json;version=2",
}
USERS = {
    "users": [
        {"name": "Ann Admin", "email": "ann@x.test", "role": "admin"},
        {"name": "Bo", "email": "bo@x.test"},
    ]
}


class Clock:
    """A settable clock for the sandbox's token bucket and "now"."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def get(base: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(base + path, headers=AUTH, params=params, timeout=10)


def ids(pd: PagerDutyClient, path: str, key: str = "name") -> dict[str, str]:
    return {item[key]: item["id"] for item in pd.list_all(path)}


def test_start_returns_a_listening_url_and_stop_is_prompt() -> None:
    """start() picks a free port and answers at once; stop() frees the port within a second."""
    box = Sandbox(USERS)
    url = box.start()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    assert get(url, "/users").status_code == 200
    began = time.monotonic()
    box.stop()
    assert time.monotonic() - began < 2
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_ids_look_like_pagerdutys_and_are_deterministic() -> None:
    """Same random_seed, same ids: 'P' + 6 upper-case letters or digits."""
    first, second = Sandbox(USERS, random_seed=7), Sandbox(USERS, random_seed=7)
    first_ids, second_ids = sorted(first.state.users), sorted(second.state.users)
    assert first_ids == second_ids
    assert all(re.fullmatch(r"P[A-Z0-9]{6}", i) for i in first_ids)
    assert sorted(Sandbox(USERS, random_seed=8).state.users) != first_ids


def test_rate_limit_uses_a_token_bucket_on_the_sandbox_clock() -> None:
    """Over the per-minute budget: 429 with Retry-After; budget refills as the clock moves."""
    clock = Clock(datetime(2026, 3, 2, tzinfo=UTC))
    with Sandbox(USERS, rate_limit_per_minute=2, clock=clock) as box:
        assert box.base_url
        assert [get(box.base_url, "/users").status_code for _ in range(3)] == [200, 200, 429]
        limited = get(box.base_url, "/users")
        assert limited.headers["Retry-After"] == "30"
        assert limited.headers["ratelimit-limit"] == "2"
        clock.now += timedelta(seconds=30)
        assert get(box.base_url, "/users").status_code == 200


def test_failure_rate_injects_deterministic_server_errors() -> None:
    """failure_rate=1: every request fails with 500/502/503, the same sequence for the same seed."""
    runs = []
    for _ in range(2):
        with Sandbox(USERS, failure_rate=1.0, random_seed=3) as box:
            assert box.base_url
            runs.append([get(box.base_url, "/users").status_code for _ in range(6)])
    assert runs[0] == runs[1]
    assert set(runs[0]) <= {500, 502, 503}


def test_client_gives_up_on_a_sandbox_that_always_fails() -> None:
    """A client against failure_rate=1 raises a temporary error after its attempts, no real sleep."""
    from pdorgsync.errors import TemporaryPagerDutyError

    with Sandbox(USERS, failure_rate=1.0) as box:
        assert box.base_url
        pd = PagerDutyClient("sandbox", box.base_url, max_attempts=2, sleep=lambda _s: None)
        with pytest.raises(TemporaryPagerDutyError):
            pd.get("/users")


def test_unreadable_seed_files_are_one_line_config_errors(tmp_path: Path) -> None:
    """A missing or malformed seed file names the file."""
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match=r"bad\.json is not valid JSON"):
        load_seed(bad)
    with pytest.raises(ConfigError, match="cannot read seed file"):
        load_seed(tmp_path / "missing.json")


def test_seed_references_are_checked_with_their_path() -> None:
    """A schedule naming an unknown user fails with the seed path of the reference."""
    seed = {
        **USERS,
        "schedules": [
            {
                "name": "S",
                "time_zone": "UTC",
                "layers": [
                    {
                        "start": "2026-01-05T00:00:00Z",
                        "rotation_turn_length_seconds": 86400,
                        "users": ["ghost@x.test"],
                    }
                ],
            }
        ],
    }
    with pytest.raises(
        ConfigError, match=r"schedules\[0\]\.layers\[0\]\.users\[0\]: no user 'ghost@x.test'"
    ):
        Sandbox(seed)


def test_example_seed_matches_the_example_org(account_seed: dict[str, Any]) -> None:
    """Every person in examples/org.yaml is a user of the example account, plus the bot."""
    emails = set(re.findall(r"[a-z.]+@acme\.test", (ROOT / "examples" / "org.yaml").read_text()))
    seeded = {u["email"] for u in account_seed["users"]}
    assert len(emails) == 19
    assert emails <= seeded
    assert seeded - emails == {"pdorgsync-bot@acme.test"}


def test_example_seed_has_the_deliberate_reachability_problems(pd: PagerDutyClient) -> None:
    """sofia.rossi has no contact method; liam.becker has no high-urgency rule (COV006/COV007)."""
    users = ids(pd, "/users", "email")
    assert (
        pd.get(f"/users/{users['sofia.rossi@acme.test']}/contact_methods")["contact_methods"] == []
    )
    liam = users["liam.becker@acme.test"]
    assert pd.get(f"/users/{liam}/notification_rules")["notification_rules"] == []
    low = pd.get(f"/users/{liam}/notification_rules", {"urgency": "low"})["notification_rules"]
    assert [r["urgency"] for r in low] == ["low"]


def test_query_and_team_filters_narrow_lists(pd: PagerDutyClient) -> None:
    """query matches name or email case-insensitively; team_ids[] keeps members only."""
    assert [u["email"] for u in pd.list_all("/users", {"query": "RIVERA"})] == [
        "alex.rivera@acme.test"
    ]
    support = ids(pd, "/teams")["Customer Support"]
    members = {u["email"] for u in pd.list_all("/users", {"team_ids[]": [support]})}
    assert members == {"sam.patel@acme.test", "tia.morgan@acme.test", "uma.reyes@acme.test"}


def test_users_me_needs_a_user_level_key(sandbox: Sandbox) -> None:
    """/users/me answers 400 to an account-level key, whatever From says (python-pagerduty)."""
    assert sandbox.base_url
    answer = httpx.get(
        sandbox.base_url + "/users/me", headers={**AUTH, "From": "tia.morgan@acme.test"}
    )
    assert answer.status_code == 400
    assert "account-level access token" in answer.json()["error"]


def _layer(users: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "start": "2026-03-02T08:00:00Z",
        "rotation_virtual_start": "2026-03-02T08:00:00Z",
        "rotation_turn_length_seconds": 86400,
        "users": [{"user": {"id": u, "type": "user_reference"}} for u in users],
        **extra,
    }


def test_schedule_layers_are_ended_never_deleted(pd: PagerDutyClient, sandbox: Sandbox) -> None:
    """PUT edits layers by id, adds id-less ones, keeps unmentioned ones; an ended layer still shows."""
    sandbox.set_clock(lambda: datetime(2026, 3, 1, tzinfo=UTC))  # before the layers start
    users = ids(pd, "/users", "email")
    a, b = users["casey.ng@acme.test"], users["dana.okafor@acme.test"]
    created = pd.post(
        "/schedules",
        {
            "schedule": {
                "type": "schedule",
                "name": "L",
                "time_zone": "Europe/Berlin",
                "schedule_layers": [_layer([a], name="One")],
            }
        },
    )["schedule"]
    first = created["schedule_layers"][0]
    assert (
        first["rotation_virtual_start"] == "2026-03-02T09:00:00+01:00"
    )  # returned in the schedule's zone
    body = {
        "schedule": {
            "type": "schedule",
            "time_zone": "Europe/Berlin",
            "schedule_layers": [_layer([b], name="Two")],
        }
    }
    layers = pd.put(f"/schedules/{created['id']}", body)["schedule"]["schedule_layers"]
    # The unmentioned layer stayed; PagerDuty lists layers newest (highest priority) first.
    assert [layer["name"] for layer in layers] == ["Two", "One"]
    end = {"id": first["id"], "end": "2026-03-09T08:00:00Z"}
    body = {
        "schedule": {
            "type": "schedule",
            "time_zone": "Europe/Berlin",
            "schedule_layers": [{**_layer([a]), **end}],
        }
    }
    layers = pd.put(f"/schedules/{created['id']}", body)["schedule"]["schedule_layers"]
    assert layers[1]["id"] == first["id"]
    assert layers[1]["end"] == "2026-03-09T09:00:00+01:00"


def test_put_with_an_unknown_layer_id_is_refused(pd: PagerDutyClient) -> None:
    """A layer id that is not part of the schedule is a 400."""
    schedule = ids(pd, "/schedules")["Platform Primary"]
    users = ids(pd, "/users", "email")
    body = {
        "schedule": {
            "type": "schedule",
            "time_zone": "Etc/UTC",
            "schedule_layers": [{**_layer([users["casey.ng@acme.test"]]), "id": "PNOPE00"}],
        }
    }
    with pytest.raises(PermanentPagerDutyError) as caught:
        pd.put(f"/schedules/{schedule}", body)
    assert caught.value.status == 400


def test_overrides_replace_the_rotation_in_the_final_schedule(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """An override shows in overrides_subschedule and wins in final_schedule."""
    schedule = ids(pd, "/schedules")["Platform Primary"]
    ivan = ids(pd, "/users", "email")["ivan.petrov@acme.test"]
    override = {
        "start": "2026-03-03T00:00:00Z",
        "end": "2026-03-04T00:00:00Z",
        "user": {"id": ivan, "type": "user_reference"},
    }
    # The answer is a JSON array (multi-status), so this call goes around the client.
    assert sandbox.base_url
    result = httpx.post(
        f"{sandbox.base_url}/schedules/{schedule}/overrides",
        headers=AUTH,
        json={"overrides": [override]},
    )
    assert result.status_code == 201
    assert result.json()[0]["status"] == 201
    rendered = pd.get(
        f"/schedules/{schedule}", {"since": "2026-03-03T00:00:00Z", "until": "2026-03-05T00:00:00Z"}
    )["schedule"]
    final = rendered["final_schedule"]["rendered_schedule_entries"]
    assert final[0]["user"]["id"] == ivan
    assert final[0]["end"] == "2026-03-04T00:00:00Z"
    assert rendered["overrides_subschedule"]["rendered_coverage_percentage"] == 50.0


def test_team_member_targeted_by_the_teams_policy_cannot_be_removed(pd: PagerDutyClient) -> None:
    """CONTRACT §9.6: alex is a direct target of Engineering's EP: 400; blake is not: 204."""
    team = ids(pd, "/teams")["Engineering"]
    users = ids(pd, "/users", "email")
    with pytest.raises(PermanentPagerDutyError) as caught:
        pd.delete(f"/teams/{team}/users/{users['alex.rivera@acme.test']}")
    assert (caught.value.status, caught.value.code) == (400, 2001)
    pd.delete(f"/teams/{team}/users/{users['blake.chen@acme.test']}")
    assert len(pd.list_all(f"/teams/{team}/members")) == 3


def test_team_roles_are_validated(sandbox: Sandbox, pd: PagerDutyClient) -> None:
    """PUT membership accepts observer/responder/manager only."""
    team = ids(pd, "/teams")["Customer Support"]
    noah = ids(pd, "/users", "email")["noah.kim@acme.test"]
    pd.put(f"/teams/{team}/users/{noah}", {"role": "observer"})
    roles = {m["user"]["id"]: m["role"] for m in pd.list_all(f"/teams/{team}/members")}
    assert roles[noah] == "observer"
    with pytest.raises(PermanentPagerDutyError):
        pd.put(f"/teams/{team}/users/{noah}", {"role": "owner"})
    sandbox.validation_errors.clear()  # the description may refuse the role before the handler


def test_policy_used_by_a_service_cannot_be_deleted(pd: PagerDutyClient) -> None:
    """Deleting an EP a service uses is a 400; after the services go, it succeeds."""
    ep = ids(pd, "/escalation_policies")["Platform Escalation"]
    with pytest.raises(PermanentPagerDutyError):
        pd.delete(f"/escalation_policies/{ep}")
    services = ids(pd, "/services")
    pd.delete(f"/services/{services['Checkout API']}")
    pd.delete(f"/services/{services['Payroll Sync']}")
    pd.delete(f"/escalation_policies/{ep}")
    assert "Platform Escalation" not in ids(pd, "/escalation_policies")


def test_team_with_an_escalation_policy_cannot_be_deleted(pd: PagerDutyClient) -> None:
    """A team that still owns an escalation policy is not deleted (6006)."""
    team = ids(pd, "/teams")["Engineering"]
    with pytest.raises(PermanentPagerDutyError) as caught:
        pd.delete(f"/teams/{team}")
    assert caught.value.code == 6006


def test_oncalls_come_from_policies_and_rendered_schedules() -> None:
    """At an instant: level 1 is the schedule's on-call user (with the whole shift), level 2 permanent."""
    clock = Clock(datetime(2026, 3, 4, 12, tzinfo=UTC))
    with Sandbox(load_seed(ROOT / "examples" / "sandbox-account.json"), clock=clock) as box:
        assert box.base_url
        pd = PagerDutyClient("sandbox", box.base_url)
        ep = ids(pd, "/escalation_policies")["Platform Escalation"]
        rows = pd.list_all("/oncalls", {"escalation_policy_ids[]": [ep]})
        by_level = {r["escalation_level"]: r for r in rows}
        assert by_level[1]["schedule"]["summary"] == "Platform Primary"
        assert (by_level[1]["start"], by_level[1]["end"]) == (
            "2026-03-02T00:00:00Z",
            "2026-03-09T00:00:00Z",
        )
        assert by_level[2]["user"]["summary"] == "Alex Rivera"
        assert by_level[2]["start"] is None
        assert box.validation_errors == []


def test_incidents_need_a_from_header_and_can_be_updated(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """POST /incidents without From is refused; with it the incident is assigned and updatable."""
    assert sandbox.base_url
    service = ids(pd, "/services")["Checkout API"]
    body = {
        "incident": {
            "type": "incident",
            "title": "Down",
            "service": {"id": service, "type": "service_reference"},
        }
    }
    anonymous = httpx.post(sandbox.base_url + "/incidents", headers=AUTH, json=body)
    assert anonymous.status_code == 400
    sandbox.validation_errors.clear()
    incident = pd.post("/incidents", body)["incident"]
    assert incident["status"] == "triggered"
    assert incident["assignments"]
    p1 = ids(pd, "/priorities")["P1"]
    updated = pd.put(
        f"/incidents/{incident['id']}",
        {
            "incident": {
                "type": "incident_reference",
                "priority": {"id": p1, "type": "priority_reference"},
            }
        },
    )
    assert updated["incident"]["priority"]["name"] == "P1"
    resolved = pd.list_all("/incidents", {"statuses[]": ["resolved"], "date_range": "all"})
    assert [i["title"] for i in resolved] == ["Checkout API error rate above 5%"]


def test_notes_are_stored_with_their_author(pd: PagerDutyClient) -> None:
    """A note made with From = the bot is listed with the bot as author."""
    incident = pd.list_all("/incidents", {"date_range": "all"})[0]
    pd.post(f"/incidents/{incident['id']}/notes", {"note": {"content": "Support engaged"}})
    notes = pd.get(f"/incidents/{incident['id']}/notes")["notes"]
    assert [(n["content"], n["user"]["summary"]) for n in notes] == [
        ("Support engaged", "pdorgsync bot")
    ]


def test_every_request_is_logged(sandbox: Sandbox, pd: PagerDutyClient) -> None:
    """.requests records method, path and status of each answered request."""
    pd.get("/abilities")
    with pytest.raises(PermanentPagerDutyError):
        pd.get("/teams/PNOPE00")
    assert sandbox.requests[-2:] == [("GET", "/abilities", 200), ("GET", "/teams/PNOPE00", 404)]


def test_empty_sandbox_has_users_but_no_teams(empty_pd: PagerDutyClient) -> None:
    """empty_sandbox: the seed's users only, for building an account from scratch."""
    assert len(empty_pd.list_all("/users")) == 20
    assert empty_pd.list_all("/teams") == []


def test_cli_help_explains_how_to_use_the_sandbox() -> None:
    """--help shows the example invocation and the environment variable to set."""
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0
    assert "--seed" in result.output
    assert "PDORGSYNC_API_URL" in result.output


@pytest.mark.slow
def test_cli_runs_in_the_foreground_and_stops_on_sigterm() -> None:
    """`pdorgsync sandbox --port 0` prints its URL and env lines, serves, and exits 0 on SIGTERM."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-c", "from pdorgsync.cli import main; main()", "sandbox", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", first)
            assert url, first
            assert "PDORGSYNC_API_URL=" in "".join(proc.stdout.readline() for _ in range(2))
            assert get(url.group(0), "/users").json()["users"]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_committed_description_is_what_the_strip_script_generates() -> None:
    """tools/strip_openapi.py --check: openapi.json matches the source and overlay.

    The source is PagerDuty's description in the contract pack next to the checkout
    (``../shared/pagerduty``); CI has it, so there the test runs (a missing pack fails)."""
    source = shared_pagerduty("openapi-subset.json", "openapi-rest-v2.json")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "strip_openapi.py"),
            "--check",
            "--source-dir",
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_overlay_entries_each_cite_a_source() -> None:
    """Every correction in openapi-overlay.json says where the behaviour is documented."""
    overlay = json.loads(
        (ROOT / "src" / "pdorgsync" / "sandbox" / "openapi-overlay.json").read_text()
    )
    assert overlay["actions"]
    assert all(re.search(r"CONTRACT §|GO#|AS#|TF#", a["source"]) for a in overlay["actions"])
