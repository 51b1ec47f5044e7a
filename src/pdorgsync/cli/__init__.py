"""The ``pdorgsync`` command line: one group, one module per command family.

Every command's errors end here: a ``PdOrgSyncError`` becomes one clear line on
stderr and exit 1; anything unexpected becomes one line too, unless ``--debug``
asks for the traceback. Secrets are scrubbed from whatever is printed.

Usage errors exit 2 (click's convention; documented in the README).
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from pdorgsync import __version__
from pdorgsync.errors import FileValidationError, PdOrgSyncError
from pdorgsync.logs import configure_logging, get_logger, redact_text, register_secrets
from pdorgsync.settings import Settings, load_settings, raw_secrets_from_env


class AppContext:
    """Per-invocation state shared by commands: debug flag and lazily loaded settings."""

    def __init__(self, debug: bool, log_level: str | None, log_format: str | None) -> None:
        self.debug = debug
        self._log_level = log_level
        self._log_format = log_format
        self._settings: Settings | None = None

    def settings(self, *, daemon: bool = False, **overrides: Any) -> Settings:
        """Settings for this command; also (re)configures logging.

        One-shot commands log at ``warning`` unless a level is asked for (flag or
        PDORGSYNC_LOG_LEVEL): their progress lines already go to stderr, and info
        events there would only bury them. The daemon logs at LOG_LEVEL (info).
        """
        if self._settings is None or overrides or daemon:
            settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
            register_secrets(settings.sensitive_values())
            asked = self._log_level or (
                settings.log_level if daemon or "PDORGSYNC_LOG_LEVEL" in os.environ else None
            )
            configure_logging(
                level=asked or "warning",
                fmt=self._log_format or settings.log_format,
            )
            if self._settings is None:
                for warning in settings.permission_warnings():
                    if daemon:  # the daemon's stderr is its (JSON) log
                        get_logger("pdorgsync.settings").warning(
                            "settings.file_readable", problem=warning
                        )
                    else:
                        click.echo(f"warning: {warning}", err=True)
            if overrides:
                return settings
            self._settings = settings
        return self._settings


F = TypeVar("F", bound=Callable[..., Any])

pass_app = click.make_pass_decorator(AppContext)

# The two file options every command shares (one definition, one help text).
org_option = click.option(
    "--org",
    "org_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The org file. Default: PDORGSYNC_ORG_FILE, else org.yaml.",
)


def policies_option(purpose: str = "") -> Callable[[F], F]:
    """``--policies DIR``; ``purpose`` says what the command uses them for."""
    return click.option(
        "--policies",
        "policy_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=(purpose + " " if purpose else "")
        + "The policy folder. Default: PDORGSYNC_POLICY_DIR, else policies.",
    )


def format_option(choices: Sequence[str], help: str) -> Callable[[F], F]:
    """``--format`` (into ``fmt``) among ``choices``, ``text`` by default."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default="text",
        show_default=True,
        help=help,
    )


def fail(message: str) -> None:
    """Print one error line to stderr (secrets scrubbed)."""
    click.echo(f"error: {redact_text(message)}", err=True)


class GuardedGroup(click.Group):
    """Turns every error into one line and exit 1; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except FileValidationError as exc:
            for problem in exc.problems:
                click.echo(redact_text(str(problem)), err=True)
            ctx.exit(1)
        except PdOrgSyncError as exc:
            if _debug(ctx):
                _print_traceback()
            fail(str(exc))
            ctx.exit(1)
        except KeyboardInterrupt:
            fail("interrupted")
            ctx.exit(130)
        except Exception as exc:
            if _debug(ctx):
                _print_traceback()
                fail(f"internal error: {type(exc).__name__}: {exc}")
            else:
                fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
            ctx.exit(1)


def _print_traceback() -> None:
    """``--debug``: the traceback on stderr, scrubbed of secrets like every other line."""
    click.echo(redact_text(traceback.format_exc()), err=True, nl=False)


def _debug(ctx: click.Context) -> bool:
    app = ctx.find_object(AppContext)
    return bool(app and app.debug)


@click.group(cls=GuardedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pdorgsync")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Override PDORGSYNC_LOG_LEVEL.",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default=None,
    help="Override PDORGSYNC_LOG_FORMAT (console on a TTY, else json).",
)
@click.pass_context
def main(ctx: click.Context, debug: bool, log_level: str | None, log_format: str | None) -> None:
    """pdorgsync keeps your PagerDuty incident-response organisation true to org.yaml.

    \b
    Typical use:
      pdorgsync import -o org.yaml             start from your existing account
      pdorgsync validate --org org.yaml        check the files, no API calls
      pdorgsync plan --org org.yaml            what would change (exit 2 if anything)
      pdorgsync apply --org org.yaml           make it so (asks first)
      pdorgsync audit --format html -o a.html  who cannot be reached when needed
      pdorgsync serve                          webhook receiver + reconcile loop
      pdorgsync demo                           the whole tour on a local sandbox

    Settings come from PDORGSYNC_* environment variables or a .env file
    (see the README). Try it safely: `pdorgsync sandbox` runs a local
    PagerDuty-compatible API; point PDORGSYNC_API_URL at it.
    """
    configure_logging(level=log_level or "warning", fmt=log_format)
    # Whatever the command, the configured token and webhook secrets are scrubbed
    # from everything it prints, even text echoed back from a user's file.
    # (A settings problem is reported by the command that needs the settings.)
    register_secrets(raw_secrets_from_env())  # even when the settings do not load
    with contextlib.suppress(PdOrgSyncError):
        register_secrets(load_settings().sensitive_values())
    ctx.obj = AppContext(debug=debug, log_level=log_level, log_format=log_format)


def _register() -> None:
    from pdorgsync.cli import (
        audit,
        demo,
        doctor,
        engage,
        importing,
        inbox,
        reconcile,
        sandbox,
        serve,
        validate,
        webhook,
    )

    for module in (
        validate,
        reconcile,
        audit,
        engage,
        webhook,
        serve,
        sandbox,
        demo,
        inbox,
        doctor,
        importing,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
