"""The daemon's reconcile loop: ``cycle(files)`` every interval with jitter, failures
backed off and reported, never fatal; only the leader replica runs cycles.

``Files`` is what the loop reconciles: the org and policy files as last loaded
successfully (the daemon swaps them whole on SIGHUP). Split from ``daemon.py``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pdorgsync import loading
from pdorgsync.errors import PdOrgSyncError
from pdorgsync.health import Health
from pdorgsync.logs import get_logger
from pdorgsync.metrics import Metrics
from pdorgsync.settings import Settings

RECONCILE_STALL_FLOOR = 900.0  # a reconcile cycle may take this long, whatever the interval


@dataclass(frozen=True)
class Files:
    """The org and policy files as last loaded successfully (swapped whole on SIGHUP)."""

    org: loading.LoadedOrg
    policies: loading.LoadedPolicies


def load_files(settings: Settings) -> Files:
    """Load and validate both files; FileValidationError lists every located problem."""
    org = loading.load_org(settings.org_file)
    policies = loading.load_policies(settings.policy_dir, org.org)
    return Files(org=org, policies=policies)


CycleFn = Callable[[Files], None]


log = get_logger("pdorgsync.daemon")  # the loop's events, under the daemon's name


class ReconcileLoop:
    """Runs ``cycle(files)`` every ``interval`` seconds with ±10 % jitter.

    A failed cycle is logged, counted and retried with exponential backoff
    (capped at the interval); it never ends the loop. With several replicas only
    the leader runs cycles (``leading()``); the others wait, and the one that
    takes over starts a cycle at once.
    """

    def __init__(
        self,
        cycle: CycleFn,
        files: Callable[[], Files],
        interval: float,
        health: Health,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.cycle = cycle
        self.leading = leading
        self.files = files
        self.interval = interval
        self.health = health
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.clock = clock
        self.failures = 0
        # Bumped after every cycle and every second while idle: the daemon's watchdog
        # stops pinging when it stands still longer than stall_bound (a hung cycle).
        self.progress = 0
        self.stall_bound = max(3.0 * interval, RECONCILE_STALL_FLOOR)

    def next_delay(self, ok: bool) -> float:
        if ok:
            return self.interval * self.rng.uniform(0.9, 1.1)
        backoff = min(self.interval, 5.0 * 2.0 ** min(self.failures - 1, 10))
        return backoff * self.rng.uniform(0.9, 1.1)

    def run_once(self) -> bool:
        started = self.clock()
        try:
            self.cycle(self.files())
        except Exception as exc:  # a cycle must never kill the daemon
            self.failures += 1
            message = (
                str(exc) if isinstance(exc, PdOrgSyncError) else f"{type(exc).__name__}: {exc}"
            )
            log.error("reconcile.failed", error=message, failures=self.failures)
            self.metrics.reconcile_runs.labels(result="failed").inc()
            with self.health.lock:
                self.health.last_reconcile_ok = False
                self.health.last_reconcile_error = message
                self.health.last_reconcile_at = time.time()
            return False
        finally:
            self.metrics.reconcile_duration.observe(self.clock() - started)
            self.progress += 1
        self.failures = 0
        self.metrics.reconcile_runs.labels(result="ok").inc()
        self.metrics.reconcile_last_success.set(time.time())
        with self.health.lock:
            self.health.last_reconcile_ok = True
            self.health.last_reconcile_error = None
            self.health.last_reconcile_at = time.time()
        log.info("reconcile.done", seconds=round(self.clock() - started, 3))
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.leading():
                # Another replica reconciles; look again every second. A failure of
                # this replica's last cycle is the leader's business now: it must
                # not keep this replica unready (and refusing webhooks) for ever.
                with self.health.lock:
                    if self.health.last_reconcile_ok is False:
                        self.health.last_reconcile_ok = None
                        self.health.last_reconcile_error = None
                self.progress += 1
                stop.wait(1.0)
                continue
            ok = self.run_once()
            delay = self.next_delay(ok)
            # Wake every second so the watchdog sees progress while idle.
            deadline = self.clock() + delay
            while not stop.is_set() and self.clock() < deadline and self.leading():
                self.progress += 1
                stop.wait(min(1.0, max(0.0, deadline - self.clock())))
