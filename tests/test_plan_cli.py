"""`pdorgsync plan` and `pdorgsync apply` end to end on the sandbox (exit codes, reports)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pdorgsync.cli import main
from pdorgsync.cli.reconcile import colour_for
from pdorgsync.sandbox import Sandbox
from tests.support.cli import isolated_cli
from tests.support.paths import BOT_EMAIL

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "org.yaml"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Path:
    """A working directory with examples/org.yaml as org.yaml, settings pointing at the sandbox."""
    assert sandbox.base_url is not None
    isolated_cli(monkeypatch, tmp_path, api_url=sandbox.base_url, from_email=BOT_EMAIL)
    shutil.copy(EXAMPLE, tmp_path / "org.yaml")
    return tmp_path


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def writes(sandbox: Sandbox) -> list[tuple[str, str, int]]:
    return [r for r in sandbox.requests if r[0] != "GET"]


def test_plan_on_seeded_account_exits_2_and_lists_missing_objects(workdir: Path) -> None:
    """The seeded account lacks most departments: exit 2, creates listed, call count last."""
    result = run("plan")
    assert result.exit_code == 2, result.stderr
    assert '+ create team "Finance" (finance)' in result.stdout
    assert '+ create service "Finance Operations" (finance)' in result.stdout
    assert "Plan: " in result.stdout
    # 7 reads, GET /abilities and the v3 schedule walk (issue 10 items 7 and 12)
    assert result.stdout.rstrip().splitlines()[-1] == "API calls: 9"
    assert "\x1b[" not in result.stdout  # no colour when not on a terminal
    assert "reading users" in result.stderr  # progress goes to stderr


def test_plan_json_has_the_spec_shape(workdir: Path) -> None:
    """--format json: SPEC §3 keys, creates with null ids and from-null diffs, api_calls."""
    result = run("plan", "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert list(report) == ["changes", "conflicts", "orphans", "summary", "api_calls"]
    assert set(report["summary"]) == {"create", "update", "delete", "adopt"}
    create = next(c for c in report["changes"] if c["action"] == "create")
    assert set(create) == {"action", "kind", "department", "name", "id", "diff"}
    assert create["id"] is None
    assert all(v["from"] is None for v in create["diff"].values())
    assert report["summary"]["create"] == sum(
        1 for c in report["changes"] if c["action"] == "create"
    )


def test_apply_needs_yes_without_a_terminal(workdir: Path, sandbox: Sandbox) -> None:
    """Without a TTY and without --yes, apply refuses before writing anything."""
    result = run("apply")
    assert result.exit_code == 1
    assert "--yes" in result.stderr
    assert writes(sandbox) == []


def test_apply_yes_then_plan_shows_no_changes(workdir: Path) -> None:
    """apply --yes creates everything (exit 0); the next plan exits 0 with no changes."""
    applied = run("apply", "--yes")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "0 failed" in applied.stdout
    assert applied.stdout.rstrip().splitlines()[-1].startswith("API calls: ")
    again = run("plan")
    assert again.exit_code == 0, again.stdout
    assert "No changes" in again.stdout


def test_plan_markdown_to_a_file(workdir: Path) -> None:
    """--format markdown --output writes a PR-comment report; stdout stays empty."""
    result = run("plan", "--format", "markdown", "--output", "plan.md")
    assert result.exit_code == 2
    assert result.stdout == ""
    text = (workdir / "plan.md").read_text(encoding="utf-8")
    assert text.startswith("### pdorgsync plan for `acme`")
    assert "| `+` | create | team | Finance | finance |" in text
    assert text.rstrip().endswith("_API calls: 9_")


def test_unknown_user_is_a_located_conflict_and_apply_exits_1(workdir: Path) -> None:
    """A typo'd email blocks its department with file:line:col; apply applies the rest, exit 1."""
    text = (workdir / "org.yaml").read_text(encoding="utf-8")
    (workdir / "org.yaml").write_text(
        text.replace(
            "point_of_contact: fiona.grant@acme.test", "point_of_contact: fiona.grnt@acme.test"
        ),
        encoding="utf-8",
    )
    result = run("plan", "--format", "json")
    assert result.exit_code == 2
    (conflict,) = json.loads(result.stdout)["conflicts"]
    assert conflict["kind"] == "user"
    assert conflict["department"] == "finance"
    line = next(
        i
        for i, row in enumerate(text.splitlines(), 1)
        if "fiona.grant@acme.test" in row and "point_of_contact" in row
    )
    assert conflict["location"].startswith(f"org.yaml:{line}:")
    applied = run("apply", "--yes")
    assert applied.exit_code == 1
    assert "finance not applied" in applied.stdout
    assert run("plan", "--format", "json").exit_code == 2  # still blocked, rest is in sync


def test_org_file_defaults_to_the_setting(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --org, PDORGSYNC_ORG_FILE names the file."""
    (workdir / "org.yaml").rename(workdir / "acme.yaml")
    monkeypatch.setenv("PDORGSYNC_ORG_FILE", "acme.yaml")
    assert run("plan").exit_code == 2


def test_invalid_org_file_is_one_located_error(workdir: Path) -> None:
    """A broken org file: exit 1, file:line:column on stderr, no traceback."""
    (workdir / "org.yaml").write_text("version: 1\norg: Acme!\n", encoding="utf-8")
    result = run("plan")
    assert result.exit_code == 1
    assert result.stderr.startswith("org.yaml:2:")
    assert "Traceback" not in result.stderr


def test_help_teaches_symbols_and_exit_codes() -> None:
    """plan --help explains the symbols, conflicts, orphans and exit codes."""
    result = run("plan", "--help")
    assert result.exit_code == 0
    for words in ("+` create", "--prune", "--at-next-handoff", "Exit codes: 0 no changes, 2"):
        assert words in result.stdout
    assert "--yes" in run("apply", "--help").stdout


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colour on a TTY; never with NO_COLOR set, never into a pipe."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_for(Tty())
    assert not colour_for(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_for(Tty())
