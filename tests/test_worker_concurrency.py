"""WORKER_CONCURRENCY: incidents in parallel, one incident's events in order, engagement first."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pdorgsync.models.events import parse_envelope
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.ratelimit import TokenBucketLimiter
from pdorgsync.sandbox import Sandbox
from pdorgsync.settings import Settings
from pdorgsync.state.records import StoredEvent
from pdorgsync.state.sqlite import Inbox
from pdorgsync.worker import Worker
from tests.support.clocks import TickClock
from tests.support.engagement import (
    BOT_EMAIL,
    PACK_P1_TAGS,
    applied_seed,
    client_for,
    create_incident,
    engaged_state,
    example_worker,
    note_tags,
    serving_sandbox,
    set_priority,
    webhook_data,
)
from tests.support.webhooks import FakeClock, envelope


@pytest.fixture
def box() -> Iterator[Sandbox]:
    # 20 ms per request: long enough for passes of different incidents to overlap.
    yield from serving_sandbox(applied_seed(), latency=0.02)


@pytest.fixture
def pd(box: Sandbox) -> PagerDutyClient:
    assert box.base_url is not None
    return client_for(box.base_url)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inbox(tmp_path: Path, clock: FakeClock) -> Iterator[Inbox]:
    inbox = Inbox(tmp_path / "state.db", clock=clock)
    yield inbox
    inbox.close()


def _enqueue(inbox: Inbox, body: dict[str, Any]) -> None:
    raw = json.dumps(body)
    inbox.store(parse_envelope(raw), raw)


class RecordingWorker(Worker):
    """Records when each event's processing starts and ends (and in which thread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trace: list[tuple[str, str | None, int, str]] = []
        self._trace_lock = threading.Lock()

    def process(self, event: StoredEvent) -> str:
        with self._trace_lock:
            self.trace.append(
                ("start", event.incident_id, event.seq, threading.current_thread().name)
            )
        try:
            return super().process(event)
        finally:
            with self._trace_lock:
                self.trace.append(("end", event.incident_id, event.seq, ""))


def _run_until_drained(worker: Worker, inbox: Inbox, timeout: float = 60.0) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while inbox.events(statuses=["pending"]):
            assert time.monotonic() < deadline, "the worker did not drain the inbox"
            worker.wake()
            time.sleep(0.02)
    finally:
        stop.set()
        worker.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def _max_parallel(trace: list[tuple[str, str | None, int, str]]) -> int:
    running = peak = 0
    for kind, *_ in trace:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    return peak


def test_parallel_incidents_never_interleave_one_incidents_events(
    inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """Eight incidents, each triggered at P3 then raised to P1 then escalated, on four
    workers: passes of different incidents overlap, one incident's events run one at a
    time in arrival order, and every department is engaged once, by the right event."""
    incidents = []
    for n in range(8):
        incident = create_incident(pd, f"Checkout slow #{n}", priority="P3")
        raised = set_priority(pd, incident["id"], "P1")
        incidents.append((incident, raised))
    for n, (incident, raised) in enumerate(incidents):
        _enqueue(inbox, envelope(incident=webhook_data(incident), event_id=f"{n}-triggered"))
        _enqueue(
            inbox,
            envelope(
                "incident.priority_updated", incident=webhook_data(raised), event_id=f"{n}-raised"
            ),
        )
        _enqueue(
            inbox,
            envelope("incident.escalated", incident=webhook_data(raised), event_id=f"{n}-esc"),
        )
    assert box.base_url is not None
    worker = example_worker(
        inbox,
        client_for(box.base_url),
        worker_class=RecordingWorker,
        clock=clock,
        idle_wait=0.05,
        concurrency=4,
    )
    assert isinstance(worker, RecordingWorker)
    _run_until_drained(worker, inbox)

    assert {e.status for e in inbox.events()} == {"done"}
    assert _max_parallel(worker.trace) > 1, "the four workers never overlapped"
    assert len({thread for kind, _i, _s, thread in worker.trace if kind == "start"}) > 1
    for n, (incident, _raised) in enumerate(incidents):
        mine = [(kind, seq) for kind, inc, seq, _t in worker.trace if inc == incident["id"]]
        seqs = [e.seq for e in inbox.events(incident_id=incident["id"])]
        # start/end pairs, never two open at once, in arrival order
        assert mine == [(kind, seq) for seq in seqs for kind in ("start", "end")], n
        eps, teams, _notes = engaged_state(box, incident["id"])
        assert (len(eps), len(teams)) == (1, 3)
        assert note_tags(box, incident["id"]) == PACK_P1_TAGS
        by = {(e.department, e.as_): e.event_id for e in inbox.engagements(incident["id"])}
        assert by[("finance", "subscriber")] == f"{n}-triggered"  # P3 engaged Finance first
        assert by[("support", "responder")] == f"{n}-raised"


def test_claim_hands_out_no_second_event_of_an_incident_while_one_is_claimed(
    inbox: Inbox, clock: FakeClock
) -> None:
    """Even an earlier event replayed (inbox retry) waits while a later one is being worked on."""
    data = webhook_data({"id": "QINC1", "title": "t", "service": {"id": "PS1"}})
    _enqueue(inbox, envelope(incident=data, event_id="a1"))
    _enqueue(inbox, envelope("incident.escalated", incident=data, event_id="a2"))
    _enqueue(inbox, envelope(incident={**data, "id": "QINC2"}, event_id="b1"))
    first = inbox.claim()
    assert first is not None
    assert first.event_id == "a1"
    inbox.fail(first.seq, "HTTP 400", retry_at=None)  # dead
    second = inbox.claim()
    assert second is not None
    assert second.event_id == "a2"
    inbox.retry(first.seq)  # replayed while a2 is claimed
    third = inbox.claim()
    assert third is not None
    assert third.event_id == "b1"
    assert inbox.claim() is None  # a1 must not run alongside a2
    inbox.complete(second.seq)
    again = inbox.claim()
    assert again is not None
    assert again.event_id == "a1"


def test_shared_limiter_serves_engagement_first_under_four_workers(
    inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """Four worker threads engage while four reconcile threads flood the same budget:
    engagement requests still take the next token, reconcile requests wait behind them."""
    ticks = TickClock(yield_thread=True)
    limiter = TokenBucketLimiter(900, burst=5, clock=ticks, sleep=ticks.sleep)
    interval = 60 / 900
    assert box.base_url is not None
    client = PagerDutyClient(
        "sandbox",
        box.base_url,
        BOT_EMAIL,
        max_attempts=1,
        sleep=lambda _s: None,
        limiter=limiter,
        priority="engagement",
    )
    worker = example_worker(inbox, client, clock=clock, idle_wait=0.05, concurrency=4)
    incidents = [create_incident(pd, f"Checkout API down #{n}") for n in range(8)]
    for incident in incidents:
        _enqueue(inbox, envelope(incident=webhook_data(incident)))
    stop = threading.Event()

    def reconcile() -> None:
        while not stop.is_set():
            limiter.acquire("reconcile")

    flood = [threading.Thread(target=reconcile, daemon=True) for _ in range(4)]
    for thread in flood:
        thread.start()
    try:
        _run_until_drained(worker, inbox)
    finally:
        stop.set()
        for thread in flood:
            thread.join(timeout=10)
    stats = limiter.stats()
    engaged = stats.granted["engagement"]
    assert engaged >= 8 * 4  # every incident's pass went through the limiter
    assert stats.granted["reconcile"] > engaged  # the flood was real and kept going
    # Served first, an engagement request waits for about the next token; behind four
    # queued reconcile requests (first come, first served) it would wait four or more.
    assert stats.waited_seconds["engagement"] / engaged <= 2 * interval
    assert stats.waited_seconds["reconcile"] / stats.granted["reconcile"] > 3 * interval
    for incident in incidents:
        eps, teams, notes = engaged_state(box, incident["id"])
        assert (len(eps), len(teams), notes) == (1, 3, 1)


def test_worker_concurrency_setting_defaults_to_four_and_reaches_the_worker(
    tmp_path: Path, box: Sandbox
) -> None:
    """PDORGSYNC_WORKER_CONCURRENCY (default 4) is how many incidents the daemon engages at once."""
    assert Settings().worker_concurrency == 4
    org_file = Path(__file__).resolve().parent.parent / "examples" / "org.yaml"
    policy_dir = Path(__file__).resolve().parent.parent / "policies"
    settings = Settings(
        api_url=str(box.base_url),
        from_email=BOT_EMAIL,
        org_file=org_file,
        policy_dir=policy_dir,
        worker_concurrency=2,
    )
    with Inbox(tmp_path / "s.db") as inbox:
        assert Worker.from_settings(settings, inbox).concurrency == 2
    with pytest.raises(ValueError, match="worker_concurrency"):
        Settings(worker_concurrency=0)


def test_a_busy_store_during_a_pass_is_retried_not_dead(
    tmp_path: Path, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """Another writer holding the store past its busy timeout (a storm on a slow disk):
    the event goes back to pending for a second later, and is then engaged once."""
    import sqlite3

    path = tmp_path / "busy.db"
    inbox = Inbox(path, busy_timeout=0.05, clock=clock)
    assert box.base_url is not None
    worker = example_worker(inbox, client_for(box.base_url), clock=clock)
    incident = create_incident(pd, "Checkout API down")
    _enqueue(inbox, envelope(incident=webhook_data(incident)))
    event = inbox.claim()
    assert event is not None
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process's write, held for a while
    releaser = threading.Timer(0.12, lambda: other.execute("COMMIT"))
    releaser.start()
    try:
        assert worker.process(event) == "retry"
    finally:
        releaser.join()
        other.close()
    [stored] = inbox.events()
    assert (stored.status, stored.next_attempt_at) == ("pending", clock() + timedelta(seconds=1))
    clock.advance(1)
    assert worker.drain() == 1
    assert inbox.events()[0].status == "done"
    eps, teams, notes = engaged_state(box, incident["id"])
    assert (len(eps), len(teams), notes) == (1, 3, 1)
    inbox.close()
