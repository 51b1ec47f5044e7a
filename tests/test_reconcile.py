"""Plan + apply against the sandbox seeded with Acme's account (examples/)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from pdorgsync.errors import OutcomeUnknownError
from pdorgsync.loading import load_org
from pdorgsync.models.org import Org
from pdorgsync.models.plan import Plan
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox
from tests.support.paths import EXAMPLES
from tests.support.reconcile import RefuseNth, edited, now, plan_for


@pytest.fixture(scope="module")
def example_org() -> Org:
    return load_org(EXAMPLES / "org.yaml").org


def dept(data: dict[str, Any], key: str) -> dict[str, Any]:
    return next(d for d in data["departments"] if d["key"] == key)


def kinds(p: Plan) -> list[tuple[str, str, str]]:
    return [(c.action, c.kind, c.department) for c in p.changes]


def test_plan_lists_missing_objects_apply_creates_them_and_replan_is_clean(
    pd: PagerDutyClient, example_org: Org
) -> None:
    """Seeded example: plan shows the missing departments, apply creates, re-plan is empty."""
    first = plan_for(pd, example_org)
    assert first.has_changes
    created = {(c.kind, c.department) for c in first.changes if c.action == "create"}
    assert ("team", "finance") in created
    assert ("service", "finance") in created
    assert ("schedule", "support") in created
    report = apply(pd, first)
    assert report.ok, [r.error for r in report.results if r.error]
    assert report.count("applied") == len(first.changes)
    second = plan_for(pd, example_org)
    assert second.changes == []
    assert not second.has_changes


def test_changing_one_layers_users_is_one_schedule_update_keeping_history(
    pd: PagerDutyClient, example_org: Org
) -> None:
    """Dropping a user from one layer: exactly one schedule update; the old layer is ended."""
    apply(pd, plan_for(pd, example_org))

    def drop_dana(data: dict[str, Any]) -> None:
        layer = dept(data, "engineering")["schedule"]["layers"][0]
        layer["users"] = [u for u in layer["users"] if u != "dana.okafor@acme.test"]

    changed = edited(example_org, drop_dana)
    p = plan_for(pd, changed)
    assert kinds(p) == [("update", "schedule", "engineering")]
    assert [i.schedule for i in p.impacts] == ["Engineering On-Call"]
    assert apply(pd, p).ok
    assert plan_for(pd, changed).changes == []
    schedule_id = p.changes[0].id
    layers = pd.get(f"/schedules/{schedule_id}")["schedule"]["schedule_layers"]
    primaries = [la for la in layers if la["name"] == "Primary"]
    assert len(primaries) == 2
    assert sum(1 for la in primaries if la["end"] is None) == 1  # one open, one ended


def test_removed_department_is_an_orphan_deleted_only_with_prune(
    pd: PagerDutyClient, example_org: Org
) -> None:
    """A department gone from the file leaves orphans; only --prune deletes them."""
    apply(pd, plan_for(pd, example_org))
    without = edited(
        example_org,
        lambda d: d.update(departments=[x for x in d["departments"] if x["key"] != "marketing"]),
    )
    kept = plan_for(pd, without)
    assert {(o.kind, o.department) for o in kept.orphans} >= {
        ("team", "marketing"),
        ("service", "marketing"),
    }
    assert kept.changes == []
    assert not kept.has_changes  # orphans alone exit 0 without --prune
    apply(pd, kept)
    assert any(s["name"] == "Brand & PR" for s in pd.list_all("/services"))
    pruned = plan_for(pd, without, prune=True)
    assert {(c.action, c.department) for c in pruned.changes} == {("delete", "marketing")}
    assert apply(pd, pruned).ok
    assert not any(s["name"] == "Brand & PR" for s in pd.list_all("/services"))
    assert plan_for(pd, without, prune=True).changes == []


def unowned_support_service(sandbox: Sandbox, account_seed: dict[str, Any]) -> dict[str, Any]:
    seed: dict[str, Any] = json.loads(json.dumps(account_seed))
    seed["services"].append(
        {
            "name": "Customer Support",
            "description": "Hand-made intake service.",
            "escalation_policy": "Platform Escalation",
            "urgency": "low",
        }
    )
    sandbox.reset(seed)
    return seed


def test_unowned_same_named_service_is_a_conflict_and_untouched(
    sandbox: Sandbox, pd: PagerDutyClient, example_org: Org, account_seed: dict[str, Any]
) -> None:
    """An unmanaged service named like support's is a conflict; apply leaves it alone."""
    unowned_support_service(sandbox, account_seed)
    before = next(s for s in pd.list_all("/services") if s["name"] == "Customer Support")
    p = plan_for(pd, example_org)
    assert [(c.kind, c.department) for c in p.conflicts] == [("service", "support")]
    assert "support" not in {c.department for c in p.changes}
    report = apply(pd, p)
    assert not report.ok  # a conflict keeps the account from matching
    assert report.count("failed") == 0
    after = pd.get(f"/services/{before['id']}")["service"]
    assert after["description"] == before["description"]
    assert after["escalation_policy"]["id"] == before["escalation_policy"]["id"]


def test_adopt_existing_adopts_then_manages(
    sandbox: Sandbox, pd: PagerDutyClient, example_org: Org, account_seed: dict[str, Any]
) -> None:
    """With adopt_existing the service is adopted (marker added) and managed afterwards."""
    unowned_support_service(sandbox, account_seed)
    adopting = edited(example_org, lambda d: d["defaults"].update(adopt_existing=True))
    p = plan_for(pd, adopting)
    adopts = [c for c in p.changes if c.action == "adopt"]
    assert [(c.kind, c.name) for c in adopts] == [("service", "Customer Support")]
    assert apply(pd, p).ok
    service = pd.get(f"/services/{adopts[0].id}")["service"]
    assert service["description"].endswith("Managed by pdorgsync (org=acme, department=support)")
    assert plan_for(pd, adopting).changes == []
    urgent = edited(adopting, lambda d: dept(d, "support")["service"].update(urgency="low"))
    assert kinds(plan_for(pd, urgent)) == [("update", "service", "support")]


def test_failure_in_one_department_does_not_stop_the_others(
    sandbox: Sandbox, pd: PagerDutyClient, example_org: Org
) -> None:
    """The first change fails: its department is skipped, every other one is applied."""
    p = plan_for(pd, example_org)
    first = p.changes[0]
    sandbox.fail_next(1, status=400)
    report = apply(pd, p)
    failed = {(r.change.department, r.outcome) for r in report.results if r.outcome != "applied"}
    assert failed == {(first.department, "failed"), (first.department, "skipped")}
    others = [r for r in report.results if r.change.department != first.department]
    assert others
    assert all(r.outcome == "applied" for r in others)
    assert not report.ok


class LostResponse:
    """Delegates to the real client, but the first POST's response is lost after it landed."""

    def __init__(self, client: PagerDutyClient) -> None:
        self.client = client
        self.lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def post(self, path: str, body: Any, *, idempotent: bool = False) -> dict[str, Any]:
        result = self.client.post(path, body, idempotent=idempotent)
        if not self.lost:
            self.lost = True
            raise OutcomeUnknownError("read timed out", method="POST", path=path)
        return result


def test_unknown_outcome_is_looked_up_before_retrying(
    pd: PagerDutyClient, example_org: Org
) -> None:
    """A POST whose response was lost is found by marker and name, never created twice."""
    p = plan_for(pd, example_org)
    first = p.changes[0]
    assert first.action == "create"
    report = apply(LostResponse(pd), p)
    assert report.ok
    same_name = [t for t in pd.list_all("/teams") if t["name"] == first.name]
    assert len(same_name) == 1
    assert report.results[0].id == same_name[0]["id"]


def test_refused_delete_names_the_open_incident(
    sandbox: Sandbox, pd: PagerDutyClient, example_org: Org
) -> None:
    """When PagerDuty refuses to delete a policy, the report names its open incident."""
    apply(pd, plan_for(pd, example_org))
    service = next(s for s in pd.list_all("/services") if s["name"] == "Brand & PR")
    incident = pd.post(
        "/incidents",
        {
            "incident": {
                "type": "incident",
                "title": "Brand at risk",
                "service": {"id": service["id"], "type": "service_reference"},
            }
        },
    )["incident"]
    without = edited(
        example_org,
        lambda d: d.update(departments=[x for x in d["departments"] if x["key"] != "marketing"]),
    )
    p = plan_for(pd, without, prune=True)
    ep_delete = [i for i, c in enumerate(p.changes) if c.kind == "escalation_policy"]
    assert ep_delete
    # PagerDuty refuses deleting a policy an open incident still uses (CONTRACT §9.3);
    # the sandbox does not model that refusal, so make it refuse that one request.
    report = apply(RefuseNth(pd, sandbox, ep_delete[0] + 1), p)
    failed = [r for r in report.results if r.outcome == "failed"]
    assert [r.change.kind for r in failed] == ["escalation_policy"]
    assert incident["id"] in (failed[0].error or "")
    assert "resolve" in (failed[0].error or "")


def test_change_at_next_handoff_keeps_the_current_shift(
    pd: PagerDutyClient, example_org: Org
) -> None:
    """With at_next_handoff the old layer runs until its hand-off; re-plan is still empty."""
    apply(pd, plan_for(pd, example_org))

    def add_erin(data: dict[str, Any]) -> None:
        dept(data, "engineering")["schedule"]["layers"][0]["users"].append("erin.walsh@acme.test")

    changed = edited(example_org, add_erin)
    p = plan_for(pd, changed, at_next_handoff=True)
    assert kinds(p) == [("update", "schedule", "engineering")]
    assert apply(pd, p).ok
    layers = pd.get(f"/schedules/{p.changes[0].id}")["schedule"]["schedule_layers"]
    ended = [la for la in layers if la["name"] == "Primary" and la["end"] is not None]
    assert len(ended) == 1
    assert datetime.fromisoformat(ended[0]["end"]) > now()  # the current shift is not cut
    assert plan_for(pd, changed, at_next_handoff=True).changes == []
