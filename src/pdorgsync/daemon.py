"""``pdorgsync serve``: one process with the webhook receiver, the inbox worker and
the reconcile loop, under systemd or in a terminal.

Threads: uvicorn serves the ASGI app in one thread, the worker drains the inbox
in another, the reconcile loop runs plan + audit (and apply in ``apply`` mode) in
a third, and a health thread probes the state store and refreshes the store
gauges every few seconds, so that ``/readyz`` and ``/metrics`` only read memory
and never block deliveries on the event loop; the main thread only handles
signals and systemd's watchdog. The watchdog is fed from the main loop *only
while* every thread is alive *and* the worker and the reconcile loop have made
progress within their bound (a call hung in a read stops the pings, and systemd
restarts the process): the worker within its claim lease, the reconcile loop
within ``max(3 × RECONCILE_INTERVAL, 15 min)``.

What it must never do: die because a reconcile cycle failed (that is reported,
backed off and retried), or exit on SIGTERM with an event answered 202 and not
stored (the receiver commits before answering; claimed work is released).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from pdorgsync.errors import InboxError, PdOrgSyncError
from pdorgsync.health import Health, file_problems, health_routes, store_problems
from pdorgsync.httpserver import (
    accept_backlog,
    connection_budget,
    guarded_protocol,
    raise_open_file_limit,
)
from pdorgsync.logs import get_logger
from pdorgsync.metrics import Metrics
from pdorgsync.notify import Notifier
from pdorgsync.reconcile_loop import CycleFn, Files, ReconcileLoop, load_files
from pdorgsync.settings import Settings
from pdorgsync.state import StateStore, open_leader, open_state
from pdorgsync.webhooks import ReceiverHooks, create_app

__all__ = [
    "Daemon",
]

log = get_logger("pdorgsync.daemon")

STOP_BUDGET_SECONDS = 10.0
HEALTH_EVERY_SECONDS = 5.0  # how often the health thread probes the store


@dataclass
class _Watch:
    """The watchdog's view of one loop: its progress counter and when it last moved."""

    name: str
    progress: Callable[[], int]
    bound: float
    seen: int | None = None
    since: float = 0.0


class Daemon:
    """Wires receiver, worker and reconcile loop; owns signals and sd_notify."""

    def __init__(
        self,
        settings: Settings,
        *,
        make_worker: Callable[[Daemon], Any],
        make_cycle: Callable[[Daemon], CycleFn],
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.health = Health()
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self._reloading = threading.Event()
        # Threads found dead by ``wait``: serve then exits 1 (Restart=on-failure).
        self.died: list[str] = []
        self._files = load_files(settings)  # fail fast, before anything listens
        self.health.policies_loaded = True
        self.inbox: StateStore = open_state(settings)
        # One reconcile leader among the replicas (always this process on SQLite).
        self.leader = open_leader(
            self.inbox, on_change=lambda leading: self.metrics.reconcile_leader.set(int(leading))
        )
        self.inbox.quick_check()  # a damaged file is refused before anything listens
        released = self.inbox.release_claims()
        if released:
            log.warning("inbox.claims_released", count=released)
        self.worker = make_worker(self)
        self.reconcile = ReconcileLoop(
            make_cycle(self),
            self.files,
            settings.reconcile_interval,
            self.health,
            self.metrics,
            leading=self.leader.is_leader,
        )
        hooks = ReceiverHooks(
            on_delivery=lambda outcome: self.metrics.webhooks_received.labels(
                outcome=outcome
            ).inc(),
            on_stored=getattr(self.worker, "wake", lambda: None),
        )
        self.app: Starlette = create_app(
            settings, self.inbox, hooks, read_timeout=settings.http_read_timeout
        )
        for route in health_routes(self.health, self.metrics, lambda: file_problems(self.inbox)):
            self.app.router.routes.append(route)
        open_files = raise_open_file_limit()
        max_connections = connection_budget(settings.http_max_connections, open_files)
        config = uvicorn.Config(
            self.app,
            host=settings.listen_host,
            port=settings.listen_port,
            http=guarded_protocol(
                read_timeout=settings.http_read_timeout,
                max_connections=max_connections,
                open_file_limit=open_files,
            ),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=64 * 1024,
            backlog=accept_backlog(open_files),
        )
        self.server = uvicorn.Server(config)
        self._threads: list[threading.Thread] = []
        self._watches: list[_Watch] = []
        self._last_ping: float | None = None

    # -- files -------------------------------------------------------------------------

    def files(self) -> Files:
        return self._files

    def reload(self) -> bool:
        """SIGHUP: load both files again; a broken new file is refused, the old kept."""
        try:
            new = load_files(self.settings)
        except PdOrgSyncError as exc:
            log.error("reload.refused", error=str(exc).replace("\n", "; "))
            return False
        self._files = new
        update = getattr(self.worker, "update_config", None)
        if update is not None:
            update(new.org.org, new.policies.policies)
        log.info(
            "reload.done",
            departments=len(new.org.org.departments),
            policies=len(new.policies.policies),
        )
        return True

    # -- metrics -----------------------------------------------------------------------

    def refresh_gauges(self) -> None:
        stats = self.inbox.stats()
        self.metrics.set_inbox(
            stats.pending, stats.oldest_pending_age, stats.dead, stats.events, stats.size_bytes
        )

    def check_health(self) -> None:
        """Probe the store and refresh the store gauges (the health thread, and at start)."""
        problems = store_problems(self.inbox)
        with self.health.lock:
            self.health.store_problems = problems
            self.health.store_checked = True
        try:
            self.refresh_gauges()
        except PdOrgSyncError as exc:
            log.warning("metrics.refresh_failed", error=str(exc))

    def _health_loop(self) -> None:
        while not self.stop_event.wait(HEALTH_EVERY_SECONDS):
            self.check_health()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def bound_address(self) -> tuple[str, int] | None:
        servers = getattr(self.server, "servers", None) or []
        for server in servers:
            for sock in server.sockets or []:
                host, port = sock.getsockname()[:2]
                return str(host), int(port)
        return None

    def start(self, timeout: float = 10.0) -> None:
        """Start the HTTP server and the loops; returns once listening (then READY=1)."""
        self.check_health()
        http = threading.Thread(target=self.server.run, name="http", daemon=True)
        http.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not http.is_alive():
                raise PdOrgSyncError(
                    f"cannot listen on {self.settings.listen} (address in use or not allowed)"
                )
            if time.monotonic() > deadline:
                raise PdOrgSyncError(f"the HTTP server did not start within {timeout:g} s")
            time.sleep(0.02)
        self.leader.start()
        worker = threading.Thread(
            target=self.worker.run, args=(self.stop_event,), name="worker", daemon=True
        )
        reconcile = threading.Thread(
            target=self.reconcile.run, args=(self.stop_event,), name="reconcile", daemon=True
        )
        health = threading.Thread(target=self._health_loop, name="health", daemon=True)
        worker.start()
        reconcile.start()
        health.start()
        self._threads = [http, worker, reconcile, health]
        self._watches = [
            _Watch(
                "worker",
                lambda: int(getattr(self.worker, "progress", 0)),
                float(getattr(self.worker, "lease", 300.0)),
            ),
            _Watch("reconcile loop", lambda: self.reconcile.progress, self.reconcile.stall_bound),
        ]
        address = self.bound_address
        where = f"{address[0]}:{address[1]}" if address else self.settings.listen
        log.info("serve.listening", listen=where, mode=self.settings.reconcile_mode)
        self.notifier.ready(f"listening on {where}")

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def install_signal_handlers(self) -> None:
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("serve.signal", signal=signal.Signals(signum).name)
            self.stop_event.set()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.reload_event.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def stalled(self) -> list[str]:
        """The loops whose progress counter stood still for longer than their bound."""
        now = self.clock()
        stalled = []
        for watch in self._watches:
            value = watch.progress()
            if value != watch.seen:
                watch.seen, watch.since = value, now
            elif now - watch.since > watch.bound:
                stalled.append(f"{watch.name} (for {now - watch.since:.0f} s)")
        return stalled

    def watchdog_tick(self) -> bool:
        """Ping systemd's watchdog if it is due and the process is healthy; True if pinged.

        Healthy: every thread alive and the worker and reconcile loop moving. A
        stalled loop is logged once, shown by /readyz, and left to systemd, which
        restarts the process when the pings stop.
        """
        stalled = self.stalled()
        with self.health.lock:
            was_stalled = bool(self.health.stalled)
            self.health.stalled = stalled
        if stalled and not was_stalled:
            log.error(
                "serve.stalled", loops=stalled, watchdog=bool(self.notifier.watchdog_interval)
            )
        elif was_stalled and not stalled:
            log.info("serve.progressing")
        interval = self.notifier.watchdog_interval
        if not interval or stalled or not self.alive():
            return False
        now = self.clock()
        if self._last_ping is not None and now - self._last_ping < interval:
            return False
        self.notifier.watchdog()
        self._last_ping = now
        return True

    def wait(self) -> None:
        """Main loop: watchdog pings, reloads, until a stop is asked."""
        interval = self.notifier.watchdog_interval
        tick = min(interval, 1.0) if interval else 1.0
        while not self.stop_event.is_set():
            self.stop_event.wait(tick)
            if self.reload_event.is_set() and not self._reloading.is_set():
                self.reload_event.clear()
                self._reloading.set()
                # Off this loop: it feeds the watchdog, and a reload reads files.
                threading.Thread(target=self._reload_in_background, name="reload").start()
            self.watchdog_tick()
            if not self.alive() and not self.stop_event.is_set():
                self.died = [t.name for t in self._threads if not t.is_alive()]
                log.error("serve.thread_died", threads=self.died)
                break

    def _reload_in_background(self) -> None:
        try:
            self.notifier.reloading()
            self.reload()
            self.notifier.ready()
        finally:
            self._reloading.clear()

    def shutdown(self) -> None:
        """Stop taking requests, let the loops finish or requeue, within the budget."""
        self.notifier.stopping()
        deadline = time.monotonic() + STOP_BUDGET_SECONDS - 1.0
        self.server.should_exit = True
        self.stop_event.set()
        stop = getattr(self.worker, "stop", None)
        if stop is not None:
            stop()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.leader.stop()
            self.inbox.release_claims()
        except InboxError as exc:
            # The database is away: our claims lapse with their lease instead.
            log.warning("serve.release_failed", error=str(exc))
        finally:
            self.inbox.close()
        log.info("serve.stopped")
