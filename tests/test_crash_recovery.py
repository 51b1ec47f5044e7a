"""SIGKILL after 202, restart: every stored event is processed, every engagement made once.

The process killed is the real daemon, ``pdorgsync serve``, started as systemd
would start it: a wiring regression in ``service.py`` or ``daemon.py`` fails here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pdorgsync.sandbox import Sandbox
from pdorgsync.state.sqlite import Inbox
from pdorgsync.webhooks import WEBHOOK_PATH, sign
from tests.support.daemon import serve_one_worker
from tests.support.engagement import (
    PACK_P1_TAGS,
    applied_seed,
    client_for,
    create_incident,
    department_ids,
    engaged_state,
    note_tags,
    org_and_policies,
    serving_sandbox,
    webhook_data,
)
from tests.support.serving import wait_for
from tests.support.webhooks import SECRET, envelope

INCIDENTS = 4

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # 30 ms per API call: the worker is mid-way through the events when it is killed.
    yield from serving_sandbox(applied_seed(), latency=0.03)


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

    proc, url = serve_one_worker(state, sandbox.base_url, tmp_path)
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

    proc, _url = serve_one_worker(state, sandbox.base_url, tmp_path)
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
