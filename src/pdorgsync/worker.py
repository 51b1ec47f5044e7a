"""The worker: drains the inbox, evaluates the policies, performs engagements.

Per stored event: parse → facts → fold into the recent-incident state → the pure
``core.policies.evaluate`` → ``engagements.Engager`` performs each engagement
exactly once (ledger + a read of the incident before writing). Outcomes:

- ``done``: evaluated (whether or not anything was engaged);
- ``ignored``: not an incident event, or our own change echoing back
  (``agent`` is the bot user, e.g. ``incident.responder.added`` after our request);
- temporary failure (429, 5xx, network, outcome unknown): back to ``pending`` with
  exponential backoff, at least the server's ``Retry-After``; ``dead`` after
  ``max_attempts``;
- permanent failure (404, 400, a failed subscription item, bad data): ``dead``,
  visible in ``pdorgsync inbox list``, re-playable with ``pdorgsync inbox retry``.

It also polls ``GET /incidents`` (every ``poll_interval``, default 5 minutes) for
open incidents and feeds them into the inbox as synthetic events, so nothing is
missed when PagerDuty drops or stops deliveries; the ledger makes that harmless.

Time is injected (``clock``); the loop waits on a ``threading.Event`` (woken by
the receiver through ``ReceiverHooks.on_stored``), never on a bare sleep.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pdorgsync.core.policies import (
    Evaluation,
    IncidentFacts,
    OpenIncident,
    RecentIncidents,
    evaluate,
)
from pdorgsync.engagements import ApiClient, EngagementOutcome, Engager
from pdorgsync.errors import InboxError, PagerDutyError, PdOrgSyncError, is_temporary
from pdorgsync.inbox import Inbox, Status, StoredEvent, utcnow
from pdorgsync.logs import get_logger
from pdorgsync.models.events import EnvelopeError, WebhookEnvelope, parse_envelope
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy

__all__ = [
    "EventResult",
    "Worker",
    "WorkerHooks",
    "perform_engagements",
]

log = get_logger("pdorgsync.worker")

POLL_CURSOR = "poll_cursor"
RECENT_WINDOW = timedelta(minutes=60)


def _noop_engagement(_department: str, _as: str, _outcome: str) -> None:
    return None


def _noop_event(_event_type: str, _status: str, _seconds: float) -> None:
    return None


@dataclass(frozen=True)
class WorkerHooks:
    """Metric hook points for the daemon.

    ``on_engagement(department, as, outcome)`` with outcome ``engaged``,
    ``already_engaged``, ``skipped`` or ``failed`` (the labels of
    ``pdorgsync_engagements_total``); ``on_event(event_type, status, seconds)``
    once per processed event, status ``done``, ``ignored``, ``retry`` or ``dead``.
    """

    on_engagement: Callable[[str, str, str], None] = field(default=_noop_engagement)
    on_event: Callable[[str, str, float], None] = field(default=_noop_event)


@dataclass(frozen=True)
class EventResult:
    """What ``handle_event`` did with one event."""

    status: str  # done | ignored
    reason: str
    incident_id: str | None = None
    evaluation: Evaluation | None = None
    outcomes: list[EngagementOutcome] = field(default_factory=list)


class Worker:
    """Inbox → policies → engagements. One worker per inbox file.

    Build with ``Worker.from_settings(settings, inbox)`` (loads org and policies,
    makes a client) or directly. Run ``run(stop_event)`` in a thread; ``wake()``
    makes it look at the inbox now; ``stop()`` ends ``run`` after the current event.
    """

    def __init__(
        self,
        inbox: Inbox,
        client: ApiClient,
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
        self.poll_interval = poll_interval
        self.poll_window = poll_window
        self.idle_wait = idle_wait
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
        settings: Any,
        inbox: Inbox,
        client: ApiClient | None = None,
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
            while not stopping():
                try:
                    if self.poll_due():
                        self.poll_incidents()
                except (PdOrgSyncError, InboxError) as exc:
                    log.warning("worker.poll_failed", error=str(exc))
                    self._note_poll_attempt()
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
            self.process(event)
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
        # A busy store is as temporary as a 429: nothing is wrong with the event.
        busy = isinstance(exc, InboxError)
        if (is_temporary(exc) or busy) and event.attempts < self.max_attempts:
            delay = min(self.backoff_cap, self.backoff_base * 2 ** max(0, event.attempts - 1))
            if busy:
                delay = 1.0
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > delay:
                delay = float(retry_after)
            retry_at = self.clock() + timedelta(seconds=delay)
            self._persist(lambda: self.inbox.fail(event.seq, message, retry_at=retry_at))
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
        try:
            envelope: WebhookEnvelope = parse_envelope(raw)
        except EnvelopeError as exc:
            raise PdOrgSyncError(str(exc)) from None
        event = envelope.event
        incident_id = event.incident_id
        if (
            event.agent is not None
            and "user" in event.agent.type
            and event.agent.id == self.engager.bot_user_id()
        ):
            return EventResult("ignored", "our own change (agent is the bot user)", incident_id)
        if event.resource_type not in ("incident", "") or event.data.get("type") != "incident":
            return EventResult("ignored", f"{event.event_type} carries no incident", incident_id)
        if source == "poll":
            facts = IncidentFacts.from_api_incident(event.data)
        else:
            facts = IncidentFacts.from_webhook_data(event.data)
        now = self.clock()
        occurred = event.occurred_at if event.occurred_at is not None else now
        when = min(occurred, now)
        recent = self._recent_with(event.event_type, facts, when, persist=not dry_run)
        evaluation = evaluate(
            event.event_type,
            facts,
            self.org,
            self.policies,
            recent,
            when,
            self.engager.directory.managed_labels(),
        )
        for skipped in evaluation.skipped:
            if skipped.kind != "duplicate":
                log.warning(
                    "engagement.skipped",
                    incident_id=facts.id,
                    department=skipped.department,
                    as_=skipped.as_,
                    policy=skipped.policy,
                    reason=skipped.reason,
                )
                self.hooks.on_engagement(skipped.department, skipped.as_, "skipped")
        if dry_run:
            return EventResult("done", "dry run", facts.id, evaluation)
        wanted = [(e.department, e.as_) for e in evaluation.engagements]
        before = {k for k in wanted if self.inbox.has_engagement(facts.id, *k)}
        try:
            outcomes = self.engager.engage_all(
                facts.id, evaluation.engagements, event_id=event_id, history_known=history_known
            )
        except PagerDutyError:
            # A partial failure: what this pass recorded counts as engaged, the rest failed.
            for key in dict.fromkeys(wanted):
                if key in before:
                    continue
                done = self.inbox.has_engagement(facts.id, *key)
                self.hooks.on_engagement(*key, "engaged" if done else "failed")
            raise
        for result in outcomes:
            self.hooks.on_engagement(result.department, result.as_, result.outcome)
        matched = ", ".join(evaluation.matched) or "no policy matched"
        return EventResult("done", matched, facts.id, evaluation, outcomes)

    def _recent_with(
        self, event_type: str, facts: IncidentFacts, when: datetime, *, persist: bool
    ) -> RecentIncidents:
        """The recent-incident value with this event folded in (and stored, unless dry run)."""
        rows = self.inbox.open_incidents(window=RECENT_WINDOW)
        recent = RecentIncidents(
            tuple(OpenIncident(r.incident_id, r.service_id, r.triggered_at) for r in rows)
        ).with_event(event_type, facts, when)
        if persist:
            entry = next((i for i in recent.incidents if i.incident_id == facts.id), None)
            if entry is None:
                self.inbox.record_incident_resolved(facts.id)
            elif entry.triggered_at >= self.clock() - RECENT_WINDOW:
                self.inbox.record_incident_open(
                    facts.id,
                    service_id=entry.service_id,
                    service_name=facts.service_name,
                    triggered_at=entry.triggered_at,
                )
        return recent

    # -- polling safety net ------------------------------------------------------------------

    def poll_due(self) -> bool:
        if self.poll_interval is None:
            return False
        last = self.inbox.get_state(POLL_CURSOR)
        if last is None:
            return True
        try:
            previous = datetime.fromisoformat(last)
        except ValueError:
            return True
        return (self.clock() - previous).total_seconds() >= self.poll_interval

    def _note_poll_attempt(self) -> None:
        with contextlib.suppress(InboxError):  # the next poll will try again anyway
            self.inbox.set_state(POLL_CURSOR, self.clock().isoformat())

    def poll_incidents(self) -> int:
        """Queue every open incident created within ``poll_window`` whose state is new.

        Each becomes a synthetic ``incident.triggered`` event (source ``poll``) whose
        id fingerprints what policies look at, so an unchanged incident is queued once
        and a changed one (say, priority raised while deliveries were failing) again.
        Returns how many events were queued.
        """
        now = self.clock()
        incidents = self.client.list_all(
            "/incidents",
            {
                "statuses[]": ["triggered", "acknowledged"],
                # No `until`: it defaults to the server's now, immune to clock skew.
                "since": (now - self.poll_window).isoformat(),
            },
        )
        queued = 0
        for incident in incidents:
            body = _poll_envelope(incident, now)
            if body is None:
                continue
            text = json.dumps(body, sort_keys=True)
            result = self.inbox.store(parse_envelope(body), text, source="poll")
            queued += int(result.stored)
        self.inbox.set_state(POLL_CURSOR, now.isoformat())
        log.info("worker.polled", incidents=len(incidents), queued=queued)
        if queued:
            self._wake.set()
        return queued


def _poll_envelope(incident: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    incident_id = incident.get("id")
    if not isinstance(incident_id, str) or not incident_id:
        return None
    priority = incident.get("priority") if isinstance(incident.get("priority"), dict) else {}
    service = incident.get("service") if isinstance(incident.get("service"), dict) else {}
    fingerprint = json.dumps(
        [
            incident.get("status"),
            incident.get("urgency"),
            incident.get("title"),
            (priority or {}).get("id"),
            (service or {}).get("id"),
        ],
        sort_keys=True,
    )
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return {
        "event": {
            "id": f"poll:{incident_id}:{digest}",
            "event_type": "incident.triggered",
            "resource_type": "incident",
            "occurred_at": now.isoformat(),
            "agent": None,
            "client": {"name": "pdorgsync poll"},
            "data": {**incident, "type": "incident"},
        }
    }


def perform_engagements(
    *,
    settings: Any,
    client: ApiClient,
    org: Org,
    facts: IncidentFacts,
    evaluation: Evaluation,
) -> list[EngagementOutcome]:
    """Perform an evaluation's engagements once (``engage --event`` / ``--replay``).

    Uses the same ledger (``STATE_PATH``) as the daemon, so a payload engaged here
    is never engaged again by the daemon, and vice versa.
    """
    with Inbox(settings.state_path) as inbox:
        engager = Engager(
            inbox=inbox,
            client=client,
            org=org,
            from_email=settings.require_from_email(),
            incident_notes=settings.incident_notes,
        )
        return engager.engage_all(facts.id, evaluation.engagements, event_id=None)
