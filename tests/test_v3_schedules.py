"""Shift-based (v3) schedules (issue 10, item 7; SPEC §1).

PagerDuty developer docs, "Schedules v2 to v3 Upgrade": an upgraded schedule keeps
its id, disappears from ``GET /schedules``, is listed under ``GET /v3/schedules``
and referenced as ``schedule_v3_reference``. pdorgsync must never recreate or
re-point it: the plan shows ``skip`` with the reason; the audit reads its on-call
from ``/v3/schedules/{id}`` and does not call its escalation levels "paging nobody".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pdorgsync.audit import run_audit
from pdorgsync.core.planning import plan
from pdorgsync.core.render.plan_text import render_plan_text
from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.loading import load_org
from pdorgsync.models.org import Org
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox
from tests.support.paths import EXAMPLES


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def org() -> Org:
    return load_org(EXAMPLES / "org.yaml").org


def _applied(pd: PagerDutyClient, org: Org) -> str:
    """Apply the example org; return the id of Engineering's schedule."""
    assert apply(pd, plan(org, observe(pd, org), now=_now())).ok
    engineering = org.department("engineering")
    assert engineering is not None
    return next(
        str(s["id"]) for s in pd.list_all("/schedules") if s["name"] == engineering.schedule_name
    )


def test_sandbox_moves_an_upgraded_schedule_to_v3(
    empty_sandbox: Sandbox, empty_pd: PagerDutyClient, org: Org
) -> None:
    """Upgraded: gone from /schedules, listed in /v3/schedules, targeted as schedule_v3_reference."""
    schedule_id = _applied(empty_pd, org)
    empty_sandbox.upgrade_schedule(schedule_id)
    assert schedule_id not in {s["id"] for s in empty_pd.list_all("/schedules")}
    [ref] = [s for s in empty_pd.list_all("/v3/schedules") if s["id"] == schedule_id]
    assert ref["type"] == "schedule_v3_reference"
    targets = [
        t
        for ep in empty_pd.list_all("/escalation_policies")
        for rule in ep["escalation_rules"]
        for t in rule["targets"]
        if t["id"] == schedule_id
    ]
    assert targets
    assert {t["type"] for t in targets} == {"schedule_v3_reference"}
    now = _now()
    body = empty_pd.get(
        f"/v3/schedules/{schedule_id}",
        {
            "since": now.isoformat(),
            "until": (now + timedelta(days=7)).isoformat(),
            "include[]": ["final_schedule"],
        },
    )["schedule"]
    assert body["type"] == "schedule_v3"
    assignments = body["final_schedule"]["computed_shift_assignments"]
    assert assignments
    assert all(a["member"]["type"] == "user_member" for a in assignments)
    other = next(s["id"] for s in empty_pd.list_all("/schedules"))
    with pytest.raises(PermanentPagerDutyError) as refused:
        empty_pd.get(f"/v3/schedules/{other}")
    assert refused.value.status == 400


def test_plan_skips_an_upgraded_managed_schedule_and_never_repoints_it(
    empty_sandbox: Sandbox, empty_pd: PagerDutyClient, org: Org
) -> None:
    """The upgraded schedule is a ``skip`` with its reason; nothing is created, changed or re-pointed."""
    schedule_id = _applied(empty_pd, org)
    empty_sandbox.upgrade_schedule(schedule_id)
    result = plan(org, observe(empty_pd, org), now=_now())
    assert result.pending == []
    assert not result.has_changes
    [skip] = result.changes
    assert (skip.action, skip.kind, skip.department, skip.id) == (
        "skip",
        "schedule",
        "engineering",
        schedule_id,
    )
    assert skip.reason is not None
    assert "shift-based (v3)" in skip.reason
    assert skip.requests == []
    assert skip.to_report()["reason"] == skip.reason
    assert "! skip schedule" in render_plan_text(result, api_calls=0)
    before = len(empty_sandbox.requests)
    report = apply(empty_pd, result)
    assert report.ok
    writes = [r for r in empty_sandbox.requests[before:] if r[0] != "GET"]
    assert writes == []


def test_audit_reads_v3_coverage_and_does_not_call_it_paging_nobody(
    empty_sandbox: Sandbox, empty_pd: PagerDutyClient, org: Org
) -> None:
    """Engineering's coverage is the same after the upgrade; no COV001, COV004 or COV009 for it."""
    schedule_id = _applied(empty_pd, org)
    now = _now()
    before = run_audit(empty_pd, org, now=now)
    empty_sandbox.upgrade_schedule(schedule_id)
    after = run_audit(empty_pd, org, now=now)

    def engineering(report: object) -> list[tuple[str, str]]:
        return [
            (f.rule, f.message)
            for f in getattr(report, "findings")  # noqa: B009  (typed by run_audit)
            if f.department == "engineering"
        ]

    assert engineering(after) == engineering(before)
    assert not [r for r, _ in engineering(after) if r in ("COV001", "COV004", "COV009")]
    ratio = {d.key: d.coverage_ratio for d in before.departments}["engineering"]
    assert ratio is not None
    assert {d.key: d.coverage_ratio for d in after.departments}["engineering"] == ratio
