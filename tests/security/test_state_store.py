"""The state store under hostile surroundings, in process: replaced file, write failures."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from starlette.applications import Starlette

from pdorgsync.errors import InboxBusyError, InboxError
from pdorgsync.health import Health, health_routes, store_problems
from pdorgsync.metrics import Metrics
from pdorgsync.models.events import parse_envelope
from pdorgsync.state.sqlite import Inbox
from tests.support.webhooks import TestClient, envelope


def _store(inbox: Inbox, event_id: str) -> None:
    body = envelope(event_id=event_id)
    inbox.store(parse_envelope(body), json.dumps(body))


def _readyz(inbox: Inbox) -> tuple[int, list[str]]:
    """/readyz after one round of the daemon's health thread (which checks the store)."""
    health = Health(policies_loaded=True)
    health.store_problems = store_problems(inbox)
    health.store_checked = True
    app = Starlette(routes=health_routes(health, Metrics()))
    with TestClient(app) as client:
        answer = client.get("/readyz")
    return answer.status_code, answer.json()["problems"]


def test_replaced_state_file_is_refused(tmp_path: Path) -> None:
    """A state file swapped for another one (new inode) makes every write fail loudly."""
    path = tmp_path / "state.db"
    with Inbox(path) as inbox:
        _store(inbox, "before")
        other = tmp_path / "other.db"
        Inbox(other).close()
        other.replace(path)
        with pytest.raises(InboxError, match="replaced"):
            _store(inbox, "after")
        status, problems = _readyz(inbox)
        assert status == 503
        assert any("replaced" in p for p in problems)


def test_readyz_fails_after_a_recent_write_failure(tmp_path: Path) -> None:
    """A store that just failed a write (disk full) is not ready; lock contention is no failure."""
    path = tmp_path / "state.db"
    with Inbox(path, busy_timeout=0.05) as inbox:
        assert _readyz(inbox)[0] == 200
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(InboxBusyError):
                _store(inbox, "blocked")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert _readyz(inbox)[0] == 200  # contention is retried, not a fault of the store
        conn = inbox._conn()
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        big = envelope(event_id="big")
        big["event"]["data"]["title"] = "x" * 200_000
        with pytest.raises(InboxError, match="full"):
            inbox.store(parse_envelope(big), json.dumps(big))
        status, problems = _readyz(inbox)
        assert status == 503
        assert any("not writable" in p for p in problems)


def test_damaged_database_fails_quick_check(tmp_path: Path) -> None:
    """PRAGMA quick_check at start names a damaged file instead of serving from it."""
    path = tmp_path / "state.db"
    with Inbox(path) as inbox:
        for i in range(200):
            _store(inbox, f"e{i}")
    raw = bytearray(path.read_bytes())
    raw[4096 + 100 : 4096 + 400] = b"\xff" * 300  # scribble over the second page
    path.write_bytes(bytes(raw))
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with pytest.raises(InboxError, match=r"damaged|malformed|corrupt"):
        _open_and_check(path)


def _open_and_check(path: Path) -> None:
    inbox = Inbox(path)
    try:
        inbox.quick_check()
    finally:
        inbox.close()
