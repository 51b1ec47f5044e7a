"""CLI: ``pdorgsync plan`` and ``pdorgsync apply`` (SPEC §3).

Both build the plan the same way (load the org file, observe the account in bulk,
plan purely); ``apply`` then executes that very plan value. Reports go to stdout
(or ``--output``), progress and errors to stderr.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click

from pdorgsync.cli import AppContext, format_option, org_option, pass_app
from pdorgsync.core.render.plan_json import render_apply_json, render_plan_json
from pdorgsync.core.render.plan_markdown import render_plan_markdown
from pdorgsync.core.render.plan_text import (
    Styler,
    plain,
    render_apply_text,
    render_plan_text,
)
from pdorgsync.errors import PdOrgSyncError
from pdorgsync.loading import load_org
from pdorgsync.models.plan import Plan
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply as apply_plan
from pdorgsync.reconcile import plan_account

PRUNE_HELP = "Delete owned objects whose department left the file (orphans)."


def _progress(message: str) -> None:
    click.echo(f"pdorgsync: {message}", err=True)


def colour_for(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and "NO_COLOR" not in os.environ


def styler(colour: bool) -> Styler:
    """The shell's styling for the pure text renderers: ``click.style`` or plain text."""
    return click.style if colour else plain


def make_plan(
    app: AppContext, org_file: Path | None, prune: bool, at_next_handoff: bool
) -> tuple[Plan, PagerDutyClient]:
    """Load, observe, plan: the one way both commands build a plan."""
    settings = app.settings()
    loaded = load_org(org_file or settings.org_file)
    for warning in loaded.warnings:
        click.echo(str(warning), err=True)
    client = PagerDutyClient.from_settings(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    _progress(f"reading PagerDuty at {settings.api_url}")
    result = plan_account(
        client,
        loaded,
        now=now,
        prune=prune,
        at_next_handoff=at_next_handoff,
        progress=_progress,
    )
    for notice in result.notices:
        _progress(f"note: {notice}")
    return result, client


@click.command("plan")
@org_option
@click.option("--prune", is_flag=True, help=PRUNE_HELP + " Shown as deletes.")
@format_option(
    ["text", "json", "markdown"],
    "text for people, json for tools (SPEC §3 shape), markdown for PR comments.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Write the report here instead of stdout.",
)
@click.option(
    "--at-next-handoff",
    is_flag=True,
    help="Time schedule changes to each layer's next hand-off instead of now.",
)
@pass_app
def plan_cmd(
    app: AppContext,
    org_file: Path | None,
    prune: bool,
    fmt: str,
    output: Path | None,
    at_next_handoff: bool,
) -> None:
    """Show what would change in PagerDuty to match the org file (changes nothing).

    \b
    Like `terraform plan`: `+` create, `~` update, `-` delete, `=` adopt
    (an unmanaged same-named object taken over, with adopt_existing: true).
    Conflicts (unknown users, unowned same-named objects, unresolved
    references) block their department; orphans are objects pdorgsync owns
    whose department left the file, deleted only with --prune. Each schedule
    change shows who is on call over the next 7 days before and after.

    \b
    Exit codes: 0 no changes, 2 changes pending or a conflict, 1 error.

    \b
    Examples:
      pdorgsync plan --org org.yaml
      pdorgsync plan --format markdown -o plan.md     # for a PR comment
      pdorgsync plan --format json | jq .summary
    """
    result, client = make_plan(app, org_file, prune, at_next_handoff)
    calls = client.total_calls
    if fmt == "json":
        report = render_plan_json(result, api_calls=calls)
    elif fmt == "markdown":
        report = render_plan_markdown(result, api_calls=calls)
    else:
        stream = sys.stdout
        report = render_plan_text(
            result, api_calls=calls, style=styler(output is None and colour_for(stream))
        )
    if output is not None:
        output.write_text(report, encoding="utf-8")
        _progress(f"report written to {output}")
    else:
        click.echo(report, nl=False)
    raise click.exceptions.Exit(2 if result.has_changes else 0)


@click.command("apply")
@org_option
@click.option("--prune", is_flag=True, help=PRUNE_HELP)
@click.option("--yes", "-y", is_flag=True, help="Do not ask; required when not on a terminal.")
@click.option(
    "--at-next-handoff",
    is_flag=True,
    help="Time schedule changes to each layer's next hand-off instead of now.",
)
@format_option(["text", "json"], "Format of the apply report.")
@pass_app
def apply_cmd(
    app: AppContext,
    org_file: Path | None,
    prune: bool,
    yes: bool,
    at_next_handoff: bool,
    fmt: str,
) -> None:
    """Plan, confirm, and make PagerDuty match the org file.

    \b
    Shows the plan, asks for confirmation on a terminal (without a terminal,
    --yes is required), then applies it in dependency order: teams and
    memberships, schedules, escalation policies, services; deletes (only
    with --prune) in reverse. A department with a conflict is left alone;
    a failure in one department does not stop the others. Nothing pdorgsync
    does not own is ever changed or deleted.

    \b
    Exit codes: 0 everything applied, 1 something failed or was blocked.

    \b
    Examples:
      pdorgsync apply --org org.yaml
      pdorgsync apply --org org.yaml --yes --prune    # unattended (cron, CI)
    """
    if not yes and not sys.stdin.isatty():
        raise PdOrgSyncError("not on a terminal: pass --yes to apply without confirmation")
    result, client = make_plan(app, org_file, prune, at_next_handoff)
    style = styler(colour_for(sys.stdout))
    if not yes or not result.pending:
        click.echo(render_plan_text(result, api_calls=client.total_calls, style=style), nl=False)
    if not result.pending:
        raise click.exceptions.Exit(1 if result.conflicts else 0)
    if not yes and not click.confirm("Apply these changes to PagerDuty?", default=False):
        _progress("nothing applied")
        raise click.exceptions.Exit(1)
    report = apply_plan(client, result, progress=_progress)
    if fmt == "json":
        click.echo(render_apply_json(report), nl=False)
    else:
        click.echo(render_apply_text(report, style=style), nl=False)
    raise click.exceptions.Exit(0 if report.ok else 1)


COMMANDS = [plan_cmd, apply_cmd]
