"""The worker: drains the inbox, evaluates the policies, performs engagements.

Per stored event, ``handling.handle_envelope``: parse → facts → fold into the
recent-incident state → the pure ``core.policies.evaluate`` → ``engagements.Engager``
performs each engagement exactly once (ledger + a read of the incident before
writing). This module owns the loop around it: claims, outcomes, retries. Outcomes:

- ``done``: evaluated (whether or not anything was engaged);
- ``ignored``: not an incident event, or our own change echoing back
  (``agent`` is the bot user, e.g. ``incident.responder.added`` after our request);
- temporary failure (429, 5xx, network, outcome unknown): back to ``pending`` with
  exponential backoff, at least the server's ``Retry-After``; ``dead`` after
  ``max_attempts``; lock contention in the state store is retried the same way
  but never dead-letters;
- permanent failure (404, 400, a failed subscription item, bad data): ``dead``,
  visible in ``pdorgsync inbox list``, re-playable with ``pdorgsync inbox retry``.

Between events it runs the periodic chores of ``upkeep.py``: the catch-up poll
(SPEC §5), which queues what PagerDuty failed to deliver under the event type it
stands for, and retention.

Time is injected (``clock``); the loop waits on a ``threading.Event`` (woken by
the receiver through ``ReceiverHooks.on_stored``), never on a bare sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pdorgsync import upkeep
from pdorgsync.engagements import Engager
from pdorgsync.errors import InboxBusyError, InboxError, PdOrgSyncError, is_temporary
from pdorgsync.handling import (
    EventContext,
    EventResult,
    WorkerHooks,
    handle_envelope,
    perform_engagements,
)
from pdorgsync.logs import get_logger
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy
from pdorgsync.state import StateStore
from pdorgsync.state.records import PurgeResult, Status, StoredEvent, utcnow

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi
    from pdorgsync.settings import Settings

__all__ = ["EventResult", "Worker", "WorkerHooks", "perform_engagements"]

log = get_logger("pdorgsync.worker")


class Worker:
    """Inbox → policies → engagements. One worker per inbox file.

    Build with ``Worker.from_settings(settings, inbox)`` (loads org and policies,
    makes a client) or directly. Run ``run(stop_event)`` in a thread; ``wake()``
    makes it look at the inbox now; ``stop()`` ends ``run`` after the current event.
    """

    def __init__(
        self,
        inbox: StateStore,
        client: PagerDutyApi,
        org: Org,
        policies: Sequence[Policy],
        *,
        from_email: str,
        incident_notes: bool = True,
        clock: Callable[[], datetime] = utcnow,
        hooks: WorkerHooks | None = None,
        max_attempts: int = 8,
        backoff_base: float = 5.0,
        backoff_cap: float = 900.0,
        lease: float = 300.0,
        poll_interval: float | None = 300.0,
        poll_window: timedelta = timedelta(hours=24),
        retention: timedelta | None = None,
        idle_wait: float = 1.0,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.inbox = inbox
        self.client = client
        self.org = org
        self.policies = list(policies)
        self.clock = clock
        self.hooks = hooks or WorkerHooks()
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lease = lease
        self.poll_interval = poll_interval or None  # 0 turns polling off
        self.poll_window = poll_window
        self.retention = retention
        self.idle_wait = idle_wait
        # Bumped at every turn of the loop and after every event: the daemon's
        # watchdog stops pinging systemd when it stands still (a hung call).
        self.progress = 0
        self.concurrency = concurrency
        self.engager = Engager(
            inbox=inbox,
            client=client,
            org=org,
            from_email=from_email,
            incident_notes=incident_notes,
        )
        self._wake = threading.Event()
        self._stop = threading.Event()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        inbox: StateStore,
        client: PagerDutyApi | None = None,
        **kwargs: Any,
    ) -> Worker:
        """Load ``ORG_FILE`` and ``POLICY_DIR``; make a client unless one is given.

        The client gets few in-call retries (``max_attempts=2``): the inbox owns
        retrying, durably and without blocking other incidents.
        """
        from pdorgsync.loading import load_org, load_policies
        from pdorgsync.pagerduty import PagerDutyClient

        org = load_org(settings.org_file).org
        policies = load_policies(settings.policy_dir, org).policies
        if client is None:
            client = PagerDutyClient.from_settings(settings, max_attempts=2, priority="engagement")
        kwargs.setdefault("poll_interval", settings.poll_interval)
        kwargs.setdefault("poll_window", settings.poll_window)
        kwargs.setdefault("retention", settings.inbox_retention)
        return cls(
            inbox,
            client,
            org,
            policies,
            from_email=settings.require_from_email(),
            incident_notes=settings.incident_notes,
            **{"concurrency": settings.worker_concurrency, **kwargs},
        )

    def update_config(self, org: Org, policies: Sequence[Policy]) -> None:
        """Swap in a reloaded org file and policy set (takes effect at the next event)."""
        self.org = org
        self.policies = list(policies)
        self.engager.set_org(org)

    # -- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the inbox now (the receiver calls this after storing an event)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Process events until ``stop_event`` is set (or ``stop()`` is called).

        Hands back events a killed predecessor had claimed, polls at start and every
        ``poll_interval``, and otherwise waits for ``wake()`` or ``idle_wait``. With
        ``concurrency`` N, N threads (this one and N-1 helpers) claim events: up to N
        incidents are engaged at once, each incident's events one at a time and in
        order (``Inbox.claim``), every request under the client's shared rate budget.
        """
        released = self.inbox.release_claims()
        if released:
            log.info("worker.claims_released", count=released)
        log.info("worker.started", concurrency=self.concurrency)
        if self.poll_interval is None:
            log.info("worker.poll_configured", enabled=False)
        else:
            log.info(
                "worker.poll_configured",
                enabled=True,
                interval_seconds=self.poll_interval,
                window_seconds=self.poll_window.total_seconds(),
            )

        def stopping() -> bool:
            return self._stop.is_set() or (stop_event is not None and stop_event.is_set())

        finished = threading.Event()  # this run ended, however it ended

        def helper_stopping() -> bool:
            return finished.is_set() or stopping()

        helpers = [
            threading.Thread(
                target=self._drain_loop, args=(helper_stopping,), name=f"worker-{n}", daemon=True
            )
            for n in range(1, self.concurrency)
        ]
        for helper in helpers:
            helper.start()
        try:
            # The poll and the retention purge run in this thread only; every thread
            # (this one and the helpers) drains the inbox.
            while not stopping():
                self.progress += 1
                try:
                    if self.poll_due():
                        self.poll_incidents()
                except (PdOrgSyncError, InboxError) as exc:
                    log.warning("worker.poll_failed", error=str(exc))
                    self.hooks.on_poll("failed", {})
                    self._note_poll_attempt()
                try:
                    if self.purge_due():
                        self.purge()
                except InboxError as exc:
                    log.warning("inbox.purge_failed", error=str(exc))
                self._drain_step(stopping)
        finally:
            finished.set()
            self._wake.set()
            # One budget for all helpers (SIGTERM must end within 10 s); a helper still
            # busy then is a daemon thread, and its claim is released at shutdown.
            deadline = time.monotonic() + 5.0
            for helper in helpers:
                helper.join(timeout=max(0.0, deadline - time.monotonic()))
        log.info("worker.stopped")

    def _drain_loop(self, stopping: Callable[[], bool]) -> None:
        while not stopping():
            self._drain_step(stopping)

    def _drain_step(self, stopping: Callable[[], bool]) -> None:
        try:
            processed = self.run_once(should_stop=stopping)
        except InboxError as exc:
            log.error("worker.inbox_failed", error=str(exc))
            processed = 0
        if processed == 0 and not stopping():
            self._wake.wait(self.idle_wait)
            self._wake.clear()

    def run_once(self, *, limit: int = 100, should_stop: Callable[[], bool] | None = None) -> int:
        """Process due events (at most ``limit``); returns how many were processed."""
        count = 0
        while count < limit and not (should_stop and should_stop()):
            event = self.inbox.claim(lease=self.lease)
            if event is None:
                break
            if self._poisoned(event):
                count += 1
                continue
            self.process(event)
            self.progress += 1
            count += 1
        return count

    def drain(self, *, limit: int = 10_000) -> int:
        """Process until nothing is due (tests and one-shot use)."""
        total = 0
        while total < limit:
            n = self.run_once(limit=min(100, limit - total))
            if n == 0:
                break
            total += n
        return total

    def _poisoned(self, event: StoredEvent) -> bool:
        """Dead-letter an event claimed more often than it may be tried.

        ``attempts`` counts claims and is committed before the work starts, so it
        survives the process: an event whose handling kills or hangs the process
        (and gets it restarted by the watchdog) is not claimed again forever.
        """
        if event.attempts <= self.max_attempts:
            return False
        message = (
            f"claimed {event.attempts} times without finishing (the process died or hung "
            "while handling it); dead-lettered, see pdorgsync inbox retry"
        )
        self.inbox.fail(event.seq, message, retry_at=None)
        log.error("worker.event_dead", id=event.seq, event_id=event.event_id, error=message)
        self.hooks.on_event(event.event_type, "dead", 0.0)
        return True

    def process(self, event: StoredEvent) -> str:
        """Handle one claimed event and record the result in the inbox; returns the status."""
        started = time.perf_counter()
        status: str
        try:
            result = self._handle(
                event.envelope_dict(),
                source=event.source,
                event_id=event.event_id,
                history_known=self._history_known(event),
            )
        except Exception as exc:
            status = self._failed(event, exc)
        else:
            done: Status = "done" if result.status == "done" else "ignored"
            self._persist(lambda: self.inbox.complete(event.seq, done))
            status = result.status
            log.info(
                "worker.event_processed",
                id=event.seq,
                event_id=event.event_id,
                event_type=event.event_type,
                incident_id=event.incident_id,
                status=status,
                reason=result.reason,
            )
        self.hooks.on_event(event.event_type, status, time.perf_counter() - started)
        return status

    def _history_known(self, event: StoredEvent) -> bool:
        """Can the ledger alone tell what was written on this event's incident?

        Yes on the first attempt at an event when no event of the incident ever
        failed: every earlier pass then finished and recorded all it wrote. A
        retried or replayed event, or a dead one before it, may have written
        something (a note) the ledger lacks; then the engager reads first.
        """
        if event.attempts > 1 or event.last_error is not None:
            return False
        if event.incident_id is None:
            return True
        earlier = self.inbox.events(statuses=["dead"], incident_id=event.incident_id, limit=1)
        return not earlier

    def _persist(self, write: Callable[[], None], *, tries: int = 5) -> None:
        """Record an outcome in the inbox, trying again while the store is busy.

        Several worker threads and the receiver share one store; under a storm a
        write may wait longer than the store's busy timeout. If it never gets
        through, the claim simply expires and the event is handled again later
        (the ledger makes that harmless).
        """
        for attempt in range(1, tries + 1):
            try:
                write()
                return
            except InboxError as exc:
                if attempt == tries:
                    raise
                log.warning("worker.store_busy", attempt=attempt, error=str(exc))

    def _failed(self, event: StoredEvent, exc: Exception) -> str:
        message = str(exc) if isinstance(exc, PdOrgSyncError) else f"{type(exc).__name__}: {exc}"
        # Lock contention in the state store says nothing about the event: it is
        # retried soon, however many attempts it took, never dead-lettered, and the
        # attempt is not counted (so a poison event is still found by its claims).
        contended = isinstance(exc, InboxBusyError)
        # Any other store failure is as temporary as a 429, within max_attempts.
        busy = isinstance(exc, InboxError)
        if (is_temporary(exc) or busy) and (contended or event.attempts < self.max_attempts):
            delay = min(self.backoff_cap, self.backoff_base * 2 ** max(0, event.attempts - 1))
            if busy:
                delay = 1.0
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > delay:
                delay = float(retry_after)
            retry_at = self.clock() + timedelta(seconds=delay)
            self._persist(
                lambda: self.inbox.fail(event.seq, message, retry_at=retry_at, uncount=contended)
            )
            log.warning(
                "worker.event_retry",
                id=event.seq,
                event_id=event.event_id,
                attempts=event.attempts,
                retry_in=delay,
                error=message,
            )
            return "retry"
        if not isinstance(exc, PdOrgSyncError):
            log.exception("worker.internal_error", id=event.seq, event_id=event.event_id)
        elif is_temporary(exc):
            message = f"gave up after {event.attempts} attempts: {message}"
        self._persist(lambda: self.inbox.fail(event.seq, message, retry_at=None))
        log.error("worker.event_dead", id=event.seq, event_id=event.event_id, error=message)
        return "dead"

    # -- one event --------------------------------------------------------------------------

    def handle_event(self, envelope: dict[str, Any], *, dry_run: bool = False) -> EventResult:
        """Evaluate one V3 envelope and (unless ``dry_run``) perform its engagements.

        Public entry for ``pdorgsync engage --event`` and the daemon. Idempotent
        through the ledger in the inbox file. Raises ``PdOrgSyncError`` subclasses
        (``PagerDutyError`` from the API; ``is_temporary`` says whether to retry).
        """
        return self._handle(envelope, source="webhook", event_id=None, dry_run=dry_run)

    def _handle(
        self,
        raw: dict[str, Any],
        *,
        source: str,
        event_id: str | None,
        dry_run: bool = False,
        history_known: bool = False,
    ) -> EventResult:
        return handle_envelope(
            raw,
            EventContext(
                inbox=self.inbox,
                engager=self.engager,
                org=self.org,
                policies=self.policies,
                clock=self.clock,
                on_engagement=self.hooks.on_engagement,
            ),
            source=source,
            event_id=event_id,
            dry_run=dry_run,
            history_known=history_known,
        )

    # -- periodic chores (upkeep.py) ---------------------------------------------------------

    def poll_due(self) -> bool:
        return upkeep.poll_due(self.inbox, self.clock(), self.poll_interval)

    def _note_poll_attempt(self) -> None:
        upkeep.note_poll_attempt(self.inbox, self.clock())

    def poll_incidents(self) -> int:
        """The catch-up poll, now; returns how many missed events were queued."""
        queued = upkeep.poll_incidents(
            self.inbox, self.client, self.clock(), self.poll_window, self.hooks.on_poll
        )
        if queued:
            self._wake.set()
        return queued

    def purge_due(self) -> bool:
        return upkeep.purge_due(self.inbox, self.clock(), self.retention)

    def purge(self) -> PurgeResult:
        """Apply ``retention`` now (what ``pdorgsync inbox purge`` does by hand)."""
        assert self.retention is not None
        return upkeep.purge(self.inbox, self.clock(), self.retention, self.hooks.on_purge)
