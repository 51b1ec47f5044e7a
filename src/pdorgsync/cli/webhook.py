"""CLI: ``pdorgsync webhook ensure`` — the V3 webhook subscription the policies need.

PagerDuty shows a subscription's signing secret exactly once, in the response
that creates it (CONTRACT §7), and never lets the delivery URL change (a PUT
cannot touch ``delivery_method``). So: an existing subscription for the same URL
is updated in place (events, filter, active) and its secret stays as it was;
a different URL means a new subscription (and a new secret, printed once).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pdorgsync.cli import AppContext, org_option, pass_app, policies_option
from pdorgsync.errors import PdOrgSyncError

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

DESCRIPTION = "pdorgsync incident listener"

# Events the daemon always needs besides those the policies react to:
# triggered/resolved keep the recent-incident state (min_impacted_services) true.
BASE_EVENTS = ("incident.triggered", "incident.resolved", "incident.reopened")


def needed_events(policy_events: list[str]) -> list[str]:
    """The events to subscribe to: what the policies react to plus the state-keeping ones."""
    return sorted(set(BASE_EVENTS) | set(policy_events))


def _policy_events(app: AppContext, org_file: Path | None, policy_dir: Path | None) -> list[str]:
    from pdorgsync import loading

    settings = app.settings()
    loaded = loading.load_org(org_file or settings.org_file)
    policies = loading.load_policies(policy_dir or settings.policy_dir, loaded.org)
    events: list[str] = []
    for policy in policies.policies:
        events.extend(policy.on)
    return events


def _resolve_filter(
    client: PagerDutyApi, spec: str, app: AppContext, org_file: Path | None
) -> dict[str, str]:
    if spec == "account":
        return {"type": "account_reference"}
    kind, sep, value = spec.partition(":")
    if not sep or not value or kind not in ("team", "service"):
        raise PdOrgSyncError(
            f"--filter: expected account, team:<department key> or service:<name>, got {spec!r}"
        )
    if kind == "service":
        found = [
            s for s in client.list_all("/services", {"query": value}) if s.get("name") == value
        ]
        if not found:
            raise PdOrgSyncError(f"--filter: no PagerDuty service is named {value!r}")
        return {"type": "service_reference", "id": found[0]["id"]}
    from pdorgsync import loading

    settings = app.settings()
    org = loading.load_org(org_file or settings.org_file).org
    dept = org.department(value)
    if dept is None:
        raise PdOrgSyncError(f"--filter: no department {value!r} in the org file")
    teams = [
        t
        for t in client.list_all("/teams", {"query": dept.team_name})
        if t.get("name") == dept.team_name
    ]
    if not teams:
        raise PdOrgSyncError(
            f"--filter: department {value!r} has no team {dept.team_name!r} in PagerDuty yet "
            "(run `pdorgsync apply` first)"
        )
    return {"type": "team_reference", "id": teams[0]["id"]}


def ensure_subscription(
    client: PagerDutyApi, url: str, events: list[str], filter_: dict[str, str]
) -> tuple[str, dict[str, Any], str | None, list[str]]:
    """Create or update our subscription.

    Returns (action, subscription, secret or None, ids of other subscriptions that
    deliver to the same URL). The existing subscription is found by its URL over
    every scope: listing with the new ``filter_type`` would miss the one made
    with another ``--filter``, and a second subscription means a second secret and
    every event delivered twice.
    """
    existing = [
        sub
        for sub in client.list_all("/webhook_subscriptions")
        if (sub.get("delivery_method") or {}).get("url") == url
    ]
    body = {
        "type": "webhook_subscription",
        "description": DESCRIPTION,
        "active": True,
        "events": events,
        "filter": filter_,
    }
    if existing:
        sub = existing[0]
        unchanged = (
            sorted(sub.get("events") or []) == events
            and sub.get("active", True)
            and (sub.get("filter") or {}).get("type") == filter_["type"]
            and (sub.get("filter") or {}).get("id") == filter_.get("id")
        )
        others = [str(other.get("id")) for other in existing[1:]]
        if unchanged:
            return "unchanged", sub, None, others
        update = {k: v for k, v in body.items() if k != "type"}
        updated = client.put(
            f"/webhook_subscriptions/{sub['id']}", {"webhook_subscription": update}
        )
        return "updated", updated.get("webhook_subscription", sub), None, others
    body["delivery_method"] = {"type": "http_delivery_method", "url": url}
    # Not idempotent, but an ambiguous failure surfaces as OutcomeUnknownError: the
    # user re-runs `ensure`, which finds the subscription by URL instead of duplicating it.
    created = client.post("/webhook_subscriptions", {"webhook_subscription": body})
    sub = created["webhook_subscription"]
    secret = (sub.get("delivery_method") or {}).get("secret")
    return "created", sub, secret, []


@click.group("webhook")
def webhook_group() -> None:
    """Manage the PagerDuty V3 webhook subscription that feeds `pdorgsync serve`."""


@webhook_group.command("ensure")
@click.option("--url", required=True, help="Public HTTPS URL of POST /webhooks/pagerduty.")
@click.option(
    "--filter",
    "filter_spec",
    default="account",
    show_default=True,
    help="Scope: account, team:<department key> or service:<service name>.",
)
@org_option
@policies_option("To know which events to subscribe to.")
@pass_app
def ensure_cmd(
    app: AppContext, url: str, filter_spec: str, org_file: Path | None, policy_dir: Path | None
) -> None:
    """Create or update the V3 webhook subscription for the events the policies need.

    \b
    The subscription's signing secret is shown ONCE, when it is created: put it in
    PDORGSYNC_WEBHOOK_SECRETS. Re-running is safe: an existing subscription for the
    same URL, whatever its scope, is updated in place (events and --filter) and
    keeps its secret. PagerDuty cannot change the
    URL of a subscription; a new URL creates a new subscription (delete the old
    one in PagerDuty once the new secret is deployed).

    \b
    Example:
      pdorgsync webhook ensure --url https://pdorgsync.example.com/webhooks/pagerduty
    """
    from pdorgsync.pagerduty import PagerDutyClient

    if not url.startswith(("https://", "http://127.", "http://localhost")):
        raise PdOrgSyncError(f"--url: PagerDuty delivers webhooks over HTTPS only, got {url!r}")
    events = needed_events(_policy_events(app, org_file, policy_dir))
    client = PagerDutyClient.from_settings(app.settings())
    filter_ = _resolve_filter(client, filter_spec, app, org_file)
    action, sub, secret, others = ensure_subscription(client, url, events, filter_)
    scope = (
        filter_spec
        if filter_["type"] == "account_reference"
        else f"{filter_spec} ({filter_['id']})"
    )
    click.echo(
        f"webhook subscription {sub.get('id')} {action}: {len(events)} event types, "
        f"scope {scope}, {url}"
    )
    if others:
        click.echo(
            f"warning: subscription(s) {', '.join(others)} also deliver to {url} "
            "(every event arrives twice): delete them in PagerDuty",
            err=True,
        )
    if secret:
        click.echo("")
        click.echo("Signing secret (shown once; store it now):")
        click.echo(f"PDORGSYNC_WEBHOOK_SECRETS={secret}")
    elif action != "unchanged":
        click.echo("The signing secret is unchanged.")


COMMANDS = [webhook_group]
