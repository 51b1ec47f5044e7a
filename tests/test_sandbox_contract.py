"""The sandbox behaves like PagerDuty where pdorgsync depends on it (CONTRACT.md), over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pdorgsync.errors import NotFoundError, PermanentPagerDutyError
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox

ACCEPT = "application/vnd.pagerduty+json;version=2"


def raw(
    sandbox: Sandbox, method: str, path: str, *, token: str | None = "sandbox", **kwargs: Any
) -> httpx.Response:
    headers = {"Accept": ACCEPT, **kwargs.pop("headers", {})}
    if token is not None:
        headers["Authorization"] = f"Token token={token}"
    return httpx.request(method, f"{sandbox.base_url}{path}", headers=headers, timeout=10, **kwargs)


def user_id(pd: PagerDutyClient, email: str) -> str:
    return str(next(u["id"] for u in pd.list_all("/users") if u["email"] == email))


def weekly_schedule(pd: PagerDutyClient, users: list[str], name: str = "Rota") -> dict[str, Any]:
    body = {
        "schedule": {
            "type": "schedule",
            "name": name,
            "time_zone": "Europe/Berlin",
            "schedule_layers": [
                {
                    "name": "Weekly",
                    "start": "2026-03-02T09:00:00+01:00",
                    "rotation_virtual_start": "2026-03-02T09:00:00+01:00",
                    "rotation_turn_length_seconds": 604800,
                    "users": [{"user": {"id": u, "type": "user_reference"}} for u in users],
                }
            ],
        }
    }
    schedule: dict[str, Any] = pd.post("/schedules", body)["schedule"]
    return schedule


@pytest.mark.parametrize("token", [None, "wrong"])
def test_requests_without_the_right_token_get_401_in_pagerduty_shape(
    sandbox: Sandbox, token: str | None
) -> None:
    """No token or a wrong token: 401 with PagerDuty's error envelope."""
    response = raw(sandbox, "GET", "/users", token=token)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Unauthorized"


def test_token_must_use_pagerdutys_exact_scheme(sandbox: Sandbox) -> None:
    """'Bearer sandbox' is not 'Token token=sandbox': PagerDuty refuses it."""
    response = raw(
        sandbox, "GET", "/users", token=None, headers={"Authorization": "Bearer sandbox"}
    )
    assert response.status_code == 401


def test_classic_pagination_reports_limit_offset_more_and_total_only_on_request(
    sandbox: Sandbox,
) -> None:
    """limit/offset/more as PagerDuty sends them; total stays null unless total=true."""
    first = raw(sandbox, "GET", "/users", params={"limit": 5}).json()
    assert (first["limit"], first["offset"], first["more"], first["total"]) == (5, 0, True, None)
    assert len(first["users"]) == 5
    last = raw(sandbox, "GET", "/users", params={"limit": 5, "offset": 15, "total": "true"}).json()
    assert (last["more"], last["total"], len(last["users"])) == (False, 20, 5)


def test_default_page_is_25_and_limit_is_capped_at_100(sandbox: Sandbox) -> None:
    """Without limit PagerDuty pages by 25; above 100 it caps."""
    assert raw(sandbox, "GET", "/priorities").json()["limit"] == 25
    assert raw(sandbox, "GET", "/users", params={"limit": 500}).json()["limit"] == 100


def test_client_list_all_walks_every_page(pd: PagerDutyClient) -> None:
    """pdorgsync's client sees all 20 users through classic pagination."""
    emails = {u["email"] for u in pd.list_all("/users")}
    assert len(emails) == 20
    assert "pdorgsync-bot@acme.test" in emails


def test_paging_past_ten_thousand_is_refused(sandbox: Sandbox) -> None:
    """offset + limit above 10000 is a 400, like PagerDuty's hard ceiling."""
    response = raw(sandbox, "GET", "/users", params={"offset": 9950, "limit": 100})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 2001


def test_entities_are_wrapped_in_requests_and_responses(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """A bare team body is refused; a wrapped one comes back wrapped, with a P-id."""
    bare = raw(sandbox, "POST", "/teams", json={"type": "team", "name": "Bare"})
    assert bare.status_code == 400
    sandbox.validation_errors.clear()  # the bare body was refused on purpose
    team = pd.post("/teams", {"team": {"type": "team", "name": "Wrapped"}})["team"]
    assert team["name"] == "Wrapped"
    assert team["id"].startswith("P")
    assert len(team["id"]) == 7


def test_missing_objects_are_404_with_code_2100(sandbox: Sandbox) -> None:
    """Unknown ids answer 404 in PagerDuty's error shape."""
    response = raw(sandbox, "GET", "/schedules/PNOPE00")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 2100


def test_client_maps_sandbox_404_to_not_found(pd: PagerDutyClient) -> None:
    """The client turns the sandbox's 404 into NotFoundError."""
    with pytest.raises(NotFoundError):
        pd.get("/escalation_policies/PNOPE00")


def test_schedule_without_time_zone_is_refused(sandbox: Sandbox, pd: PagerDutyClient) -> None:
    """time_zone is required: 400, and the refusal is recorded as invalid traffic."""
    with pytest.raises(PermanentPagerDutyError) as caught:
        pd.post(
            "/schedules",
            {"schedule": {"type": "schedule", "name": "No zone", "schedule_layers": []}},
        )
    assert caught.value.status == 400
    assert any("time_zone" in e for e in sandbox.validation_errors)
    sandbox.validation_errors.clear()


def test_escalation_policy_needs_a_rule(sandbox: Sandbox, pd: PagerDutyClient) -> None:
    """Creating an escalation policy without rules is a 400 (2001)."""
    with pytest.raises(PermanentPagerDutyError) as caught:
        pd.post(
            "/escalation_policies",
            {
                "escalation_policy": {
                    "type": "escalation_policy",
                    "name": "Empty",
                    "escalation_rules": [],
                }
            },
        )
    assert (caught.value.status, caught.value.code) == (400, 2001)


def test_schedule_used_by_an_escalation_policy_cannot_be_deleted(pd: PagerDutyClient) -> None:
    """Deleting a schedule an EP targets is a 400 2001 naming the policy; the schedule stays."""
    schedule = next(s for s in pd.list_all("/schedules") if s["name"] == "Platform Primary")
    with pytest.raises(PermanentPagerDutyError) as caught:
        pd.delete(f"/schedules/{schedule['id']}")
    assert (caught.value.status, caught.value.code) == (400, 2001)
    assert "Platform Escalation" in " ".join(caught.value.errors or [])
    assert pd.get(f"/schedules/{schedule['id']}")["schedule"]["name"] == "Platform Primary"


def _incident(pd: PagerDutyClient, title: str = "Checkout down") -> dict[str, Any]:
    service = next(s for s in pd.list_all("/services") if s["name"] == "Checkout API")
    body = {
        "incident": {
            "type": "incident",
            "title": title,
            "service": {"id": service["id"], "type": "service_reference"},
        }
    }
    incident: dict[str, Any] = pd.post("/incidents", body)["incident"]
    return incident


def test_flat_responder_targets_are_refused_like_pagerduty(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """Flat targets get PagerDuty's 404-style 2100, and the call is recorded as invalid."""
    incident = _incident(pd)
    bot, dana = user_id(pd, "pdorgsync-bot@acme.test"), user_id(pd, "dana.okafor@acme.test")
    body = {
        "requester_id": bot,
        "message": "join",
        "responder_request_targets": [{"id": dana, "type": "user_reference"}],
    }
    with pytest.raises(PermanentPagerDutyError) as caught:
        pd.post(f"/incidents/{incident['id']}/responder_requests", body)
    assert (caught.value.status, caught.value.code) == (404, 2100)
    assert any("responder_request_target" in e for e in sandbox.validation_errors)
    sandbox.validation_errors.clear()


def test_wrapped_responder_request_returns_incidents_responders(pd: PagerDutyClient) -> None:
    """Wrapped targets: 200 with incidents_responders per target, recorded on the incident."""
    incident = _incident(pd)
    bot, dana = user_id(pd, "pdorgsync-bot@acme.test"), user_id(pd, "dana.okafor@acme.test")
    ep = next(
        e for e in pd.list_all("/escalation_policies") if e["name"] == "Engineering Escalation"
    )
    body = {
        "requester_id": bot,
        "message": "Please join",
        "responder_request_targets": [
            {"responder_request_target": {"id": dana, "type": "user_reference"}},
            {"responder_request_target": {"id": ep["id"], "type": "escalation_policy_reference"}},
        ],
    }
    request = pd.post(f"/incidents/{incident['id']}/responder_requests", body)["responder_request"]
    targets = [t["responder_request_target"] for t in request["responder_request_targets"]]
    assert targets[0]["incidents_responders"][0]["user"]["id"] == dana
    assert targets[0]["incidents_responders"][0]["state"] == "pending"
    assert targets[1]["incidents_responders"], "the EP's on-call user is requested"
    stored = pd.get(f"/incidents/{incident['id']}")["incident"]
    assert dana in {r["user"]["id"] for r in stored["incidents_responders"]}


def test_subscribers_report_result_per_item_including_duplicates(pd: PagerDutyClient) -> None:
    """Status-update subscribers: 200 with success, then duplicate for the same subscriber."""
    incident = _incident(pd)
    team = next(t for t in pd.list_all("/teams") if t["name"] == "Customer Support")
    body = {"subscribers": [{"subscriber_id": team["id"], "subscriber_type": "team"}]}
    path = f"/incidents/{incident['id']}/status_updates/subscribers"
    assert pd.post(path, body)["subscriptions"][0]["result"] == "success"
    assert pd.post(path, body)["subscriptions"][0]["result"] == "duplicate"
    assert [s["subscriber_id"] for s in pd.get(path)["subscribers"]] == [team["id"]]


def test_webhook_secret_only_in_create_response_and_headers_redacted(pd: PagerDutyClient) -> None:
    """The signing secret appears once (200 on create); later reads redact header values."""
    created = pd.post(
        "/webhook_subscriptions",
        {
            "webhook_subscription": {
                "type": "webhook_subscription",
                "delivery_method": {
                    "type": "http_delivery_method",
                    "url": "https://hooks.acme.test/pd",
                    "custom_headers": [{"name": "X-Tenant", "value": "acme"}],
                },
                "events": ["incident.triggered"],
                "filter": {"type": "account_reference"},
            }
        },
    )["webhook_subscription"]
    assert created["delivery_method"]["secret"]
    read = pd.get(f"/webhook_subscriptions/{created['id']}")["webhook_subscription"]
    assert not read["delivery_method"].get("secret")
    assert read["delivery_method"]["custom_headers"] == [
        {"name": "X-Tenant", "value": "-- redacted --"}
    ]


def test_rate_limited_answer_has_retry_after_and_ratelimit_headers(sandbox: Sandbox) -> None:
    """fail_next: 429 with Retry-After, ratelimit-* headers and code 2020."""
    sandbox.fail_next(1, status=429, retry_after=3)
    response = raw(sandbox, "GET", "/users")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["ratelimit-reset"] == "3"
    assert "ratelimit-limit" in response.headers
    assert response.json()["error"]["code"] == 2020
    assert raw(sandbox, "GET", "/users").status_code == 200


def test_client_retries_through_a_429(sandbox: Sandbox, pd: PagerDutyClient) -> None:
    """The client waits out one 429 and gets the answer."""
    sandbox.fail_next(1)
    assert pd.get("/abilities")["abilities"]
    assert [s for (_m, p, s) in sandbox.requests if p == "/abilities"] == [429, 200]


def test_weekly_two_user_rotation_renders_final_schedule(
    pd: PagerDutyClient, sandbox: Sandbox
) -> None:
    """A weekly rotation of two users alternates at the Monday 09:00 Berlin hand-off."""
    sandbox.set_clock(lambda: datetime(2026, 3, 1, tzinfo=UTC))  # before the layer starts
    a, b = user_id(pd, "casey.ng@acme.test"), user_id(pd, "dana.okafor@acme.test")
    schedule = weekly_schedule(pd, [a, b])
    rendered = pd.get(
        f"/schedules/{schedule['id']}",
        {"since": "2026-03-01T08:00:00Z", "until": "2026-03-23T08:00:00Z"},
    )["schedule"]
    entries = rendered["final_schedule"]["rendered_schedule_entries"]
    assert [(e["start"], e["user"]["id"]) for e in entries] == [
        ("2026-03-02T09:00:00+01:00", a),
        ("2026-03-09T09:00:00+01:00", b),
        ("2026-03-16T09:00:00+01:00", a),
    ]
    assert entries[-1]["end"] == "2026-03-23T09:00:00+01:00"
    assert rendered["final_schedule"]["rendered_coverage_percentage"] == pytest.approx(
        95.45, abs=0.01
    )
    assert rendered["schedule_layers"][0]["rotation_virtual_start"] == "2026-03-02T09:00:00+01:00"


def test_corrected_description_rejects_string_assignment_strategy(sandbox: Sandbox) -> None:
    """The overlay (CONTRACT §9.8) makes the string form invalid: 400, recorded."""
    users = raw(sandbox, "GET", "/users", params={"query": "alex"}).json()["users"]
    body: dict[str, Any] = {
        "escalation_policy": {
            "type": "escalation_policy",
            "name": "Strategy",
            "escalation_rules": [
                {
                    "escalation_delay_in_minutes": 30,
                    "targets": [{"id": users[0]["id"], "type": "user_reference"}],
                    "escalation_rule_assignment_strategy": "round_robin",
                }
            ],
        }
    }
    response = raw(sandbox, "POST", "/escalation_policies", json=body)
    assert response.status_code == 400
    assert any("escalation_rule_assignment_strategy" in e for e in sandbox.validation_errors)
    sandbox.validation_errors.clear()
    body["escalation_policy"]["escalation_rules"][0]["escalation_rule_assignment_strategy"] = {
        "type": "round_robin"
    }
    assert raw(sandbox, "POST", "/escalation_policies", json=body).status_code == 201
