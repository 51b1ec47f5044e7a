"""CLI: serve. (Being built; see the issue queue.)"""

from __future__ import annotations

import click

from pdorgsync.errors import PdOrgSyncError


@click.command("serve", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def serve_cmd(args: tuple[str, ...]) -> None:
    """Not implemented yet."""
    raise PdOrgSyncError("'serve' is not implemented yet")


COMMANDS = [serve_cmd]
