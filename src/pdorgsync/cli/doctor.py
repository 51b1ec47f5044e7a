"""CLI: ``pdorgsync doctor`` — read-only checks of a connection to PagerDuty (SPEC §3).

Exit codes: 0 all good, 3 something to fix, 1 error (settings, network).
"""

from __future__ import annotations

from pathlib import Path

import click

from pdorgsync.cli import AppContext, org_option, pass_app, policies_option
from pdorgsync.errors import FileValidationError


@click.command("doctor")
@org_option
@policies_option("To know which abilities and webhook events they need.")
@pass_app
def doctor_cmd(app: AppContext, org_file: Path | None, policy_dir: Path | None) -> None:
    """Check, read-only, what a first connection to PagerDuty needs.

    \b
    One line per check, OK / FIX / INFO:
      token        works? an account-level or a user-level key?
      from_email   PDORGSYNC_FROM_EMAIL is a PagerDuty user
      abilities    the plan-gated features the org file and policies need
      webhook      the subscription for `pdorgsync serve` exists and is enabled
      rate_limit   headroom left, from PagerDuty's ratelimit-* headers

    \b
    Exit codes: 0 all good, 3 something to fix, 1 error.
    """
    from pdorgsync import loading
    from pdorgsync.cli.webhook import DESCRIPTION, needed_events
    from pdorgsync.doctor import Check, run_checks
    from pdorgsync.pagerduty import PagerDutyClient, resolve_target

    settings = app.settings()
    # A check answers now or says why: no backoff sleeps on a connection that fails.
    client = PagerDutyClient.from_settings(settings, max_attempts=1)
    files: list[Check] = []
    org = None
    policies = []
    try:
        org = loading.load_org(org_file or settings.org_file).org
        policies = loading.load_policies(policy_dir or settings.policy_dir, org).policies
    except FileValidationError as exc:
        first = exc.problems[0] if exc.problems else "invalid"
        files.append(
            Check("files", "fix", f"{first} (run `pdorgsync validate`); abilities checked partly")
        )
    events = needed_events([t for p in policies for t in p.on])
    checks = files + run_checks(
        client,
        from_email=settings.from_email,
        org=org,
        policies=policies,
        events=events,
        webhook_description=DESCRIPTION,
        budget_per_minute=settings.effective_rate_limit(resolve_target(settings).sandbox) or 0,
    )
    for check in checks:
        click.echo(check.line())
    raise click.exceptions.Exit(3 if any(c.status == "fix" for c in checks) else 0)


COMMANDS = [doctor_cmd]
