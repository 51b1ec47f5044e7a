"""CLI: ``pdorgsync audit`` — who cannot be reached when needed, against the live account.

Reports go to stdout (or ``--output``); progress, logs and errors go to stderr. The exit
code says whether anything at or above ``--fail-on`` was found (3), so CI and cron can act
on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from pdorgsync.cli import AppContext, format_option, org_option, pass_app, policies_option
from pdorgsync.errors import ConfigError, PdOrgSyncError
from pdorgsync.models.audit import AuditReport

FAIL_FINDINGS = 3
FORMATS = ("text", "json", "markdown", "html")


def _renderer(fmt: str) -> Callable[[AuditReport], str]:
    if fmt == "json":
        from pdorgsync.core.render.audit_json import render_audit_json

        return render_audit_json
    if fmt == "markdown":
        from pdorgsync.core.render.audit_markdown import render_audit_markdown

        return render_audit_markdown
    if fmt == "html":
        from pdorgsync.core.render.audit_html import render_audit_html

        return render_audit_html
    from pdorgsync.core.render.audit_text import render_audit_text

    return render_audit_text


def _parse_at(value: str | None) -> datetime:
    """``--at``: the moment the audit is made as of (default: now)."""
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--at: expected an ISO-8601 time with offset such as 2026-12-24T00:00:00+01:00, "
            f"got {value!r}"
        ) from None
    if moment.tzinfo is None:
        raise ConfigError(f"--at: add an offset (e.g. +00:00 or Z) to {value!r}")
    return moment


@click.command("audit")
@org_option
@policies_option("For COV008 (skipped if the folder is absent).")
@click.option(
    "--horizon-days",
    type=click.IntRange(1, 90),
    default=28,
    show_default=True,
    help="How many days ahead to check, starting now (or at --at).",
)
@format_option(FORMATS, "Report format; html is one self-contained page with heat maps.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to this file instead of stdout.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "warning", "never"]),
    default="critical",
    show_default=True,
    help="Exit 3 when a finding at or above this severity exists.",
)
@click.option(
    "--at",
    "at_text",
    default=None,
    metavar="TIME",
    help="Audit as of TIME (ISO-8601 with offset) instead of now: the horizon starts "
    "there, e.g. before a holiday.",
)
@pass_app
@click.pass_context
def audit_cmd(
    ctx: click.Context,
    app: AppContext,
    org_file: Path | None,
    policy_dir: Path | None,
    horizon_days: int,
    fmt: str,
    output: Path | None,
    fail_on: str,
    at_text: str | None,
) -> None:
    """Find every department that cannot be reached when it is needed.

    Reads the live PagerDuty account (never writes), renders each department's
    final schedule (layers and overrides) over the horizon, and checks:

    \b
      COV001 critical  missing service, schedule or escalation policy
      COV002 critical  nobody on call inside the required window
                       (coverage: always = 24x7; business_hours = the
                       department's days and hours in its own time zone)
      COV003 warning   no real escalation path (one level, or one person)
      COV004 critical  a level pages an empty schedule or a missing user
      COV005 critical  service not routed to the department's policy, or disabled
      COV006 warning   point of contact missing, not a user, or unreachable
      COV007 warning   someone on call without a high-urgency notification rule
      COV008 critical  a policy engages a department lacking an escalation
                       policy (responder) or a team (subscriber)
      COV009 warning   shift-based (v3) schedule whose on-call PagerDuty did not give
      COV010 info      a policy engagement the account's plan does not allow
                       (no teams / coordinated_responding ability): skipped

    \b
    Exit codes: 0 nothing at or above --fail-on, 3 findings at or above
    --fail-on (default critical), 1 error, 2 usage error.

    \b
    Examples:
      pdorgsync audit --org examples/org.yaml
      pdorgsync audit --format html --output audit.html
      pdorgsync audit --format json --fail-on warning | jq .findings
      pdorgsync audit --at 2026-12-24T00:00:00+01:00 --horizon-days 14

    \b
    --at audits as of another moment: the horizon runs from TIME, over the
    account as it stands now (overrides already entered included), so you can
    check the holidays before they start.
    """
    from pdorgsync.audit import run_audit
    from pdorgsync.core.coverage import engagements_from_policies
    from pdorgsync.core.coverage_objects import EngagementNeed
    from pdorgsync.loading import load_org, load_policies
    from pdorgsync.pagerduty import PagerDutyClient

    now = _parse_at(at_text)
    settings = app.settings(org_file=org_file, policy_dir=policy_dir)

    def progress(message: str) -> None:
        click.echo(f"audit: {message}", err=True)

    loaded = load_org(settings.org_file)
    org = loaded.org
    engagements: list[EngagementNeed] = []
    if policy_dir is not None or settings.policy_dir.is_dir():
        policies = load_policies(settings.policy_dir, org)
        engagements = engagements_from_policies(policies.policies)
        progress(f"{len(policies.policies)} policies loaded from {settings.policy_dir}")
    else:
        progress(f"no policy folder at {settings.policy_dir}: COV008 not checked")
    client = PagerDutyClient.from_settings(settings)
    report = run_audit(
        client,
        org,
        now=now,
        horizon_days=horizon_days,
        engagements=engagements,
        progress=progress,
    )
    for notice in report.notices:
        click.echo(f"pdorgsync: note: {notice}", err=True)
    text = _renderer(fmt)(report)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise PdOrgSyncError(f"cannot write {output}: {exc.strerror or exc}") from None
        progress(f"report written to {output}")
    else:
        click.echo(text, nl=False)
    counts = report.counts()
    progress(
        f"{len(report.departments)} departments, {counts['critical']} critical, "
        f"{counts['warning']} warning, {report.api_calls} API calls"
    )
    if report.fails_on(fail_on):  # type: ignore[arg-type]  # click.Choice guarantees the literal
        ctx.exit(FAIL_FINDINGS)


COMMANDS = [audit_cmd]
