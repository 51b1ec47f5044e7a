"""CLI: ``pdorgsync import`` (SPEC §3, §6): write an org file from the live account.

Read-only: it observes the account and writes one local file (or stdout with
``-``). Progress and the summary of what did not fit go to stderr.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from pdorgsync.cli import AppContext, pass_app
from pdorgsync.errors import ConfigError
from pdorgsync.importer import build, read_account, render_yaml, summary, write_atomically
from pdorgsync.models.org import KEY_RE
from pdorgsync.pagerduty import PagerDutyClient


def _progress(message: str) -> None:
    click.echo(f"pdorgsync: {message}", err=True)


@click.command("import")
@click.option(
    "--output",
    "-o",
    default="org.yaml",
    show_default=True,
    help="The org file to write; '-' writes to stdout.",
)
@click.option(
    "--org",
    "org_id",
    default=None,
    help="The org id of the file ([a-z0-9-]+). Default: the org of pdorgsync markers "
    "found in the account, else the users' mail domain.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@pass_app
def import_cmd(app: AppContext, output: str, org_id: str | None, force: bool) -> None:
    """Write an org file that describes the PagerDuty account as it is (read-only).

    \b
    One department per team: members and roles, the team's schedule (every
    active layer, lowest priority first), its escalation policy and the
    service routed to it; defaults.adopt_existing is true, so the first
    apply adopts these objects instead of duplicating them. What the org
    file cannot hold (a second schedule of a team, objects of no team, v3
    schedules, ended layers...) is listed in comments and summed up on stderr.
    The same account gives the same bytes.

    \b
    Exit codes: 0 written, 1 error (nothing written).

    \b
    Examples:
      pdorgsync import                         # writes org.yaml
      pdorgsync import --org acme -o acme.yaml
      pdorgsync import -o - | less
    """
    if org_id is not None and not KEY_RE.match(org_id):
        raise ConfigError(f"--org {org_id!r}: expected lower-case letters, digits and dashes")
    target = None if output == "-" else Path(output)
    if target is not None and target.exists() and not force:
        raise ConfigError(f"{target} already exists: pass --force to overwrite it")
    if target is not None and not target.resolve().parent.is_dir():
        folder = target.parent
        raise ConfigError(f"cannot write {target}: folder {folder} does not exist")
    settings = app.settings()
    client = PagerDutyClient.from_settings(settings)
    _progress(f"reading PagerDuty at {settings.api_url}")
    snapshot = read_account(client, progress=_progress)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    imported = build(snapshot, org_id=org_id, now=now, client=client, progress=_progress)
    text = render_yaml(imported)
    if target is None:
        click.echo(text, nl=False)
    else:
        write_atomically(target, text, force=force)
    for line in summary(imported):
        _progress(line)
    _progress(
        f"{'org file written to ' + str(target) if target else 'org file written to stdout'} ({client.total_calls} API calls, no writes)"
    )


COMMANDS = [import_cmd]
