"""CLI: engage. (Being built; see the issue queue.)"""

from __future__ import annotations

import click

from pdorgsync.errors import PdOrgSyncError


@click.command("engage", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def engage_cmd(args: tuple[str, ...]) -> None:
    """Not implemented yet."""
    raise PdOrgSyncError("'engage' is not implemented yet")


COMMANDS = [engage_cmd]
