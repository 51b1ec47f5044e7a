"""Prometheus metrics of the daemon, on a registry of its own (no global state).

Names are public interface (dashboards and alerts depend on them); add, never
rename. Every metric is prefixed ``pdorgsync_``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """All daemon metrics; one instance per process (tests make their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks_received = Counter(
            "pdorgsync_webhooks_received_total",
            "Webhook deliveries received, by outcome "
            "(accepted, duplicate, ignored, unauthorized, bad_request, too_large, store_failed).",
            ["outcome"],
            registry=r,
        )
        self.inbox_depth = Gauge(
            "pdorgsync_inbox_pending_events",
            "Events stored and not yet processed.",
            registry=r,
        )
        self.inbox_oldest_age = Gauge(
            "pdorgsync_inbox_oldest_pending_age_seconds",
            "Age of the oldest pending event (0 when the inbox is empty).",
            registry=r,
        )
        self.inbox_dead = Gauge(
            "pdorgsync_inbox_dead_events",
            "Events in the dead-letter state (see `pdorgsync inbox list`).",
            registry=r,
        )
        self.inbox_events = Gauge(
            "pdorgsync_inbox_events",
            "Events kept in the state store, whatever their status (retention: INBOX_RETENTION).",
            registry=r,
        )
        self.store_size = Gauge(
            "pdorgsync_state_store_bytes",
            "Size of the state store on disk (SQLite file and write-ahead log).",
            registry=r,
        )
        self.purged = Counter(
            "pdorgsync_inbox_purged_total",
            "Rows deleted by the retention purge, by kind (events, ledger, incidents).",
            ["kind"],
            registry=r,
        )
        self.polls = Counter(
            "pdorgsync_polls_total",
            "Catch-up polls of open incidents by result (ok, baseline, failed).",
            ["result"],
            registry=r,
        )
        self.polled_events = Counter(
            "pdorgsync_poll_events_total",
            "Events the catch-up poll queued because their webhook never came, by event type.",
            ["event_type"],
            registry=r,
        )
        self.engagements = Counter(
            "pdorgsync_engagements_total",
            "Engagements by department, kind (responder/subscriber) and outcome "
            "(engaged, already_engaged, skipped, failed).",
            ["department", "as", "outcome"],
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "pdorgsync_reconcile_duration_seconds",
            "Duration of one reconcile cycle (plan + audit, and apply in apply mode).",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.reconcile_runs = Counter(
            "pdorgsync_reconcile_runs_total",
            "Reconcile cycles by result (ok, failed).",
            ["result"],
            registry=r,
        )
        self.reconcile_last_success = Gauge(
            "pdorgsync_reconcile_last_success_timestamp_seconds",
            "Unix time of the last successful reconcile cycle.",
            registry=r,
        )
        self.drift = Gauge(
            "pdorgsync_drift_pending_changes",
            "Changes a plan would make, by department (0 = in sync).",
            ["department"],
            registry=r,
        )
        self.conflicts = Gauge(
            "pdorgsync_drift_conflicts",
            "Conflicts blocking a department's reconciliation.",
            ["department"],
            registry=r,
        )
        self.findings = Gauge(
            "pdorgsync_coverage_findings",
            "Coverage audit findings by department and severity.",
            ["department", "severity"],
            registry=r,
        )
        self.coverage_ratio = Gauge(
            "pdorgsync_coverage_ratio",
            "Fraction of the required coverage window with someone on call, by department.",
            ["department"],
            registry=r,
        )
        self.reconcile_leader = Gauge(
            "pdorgsync_reconcile_leader",
            "1 on the replica that runs the reconcile loop, 0 on the others.",
            registry=r,
        )
        self.api_requests = Counter(
            "pdorgsync_api_requests_total",
            "PagerDuty API requests by method and HTTP status (429 = rate limited; "
            "0 = no response).",
            ["method", "status"],
            registry=r,
        )

    def record_api_response(self, method: str, _path: str, status: int | None) -> None:
        """Hook for the PagerDuty client: one call per HTTP attempt."""
        self.api_requests.labels(method=method, status=str(status or 0)).inc()

    def set_drift(self, per_department: Mapping[str, int], conflicts: Mapping[str, int]) -> None:
        self.drift.clear()
        self.conflicts.clear()
        for dept, count in per_department.items():
            self.drift.labels(department=dept).set(count)
        for dept, count in conflicts.items():
            self.conflicts.labels(department=dept).set(count)

    def set_findings(
        self,
        counts: Iterable[tuple[str, str, int]],
        ratios: Mapping[str, float | None],
    ) -> None:
        self.findings.clear()
        self.coverage_ratio.clear()
        for dept, severity, count in counts:
            self.findings.labels(department=dept, severity=severity).set(count)
        for dept, ratio in ratios.items():
            if ratio is not None:
                self.coverage_ratio.labels(department=dept).set(ratio)

    def set_inbox(
        self, pending: int, oldest_age: float, dead: int, events: int = 0, size_bytes: int = 0
    ) -> None:
        self.inbox_depth.set(pending)
        self.inbox_oldest_age.set(oldest_age)
        self.inbox_dead.set(dead)
        self.inbox_events.set(events)
        self.store_size.set(size_bytes)

    def record_poll(self, result: str, queued: Mapping[str, int]) -> None:
        """Hook for the worker: one call per catch-up poll."""
        self.polls.labels(result=result).inc()
        for event_type, count in queued.items():
            self.polled_events.labels(event_type=event_type).inc(count)

    def record_purge(self, events: int, ledger: int, incidents: int) -> None:
        for kind, count in (("events", events), ("ledger", ledger), ("incidents", incidents)):
            self.purged.labels(kind=kind).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
