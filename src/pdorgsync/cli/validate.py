"""CLI: validate. (Being built; see the issue queue.)"""

from __future__ import annotations

import click

from pdorgsync.errors import PdOrgSyncError


@click.command("validate", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def validate_cmd(args: tuple[str, ...]) -> None:
    """Not implemented yet."""
    raise PdOrgSyncError("'validate' is not implemented yet")


COMMANDS = [validate_cmd]
