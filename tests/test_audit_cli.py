"""`pdorgsync audit` on the sandbox: exit codes, formats, output file, progress on stderr."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pdorgsync.cli import main
from pdorgsync.sandbox import Sandbox
from tests.support.audit import SMALL_SEED, weekdays
from tests.support.cli import isolated_cli

ORG_YAML = """\
version: 1
org: acme
departments:
  - key: finance
    name: Finance
    function: finance
    point_of_contact: fiona.grant@acme.test
    members: [fiona.grant@acme.test, george.adams@acme.test]
    coverage: business_hours
    time_zone: America/Chicago
    service: {name: Finance Operations}
"""

NOW = "2026-03-02T08:00:00+00:00"


def complete_seed() -> dict[str, Any]:
    """The small account with Friday covered and everyone on high urgency."""
    seed = copy.deepcopy(SMALL_SEED)
    seed["schedules"][0]["layers"][0]["restrictions"] = weekdays([1, 2, 3, 4, 5])
    for user in seed["users"]:
        user["notification_rules"] = [{"contact_method": "work", "urgency": "high"}]
    return seed


@pytest.fixture
def workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _sandbox_server: Sandbox
) -> Iterator[Path]:
    """A working dir with org.yaml, pointed at a sandbox holding the small account."""
    isolated_cli(monkeypatch, tmp_path)
    (tmp_path / "org.yaml").write_text(ORG_YAML, encoding="utf-8")
    box = _sandbox_server
    box.reset(copy.deepcopy(SMALL_SEED))
    assert box.base_url is not None
    monkeypatch.setenv("PDORGSYNC_API_URL", box.base_url)
    yield tmp_path
    errors = list(box.validation_errors)
    box.reset(None)
    assert errors == []


def audit(*args: str, at: str | None = NOW) -> Result:
    """`pdorgsync audit` as of NOW (the seed's schedules start then), or really now."""
    return CliRunner().invoke(main, ["audit", *(["--at", at] if at else []), *args])


def test_text_report_names_the_gap_and_exits_3(workdir: Path) -> None:
    """A critical gap: the table shows it, progress goes to stderr, exit code 3."""
    result = audit("--org", "org.yaml")
    assert result.exit_code == 3, result.output
    assert "Finance has nobody on call Fri 09:00 – Fri 17:00 (8 h) 4 times" in result.stdout
    assert "Fri 6 Mar 09:00 CST" in result.stdout
    assert "9 PagerDuty API calls." in result.stdout  # incl. GET /abilities
    assert "audit: rendering 1 schedules over 28 days" in result.stderr
    assert "audit:" not in result.stdout


@pytest.mark.parametrize(("fail_on", "code"), [("never", 0), ("warning", 3), ("critical", 3)])
def test_fail_on_threshold(workdir: Path, fail_on: str, code: int) -> None:
    """--fail-on decides whether findings fail the run."""
    assert audit("--fail-on", fail_on).exit_code == code


def test_json_report_to_file_has_the_spec_shape(workdir: Path) -> None:
    """--format json --output: SPEC §3 keys, times with offsets, nothing on stdout."""
    result = audit("--format", "json", "--output", "audit.json", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = json.loads((workdir / "audit.json").read_text(encoding="utf-8"))
    assert {"generated_at", "horizon", "findings", "departments"} <= set(data)
    assert data["horizon"] == {
        "since": NOW,
        "until": "2026-03-30T08:00:00+00:00",
        "days": 28,
    }
    (dept,) = data["departments"]
    assert dept["key"] == "finance"
    assert dept["coverage_ratio"] == 0.8
    assert dept["gaps"][0] == {
        "start": "2026-03-06T15:00:00+00:00",
        "end": "2026-03-06T23:00:00+00:00",
        "local_start": "2026-03-06T09:00:00-06:00",
        "local_end": "2026-03-06T17:00:00-06:00",
        "hours": 8.0,
    }
    rules = {f["rule"]: f["severity"] for f in data["findings"]}
    assert rules == {"COV002": "critical", "COV007": "warning"}
    assert data["api_calls"] == 9


@pytest.fixture
def box(_sandbox_server: Sandbox) -> Sandbox:
    """The session's sandbox (the one ``workdir`` points at)."""
    return _sandbox_server


def test_complete_account_exits_0(workdir: Path, box: Sandbox) -> None:
    """Mon-Fri covered, everyone reachable on high urgency: clean audit, exit 0."""
    box.reset(complete_seed())
    result = audit("--fail-on", "warning")
    assert result.exit_code == 0, result.output
    assert "No findings" in result.stdout
    assert "covered 100%" in result.stdout


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_other_formats(workdir: Path, fmt: str) -> None:
    """Markdown and HTML carry the same finding."""
    result = audit("--format", fmt, "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert "Finance has nobody on call Fri 09:00 – Fri 17:00 (8 h) 4 times" in result.stdout


def test_policies_feed_cov008(workdir: Path) -> None:
    """A policy engaging a department without a team in PagerDuty is critical."""
    (workdir / "policies").mkdir()
    (workdir / "org.yaml").write_text(
        ORG_YAML + "  - key: hr\n    name: Human Resources\n    function: hr\n    coverage: none\n",
        encoding="utf-8",
    )
    (workdir / "policies" / "hr.yaml").write_text(
        "policies:\n  - name: hr-safety\n    engage:\n      - {department: hr, as: subscriber}\n",
        encoding="utf-8",
    )
    result = audit("--format", "json", "--policies", "policies", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    found = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "COV008"]
    assert [(f["department"], f["details"]["problem"]) for f in found] == [("hr", "no_team")]


def test_errors_are_one_line_and_exit_1(workdir: Path) -> None:
    """A broken org file or a bad --at is one clear line, exit 1."""
    (workdir / "bad.yaml").write_text("version: 1\norg: acme\ndepartments: 3\n", encoding="utf-8")
    result = audit("--org", "bad.yaml")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("bad.yaml:3:")
    result = audit(at="tomorrow")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --at: expected an ISO-8601 time")
    result = audit(at="2026-12-24T00:00:00")
    assert result.exit_code == 1
    assert "--at: add an offset" in result.stderr
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(workdir: Path) -> None:
    """An out-of-range horizon is refused by the CLI library (exit 2)."""
    assert audit("--horizon-days", "0").exit_code == 2
    assert audit("--format", "pdf").exit_code == 2


def test_help_teaches_rules_and_exit_codes(workdir: Path) -> None:
    """--help lists every rule id and the exit codes."""
    result = audit("--help")
    assert result.exit_code == 0
    for rule in ("COV001", "COV002", "COV003", "COV004", "COV005", "COV006", "COV007", "COV008"):
        assert rule in result.stdout
    assert "3 findings at or above" in result.stdout


def test_at_audits_as_of_another_moment_and_is_documented(workdir: Path) -> None:
    """--at moves the horizon (e.g. to the holidays) and --help says so; no hidden env hook."""
    holiday = "2026-12-24T00:00:00+01:00"
    report = json.loads(audit("--format", "json", "--fail-on", "never", at=holiday).stdout)
    assert report["horizon"]["since"] == holiday
    assert report["horizon"]["until"] == "2027-01-21T00:00:00+01:00"  # 28 days on
    assert "--at TIME" in audit("--help", at=None).stdout
    hooked = CliRunner().invoke(
        main,
        ["audit", "--format", "json", "--fail-on", "never"],
        env={"PDORGSYNC_AUDIT_NOW": holiday},
    )
    assert json.loads(hooked.stdout)["horizon"]["since"] != report["horizon"]["since"]
