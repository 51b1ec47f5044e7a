"""The audit shell against the sandbox: what it reads, what it finds, what it costs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pdorgsync.audit import parse_final_schedule, run_audit
from pdorgsync.cli import main
from pdorgsync.core.coverage import engagements_from_policies
from pdorgsync.core.coverage_objects import EngagementNeed
from pdorgsync.core.planning import plan
from pdorgsync.loading import load_org, load_policies
from pdorgsync.models.org import Org
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox
from tests.support.audit import NOW, SMALL_ORG, SMALL_SEED


@pytest.fixture
def small(_sandbox_server: Sandbox) -> Iterator[tuple[Sandbox, PagerDutyClient]]:
    """The session's sandbox holding only the small Finance account."""
    box = _sandbox_server
    box.reset(copy.deepcopy(SMALL_SEED))
    assert box.base_url is not None
    client = PagerDutyClient(
        "sandbox", box.base_url, "fiona.grant@acme.test", sleep=lambda _s: None
    )
    yield box, client
    errors = list(box.validation_errors)
    box.reset(None)
    assert errors == []


def test_audit_names_the_friday_gap_and_the_low_urgency_person(
    small: tuple[Sandbox, PagerDutyClient],
) -> None:
    """Layer restricted to Mon-Thu: every Friday 09:00-17:00 Chicago time is a gap."""
    _, client = small
    report = run_audit(client, SMALL_ORG, now=NOW)
    by_rule = {f.rule: f for f in report.findings}
    assert by_rule["COV002"].message == (
        "Finance has nobody on call Fri 09:00 – Fri 17:00 (8 h) 4 times in the next 28 days"
    )
    assert [g["local_start"] for g in by_rule["COV002"].details["gaps"]] == [
        "2026-03-06T09:00:00-06:00",
        "2026-03-13T09:00:00-05:00",  # after the US change to daylight time on 8 March
        "2026-03-20T09:00:00-05:00",
        "2026-03-27T09:00:00-05:00",
    ]
    assert by_rule["COV007"].details["email"] == "george.adams@acme.test"
    assert set(by_rule) == {"COV002", "COV007"}
    (dept,) = report.departments
    assert dept.coverage_ratio == pytest.approx(16 / 20)


def test_api_calls_are_counted_exactly_and_do_not_grow_with_the_horizon(
    small: tuple[Sandbox, PagerDutyClient],
) -> None:
    """Abilities + 5 list walks + 1 rendered schedule + 1 request per person on call: 9 for
    28 days as for 90; 8 for one week, when only Fiona is on call."""
    box, client = small
    counts = []
    for days in (7, 28, 90, 28):
        before = len(box.requests)
        report = run_audit(client, SMALL_ORG, now=NOW, horizon_days=days)
        assert report.api_calls == len(box.requests) - before
        counts.append(report.api_calls)
    assert counts == [8, 9, 9, 9]  # GET /abilities once per run (issue 10 item 12)
    routes = {path for _method, path, _status in box.requests[-8:]}
    assert any(p.startswith("/schedules/") for p in routes)


def test_department_absent_from_pagerduty_is_reported_not_crashed(
    small: tuple[Sandbox, PagerDutyClient],
) -> None:
    """A department that was never applied: COV001 saying so, full gap, no exception."""
    _, client = small
    org = SMALL_ORG.model_copy(
        update={
            "departments": [
                *SMALL_ORG.departments,
                SMALL_ORG.departments[0].model_copy(
                    update={"key": "hr", "name": "Human Resources", "service": None}
                ),
            ]
        }
    )
    report = run_audit(client, org, now=NOW, engagements=[EngagementNeed("hr", "subscriber", "p")])
    hr = [f for f in report.findings if f.department == "hr"]
    assert {f.rule for f in hr} == {"COV001", "COV008"}
    assert next(f for f in hr if f.rule == "COV001").details["absent_from_pagerduty"] is True
    assert report.departments[1].coverage_ratio == 0.0


def test_overrides_count_as_coverage(small: tuple[Sandbox, PagerDutyClient]) -> None:
    """An override on Friday fills that Friday's gap (final_schedule includes overrides)."""
    box, client = small
    seed = copy.deepcopy(SMALL_SEED)
    seed["schedules"][0]["overrides"] = [
        {
            "start": "2026-03-06T09:00:00-06:00",
            "end": "2026-03-06T17:00:00-06:00",
            "user": "ivan.petrov@acme.test",
        }
    ]
    box.reset(seed)
    report = run_audit(client, SMALL_ORG, now=NOW)
    gaps = next(f for f in report.findings if f.rule == "COV002").details["gaps"]
    assert len(gaps) == 3
    assert gaps[0]["local_start"] == "2026-03-13T09:00:00-05:00"


def test_final_schedule_entries_without_user_are_not_shifts() -> None:
    """An entry with no user is nobody on call."""
    shifts = parse_final_schedule(
        {
            "final_schedule": {
                "rendered_schedule_entries": [
                    {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z", "user": None},
                    {
                        "start": "2026-03-03T00:00:00Z",
                        "end": "2026-03-04T00:00:00Z",
                        "user": {"id": "PU1", "type": "user_reference"},
                    },
                ]
            }
        }
    )
    assert [(s.user_id, s.start.day) for s in shifts] == [("PU1", 3)]


# ---------------------------------------------------------------- the example account

EXAMPLE_NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _apply(pd: PagerDutyClient, org: Org, sandbox: Sandbox) -> None:
    # PagerDuty moves a past layer start to the time of the request: the sandbox must
    # live at the planning time, or the layers would start in its (real-time) future.
    sandbox.set_clock(lambda: EXAMPLE_NOW)
    report = apply(pd, plan(org, observe(pd, org), now=EXAMPLE_NOW))
    assert report.conflicts == []


def complete_org() -> dict[str, Any]:
    """examples/org.yaml with every deliberate hole filled."""
    data = load_org(EXAMPLES / "org.yaml").org.model_dump(mode="json", exclude_none=True)
    depts = {d["key"]: d for d in data["departments"]}
    finance_layer = depts["finance"]["schedule"]["layers"][0]
    finance_layer["restrictions"].append({"day": "fri", "start": "09:00", "hours": 8})
    depts["marketing"]["escalation_policy"]["levels"].append(
        {"targets": ["user:noah.kim@acme.test"]}
    )
    depts["product"]["service"] = {"description": "Product decisions during incidents"}
    depts["executive"]["service"] = {"description": "Executive briefings"}
    depts["hr"]["schedule"] = {
        "layers": [
            {
                "name": "Primary",
                "rotation": "weekly",
                "start": "2026-01-05T09:00:00",
                "users": ["hana.sato@acme.test", "ivan.petrov@acme.test"],
            }
        ]
    }
    depts["hr"]["escalation_policy"]["levels"].insert(0, {"targets": ["schedule"]})
    return data


def test_example_account_after_apply_names_every_deliberate_hole(
    pd: PagerDutyClient, sandbox: Sandbox
) -> None:
    """Seeded account + apply of examples/org.yaml: exactly the ON PURPOSE findings."""
    org = load_org(EXAMPLES / "org.yaml").org
    _apply(pd, org, sandbox)
    needs = engagements_from_policies(load_policies(EXAMPLES.parent / "policies", org).policies)
    report = run_audit(pd, org, now=EXAMPLE_NOW, engagements=needs)
    found = {(f.department, f.rule, f.severity) for f in report.findings}
    assert found == {
        ("finance", "COV002", "critical"),  # layer restricted to Mon-Thu
        ("hr", "COV001", "critical"),  # no schedule
        ("product", "COV001", "critical"),  # no service
        ("marketing", "COV003", "warning"),  # one level, one person
        ("executive", "COV001", "warning"),  # no service, coverage none
        ("sales", "COV006", "warning"),  # Sofia has no contact method
        ("sales", "COV007", "warning"),  # Liam: low urgency only; Sofia: no rules
    }
    finance = next(f for f in report.findings if f.rule == "COV002")
    assert finance.message == (
        "Finance has nobody on call Fri 09:00 – Fri 17:00 (8 h) 4 times in the next 28 days"
    )
    assert [(g["start"], g["end"]) for g in finance.details["gaps"]] == [
        ("2026-03-06T15:00:00+00:00", "2026-03-06T23:00:00+00:00"),
        ("2026-03-13T14:00:00+00:00", "2026-03-13T22:00:00+00:00"),
        ("2026-03-20T14:00:00+00:00", "2026-03-20T22:00:00+00:00"),
        ("2026-03-27T14:00:00+00:00", "2026-03-27T22:00:00+00:00"),
    ]
    hr = next(f for f in report.findings if f.department == "hr")
    assert hr.details["missing"] == ["schedule"]
    product = next(f for f in report.findings if f.department == "product")
    assert product.details["missing"] == ["service"]
    ratios = {d.key: d.coverage_ratio for d in report.departments}
    assert ratios["finance"] == pytest.approx(0.8)
    assert ratios["engineering"] == ratios["support"] == 1.0
    assert ratios["executive"] is None


def test_example_account_before_apply_reports_absent_departments(pd: PagerDutyClient) -> None:
    """The seed holds only Engineering (and a Support team): the rest are absent, no crash."""
    org = load_org(EXAMPLES / "org.yaml").org
    report = run_audit(pd, org, now=EXAMPLE_NOW)
    absent = {
        f.department
        for f in report.findings
        if f.rule == "COV001" and f.details.get("absent_from_pagerduty")
    }
    assert absent == {"marketing", "product", "executive", "sales", "hr", "finance"}
    assert not any(f.department == "engineering" for f in report.findings)


def test_complete_org_applied_exits_0_under_fail_on_critical(
    pd: PagerDutyClient,
    sandbox: Sandbox,
    sandbox_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fill every hole, apply, audit via the CLI: nothing critical, exit 0."""
    data = complete_org()
    _apply(pd, Org.model_validate(data), sandbox)
    org_file = tmp_path / "complete.yaml"
    org_file.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML 1.2
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PDORGSYNC_API_TOKEN", raising=False)
    result = CliRunner().invoke(
        main,
        [
            "audit",
            "--org",
            str(org_file),
            "--policies",
            str(EXAMPLES.parent / "policies"),
            "--at",
            EXAMPLE_NOW.isoformat(),
        ],
        env={"PDORGSYNC_API_URL": sandbox_url},
    )
    assert result.exit_code == 0, result.output
    assert "CRITICAL" not in result.stdout
    assert "Finance (finance) — business hours, America/Chicago — covered 100%" in result.stdout
