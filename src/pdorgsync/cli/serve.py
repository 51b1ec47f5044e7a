"""CLI: ``pdorgsync serve`` — the daemon (SPEC §5)."""

from __future__ import annotations

from pathlib import Path

import click

from pdorgsync.cli import AppContext, org_option, pass_app, policies_option
from pdorgsync.errors import PdOrgSyncError


@click.command("serve")
@click.option("--listen", default=None, help="HOST:PORT to listen on (default PDORGSYNC_LISTEN).")
@org_option
@policies_option()
@pass_app
def serve_cmd(
    app: AppContext, listen: str | None, org_file: Path | None, policy_dir: Path | None
) -> None:
    """Run the daemon: webhook receiver, engagement worker and reconcile loop.

    \b
    HTTP on PDORGSYNC_LISTEN (default 127.0.0.1:8080):
      POST /webhooks/pagerduty   PagerDuty V3 webhooks (signed; 202 once stored)
      GET  /healthz              process alive
      GET  /readyz               store writable, policies loaded, last reconcile ok
      GET  /metrics              Prometheus metrics
    Every PDORGSYNC_RECONCILE_INTERVAL seconds it plans and audits (and applies
    in PDORGSYNC_RECONCILE_MODE=apply). PDORGSYNC_WORKER_CONCURRENCY (default 4)
    incidents are engaged in parallel, each incident's events in order. Needs
    PDORGSYNC_FROM_EMAIL and PDORGSYNC_WEBHOOK_SECRETS. SIGHUP reloads the org and policy files (a broken
    file is refused and the old one kept); SIGTERM/SIGINT stop within 10 s.
    Under systemd (Type=notify) it sends READY=1 and watchdog pings, and stops
    pinging when the worker or the reconcile loop makes no progress (the worker
    within 5 min, a reconcile cycle within max(3 x RECONCILE_INTERVAL, 15 min)).

    \b
    Catch-up poll (in case PagerDuty drops or stops deliveries):
      PDORGSYNC_POLL_INTERVAL  seconds between polls of open incidents
                               (default 300; 0 turns polling off)
      PDORGSYNC_POLL_WINDOW    only incidents created this recently
                               (default 24h; 30m, 24h, 7d)
    Each polled incident whose state differs from what was handled is queued
    as the event it missed (incident.triggered, incident.priority_updated, ...).
    The first start only records the incidents already open, engaging none
    (`pdorgsync engage --replay --since 1d` engages them on purpose).

    \b
    Retention:
      PDORGSYNC_INBOX_RETENTION  handled events older than this are purged
                                 hourly (default 30d); the engagement ledger
                                 is kept while its incident can still change
    With PDORGSYNC_DATABASE_URL=postgresql://... any number of replicas share
    one database: all receive and engage, one (the leader) reconciles.
    """
    from pdorgsync.service import build_daemon

    settings = app.settings(daemon=True, listen=listen, org_file=org_file, policy_dir=policy_dir)
    daemon = build_daemon(settings)
    daemon.install_signal_handlers()
    daemon.start()
    try:
        daemon.wait()
    finally:
        daemon.shutdown()
    if daemon.died:
        raise PdOrgSyncError(
            f"daemon thread(s) {', '.join(daemon.died)} died; exiting 1 so that the "
            "service manager restarts pdorgsync (see the log for the cause)"
        )


COMMANDS = [serve_cmd]
