"""CLI: ``pdorgsync serve`` — the daemon (SPEC §5)."""

from __future__ import annotations

import click

from pdorgsync.cli import AppContext, pass_app


@click.command("serve")
@click.option("--listen", default=None, help="HOST:PORT to listen on (default PDORGSYNC_LISTEN).")
@click.option("--org", "org_file", default=None, help="Org file (default PDORGSYNC_ORG_FILE).")
@click.option(
    "--policies", "policy_dir", default=None, help="Policy folder (default PDORGSYNC_POLICY_DIR)."
)
@pass_app
def serve_cmd(
    app: AppContext, listen: str | None, org_file: str | None, policy_dir: str | None
) -> None:
    """Run the daemon: webhook receiver, engagement worker and reconcile loop.

    \b
    HTTP on PDORGSYNC_LISTEN (default 127.0.0.1:8080):
      POST /webhooks/pagerduty   PagerDuty V3 webhooks (signed; 202 once stored)
      GET  /healthz              process alive
      GET  /readyz               store writable, policies loaded, last reconcile ok
      GET  /metrics              Prometheus metrics
    Every PDORGSYNC_RECONCILE_INTERVAL seconds it plans and audits (and applies
    in PDORGSYNC_RECONCILE_MODE=apply). Needs PDORGSYNC_FROM_EMAIL and
    PDORGSYNC_WEBHOOK_SECRETS. SIGHUP reloads the org and policy files (a broken
    file is refused and the old one kept); SIGTERM/SIGINT stop within 10 s.
    Under systemd (Type=notify) it sends READY=1 and watchdog pings.
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


COMMANDS = [serve_cmd]
