"""Only the leader reconciles; a new leader starts at once; SQLite is always its own leader.

Also the settings side of DATABASE_URL (validation, redaction) and the inbox
commands on the shared database.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pdorgsync.cli import main
from pdorgsync.daemon import Daemon
from pdorgsync.errors import ConfigError, PdOrgSyncError
from pdorgsync.health import Health
from pdorgsync.metrics import Metrics
from pdorgsync.models.events import parse_envelope
from pdorgsync.reconcile_loop import Files, ReconcileLoop
from pdorgsync.settings import load_settings
from pdorgsync.state.postgres import PostgresState
from tests.support.daemon import daemon_settings
from tests.support.webhooks import envelope


class _FakeStop:
    """A stop event whose waits advance a fake clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 0.0
        self.stopped = False

    def __call__(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.stopped

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return self.stopped


def _loop(leading: Any, cycle: Any, stop: _FakeStop) -> ReconcileLoop:
    return ReconcileLoop(
        cycle,
        lambda: Files(org=None, policies=None),  # type: ignore[arg-type]  # the fake cycle ignores files
        300.0,
        Health(),
        Metrics(),
        rng=random.Random(1),
        clock=stop,
        leading=leading,
    )


def test_a_follower_never_reconciles_and_a_new_leader_starts_at_once() -> None:
    stop = _FakeStop()
    runs: list[float] = []

    def leading() -> bool:
        return stop.now >= 42.0  # the old leader died; this replica took over at t=42

    def cycle(_files: Files) -> None:
        runs.append(stop.now)
        stop.stopped = True

    _loop(leading, cycle, stop).run(stop)  # type: ignore[arg-type]  # duck-typed Event
    assert runs == [42.0]  # not at start, and not an interval after the takeover


def test_a_leader_that_loses_the_lock_stops_reconciling() -> None:
    stop = _FakeStop()
    runs: list[float] = []
    lead_until = 100.0

    def leading() -> bool:
        if stop.now > 2000:
            stop.stopped = True
        return stop.now < lead_until or stop.now >= 1000.0

    def cycle(_files: Files) -> None:
        runs.append(stop.now)

    _loop(leading, cycle, stop).run(stop)  # type: ignore[arg-type]  # duck-typed Event
    assert runs[0] == 0.0
    assert all(t < lead_until or t >= 1000.0 for t in runs)
    assert any(1000.0 <= t < 1001.0 for t in runs)  # leading again: a cycle at once
    assert len(runs) >= 3


def test_sqlite_daemon_is_the_leader(tmp_path: Path) -> None:
    """Without DATABASE_URL the one process leads: pdorgsync_reconcile_leader 1."""
    settings = daemon_settings(tmp_path)
    daemon = Daemon(
        settings, make_worker=lambda _d: object(), make_cycle=lambda _d: lambda _f: None
    )
    try:
        daemon.leader.start()
        assert "pdorgsync_reconcile_leader 1.0" in daemon.metrics.render().decode()
        assert (tmp_path / "state.db").exists()
    finally:
        daemon.leader.stop()
        daemon.inbox.close()


def test_database_url_is_validated_and_its_password_redacted() -> None:
    with pytest.raises(ConfigError, match="PDORGSYNC_DATABASE_URL"):
        load_settings(database_url="sqlite:///x.db")
    settings = load_settings(database_url="postgresql://app:Sup3rSecret@db:5432/app")
    assert "Sup3rSecret" in settings.sensitive_values()
    assert "Sup3rSecret" not in repr(settings)
    assert load_settings(database_url="").database_url is None


def test_inbox_commands_use_the_shared_database(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`inbox list` and `inbox retry` work on DATABASE_URL, no SQLite file involved."""
    with PostgresState(pg_url) as db:
        raw = json.dumps(envelope(event_id="evt-pg-1"))
        db.store(parse_envelope(raw), raw)
        event = db.claim()
        assert event is not None
        db.fail(event.seq, "HTTP 404", retry_at=None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PDORGSYNC_DATABASE_URL", pg_url)
    runner = CliRunner()
    listed = runner.invoke(main, ["inbox", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)["events"]
    assert (row["event_id"], row["status"], row["last_error"]) == ("evt-pg-1", "dead", "HTTP 404")
    retried = runner.invoke(main, ["inbox", "retry", "evt-pg-1"])
    assert retried.exit_code == 0, retried.output
    with PostgresState(pg_url) as db:
        assert [e.status for e in db.events()] == ["pending"]
    assert not (tmp_path / "pdorgsync.db").exists()


def test_a_replica_that_lost_the_lead_after_a_failed_cycle_becomes_ready_again() -> None:
    """A failed cycle is the new leader's business: the follower stops reporting it in /readyz."""
    stop = _FakeStop()
    lead_until = 10.0

    def leading() -> bool:
        if stop.now > 30:
            stop.stopped = True
        return stop.now < lead_until

    def cycle(_files: Files) -> None:
        raise PdOrgSyncError("PagerDuty answered 503")

    loop = _loop(leading, cycle, stop)
    loop.run(stop)  # type: ignore[arg-type]  # duck-typed Event
    assert loop.health.last_reconcile_ok is None
    assert not any("reconcile" in p for p in loop.health.problems())
