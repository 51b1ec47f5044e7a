"""CLI: sandbox. (Being built; see the issue queue.)"""

from __future__ import annotations

import click

from pdorgsync.errors import PdOrgSyncError


@click.command("sandbox", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sandbox_cmd(args: tuple[str, ...]) -> None:
    """Not implemented yet."""
    raise PdOrgSyncError("'sandbox' is not implemented yet")


COMMANDS = [sandbox_cmd]
