"""Composition root of ``pdorgsync serve``: the real worker and reconcile cycle.

``daemon.py`` knows threads, signals and HTTP; this module knows what one
reconcile cycle does (observe → plan → [apply] → audit → metrics) and how the
worker is built. Both PagerDuty clients share one rate budget per token, with
engagement requests served before reconcile requests (issue 7).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pdorgsync.audit import run_audit
from pdorgsync.core.coverage import engagements_from_policies
from pdorgsync.daemon import Daemon
from pdorgsync.handling import WorkerHooks
from pdorgsync.logs import get_logger
from pdorgsync.notify import Notifier
from pdorgsync.pagerduty import PagerDutyClient, resolve_target
from pdorgsync.reconcile import apply as apply_plan
from pdorgsync.reconcile import plan_account
from pdorgsync.reconcile_loop import CycleFn, Files
from pdorgsync.settings import Settings
from pdorgsync.state import shared_budget
from pdorgsync.worker import Worker

log = get_logger("pdorgsync.service")


def make_client(daemon: Daemon, priority: str, **kwargs: Any) -> PagerDutyClient:
    # from_settings attaches the process-wide limiter of this token: the worker
    # and the reconcile loop share one budget, engagements served first. With
    # several replicas (PostgreSQL) the budget lives in the database instead.
    target = resolve_target(daemon.settings)
    budget = shared_budget(
        daemon.inbox, target.token, daemon.settings.effective_rate_limit(target.sandbox)
    )
    if budget is not None:
        kwargs["limiter"] = budget
    return PagerDutyClient.from_settings(
        daemon.settings,
        announce=False,  # the daemon logs api.target at start instead
        priority=priority,
        on_response=daemon.metrics.record_api_response,
        **kwargs,
    )


def make_worker(daemon: Daemon) -> Worker:
    files = daemon.files()
    metrics = daemon.metrics

    def on_engagement(department: str, as_: str, outcome: str) -> None:
        metrics.engagements.labels(department=department, **{"as": as_}, outcome=outcome).inc()

    # Few in-call retries: the inbox owns retrying, durably, without blocking others.
    client = make_client(daemon, "engagement", max_attempts=2)
    settings = daemon.settings
    return Worker(
        daemon.inbox,
        client,
        files.org.org,
        files.policies.policies,
        from_email=settings.require_from_email(),
        incident_notes=settings.incident_notes,
        hooks=WorkerHooks(
            on_engagement=on_engagement,
            on_poll=metrics.record_poll,
            on_purge=lambda r: metrics.record_purge(r.events, r.ledger, r.incidents),
        ),
        poll_interval=settings.poll_interval,
        poll_window=settings.poll_window,
        retention=settings.inbox_retention,
        concurrency=settings.worker_concurrency,
    )


def make_cycle(daemon: Daemon) -> CycleFn:
    client = make_client(daemon, "reconcile")
    settings = daemon.settings
    metrics = daemon.metrics
    said: set[str] = set()  # plan-gated features are reported once, not every cycle

    def notify(notices: list[str]) -> None:
        for notice in notices:
            if notice not in said:
                said.add(notice)
                log.warning("abilities.missing", notice=notice)

    def cycle(files: Files) -> None:
        now = datetime.now(UTC)
        org = files.org.org
        client.reset_counts()
        plan = plan_account(client, files.org, now=now, impact=False)
        notify(plan.notices)
        drift = Counter(c.department for c in plan.pending)
        conflicts = Counter(c.department for c in plan.conflicts)
        metrics.set_drift(
            {d.key: drift.get(d.key, 0) for d in org.departments},
            {d.key: conflicts.get(d.key, 0) for d in org.departments},
        )
        log.info(
            "reconcile.planned",
            changes=len(plan.changes),
            conflicts=len(plan.conflicts),
            orphans=len(plan.orphans),
        )
        if settings.reconcile_mode == "apply" and plan.pending and not daemon.leader.is_leader():
            # Another replica took the lead while this one was planning: it applies.
            log.warning("reconcile.leadership_lost", changes=len(plan.pending))
            return
        if settings.reconcile_mode == "apply" and plan.pending:
            report = apply_plan(client, plan)
            log.info(
                "reconcile.applied",
                applied=report.count("applied"),
                failed=report.count("failed"),
                ok=report.ok,
            )
        audit = run_audit(
            client,
            org,
            now=now,
            engagements=engagements_from_policies(files.policies.policies),
        )
        notify(audit.notices)
        counts: Counter[tuple[str, str]] = Counter(
            (f.department or "-", f.severity) for f in audit.findings
        )
        metrics.set_findings(
            [(dept, sev, n) for (dept, sev), n in counts.items()],
            {d.key: d.coverage_ratio for d in audit.departments},
        )
        log.info("reconcile.audited", findings=len(audit.findings), api_calls=client.total_calls)

    return cycle


def build_daemon(settings: Settings, notifier: Notifier | None = None) -> Daemon:
    """The daemon as ``pdorgsync serve`` runs it (fails fast on bad settings or files)."""
    settings.require_from_email()
    settings.require_webhook_secrets()
    target = resolve_target(settings)  # no token and not the sandbox: refused here
    log.info("api.target", url=target.url, sandbox=target.sandbox, api=target.describe())
    return Daemon(settings, make_worker=make_worker, make_cycle=make_cycle, notifier=notifier)
