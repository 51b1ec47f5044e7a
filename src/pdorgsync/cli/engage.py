"""CLI: ``pdorgsync engage`` — run the policies on one webhook payload, or replay past incidents.

Both modes call the same pure ``core.policies.evaluate`` as the webhook worker,
so what they explain is exactly what the daemon would do. They never decide
anything themselves: this module only reads (files, API), prints, and, without
``--dry-run``, hands the evaluation to the worker, which performs it
idempotently (ledger + a read of the incident's current responders/subscribers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pdorgsync.cli import format_option, org_option, pass_app, policies_option
from pdorgsync.core.policies import (
    RECENT_WINDOW,
    Evaluation,
    IncidentFacts,
    RecentIncidents,
    evaluate,
    managed_service_labels,
    service_labels,
)
from pdorgsync.core.render.engagement_text import (
    PolicyTally,
    describe_incident,
    evaluation_json,
    render_evaluation,
    summary_table,
)
from pdorgsync.errors import PdOrgSyncError
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy

if TYPE_CHECKING:
    from pdorgsync.cli import AppContext
    from pdorgsync.pagerduty import PagerDutyApi
    from pdorgsync.settings import Settings

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: PagerDuty's GET /incidents refuses date ranges longer than about six months.
MAX_REPLAY = timedelta(days=180)


def parse_when(value: str, now: datetime, option: str) -> datetime:
    """``30d``/``12h``/``90m``/``2w`` before ``now``, or an ISO-8601 date or time (UTC if no offset)."""
    match = _DURATION_RE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PdOrgSyncError(
            f"{option}: expected a duration such as 30d, 12h, 90m or 2w, or an ISO-8601 "
            f"date/time such as 2026-03-01T00:00:00Z, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolved_at(incident: dict[str, Any]) -> datetime | None:
    """When an API incident was resolved; None while it is open."""
    if incident.get("status") != "resolved":
        return None
    for key in ("resolved_at", "last_status_change_at", "updated_at"):
        parsed = _parse_time(incident.get(key))
        if parsed is not None:
            return parsed
    return datetime.min.replace(tzinfo=UTC)  # resolved, time unknown: never counts as open


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Inputs:
    org: Org
    policies: list[Policy]
    sources: dict[str, str]  # policy name -> "policies/x.yaml"


def _load_inputs(org_file: Path, policy_dir: Path) -> _Inputs:
    from pdorgsync.loading import load_org, load_policies

    loaded_org = load_org(org_file)
    loaded = load_policies(policy_dir, loaded_org.org)
    sources = {p.name: f.file for f in loaded.files for p in f.policies.policies}
    return _Inputs(org=loaded_org.org, policies=loaded.policies, sources=sources)


def _managed_labels(client: PagerDutyApi, org: Org) -> dict[str, list[str]]:
    services = client.list_all("/services")
    return managed_service_labels(
        org, ((str(s.get("id")), s.get("description")) for s in services if s.get("id"))
    )


def _history(items: Iterable[dict[str, Any]]) -> list[tuple[IncidentFacts, datetime | None]]:
    history = []
    for item in items:
        try:
            history.append((IncidentFacts.from_api_incident(item), resolved_at(item)))
        except PdOrgSyncError:
            continue  # an incident without id/created_at cannot count; the API always has them
    return history


def _perform(
    app: AppContext,
    settings: Settings,
    client: PagerDutyApi,
    event_type: str,
    facts: IncidentFacts,
    evaluation: Evaluation,
    org: Org,
) -> list[str]:
    """Hand an evaluation to the worker, which performs it idempotently; lines to print."""
    from pdorgsync.handling import perform_engagements

    outcomes = perform_engagements(
        settings=settings, client=client, org=org, facts=facts, evaluation=evaluation
    )
    return [f"  {outcome}" for outcome in outcomes]


# --------------------------------------------------------------------------- command


_HELP = """Run the policies on one incident event, or over past incidents, and explain.

\b
One event (a PagerDuty V3 webhook payload saved to a file):
  pdorgsync engage --event payload.json --dry-run
prints every policy with MATCH or the first condition that failed
("priority P3 is not one of P1, P2"), then what would be engaged: a
responder request to a department's escalation policy, or the department's
team subscribed to status updates. Without --dry-run the worker performs
it, exactly as the daemon would (idempotent: nobody is engaged twice).

\b
Past incidents (judge a policy change before it goes live):
  pdorgsync engage --replay --since 30d --dry-run
evaluates every incident created in the range as if it had just been
triggered (min_impacted_services sees the incidents open at that moment),
prints what each policy would have engaged, and a summary per policy.
Without --dry-run only incidents that are still open are engaged.

\b
Labels of managed services are found by id through the API; --offline
skips the API (managed services are then recognised by name and
min_impacted_services sees only the incident itself).

Exit codes: 0 done (whether or not anything matched), 1 error.
"""


@click.command("engage", help=_HELP)
@click.option(
    "--event",
    "event_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='A V3 webhook payload ({"event": {...}}) to evaluate.',
)
@click.option("--replay", is_flag=True, help="Evaluate past incidents from GET /incidents.")
@click.option("--since", default=None, help="Replay start: 30d, 12h, 90m, 2w or an ISO date/time.")
@click.option("--until", default=None, help="Replay end (default now); same forms as --since.")
@click.option("--dry-run", is_flag=True, help="Explain only; engage nobody.")
@click.option("--offline", is_flag=True, help="With --event --dry-run: do not call the API.")
@org_option
@policies_option()
@format_option(["text", "json"], "Output format.")
@pass_app
def engage_cmd(
    app: AppContext,
    event_file: Path | None,
    replay: bool,
    since: str | None,
    until: str | None,
    dry_run: bool,
    offline: bool,
    org_file: Path | None,
    policy_dir: Path | None,
    fmt: str,
) -> None:
    if (event_file is None) == (not replay):
        raise PdOrgSyncError("give either --event FILE or --replay --since 30d (see --help)")
    if offline and (replay or not dry_run):
        raise PdOrgSyncError("--offline works only with --event and --dry-run")
    settings = app.settings(org_file=org_file, policy_dir=policy_dir)
    inputs = _load_inputs(settings.org_file, settings.policy_dir)
    if event_file is not None:
        if since or until:
            raise PdOrgSyncError("--since/--until go with --replay, not --event")
        _engage_event(app, settings, inputs, event_file, dry_run=dry_run, offline=offline, fmt=fmt)
    else:
        if not since:
            raise PdOrgSyncError("--replay needs --since (for example --since 30d)")
        _replay(app, settings, inputs, since, until, dry_run=dry_run, fmt=fmt)


def _client(settings: Settings) -> PagerDutyApi:
    from pdorgsync.pagerduty import PagerDutyClient

    return PagerDutyClient.from_settings(settings)


def _engage_event(
    app: AppContext,
    settings: Settings,
    inputs: _Inputs,
    event_file: Path,
    *,
    dry_run: bool,
    offline: bool,
    fmt: str,
) -> None:
    from pdorgsync.models.events import EnvelopeError, parse_envelope

    try:
        raw = event_file.read_bytes()
    except OSError as exc:
        raise PdOrgSyncError(f"{event_file}: cannot read: {exc.strerror or exc}") from None
    try:
        event = parse_envelope(raw).event
    except EnvelopeError as exc:
        raise PdOrgSyncError(f"{event_file}: {exc}") from None
    if event.data.get("type") != "incident":
        message = (
            f"event {event.event_type} carries no incident (data.type "
            f"{event.data.get('type')!r}): policies only run on incident events; nothing to do"
        )
        if fmt == "json":
            click.echo(json.dumps({"event": event.event_type, "ignored": message}))
        else:
            click.echo(message)
        return
    try:
        facts = IncidentFacts.from_webhook_data(event.data)
    except PdOrgSyncError as exc:
        raise PdOrgSyncError(f"{event_file}: {exc}") from None
    now = event.occurred_at or facts.created_at
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    client: PagerDutyApi | None = None
    managed: dict[str, list[str]] | None = None
    recent = RecentIncidents()
    if not offline:
        client = _client(settings)
        managed = _managed_labels(client, inputs.org)
        items = client.list_all(
            "/incidents",
            {
                "since": (now - RECENT_WINDOW).isoformat(),
                "until": (now + timedelta(seconds=1)).isoformat(),
                "time_zone": "Etc/UTC",
            },
        )
        recent = RecentIncidents.from_history(_history(items), now)
    evaluation = evaluate(
        event.event_type, facts, inputs.org, inputs.policies, recent, now, managed
    )
    labels = service_labels(facts, inputs.org, managed)
    performed: list[str] = []
    if not dry_run and evaluation.engagements:
        assert client is not None  # --offline requires --dry-run (checked in engage_cmd)
        performed = _perform(app, settings, client, event.event_type, facts, evaluation, inputs.org)
    if fmt == "json":
        body = evaluation_json(facts, labels, evaluation)
        body.update(event=event.event_type, dry_run=dry_run, offline=offline)
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"event {event.event_type} ({event.id}) at {now.isoformat()}")
    click.echo(describe_incident(facts, labels))
    if offline:
        click.echo("  (offline: managed services matched by name; other open incidents unknown)")
    done = "would engage (dry run)" if dry_run else "engaged"
    for line in render_evaluation(evaluation, inputs.sources, done=done, indent=""):
        click.echo(line)
    for line in performed:
        click.echo(line)


def _replay(
    app: AppContext,
    settings: Settings,
    inputs: _Inputs,
    since_text: str,
    until_text: str | None,
    *,
    dry_run: bool,
    fmt: str,
) -> None:
    now = datetime.now(UTC)
    since = parse_when(since_text, now, "--since")
    until = parse_when(until_text, now, "--until") if until_text else now
    if since >= until:
        raise PdOrgSyncError(
            f"--since {since.isoformat()} is not before --until {until.isoformat()}"
        )
    if until - since > MAX_REPLAY:
        raise PdOrgSyncError(
            "PagerDuty lists incidents over at most 180 days at a time; narrow --since/--until"
        )
    client = _client(settings)
    managed = _managed_labels(client, inputs.org)
    items = client.list_all(
        "/incidents",
        {"since": since.isoformat(), "until": until.isoformat(), "time_zone": "Etc/UTC"},
    )
    history = sorted(_history(items), key=lambda pair: (pair[0].created_at, pair[0].id))
    tallies = {p.name: PolicyTally() for p in inputs.policies}
    report: list[dict[str, Any]] = []
    lines: list[str] = []
    engaged_open = 0
    for facts, _resolved in history:
        at = facts.created_at
        recent = RecentIncidents.from_history(history, at)
        # Evaluated as at its trigger, when it was open, whatever its status is now.
        as_triggered = replace(facts, status="triggered")
        evaluation = evaluate(
            "incident.triggered", as_triggered, inputs.org, inputs.policies, recent, at, managed
        )
        labels = service_labels(facts, inputs.org, managed)
        for result in evaluation.results:
            if result.matched:
                tallies[result.policy].matched += 1
        for e in evaluation.engagements:
            tallies[e.policy].engaged += 1
        for s in evaluation.skipped:
            tallies[s.policy].skipped += 1
        performed: list[str] = []
        if not dry_run and facts.is_open and evaluation.engagements:
            performed = _perform(
                app, settings, client, "incident.triggered", facts, evaluation, inputs.org
            )
            engaged_open += 1
        if fmt == "json":
            report.append(evaluation_json(facts, labels, evaluation))
            continue
        lines.append(f"{at.isoformat(timespec='seconds')} {describe_incident(facts, labels)}")
        done = "would have engaged" if dry_run or not facts.is_open else "engaged"
        lines.extend(render_evaluation(evaluation, inputs.sources, done=done))
        lines.extend(performed)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "since": since.isoformat(),
                    "until": until.isoformat(),
                    "dry_run": dry_run,
                    "incidents": report,
                    "summary": {name: asdict(t) for name, t in tallies.items()},
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"replay of {len(history)} incident{'s' if len(history) != 1 else ''} created "
        f"{since.isoformat()} .. {until.isoformat()}, each evaluated as incident.triggered"
    )
    if not dry_run:
        click.echo(
            "not a dry run: only incidents that are still open are engaged; resolved ones "
            "are reported only"
        )
    for line in lines:
        click.echo(line)
    click.echo("")
    for line in summary_table(tallies, len(history)):
        click.echo(line)
    if not dry_run:
        click.echo(f"engaged on {engaged_open} open incident{'s' if engaged_open != 1 else ''}")


COMMANDS = [engage_cmd]
