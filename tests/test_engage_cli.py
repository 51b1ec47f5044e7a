"""`pdorgsync engage`: explanations for one payload (offline and on the sandbox) and replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pdorgsync.cli import main
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from tests.support.engagement import (
    BOT_EMAIL,
    create_incident,
    engaged_state,
    org_and_policies,
    provision,
    webhook_data,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ORG = ROOT / "examples" / "org.yaml"
PACK = ROOT / "policies"
WEBHOOKS = Path(__file__).resolve().parent / "data" / "webhooks"


def engage(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        main,
        ["engage", *args, "--org", str(EXAMPLE_ORG), "--policies", str(PACK)],
        env=env,
    )


def payload(tmp_path: Path, name: str, **data: Any) -> Path:
    """A copy of an example delivery with some incident fields replaced."""
    body = json.loads((WEBHOOKS / f"{name}.json").read_text())
    body["event"]["data"].update(data)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


def test_triggered_example_without_priority_matches_nothing() -> None:
    """The example incident.triggered has no priority: every P1/P2 policy explains that."""
    result = engage("--event", str(WEBHOOKS / "incident.triggered.json"), "--dry-run", "--offline")
    assert result.exit_code == 0, result.output
    out = result.stdout
    liaison = next(line for line in out.splitlines() if "support-customer-liaison" in line)
    assert liaison.startswith("  no match")
    assert liaison.endswith("incident has no priority (wanted one of P1, P2)")
    assert "no match product-multi-service" in out
    assert "1 impacted service in the last 60 minutes, fewer than 2" in out
    assert "would engage (dry run): nothing" in out


def test_priority_updated_example_engages_executives() -> None:
    """The example priority_updated to P1 subscribes the executives, and says why others don't."""
    result = engage(
        "--event", str(WEBHOOKS / "incident.priority_updated.json"), "--dry-run", "--offline"
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "MATCH    executive-major-incident" in out
    assert "executive as subscriber (policy executive-major-incident)" in out
    # its service is not labelled in org.yaml, so customer-facing policies explain that
    assert "'checkout-api (payments)' has no labels, none of customer-facing" in out


def test_customer_facing_p1_engages_liaison_and_stakeholders(tmp_path: Path) -> None:
    """A P1 on Checkout API (customer-facing, billing) engages support, sales, executives, finance."""
    event = payload(
        tmp_path,
        "incident.priority_updated",
        service={"id": "PSVC0A1", "type": "service_reference", "summary": "Checkout API"},
    )
    result = engage("--event", str(event), "--dry-run", "--offline", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    engaged = {(e["department"], e["as"], e["policy"]) for e in report["engagements"]}
    assert engaged == {
        ("support", "responder", "support-customer-liaison"),
        ("sales", "subscriber", "sales-customer-impact"),
        ("executive", "subscriber", "executive-major-incident"),
        ("finance", "subscriber", "finance-billing-impact"),
    }
    liaison = next(e for e in report["engagements"] if e["department"] == "support")
    assert liaison["message"].startswith("Customer Liaison needed for #4821 (P1, Checkout API)")
    assert report["incident"]["labels"] == ["billing", "customer-facing"]


def test_security_incident_on_payroll_engages_hr(tmp_path: Path) -> None:
    """A data breach on Payroll Sync (employee-data) brings HR in as responder."""
    event = payload(
        tmp_path,
        "incident.triggered",
        title="Security breach: payroll records exposed",
        service={"id": "PSVC9", "type": "service_reference", "summary": "Payroll Sync"},
    )
    result = engage("--event", str(event), "--dry-run", "--offline")
    assert result.exit_code == 0, result.output
    assert "hr as responder (policy hr-employee-data-security)" in result.stdout


def test_ping_is_acknowledged_and_ignored() -> None:
    """A pagey.ping carries no incident: nothing to evaluate, exit 0."""
    result = engage("--event", str(WEBHOOKS / "pagey.ping.json"), "--dry-run", "--offline")
    assert result.exit_code == 0
    assert "nothing to do" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "body is not JSON"),
        ('{"event": {"id": "x"}}', "not a V3 webhook envelope"),
        (
            '{"event": {"id": "E1", "event_type": "incident.triggered", '
            '"data": {"type": "incident", "id": "Q1"}}}',
            "created_at",
        ),
    ],
)
def test_bad_payload_is_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    """A payload that is not a V3 incident envelope is a one-line error, exit 1."""
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = engage("--event", str(path), "--dry-run", "--offline")
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_policies_give_located_errors(tmp_path: Path) -> None:
    """engage refuses to run invalid policies and points at the mistake."""
    (tmp_path / "x.yaml").write_text("policies:\n  - name: x\n    when: {priorities: [P1]}\n")
    result = CliRunner().invoke(
        main,
        [
            "engage",
            "--event",
            str(WEBHOOKS / "incident.triggered.json"),
            "--dry-run",
            "--offline",
            "--org",
            str(EXAMPLE_ORG),
            "--policies",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert f"{tmp_path / 'x.yaml'}:2:5: policies[0].engage: required" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either --event FILE or --replay"),
        (["--replay"], "--replay needs --since"),
        (["--replay", "--since", "yesterday", "--dry-run"], "--since: expected a duration"),
        (["--replay", "--since", "400d", "--dry-run"], "at most 180 days"),
        (["--event", "x.json", "--offline"], "--offline works only with --event and --dry-run"),
    ],
)
def test_usage_mistakes_are_explained(args: list[str], message: str) -> None:
    """Wrong option combinations give one clear line and exit 1."""
    result = engage(*args, env={"PDORGSYNC_API_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 1
    assert message in result.stderr


def test_help_teaches_both_modes() -> None:
    """`engage --help` explains --event, --replay, --dry-run and the exit codes."""
    result = CliRunner().invoke(main, ["engage", "--help"])
    assert result.exit_code == 0
    for text in ("--event", "--replay --since 30d", "--dry-run", "first condition", "Exit codes"):
        assert text in result.stdout


# --------------------------------------------------------------------------- on the sandbox


def _sandbox_env(url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "PDORGSYNC_API_URL": url,
        "PDORGSYNC_FROM_EMAIL": BOT_EMAIL,
        "PDORGSYNC_STATE_PATH": str(tmp_path / "state.db"),
    }


def _writes(sandbox: Sandbox, since: int) -> list[tuple[str, str, int]]:
    return [r for r in list(sandbox.requests)[since:] if r[0] != "GET"]


def test_replay_dry_run_explains_past_incidents(
    sandbox: Sandbox, pd: PagerDutyClient, tmp_path: Path
) -> None:
    """Replay over the sandbox prints what each policy would have engaged, writing nothing."""
    checkout = create_incident(pd, "Checkout API down for all customers", "Checkout API", "P1")
    payroll = create_incident(pd, "Payroll records breach suspected", "Payroll Sync", "P3")
    before = len(sandbox.requests)
    result = engage(
        "--replay", "--since", "1d", "--dry-run", env=_sandbox_env(sandbox.base_url or "", tmp_path)
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert _writes(sandbox, before) == []
    blocks = out.split(" incident #")
    checkout_block = next(b for b in blocks if b.startswith(f"{checkout['incident_number']} "))
    payroll_block = next(b for b in blocks if b.startswith(f"{payroll['incident_number']} "))
    for line in (
        "support as responder (policy support-customer-liaison)",
        "sales as subscriber (policy sales-customer-impact)",
        "executive as subscriber (policy executive-major-incident)",
        "finance as subscriber (policy finance-billing-impact)",
    ):
        assert line in checkout_block
    assert "hr as responder (policy hr-employee-data-security)" in payroll_block
    # two services with open incidents within the hour: Product helps decide
    assert "product as responder (policy product-multi-service)" in payroll_block
    assert "no match executive-major-incident" in payroll_block
    assert "priority P3 is not one of P1" in payroll_block
    summary = out[out.index("summary over") :]
    assert summary.splitlines()[1].split() == ["policy", "matched", "engagements", "skipped"]
    row = next(
        line for line in summary.splitlines() if line.startswith("hr-employee-data-security")
    )
    assert row.split()[1:] == ["1", "1", "0"]


def test_event_dry_run_finds_managed_service_labels_by_id(
    sandbox: Sandbox, pd: PagerDutyClient, tmp_path: Path
) -> None:
    """Online, a managed service's labels are found by id, whatever name the webhook shows."""
    incident = create_incident(pd, "Platform latency", "Engineering Platform", "P2")
    data = webhook_data(incident)
    data["service"] = {**data["service"], "summary": "eng-platform (renamed in the UI)"}
    envelope = {
        "event": {
            "id": "01TESTEVENT",
            "event_type": "incident.triggered",
            "resource_type": "incident",
            "occurred_at": incident["created_at"],
            "agent": None,
            "client": None,
            "data": data,
        }
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(envelope))
    result = engage(
        "--event", str(path), "--dry-run", env=_sandbox_env(sandbox.base_url or "", tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "(labels: customer-facing)" in result.stdout
    assert "support as responder (policy support-customer-liaison)" in result.stdout
    assert "no match executive-major-incident" in result.stdout


def test_replay_without_dry_run_engages_only_open_incidents(
    sandbox: Sandbox, pd: PagerDutyClient, tmp_path: Path
) -> None:
    """A real replay engages open incidents through the worker and leaves resolved ones alone."""
    org, _ = org_and_policies()
    ids = provision(pd, org)
    resolved = [
        i
        for i in pd.list_all("/incidents", {"since": "2000-01-01T00:00:00Z"})
        if i["status"] == "resolved"
    ]
    assert resolved, "the example account seeds a resolved incident"
    incident = create_incident(pd, "Checkout API down", "Checkout API", "P1")
    result = engage("--replay", "--since", "1d", env=_sandbox_env(sandbox.base_url or "", tmp_path))
    assert result.exit_code == 0, result.output
    assert "only incidents that are still open are engaged" in result.stdout
    assert "engaged on 1 open incident" in result.stdout
    eps, teams, _notes = engaged_state(sandbox, incident["id"])
    assert eps == [ids["support"]["escalation_policy"]]
    assert teams == sorted(ids[k]["team"] for k in ("sales", "executive", "finance"))
    assert engaged_state(sandbox, resolved[0]["id"])[:2] == ([], [])
