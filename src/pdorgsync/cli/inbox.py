"""CLI: ``pdorgsync inbox list|retry ID|purge`` — inspect and replay stored webhook events.

Reads and edits the inbox file (``PDORGSYNC_STATE_PATH``) directly, or the shared
PostgreSQL database when ``PDORGSYNC_DATABASE_URL`` is set; safe while the daemon
runs (SQLite WAL or PostgreSQL, short transactions). Never calls PagerDuty: ``retry``
only re-queues, the running worker (or the next ``pdorgsync serve``) does the work.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from pdorgsync.cli import AppContext, pass_app
from pdorgsync.errors import ConfigError, InboxError
from pdorgsync.settings import parse_duration
from pdorgsync.state import StateStore, open_state
from pdorgsync.state.records import DEDUPE_WINDOW, STATUSES, Status, StoredEvent
from pdorgsync.state.sqlite import Inbox


def parse_age(value: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` → timedelta; ConfigError otherwise."""
    try:
        return parse_duration(value)
    except ValueError:
        raise ConfigError(
            f"--older-than: expected a duration such as 30d, 12h or 2w, got {value!r}"
        ) from None


def _open(app: AppContext, state: Path | None, *, must_exist: bool = True) -> StateStore:
    settings = app.settings()
    if state is None and settings.database_url is not None:
        return open_state(settings)  # PostgreSQL (DATABASE_URL): shared by every replica
    path = state or settings.state_path
    if must_exist and not Path(path).exists():
        raise InboxError(
            f"no inbox at {path}: nothing was received yet (set PDORGSYNC_STATE_PATH or --state)"
        )
    return Inbox(path, busy_timeout=5.0)


_state_option = click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The inbox file. Default: PDORGSYNC_DATABASE_URL if set, else PDORGSYNC_STATE_PATH, else pdorgsync.db.",
)


@click.group("inbox")
def inbox_cmd() -> None:
    """Inspect and replay stored webhook events (the daemon's durable inbox).

    \b
      pdorgsync inbox list                 newest 50 events, with status and last error
      pdorgsync inbox list --status dead   only dead-lettered events
      pdorgsync inbox retry 42             re-queue event 42 (id or PagerDuty event id)
      pdorgsync inbox purge --older-than 30d --yes
    """


def _row(event: StoredEvent) -> str:
    error = (event.last_error or "").replace("\n", " ")
    if len(error) > 80:
        error = error[:77] + "..."
    return (
        f"{event.seq:>6}  {event.received_at.strftime('%Y-%m-%dT%H:%M:%SZ')}  "
        f"{event.event_type:<28.28}  {(event.incident_id or '-'):<16.16}  "
        f"{event.status:<8}  {event.attempts:>3}  {error}"
    )


@inbox_cmd.command("list")
@_state_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(list(STATUSES)),
    multiple=True,
    help="Only events with this status (repeatable).",
)
@click.option("--incident", default=None, help="Only events of this incident id.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@pass_app
def list_cmd(
    app: AppContext,
    state: Path | None,
    fmt: str,
    statuses: tuple[Status, ...],
    incident: str | None,
    limit: int,
) -> None:
    """Show stored events: id, received time, event type, incident, status, attempts, last error."""
    with _open(app, state) as inbox:
        events = inbox.events(statuses=list(statuses) or None, incident_id=incident, limit=limit)
    if fmt == "json":
        click.echo(json.dumps({"events": [e.as_json() for e in events]}, indent=2))
        return
    if not events:
        click.echo("no events")
        return
    click.echo(
        f"{'ID':>6}  {'RECEIVED (UTC)':<20}  {'EVENT TYPE':<28}  {'INCIDENT':<16}  "
        f"{'STATUS':<8}  {'TRY':>3}  LAST ERROR"
    )
    for event in events:
        click.echo(_row(event))


@inbox_cmd.command("retry")
@_state_option
@click.argument("event_ref", metavar="ID")
@pass_app
def retry_cmd(app: AppContext, state: Path | None, event_ref: str) -> None:
    """Re-queue a dead (or waiting) event now; the worker processes it again.

    ID is the inbox id shown by `inbox list`, or the PagerDuty event id.
    Nobody is engaged twice: the ledger and a read of the incident come first.
    """
    with _open(app, state) as inbox:
        event = inbox.retry(event_ref)
    click.echo(f"event {event.seq} ({event.event_type}, {event.incident_id or '-'}) re-queued")


@inbox_cmd.command("purge")
@_state_option
@click.option("--older-than", default="30d", show_default=True, help="Age: 30d, 12h, 2w, ...")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(["done", "ignored", "dead"]),
    multiple=True,
    help="Statuses to purge (repeatable). Default: done and ignored. Pending events are never purged.",
)
@click.option("--yes", is_flag=True, help="Do not ask (required without a TTY).")
@pass_app
def purge_cmd(
    app: AppContext,
    state: Path | None,
    older_than: str,
    statuses: tuple[Status, ...],
    yes: bool,
) -> None:
    """Delete finished events received before --older-than.

    The daemon does the same by itself every hour with PDORGSYNC_INBOX_RETENTION
    (default 30d). The engagement ledger of an incident is kept while the
    incident is open (it can still produce events) and deleted with its last
    events once it has been resolved for longer than --older-than.
    """
    age = parse_age(older_than)
    chosen: list[Status] = list(statuses) or ["done", "ignored"]
    with _open(app, state) as inbox:
        # Dedupe keys of the last DEDUPE_WINDOW are kept whatever --older-than says.
        cutoff = min(inbox.clock() - age, inbox.clock() - DEDUPE_WINDOW)
        candidates = [e for e in inbox.events(statuses=chosen) if e.received_at < cutoff]
        if not candidates:
            click.echo("nothing to purge")
            return
        question = (
            f"Delete {len(candidates)} {'/'.join(chosen)} event(s) received before "
            f"{cutoff.strftime('%Y-%m-%dT%H:%M:%SZ')}?"
        )
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError("inbox purge: no TTY to confirm on; pass --yes")
            click.confirm(question, abort=True)
        removed = inbox.purge_expired(cutoff, statuses=chosen)
    line = f"purged {removed.events} event(s)"
    if removed.ledger or removed.incidents:
        line += (
            f", and the ledger of {removed.incidents} incident(s) resolved before then"
            f" ({removed.ledger} engagement(s))"
        )
    click.echo(line)


COMMANDS = [inbox_cmd]
