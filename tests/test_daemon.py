"""`pdorgsync serve`: reconcile loop resilience, and the whole daemon as a subprocess."""

from __future__ import annotations

import json
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdorgsync.errors import TemporaryPagerDutyError
from pdorgsync.health import Health
from pdorgsync.metrics import Metrics
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile_loop import Files, ReconcileLoop
from pdorgsync.sandbox import Sandbox
from pdorgsync.state.sqlite import Inbox
from tests.support.daemon import daemon_settings, run_pdorgsync, serve_env, spawn_serve
from tests.support.engagement import (
    ORG_FILE,
    create_incident,
    engaged_state,
    note_tags,
    org_and_policies,
    webhook_data,
)
from tests.support.serving import free_port
from tests.support.webhooks import SECRET, envelope, signed


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _loop(cycle: Any) -> tuple[ReconcileLoop, Health, Metrics]:
    health, metrics = Health(), Metrics()
    loop = ReconcileLoop(
        cycle,
        lambda: Files(org=None, policies=None),  # type: ignore[arg-type]  # the fake cycle ignores files
        300.0,
        health,
        metrics,
        rng=random.Random(1),
        clock=_Clock(),
    )
    return loop, health, metrics


def test_failed_cycle_is_reported_not_raised() -> None:
    """A reconcile cycle that fails marks the daemon unready and counts it; the loop lives on."""

    def failing(_files: Files) -> None:
        raise TemporaryPagerDutyError("HTTP 503: PagerDuty is having a bad day")

    loop, health, metrics = _loop(failing)
    assert loop.run_once() is False
    assert health.last_reconcile_ok is False
    assert "bad day" in (health.last_reconcile_error or "")
    assert b'pdorgsync_reconcile_runs_total{result="failed"} 1.0' in metrics.render()


def test_recovery_clears_the_failure() -> None:
    """After a failure, the next good cycle makes the daemon ready again."""
    outcomes = iter([RuntimeError("boom"), None])

    def flaky(_files: Files) -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    loop, health, _metrics = _loop(flaky)
    loop.run_once()
    assert loop.run_once() is True
    assert health.last_reconcile_ok is True
    assert health.last_reconcile_error is None


def test_backoff_grows_after_failures_but_never_exceeds_the_interval() -> None:
    """Failures back off exponentially (5 s, 10 s, …) capped at the interval, with jitter."""
    loop, _h, _m = _loop(lambda _f: None)
    delays = []
    for failures in range(1, 10):
        loop.failures = failures
        delays.append(loop.next_delay(ok=False))
    assert 4.5 <= delays[0] <= 5.5
    assert 9.0 <= delays[1] <= 11.0
    assert max(delays) <= 300.0 * 1.1
    assert 270.0 <= loop.next_delay(ok=True) <= 330.0


# -- the real daemon, as systemd would run it --------------------------------------------


def _apply_example_org(pd: PagerDutyClient) -> dict[str, dict[str, str]]:
    """Apply examples/org.yaml as `pdorgsync apply` would; return team/EP ids per department."""
    from datetime import UTC, datetime

    from pdorgsync.core.planning import plan
    from pdorgsync.observe import observe
    from pdorgsync.reconcile import apply

    org, _policies = org_and_policies()
    now = datetime.now(UTC)
    report = apply(pd, plan(org, observe(pd, org, now=now), now=now))
    assert report.ok, report
    teams = {t["name"]: t["id"] for t in pd.list_all("/teams")}
    eps = {e["name"]: e["id"] for e in pd.list_all("/escalation_policies")}
    ids: dict[str, dict[str, str]] = {}
    for dept in org.departments:
        ids[dept.key] = {"team": teams[dept.team_name]}
        if dept.escalation_policy is not None:
            ids[dept.key]["escalation_policy"] = eps[dept.escalation_policy_name]
    return ids


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield sock, path
    finally:
        sock.close()


def _wait_for(sock: socket.socket, wanted: bytes, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            message = sock.recv(4096)
        except TimeoutError:
            break
        if wanted in message:
            return message
    raise AssertionError(f"no {wanted!r} on the notify socket within {timeout} s")


@pytest.mark.slow
def test_serve_end_to_end(
    sandbox: Sandbox, pd: PagerDutyClient, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """serve: READY=1, a signed P1 webhook engages Support once, /metrics shows it, SIGTERM → 0."""
    ids = _apply_example_org(pd)
    incident = create_incident(pd, "Checkout API down for EU customers")
    sock, sock_path = notify_socket
    port = free_port()
    env = serve_env(
        str(sandbox.base_url), tmp_path, port, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="2000000"
    )
    log_path = tmp_path / "serve.log"
    proc = spawn_serve(env, tmp_path, log_path)
    try:
        try:
            _wait_for(sock, b"READY=1", timeout=30)
        except AssertionError:
            raise AssertionError(log_path.read_text()[-3000:]) from None
        _wait_for(sock, b"WATCHDOG=1", timeout=5)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        body, headers = signed(envelope(incident=webhook_data(incident)))
        for _ in range(3):  # PagerDuty delivers at least once: the same delivery thrice
            answer = httpx.post(
                f"{base}/webhooks/pagerduty", content=body, headers=headers, timeout=5
            )
            assert answer.status_code == 202
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # Done when every engagement has its note (the note is written last).
            eps, teams, notes = engaged_state(sandbox, incident["id"])
            tags = note_tags(sandbox, incident["id"])
            if eps and ids["executive"]["team"] in teams and len(tags) >= len(eps) + len(teams):
                break
            time.sleep(0.1)
        eps, teams, notes = engaged_state(sandbox, incident["id"])
        assert eps == [ids["support"]["escalation_policy"]]  # Customer Liaison, once
        assert ids["executive"]["team"] in teams  # executives kept informed of a P1
        assert notes == 1  # one note per incident and pass, naming every engagement
        assert len(note_tags(sandbox, incident["id"])) == len(eps) + len(teams)
        bad = httpx.post(
            f"{base}/webhooks/pagerduty",
            content=body,
            headers={**headers, "X-PagerDuty-Signature": "v1=" + "0" * 64},
            timeout=5,
        )
        assert bad.status_code == 401
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'pdorgsync_webhooks_received_total{outcome="accepted"} 1.0' in metrics
        assert 'pdorgsync_webhooks_received_total{outcome="duplicate"} 2.0' in metrics
        assert 'pdorgsync_webhooks_received_total{outcome="unauthorized"} 1.0' in metrics
        assert (
            'pdorgsync_engagements_total{as="responder",department="support",outcome="engaged"} 1.0'
            in metrics
        )
        # The catch-up poll ran at start: the incident already open is its baseline.
        assert 'pdorgsync_polls_total{result="baseline"} 1.0' in metrics
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log_path.read_text()
    assert "Traceback" not in output
    assert SECRET not in output
    [configured] = [
        json.loads(line) for line in output.splitlines() if "worker.poll_configured" in line
    ]
    assert (configured["interval_seconds"], configured["window_seconds"]) == (300.0, 86400.0)


def test_serve_refuses_to_start_with_a_broken_org_file(tmp_path: Path) -> None:
    """Start-up validates the files and fails fast with the located reason, no traceback."""
    broken = tmp_path / "org.yaml"
    broken.write_text(ORG_FILE.read_text().replace("rotation: weekly", "rotation: fortnightly", 1))
    env = serve_env(
        "http://127.0.0.1:9",
        tmp_path,
        free_port(),
        PDORGSYNC_API_TOKEN="made-up-token",  # a loopback URL alone needs one too
        PDORGSYNC_ORG_FILE=str(broken),
    )
    result = run_pdorgsync(["serve"], env, tmp_path)
    assert result.returncode == 1
    assert "fortnightly" in result.stderr
    assert "Traceback" not in result.stderr


class _RecordingWorker:
    def __init__(self) -> None:
        self.updates: list[int] = []

    def update_config(self, org: Any, policies: Any) -> None:
        self.updates.append(len(org.departments))

    def run(self, stop: Any) -> None:  # pragma: no cover - not started here
        stop.wait()


def test_sighup_reload_takes_a_good_file_and_refuses_a_broken_one(tmp_path: Path) -> None:
    """A reload swaps in a valid new org file; a broken one is refused and the old kept."""
    from pdorgsync.daemon import Daemon

    org_file = tmp_path / "org.yaml"
    org_file.write_text(ORG_FILE.read_text())
    settings = daemon_settings(tmp_path, org_file=org_file)
    worker = _RecordingWorker()
    daemon = Daemon(settings, make_worker=lambda _d: worker, make_cycle=lambda _d: lambda _f: None)
    try:
        before = daemon.files()
        assert len(before.org.org.departments) == 8

        text = ORG_FILE.read_text()
        org_file.write_text(text.replace("rotation: weekly", "rotation: fortnightly", 1))
        assert daemon.reload() is False
        assert daemon.files() is before  # the running config is untouched
        assert worker.updates == []

        # Removing finance would orphan the finance policy: refused too, as a whole.
        org_file.write_text(text[: text.index("  - key: finance")])
        assert daemon.reload() is False
        assert daemon.files() is before

        # A valid change (a department renamed) is taken, and handed to the worker.
        org_file.write_text(text.replace("name: Finance\n", "name: Finance & Accounting\n", 1))
        assert daemon.reload() is True
        finance = daemon.files().org.org.department("finance")
        assert finance is not None
        assert finance.name == "Finance & Accounting"
        assert worker.updates == [8]
    finally:
        daemon.inbox.close()


# -- the watchdog follows progress, and the health endpoints never block deliveries -----


class _IdleWorker:
    """A worker that makes progress only when the test says so."""

    lease = 60.0

    def __init__(self) -> None:
        self.progress = 0

    def run(self, stop: Any) -> None:
        stop.wait()


def _daemon(
    tmp_path: Path, cycle: Any, worker: Any, clock: _Clock, sock_path: str, **settings: Any
) -> Any:
    from pdorgsync.daemon import Daemon
    from pdorgsync.notify import Notifier

    return Daemon(
        daemon_settings(tmp_path, **{"reconcile_interval": 60, **settings}),
        make_worker=lambda _d: worker,
        make_cycle=lambda _d: cycle,
        notifier=Notifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"}),
        clock=clock,
    )


def _pings(sock: socket.socket) -> int:
    sock.setblocking(False)
    count = 0
    try:
        while True:
            count += sock.recv(4096).count(b"WATCHDOG=1")
    except BlockingIOError:
        return count


def test_watchdog_stops_when_a_reconcile_cycle_hangs(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """A cycle stuck in a read stops WATCHDOG=1 (systemd restarts us) and shows on /readyz."""
    release = threading.Event()
    entered = threading.Event()

    def hung(_files: Files) -> None:
        entered.set()
        release.wait(30)

    sock, path = notify_socket
    clock, worker = _Clock(), _IdleWorker()
    daemon = _daemon(tmp_path, hung, worker, clock, path)
    daemon.start()
    try:
        assert entered.wait(10)
        _pings(sock)  # READY=1
        assert daemon.watchdog_tick() is True
        bound = daemon.reconcile.stall_bound
        assert bound == 900.0  # max(3 x RECONCILE_INTERVAL, 15 min)
        for _ in range(3):  # while within the bound, pings go on
            clock.now += bound / 3 - 1
            worker.progress += 1
            assert daemon.watchdog_tick() is True
        clock.now += 10
        worker.progress += 1
        assert daemon.watchdog_tick() is False
        assert _pings(sock) == 4
        host, port = daemon.bound_address
        answer = httpx.get(f"http://{host}:{port}/readyz", timeout=5)
        assert answer.status_code == 503
        assert any("reconcile loop" in p for p in answer.json()["problems"])

        release.set()  # the read returns: progress again, pings again
        deadline = time.monotonic() + 10
        while daemon.reconcile.progress == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        clock.now += 1
        assert daemon.watchdog_tick() is True
        assert httpx.get(f"http://{host}:{port}/readyz", timeout=5).status_code == 200
    finally:
        release.set()
        daemon.shutdown()


def test_watchdog_stops_when_the_worker_stands_still(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """A worker without progress for longer than its claim lease stops the pings."""
    _sock, path = notify_socket
    clock, worker = _Clock(), _IdleWorker()
    daemon = _daemon(tmp_path, lambda _f: None, worker, clock, path)
    daemon.start()
    try:
        assert daemon.watchdog_tick() is True
        clock.now += 59
        assert daemon.watchdog_tick() is True
        clock.now += 2
        assert daemon.watchdog_tick() is False
        worker.progress += 1
        clock.now += 1
        assert daemon.watchdog_tick() is True
    finally:
        daemon.shutdown()


def test_readyz_and_metrics_never_wait_for_the_store(tmp_path: Path) -> None:
    """With the store's write lock held elsewhere, /readyz and /metrics still answer at once."""
    import sqlite3

    from pdorgsync.daemon import Daemon

    settings = daemon_settings(tmp_path)
    daemon = Daemon(
        settings, make_worker=lambda _d: _IdleWorker(), make_cycle=lambda _d: lambda _f: None
    )
    assert isinstance(daemon.inbox, Inbox)  # the SQLite store (no DATABASE_URL)
    daemon.inbox.busy_timeout = 30.0  # a write would wait that long for the lock
    daemon.start()
    blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a long write by another process
    try:
        assert daemon.bound_address is not None
        host, port = daemon.bound_address
        base = f"http://{host}:{port}"
        with httpx.Client(timeout=3) as http:
            for _ in range(50):
                assert http.get(f"{base}/readyz").status_code == 200
                metrics = http.get(f"{base}/metrics")
                assert metrics.status_code == 200
                assert http.get(f"{base}/healthz").status_code == 200
        assert "pdorgsync_state_store_bytes" in metrics.text
        assert "pdorgsync_inbox_events" in metrics.text
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        daemon.shutdown()


def test_serve_help_documents_polling_and_retention() -> None:
    """`serve --help` names the catch-up poll and retention settings and their defaults."""
    from click.testing import CliRunner

    from pdorgsync.cli import main

    text = CliRunner().invoke(main, ["serve", "--help"]).output
    for name in ("PDORGSYNC_POLL_INTERVAL", "PDORGSYNC_POLL_WINDOW", "PDORGSYNC_INBOX_RETENTION"):
        assert name in text
    assert "0 turns polling off" in text
    assert "default 30d" in text
