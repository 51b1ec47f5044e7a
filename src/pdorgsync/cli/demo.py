"""CLI: ``pdorgsync demo`` — the end-to-end tour on the embedded sandbox."""

from __future__ import annotations

from pathlib import Path

import click

from pdorgsync.cli import AppContext, pass_app


@click.command("demo")
@click.option(
    "--examples",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("examples"),
    show_default=True,
    help="Folder with org.yaml and sandbox-account.json.",
)
@click.option(
    "--policies",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("policies"),
    show_default=True,
    help="Policy folder.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("demo-output"),
    show_default=True,
    help="Where the plan and the HTML audit report are written.",
)
@pass_app
def demo_cmd(app: AppContext, examples: Path, policies: Path, output: Path) -> None:
    """Tour the whole product on a local sandbox: no PagerDuty account needed.

    \b
    1. starts a PagerDuty-compatible sandbox seeded from examples/
    2. plan, apply --yes, plan again (no changes)
    3. audit: coverage gaps and missing pieces, HTML heat map report
    4. serve: sends two signed webhooks (a customer-facing P1, a security
       incident) and shows who was engaged, by which policy
    Everything it starts is stopped at the end.
    """
    from pdorgsync.demo import Demo

    app.settings()  # logging as configured (warnings only, unless asked)
    Demo(examples, policies, output, click.echo).run()


COMMANDS = [demo_cmd]
