"""PagerDuty's published examples as a fixture: commands run on PagerDuty's own data.

The sandbox in "examples" mode answers each request with the response example of its
operation from PagerDuty's official OpenAPI description (``sandbox/examples.py``). The
commands must neither crash nor end in "internal error" on that data: it is what
PagerDuty says its API returns (e.g. schedule layers without ids in a list).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pdorgsync.cli import main
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from tests.support.cli import isolated_cli
from tests.support.paths import TEST_DATA
from tests.support.webhooks import WEBHOOK_DIR

ORG = TEST_DATA / "examples-org.yaml"
POLICIES = TEST_DATA / "examples-policies"
PAYLOADS = sorted(p.name for p in WEBHOOK_DIR.glob("*.json") if p.name != "index.json")


def run(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    isolated_cli(monkeypatch, tmp_path)
    env = {
        "PDORGSYNC_API_URL": str(sandbox.base_url),
        "PDORGSYNC_FROM_EMAIL": "125.greenholt.earline@graham.name",
        "PDORGSYNC_POLICY_DIR": str(POLICIES),
        "PDORGSYNC_STATE_PATH": str(tmp_path / "state.db"),
    }
    return CliRunner().invoke(main, list(args), env=env)


def assert_no_crash(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "internal error" not in result.output
    assert "Traceback" not in result.output


def test_examples_mode_serves_pagerdutys_example(examples_sandbox: Sandbox) -> None:
    """GET /schedules with layers is the "With Schedule Layers" example: its layers have no id."""
    assert examples_sandbox.base_url is not None
    client = PagerDutyClient(
        examples_sandbox.token, examples_sandbox.base_url, None, sleep=lambda _s: None
    )
    listed = client.list_all("/schedules", {"include[]": ["schedule_layers"]})
    assert [s["name"] for s in listed] == ["Daily Engineering Rotation"]
    assert all("id" not in layer for layer in listed[0]["schedule_layers"])
    assert "schedule_layers" not in client.list_all("/schedules")[0]  # the "Basic Example"
    own = client.get("/schedules/PI7DH85")["schedule"]
    assert all(layer.get("id") for layer in own["schedule_layers"])


@pytest.mark.parametrize(
    ("command", "exit_code", "expected", "layers_fetched"),
    [
        # Layers without ids fall back to the schedule's GET; the plan reports changes.
        (["plan"], 2, 'adopt schedule "Daily Engineering Rotation"', True),
        (["plan", "--format", "json"], 2, '"kind": "schedule"', False),  # the same data
        (["audit", "--format", "json"], 3, '"rule": "COV002"', False),  # findings, exit 3
        # apply sends its writes and reads PagerDuty's example answers to them.
        (["apply", "--yes"], 0, "0 failed", False),
        # engage --replay over the example incident list explains what would have matched.
        (
            ["engage", "--replay", "--since", "30d", "--dry-run"],
            0,
            "engineering-on-everything",
            False,
        ),
    ],
    ids=["plan", "plan-json", "audit", "apply", "engage-replay"],
)
def test_commands_run_on_pagerdutys_examples(
    examples_sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    exit_code: int,
    expected: str,
    layers_fetched: bool,
) -> None:
    """plan (text and JSON), audit, apply and engage --replay run on the examples and
    report, no crash."""
    result = run(
        examples_sandbox, tmp_path, monkeypatch, command[0], "--org", str(ORG), *command[1:]
    )
    assert_no_crash(result)
    assert result.exit_code == exit_code, result.output
    assert expected in result.stdout
    if layers_fetched:
        assert ("GET", "/schedules/PI7DH85", 200) in examples_sandbox.requests


@pytest.mark.parametrize("payload", PAYLOADS)
def test_engage_runs_on_every_example_webhook(
    examples_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: str
) -> None:
    """engage --event on each of PagerDuty's example deliveries: done, or one clear error line."""
    result = run(
        examples_sandbox,
        tmp_path,
        monkeypatch,
        "engage",
        "--event",
        str(WEBHOOK_DIR / payload),
        "--org",
        str(ORG),
    )
    assert_no_crash(result)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.stderr


def test_import_runs_on_pagerdutys_examples(
    examples_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """import writes an org file from PagerDuty's examples that validate accepts, sending no write."""
    out = tmp_path / "imported.yaml"
    result = run(examples_sandbox, tmp_path, monkeypatch, "import", "--output", str(out))
    assert_no_crash(result)
    assert result.exit_code == 0, result.output
    assert all(method == "GET" for method, _path, _status in examples_sandbox.requests)
    (tmp_path / "no-policies").mkdir()
    checked = run(
        examples_sandbox, tmp_path, monkeypatch, "validate", "--org", str(out), "--policies",
        str(tmp_path / "no-policies"),
    )  # fmt: skip
    assert checked.exit_code == 0, checked.output + out.read_text()
