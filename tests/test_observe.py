"""observe: bulk reads of the sandbox account, counted request by request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import responses

from pdorgsync.loading import load_org
from pdorgsync.observe import find_existing, observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LISTS = ["/users", "/teams", "/schedules", "/escalation_policies", "/services"]


def test_seeded_account_costs_one_list_walk_each_plus_candidates(pd: PagerDutyClient) -> None:
    """Five list requests (layers ride along with the schedules), members of candidate teams."""
    org = load_org(EXAMPLES / "org.yaml").org
    snapshot = observe(pd, org)
    assert {path: pd.calls[("GET", path)] for path in LISTS} == dict.fromkeys(LISTS, 1)
    # include[]=schedule_layers on the list walk: no per-schedule read at all.
    assert pd.calls[("GET", "/schedules/{id}")] == 0
    # Both seeded teams are candidates (Engineering owned, Customer Support same-named).
    assert pd.calls[("GET", "/teams/{id}/members")] == 2
    # Customer Support's team is ours but its schedule is not in GET /schedules: one
    # walk of GET /v3/schedules checks whether PagerDuty upgraded it (issue 10 item 7).
    assert pd.calls[("GET", "/v3/schedules")] == 1
    assert pd.total_calls == 8
    engineering = next(s for s in snapshot.schedules if s.name == "Engineering On-Call")
    assert engineering.layers is not None
    assert all(la.start.tzinfo is not None for la in engineering.layers)
    team = next(t for t in snapshot.teams if t.name == "Engineering")
    assert {m.role for m in team.members or []} == {"manager", "responder"}


def test_snapshot_resolves_emails_references_and_urgency(pd: PagerDutyClient) -> None:
    """Users by lower-case email, EP targets as typed refs, a constant service urgency."""
    snapshot = observe(pd, load_org(EXAMPLES / "org.yaml").org)
    alex = snapshot.user_by_email("Alex.Rivera@acme.test")
    assert alex is not None
    ep = next(e for e in snapshot.escalation_policies if e.name == "Engineering Escalation")
    assert ep.rules
    assert ep.rules[0].targets[0].type == "schedule_reference"
    payroll = next(s for s in snapshot.services if s.name == "Payroll Sync")
    assert payroll.urgency == "low"


def big_team_seed(account_seed: dict[str, Any], size: int) -> dict[str, Any]:
    seed: dict[str, Any] = json.loads(json.dumps(account_seed))
    extra = [
        {"name": f"Member {i}", "email": f"member{i}@acme.test", "role": "user"}
        for i in range(size)
    ]
    seed["users"].extend(extra)
    engineering = next(t for t in seed["teams"] if t["name"] == "Engineering")
    engineering["members"].extend({"user": u["email"], "role": "responder"} for u in extra)
    seed["teams"].append(
        {
            "name": "Unrelated",
            "description": "Not ours",
            "members": [{"user": u["email"], "role": "responder"} for u in extra[:50]],
        }
    )
    return seed


def test_team_members_cost_one_request_per_page_of_100(
    sandbox: Sandbox, pd: PagerDutyClient, account_seed: dict[str, Any]
) -> None:
    """254 members of a managed team cost 3 requests; an unrelated team costs none."""
    sandbox.reset(big_team_seed(account_seed, 250))
    snapshot = observe(pd, load_org(EXAMPLES / "org.yaml").org)
    team = next(t for t in snapshot.teams if t.name == "Engineering")
    assert len(team.members or []) == 254
    unrelated = next(t for t in snapshot.teams if t.name == "Unrelated")
    assert unrelated.members is None
    # Engineering: 3 pages; Customer Support (same-named candidate): 1 page.
    assert pd.calls[("GET", "/teams/{id}/members")] == 4
    assert pd.calls[("GET", "/users")] == 3  # 270 users, 100 a page


def test_without_org_only_requested_details_are_read(pd: PagerDutyClient) -> None:
    """org=None reads lists only, plus exactly the schedules and teams asked for."""
    plain = observe(pd)
    assert pd.total_calls == 5
    assert all(s.layers is None for s in plain.schedules)
    platform = next(s for s in plain.schedules if s.name == "Platform Primary")
    pd.reset_counts()
    detailed = observe(
        pd, with_layers_for=[platform.id], with_members_for=lambda t: t.name == "Engineering"
    )
    assert pd.calls[("GET", "/schedules/{id}")] == 0  # layers came with the list
    assert pd.calls[("GET", "/teams/{id}/members")] == 1
    assert next(s for s in detailed.schedules if s.id == platform.id).layers


def test_find_existing_matches_marker_and_exact_name(pd: PagerDutyClient) -> None:
    """The lookup after an unknown outcome finds owned objects only."""
    marker = "Managed by pdorgsync (org=acme, department=engineering)"
    assert find_existing(pd, "team", "Engineering", marker) is not None
    assert find_existing(pd, "service", "Checkout API", marker) is None
    assert find_existing(pd, "service", "Checkout API", None) is not None
    assert find_existing(pd, "team", "Engineer", None) is None


def test_a_list_without_layers_falls_back_to_candidate_schedules_only() -> None:
    """If the list walk brings no layers, only owned or wanted schedules get a GET each."""
    base = "https://api.pagerduty.test"
    org = load_org(EXAMPLES / "org.yaml").org
    marker = "Managed by pdorgsync (org=acme, department=engineering)"
    layer = {
        "id": "PLAYER1",
        "name": "Primary",
        "start": "2026-01-05T09:00:00Z",
        "rotation_virtual_start": "2026-01-05T09:00:00Z",
        "rotation_turn_length_seconds": 604800,
        "users": [{"user": {"id": "PUSER01", "type": "user_reference"}}],
    }
    owned = {
        "id": "PSCHED1",
        "type": "schedule",
        "name": "Engineering On-Call",
        "time_zone": "UTC",
        "description": f"Engineering\n\n{marker}",
    }
    other = {"id": "PSCHED2", "type": "schedule", "name": "Somebody Else's", "time_zone": "UTC"}

    def page(key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {key: items, "limit": 100, "offset": 0, "more": False, "total": None}

    with responses.RequestsMock() as rsps:
        for key in ("users", "teams", "escalation_policies", "services"):
            rsps.get(f"{base}/{key}", json=page(key, []))
        rsps.get(f"{base}/schedules", json=page("schedules", [owned, other]))
        rsps.get(
            f"{base}/schedules/PSCHED1", json={"schedule": {**owned, "schedule_layers": [layer]}}
        )
        client = PagerDutyClient("t0ken-for-tests", base, sleep=lambda _s: None)
        snapshot = observe(client, org)
    assert client.calls[("GET", "/schedules/{id}")] == 1
    assert snapshot.schedule_by_id("PSCHED1").layers  # type: ignore[union-attr]  # present
    assert snapshot.schedule_by_id("PSCHED2").layers is None  # type: ignore[union-attr]  # present
