"""CLI: plan apply. (Being built; see the issue queue.)"""

from __future__ import annotations

import click

from pdorgsync.errors import PdOrgSyncError


@click.command("plan", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def plan_cmd(args: tuple[str, ...]) -> None:
    """Not implemented yet."""
    raise PdOrgSyncError("'plan' is not implemented yet")


@click.command("apply", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def apply_cmd(args: tuple[str, ...]) -> None:
    """Not implemented yet."""
    raise PdOrgSyncError("'apply' is not implemented yet")


COMMANDS = [plan_cmd, apply_cmd]
