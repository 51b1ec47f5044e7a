"""`pdorgsync validate`: exit codes, located messages on stderr, summary on stdout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pdorgsync.cli import main
from tests.support.cli import isolated_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "org.yaml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with no PDORGSYNC_* settings and no API token."""
    return isolated_cli(monkeypatch, tmp_path)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["validate", *args])


def test_example_is_valid(workdir: Path) -> None:
    """The shipped example validates (exit 0), with its deliberate gaps as warnings."""
    shutil.copy(EXAMPLE, workdir / "org.yaml")
    result = run("--org", "org.yaml")
    assert result.exit_code == 0, result.output
    assert result.stdout == "org.yaml: valid (8 departments, 19 people, 3 warnings)\n"
    warnings = result.stderr.splitlines()
    assert len(warnings) == 3
    assert all(
        line.startswith("org.yaml:") and ": warning: departments[" in line for line in warnings
    )


def test_org_file_defaults_to_setting_without_token(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --org, PDORGSYNC_ORG_FILE is used, and no API token is needed."""
    (workdir / "conf").mkdir()
    shutil.copy(EXAMPLE, workdir / "conf" / "acme.yaml")
    monkeypatch.setenv("PDORGSYNC_ORG_FILE", "conf/acme.yaml")
    monkeypatch.setenv("PDORGSYNC_API_URL", "https://api.pagerduty.com")
    result = run()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("conf/acme.yaml: valid (8 departments")


def test_default_org_yaml_missing(workdir: Path) -> None:
    """With nothing configured, org.yaml in the current directory is expected."""
    result = run()
    assert result.exit_code == 1
    assert result.stderr == "org.yaml: no such file\n"
    assert result.stdout == "org.yaml: invalid (1 problem)\n"


def broken(replace: str, by: str) -> tuple[str, int]:
    """The example with one edit, and the 1-based line where the edit starts."""
    assert replace in EXAMPLE_TEXT, replace
    start = EXAMPLE_TEXT.index(replace)
    return EXAMPLE_TEXT.replace(replace, by, 1), EXAMPLE_TEXT.count("\n", 0, start) + 1


CASES = [
    pytest.param(
        "          rotation: weekly\n          start: \"2026-01-05T09:00:00\"     # a Monday",
        "          rotation: fortnightly\n          start: \"2026-01-05T09:00:00\"     # a Monday",
        0, 21,
        "departments[0].schedule.layers[0].rotation: expected daily, weekly or <N>h with 1 <= N <= 8760, got 'fortnightly'",
        id="rotation",
    ),
    pytest.param(
        "    name: Engineering\n",
        "    name: Engineering\n    name: Eng\n",
        1, 5,
        "departments[0]: duplicate key 'name' (first given at line {line})",
        id="duplicate-key",
    ),
    pytest.param(
        "    time_zone: America/Chicago\n",
        "    time_zone: America/Chicag\n",
        0, 16,
        "departments[7].time_zone: expected a time zone PagerDuty accepts, such as Europe/Berlin or Etc/UTC, got 'America/Chicag' (https://developer.pagerduty.com/docs/1afe25e9c94cb-types#time-zone)",
        id="unknown-zone",
    ),
    pytest.param(
        "    time_zone: America/Chicago\n",
        "    time_zone: US/Central\n",
        0, 16,
        "departments[7].time_zone: PagerDuty does not accept the time zone 'US/Central'; write 'America/Chicago', which tzdata says is the same zone",
        id="zone-pagerduty-refuses",
    ),
    pytest.param(
        "    coverage: always\n    time_zone: America/Los_Angeles\n",
        "    coverage: always\n    on: [incident.triggered]\n    time_zone: America/Los_Angeles\n",
        1, 5,
        "departments[0]: unknown key 'on'",
        id="on-is-a-key",
    ),
    pytest.param(
        'business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}',
        "business_hours: {days: [mon, tue, wed, thu, fri], start: 17:00, end: 09:00}",
        0, 5,
        "departments[7].business_hours: start 17:00 must be before end 09:00",
        id="unquoted-times-stay-strings",
    ),
    pytest.param(
        "    coverage: always\n    time_zone: America/New_York\n",
        "    coverage: always\n    escalation: yes\n    time_zone: America/New_York\n",
        1, 5,
        "departments[1]: unknown key 'escalation'",
        id="unknown-key",
    ),
    pytest.param(
        '        - {targets: ["schedule:engineering"]}',
        '        - {targets: ["schedule:enginering"]}',
        0, 22,
        "departments[1].escalation_policy.levels[2].targets[0]: no department with key 'enginering' (known: engineering, support, marketing, product, executive, sales, hr, finance)",
        id="bad-target-reference",
    ),
    pytest.param(
        '        - {delay_minutes: 15, targets: ["user:hana.sato@acme.test"]}',
        "        - {delay_minutes: 15, targets: [schedule]}",
        0, 41,
        "departments[6].escalation_policy.levels[0].targets[0]: target 'schedule' needs a schedule in department 'hr', which has none",
        id="own-schedule-missing",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("replace", "by", "line_offset", "column", "message"), CASES)
def test_broken_copy_is_invalid_with_located_message(
    workdir: Path, replace: str, by: str, line_offset: int, column: int, message: str
) -> None:
    """Each mistake exits 1 with exactly one `file:line:col: path: message` line and no traceback."""
    text, line = broken(replace, by)
    (workdir / "org.yaml").write_text(text, encoding="utf-8")
    result = run("--org", "org.yaml")
    assert result.exit_code == 1
    errors = [e for e in result.stderr.splitlines() if ": warning: " not in e]
    expected = f"org.yaml:{line + line_offset}:{column}: {message.format(line=line)}"
    assert errors == [expected]
    assert result.stdout == "org.yaml: invalid (1 problem)\n"
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_yaml_syntax_error_is_one_line(workdir: Path) -> None:
    """Broken YAML gives one located line and exit 1."""
    (workdir / "org.yaml").write_text("version: 1\norg: [acme\n", encoding="utf-8")
    result = run("--org", "org.yaml")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("org.yaml:3:1: while parsing a flow sequence (line 2, column 6)")


def test_all_problems_reported_in_file_order(workdir: Path) -> None:
    """Several mistakes are all reported in one run, ordered by line."""
    text, _ = broken("rotation: daily", "rotation: 0h")
    text, _ = (text.replace("function: finance", "function: money", 1), 0)
    (workdir / "org.yaml").write_text(text, encoding="utf-8")
    result = run("--org", "org.yaml")
    assert result.exit_code == 1
    errors = [e for e in result.stderr.splitlines() if ": warning: " not in e]
    assert len(errors) == 2
    lines = [int(e.split(":")[1]) for e in errors]
    assert lines == sorted(lines)
    assert "got '0h'" in errors[0]
    assert "expected one of engineering, support" in errors[1]
    assert result.stdout == "org.yaml: invalid (2 problems)\n"


def test_help_teaches_checks_exit_codes_and_example() -> None:
    """`validate --help` says what is checked, the exit codes and shows an example."""
    result = CliRunner().invoke(main, ["validate", "--help"])
    assert result.exit_code == 0
    for fragment in (
        "What is checked",
        "Exit codes: 0 valid",
        "1 invalid",
        "Example:",
        "--org",
        "--policies",
    ):
        assert fragment in result.output


def test_policy_dir_that_does_not_exist_is_skipped(workdir: Path) -> None:
    """A missing default policy directory does not make the org file invalid."""
    shutil.copy(EXAMPLE, workdir / "org.yaml")
    result = run("--org", "org.yaml", "--policies", "no-such-dir")
    assert result.exit_code == 0, result.output


PAGERDUTY_REFUSES = """\
version: 1
org: acme
defaults:
  time_zone: Europe/Kyiv
departments:
  - key: support
    name: Customer Support
    members: [sam@acme.test]
    schedule:
      layers:
        - name: Primary
          rotation: weekly
          start: "2026-01-05T09:00:30"
          users: [sam@acme.test]
          restrictions:
            - {start: "00:00", hours: 24}
"""


def test_what_pagerduty_would_refuse_is_three_located_errors(workdir: Path) -> None:
    """A zone PagerDuty refuses, a 24 h window and a start with seconds: three located errors, each saying what to write instead."""
    (workdir / "org.yaml").write_text(PAGERDUTY_REFUSES, encoding="utf-8")
    result = run("--org", "org.yaml")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [e for e in result.stderr.splitlines() if ": warning: " not in e]
    assert errors == [
        "org.yaml:4:14: defaults.time_zone: PagerDuty does not accept the time zone 'Europe/Kyiv'; write 'Europe/Kiev', which tzdata says is the same zone",
        "org.yaml:13:18: departments[0].schedule.layers[0].start: PagerDuty keeps schedule times to the minute (it zeroes seconds); write '2026-01-05T09:00:00' or another whole minute",
        "org.yaml:16:39: departments[0].schedule.layers[0].restrictions[0].hours: a daily window of 24 hours is the whole day, which PagerDuty refuses (code 3001); omit this restriction (a layer without restrictions is on call around the clock)",
    ]
    assert result.stdout == "org.yaml: invalid (3 problems)\n"
