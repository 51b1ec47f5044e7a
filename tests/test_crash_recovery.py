"""SIGKILL after 202, restart: every stored event is processed, every engagement made once.

The process killed is the real daemon, ``pdorgsync serve``, started as systemd
would start it: a wiring regression in ``service.py`` or ``daemon.py`` fails here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pdorgsync.sandbox import Sandbox
from pdorgsync.state.sqlite import Inbox
from pdorgsync.webhooks import WEBHOOK_PATH, sign
from tests.engagement_support import (
    BOT_EMAIL,
    ORG_FILE,
    PACK_P1_TAGS,
    POLICY_DIR,
    applied_seed,
    client_for,
    create_incident,
    department_ids,
    engaged_state,
    note_tags,
    org_and_policies,
    webhook_data,
)
from tests.serving import wait_for
from tests.webhook_fixtures import SECRET, envelope

INCIDENTS = 4

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # 30 ms per API call: the worker is mid-way through the events when it is killed.
    box = Sandbox(applied_seed(), latency=0.03)
    box.start()
    yield box
    box.stop()
    assert box.validation_errors == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _start(state: Path, api_url: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``pdorgsync serve`` on a free port against ``api_url``; returns it once it answers."""
    port = _free_port()
    env = {
        **os.environ,
        "PDORGSYNC_API_URL": api_url,
        "PDORGSYNC_FROM_EMAIL": BOT_EMAIL,
        "PDORGSYNC_ORG_FILE": str(ORG_FILE),
        "PDORGSYNC_POLICY_DIR": str(POLICY_DIR),
        "PDORGSYNC_STATE_PATH": str(state),
        "PDORGSYNC_WEBHOOK_SECRETS": SECRET,
        "PDORGSYNC_LISTEN": f"127.0.0.1:{port}",
        "PDORGSYNC_RECONCILE_INTERVAL": "3600",
        "PDORGSYNC_LOG_FORMAT": "json",
        # One incident at a time, so that the kill lands while later incidents still
        # wait (with four workers they all finish together, before any kill).
        "PDORGSYNC_WORKER_CONCURRENCY": "1",
    }
    env.pop("NOTIFY_SOCKET", None)
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pdorgsync", "serve"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: proc.poll() is not None or _healthy(url), timeout=30, what="serve to listen"
        )
        if proc.poll() is not None:
            raise AssertionError(log_path.read_text()[-3000:])
    except AssertionError:
        proc.kill()
        proc.wait()
        raise
    return proc, url


def test_sigkill_after_202_loses_nothing_and_engages_nobody_twice(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Events answered 202 survive kill -9; after restart each incident is engaged exactly once."""
    assert sandbox.base_url is not None
    pd = client_for(sandbox.base_url)
    org, _ = org_and_policies()
    ids = department_ids(pd, org)
    state = tmp_path / "state.db"
    incidents = [create_incident(pd, f"Checkout API outage {n}") for n in range(INCIDENTS)]

    proc, url = _start(state, sandbox.base_url, tmp_path)
    try:
        with httpx.Client(timeout=10) as http:
            for n, incident in enumerate(incidents):
                raw = json.dumps(
                    envelope("incident.triggered", incident=webhook_data(incident))
                ).encode()
                headers = {"X-PagerDuty-Signature": sign(raw, SECRET), "X-Webhook-Id": f"w{n}"}
                assert (
                    http.post(url + WEBHOOK_PATH, content=raw, headers=headers).status_code == 202
                )
        # Let the worker get part of the way (some engagements written, others not).
        with Inbox(state) as inbox:
            wait_for(lambda: len(inbox.engagements()) >= 2, timeout=20, what="some engagements")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    with Inbox(state) as inbox:
        stored = inbox.events()
        assert len([e for e in stored if e.source == "webhook"]) == INCIDENTS
        assert inbox.stats().pending > 0, "the kill came too late to prove anything"

    proc, _url = _start(state, sandbox.base_url, tmp_path)
    try:
        with Inbox(state) as inbox:
            wait_for(
                lambda: inbox.stats().pending == 0 and len(inbox.engagements()) == 4 * INCIDENTS,
                timeout=25,
                what="every stored event to be processed after the restart",
            )
            assert {e.status for e in inbox.events()} == {"done"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    for incident in incidents:
        eps, teams, notes = engaged_state(sandbox, incident["id"])
        assert eps == [ids["support"]["escalation_policy"]], incident["id"]
        assert teams == sorted(ids[k]["team"] for k in ("executive", "finance", "sales"))
        assert notes == 1  # one note for the pass
        assert note_tags(sandbox, incident["id"]) == PACK_P1_TAGS
