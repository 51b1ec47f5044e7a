"""PagerDuty quirks (issue 10, part A): the sandbox behaves as PagerDuty does, the product copes.

Each sandbox behaviour here is one PagerDuty documents or the Terraform provider works
around (sources in ``sandbox/routes_schedules.py`` and README "PagerDuty behaviours
pdorgsync relies on"); each product test fails if its handling is removed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pdorgsync.core.planning import plan
from pdorgsync.loading import load_org
from pdorgsync.models.org import Org
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox
from tests.support.orgs import ops_org

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def post_schedule(
    sandbox: Sandbox, layers: list[dict[str, Any]], zone: str = "Etc/UTC"
) -> httpx.Response:
    body = {
        "schedule": {
            "type": "schedule",
            "name": "Quirks",
            "time_zone": zone,
            "schedule_layers": layers,
        }
    }
    return httpx.post(
        f"{sandbox.base_url}/schedules",
        json=body,
        headers={
            "Authorization": f"Token token={sandbox.token}",
            "Accept": "application/vnd.pagerduty+json;version=2",
        },
        timeout=10,
    )


def a_layer(
    user: str, name: str = "L", start: str = "2026-03-02T09:00:00Z", **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "start": start,
        "rotation_virtual_start": start,
        "rotation_turn_length_seconds": 86400,
        "users": [{"user": {"id": user, "type": "user_reference"}}],
        **extra,
    }


def a_user(pd: PagerDutyClient, n: int = 0) -> str:
    return str(sorted(u["id"] for u in pd.list_all("/users"))[n])


@pytest.mark.parametrize("zone", ["UTC", "Europe/Kyiv", "US/Eastern", "Mars/Olympus"])
def test_sandbox_refuses_time_zones_pagerduty_does_not_document(
    sandbox: Sandbox, pd: PagerDutyClient, zone: str
) -> None:
    """A zone outside PagerDuty's list is a 400 in PagerDuty's error shape; nothing is created."""
    response = post_schedule(sandbox, [a_layer(a_user(pd))], zone=zone)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 2001
    assert any(zone in e for e in error["errors"])
    assert not any(s["name"] == "Quirks" for s in pd.list_all("/schedules"))


def test_sandbox_accepts_documented_zones(sandbox: Sandbox, pd: PagerDutyClient) -> None:
    """Etc/UTC and Europe/Kiev (PagerDuty's spellings) are accepted."""
    for zone in ("Etc/UTC", "Europe/Kiev"):
        assert post_schedule(sandbox, [a_layer(a_user(pd))], zone=zone).status_code == 201


@pytest.mark.parametrize(
    ("restriction", "status"),
    [
        ({"type": "daily_restriction", "start_time_of_day": "00:00:00", "duration_seconds": 86400}, 400),
        ({"type": "weekly_restriction", "start_time_of_day": "00:00:00", "duration_seconds": 604800, "start_day_of_week": 1}, 400),
        ({"type": "daily_restriction", "start_time_of_day": "00:00:00", "duration_seconds": 86340}, 201),
        ({"type": "weekly_restriction", "start_time_of_day": "00:00:00", "duration_seconds": 604740, "start_day_of_week": 1}, 201),
    ],
)  # fmt: skip
def test_sandbox_refuses_full_length_restrictions(
    sandbox: Sandbox, pd: PagerDutyClient, restriction: dict[str, Any], status: int
) -> None:
    """A window as long as its period is refused with code 3001."""
    response = post_schedule(sandbox, [a_layer(a_user(pd), restrictions=[restriction])])
    assert response.status_code == status
    if status == 400:
        assert response.json()["error"]["code"] == 3001


def test_sandbox_zeroes_seconds_in_layer_times(sandbox: Sandbox, pd: PagerDutyClient) -> None:
    """start, end and rotation_virtual_start come back on the whole minute."""
    sandbox.set_clock(lambda: T0 - timedelta(days=1))
    layer = a_layer(a_user(pd), start="2026-03-02T09:00:45Z", end="2026-04-01T10:30:59Z")
    response = post_schedule(sandbox, [layer])
    (got,) = response.json()["schedule"]["schedule_layers"]
    assert (got["start"], got["end"], got["rotation_virtual_start"]) == (
        "2026-03-02T09:00:00Z",
        "2026-04-01T10:30:00Z",
        "2026-03-02T09:00:00Z",
    )


def test_sandbox_lists_layers_in_reverse_of_written_order_and_observe_normalises(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """PagerDuty returns layers newest first; the snapshot holds them lowest priority first."""
    sandbox.set_clock(lambda: T0 - timedelta(days=1))
    user = a_user(pd)
    layers = [a_layer(user, name=n) for n in ("Bottom", "Middle", "Top")]
    created = post_schedule(sandbox, layers).json()["schedule"]
    assert [la["name"] for la in created["schedule_layers"]] == ["Top", "Middle", "Bottom"]
    listed = pd.get("/schedules", {"include[]": ["schedule_layers"], "query": "Quirks"})
    assert [la["name"] for la in listed["schedules"][0]["schedule_layers"]] == [
        "Top",
        "Middle",
        "Bottom",
    ]
    snapshot = observe(pd, None, with_layers_for={created["id"]})
    schedule = snapshot.schedule_by_id(created["id"])
    assert schedule is not None
    assert schedule.layers is not None
    assert [la.name for la in schedule.layers] == ["Bottom", "Middle", "Top"]


def test_sandbox_replaces_a_past_start_with_now_and_keeps_history(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """A layer re-sent with its past start comes back starting now; the past on-call stays rendered."""
    now = [T0 - timedelta(days=1)]
    sandbox.set_clock(lambda: now[0])
    first, second = a_user(pd, 0), a_user(pd, 1)
    created = post_schedule(sandbox, [a_layer(first)]).json()["schedule"]
    (layer,) = created["schedule_layers"]
    assert layer["start"] == "2026-03-02T09:00:00Z"  # in the future: kept
    now[0] = T0 + timedelta(days=5, seconds=30)
    body = {
        "schedule": {
            "type": "schedule",
            "time_zone": "Etc/UTC",
            "schedule_layers": [{**a_layer(second), "id": layer["id"]}],
        }
    }
    (updated,) = pd.put(f"/schedules/{created['id']}", body)["schedule"]["schedule_layers"]
    assert updated["start"] == "2026-03-07T09:00:00Z"  # the time of the request, on the minute
    rendered = pd.get(
        f"/schedules/{created['id']}",
        {"since": T0.isoformat(), "until": (T0 + timedelta(days=2)).isoformat()},
    )
    entries = rendered["schedule"]["final_schedule"]["rendered_schedule_entries"]
    assert entries, "the past on-call of the layer is still rendered"


def test_new_layer_sent_with_a_past_start_starts_now(sandbox: Sandbox, pd: PagerDutyClient) -> None:
    """Creating a layer whose start has passed: PagerDuty starts it at the time of the request."""
    sandbox.set_clock(lambda: T0 + timedelta(days=3, seconds=12))
    (got,) = post_schedule(sandbox, [a_layer(a_user(pd))]).json()["schedule"]["schedule_layers"]
    assert got["start"] == "2026-03-05T09:00:00Z"
    assert got["rotation_virtual_start"] == "2026-03-02T09:00:00Z"  # the anchor is kept


def test_layers_without_ids_in_the_list_fall_back_to_the_schedule_get(
    sandbox: Sandbox, pd: PagerDutyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list entry whose layers have no id (PagerDuty's own example) is read again by GET."""
    sandbox.set_clock(lambda: T0 - timedelta(days=1))
    created = post_schedule(sandbox, [a_layer(a_user(pd))]).json()["schedule"]
    original = pd.list_all

    def without_layer_ids(path: str, params: Any = None) -> list[dict[str, Any]]:
        items = original(path, params)
        if path == "/schedules":
            for item in items:
                for la in item.get("schedule_layers") or []:
                    la.pop("id", None)
        return items

    monkeypatch.setattr(pd, "list_all", without_layer_ids)
    snapshot = observe(pd, None, with_layers_for={created["id"]})
    schedule = snapshot.schedule_by_id(created["id"])
    assert schedule is not None
    assert schedule.layers is not None
    assert [la.id for la in schedule.layers] == [created["schedule_layers"][0]["id"]]
    assert ("GET", f"/schedules/{created['id']}", 200) in sandbox.requests


def _org_with(users: list[str]) -> Org:
    primary = {"name": "Primary", "rotation": "daily", "start": "2026-03-02T09:00:00"}
    return ops_org(users, [{**primary, "users": users}])


def test_changing_a_rotation_keeps_history_and_leaves_no_drift(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """Apply, let time pass, change the users, apply again at a time with seconds: the past on-call
    is unchanged, the hand-over is seamless on a whole minute, and the next plan is empty."""
    now = [T0 - timedelta(hours=1)]
    sandbox.set_clock(lambda: now[0])
    emails = sorted(u["email"] for u in pd.list_all("/users"))[:3]
    first = _org_with(emails[:2])
    assert apply(pd, plan(first, observe(pd, first), now=now[0])).results
    schedule_id = next(s["id"] for s in pd.list_all("/schedules") if s["name"] == "Ops On-Call")
    window = {"since": T0.isoformat(), "until": (T0 + timedelta(days=4)).isoformat()}

    def past() -> list[tuple[str, str]]:
        body = pd.get(f"/schedules/{schedule_id}", window)["schedule"]
        return [
            (e["start"], e["user"]["id"])
            for e in body["final_schedule"]["rendered_schedule_entries"]
        ]

    now[0] = T0 + timedelta(days=5, seconds=30)
    history = past()
    assert len(history) == 4
    second = _org_with(emails[1:])
    report = apply(pd, plan(second, observe(pd, second), now=now[0]))
    assert all(r.outcome == "applied" for r in report.results), report.results
    assert past() == history
    layers = pd.get(f"/schedules/{schedule_id}")["schedule"]["schedule_layers"]
    ended = next(la for la in layers if la["end"] is not None)
    current = next(la for la in layers if la["end"] is None)
    assert ended["end"] == current["start"] == "2026-03-07T09:01:00Z"
    now[0] += timedelta(minutes=2)
    assert plan(second, observe(pd, second), now=now[0]).changes == []


def test_plan_on_a_utc_schedule_shows_no_time_zone_drift(
    sandbox: Sandbox, pd: PagerDutyClient, tmp_path: Any
) -> None:
    """A schedule PagerDuty holds with `UTC` matches a file asking for `Etc/UTC`."""
    seed_org = load_org(_write(tmp_path)).org
    sandbox.set_clock(lambda: T0 - timedelta(hours=1))
    apply(pd, plan(seed_org, observe(pd, seed_org), now=T0 - timedelta(hours=1)))
    schedule = next(s for s in sandbox.state.schedules.values() if s["name"] == "Ops On-Call")
    schedule["time_zone"] = "UTC"  # as PagerDuty returns it for some schedules (TF #1148)
    assert pd.get(f"/schedules/{schedule['id']}")["schedule"]["time_zone"] == "UTC"
    assert plan(seed_org, observe(pd, seed_org), now=T0).changes == []


def _write(tmp_path: Any) -> Any:
    path = tmp_path / "org.yaml"
    path.write_text(
        "version: 1\norg: acme\ndepartments:\n  - key: ops\n    name: Ops\n    members: [alex.rivera@acme.test]\n"
        "    schedule:\n      layers:\n        - {name: Primary, rotation: daily, start: '2026-03-02T09:00:00', users: [alex.rivera@acme.test]}\n",
        encoding="utf-8",
    )
    return path


def test_audit_of_a_utc_schedule_asks_in_an_accepted_zone(
    sandbox: Sandbox, pd: PagerDutyClient, tmp_path: Any
) -> None:
    """A schedule PagerDuty returns with `UTC` is rendered by asking for `Etc/UTC`, which it accepts."""
    from pdorgsync.audit import run_audit

    org = load_org(_write(tmp_path)).org
    sandbox.set_clock(lambda: T0 - timedelta(hours=1))
    apply(pd, plan(org, observe(pd, org), now=T0 - timedelta(hours=1)))
    schedule = next(s for s in sandbox.state.schedules.values() if s["name"] == "Ops On-Call")
    schedule["time_zone"] = "UTC"
    report = run_audit(pd, org, now=T0)
    assert not [f for f in report.findings if f.rule == "COV002"]
    assert [d.coverage_ratio for d in report.departments] == [1.0]
