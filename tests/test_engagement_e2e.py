"""End to end over real HTTP: signed webhooks → uvicorn receiver → inbox → worker → sandbox."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from pdorgsync.state.sqlite import Inbox
from pdorgsync.webhooks import WEBHOOK_PATH, ReceiverHooks, create_app, sign
from tests.support.engagement import (
    PACK_P1_TAGS,
    applied_seed,
    client_for,
    create_incident,
    department_ids,
    engaged_state,
    example_worker,
    note_tags,
    org_and_policies,
    set_priority,
    webhook_data,
)
from tests.support.serving import ThreadedServer, wait_for
from tests.support.webhooks import SECRET, envelope


class _Secrets:
    def secrets(self) -> list[str]:
        return [SECRET]


@dataclass
class Stack:
    url: str
    inbox: Inbox
    sandbox: Sandbox
    pd: PagerDutyClient
    ids: dict[str, dict[str, str]]
    http: httpx.Client

    def deliver(self, body: dict[str, Any], *, webhook_id: str, secret: str = SECRET) -> int:
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-Webhook-Id": webhook_id,
            "X-Webhook-Subscription": "PWHSUB1",
            "X-PagerDuty-Signature": sign(raw, secret),
        }
        return self.http.post(self.url + WEBHOOK_PATH, content=raw, headers=headers).status_code

    def settled(self) -> bool:
        return self.inbox.stats().pending == 0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    sandbox = Sandbox(applied_seed())
    base = sandbox.start()
    pd = client_for(base)
    org, _ = org_and_policies()
    inbox = Inbox(tmp_path / "state.db")
    worker = example_worker(inbox, client_for(base, max_attempts=2), idle_wait=0.2)
    app = create_app(_Secrets(), inbox, ReceiverHooks(on_stored=worker.wake))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        with ThreadedServer(app) as url, httpx.Client(timeout=10) as http:
            yield Stack(url, inbox, sandbox, pd, department_ids(pd, org), http)
    finally:
        stop.set()
        worker.wake()
        thread.join(timeout=10)
        inbox.close()
        sandbox.stop()
    assert not thread.is_alive()
    assert sandbox.validation_errors == []


def test_signed_p1_engages_the_pack_once_even_delivered_three_times(stack: Stack) -> None:
    """A signed P1 on Checkout API, delivered three times: 202 each, engaged exactly once."""
    incident = create_incident(stack.pd, "Checkout API returning 500s")
    body = envelope("incident.triggered", incident=webhook_data(incident))
    codes = [stack.deliver(body, webhook_id="delivery-1") for _ in range(3)]
    assert codes == [202, 202, 202]
    wait_for(stack.settled, timeout=20, what="the worker to drain the inbox")
    wait_for(lambda: len(stack.inbox.engagements(incident["id"])) == 4, timeout=10, what="ledger")
    eps, teams, notes = engaged_state(stack.sandbox, incident["id"])
    assert eps == [stack.ids["support"]["escalation_policy"]]
    assert teams == sorted(stack.ids[k]["team"] for k in ("executive", "finance", "sales"))
    assert notes == 1  # one note for the pass
    assert note_tags(stack.sandbox, incident["id"]) == PACK_P1_TAGS
    assert len(stack.inbox.events()) == 1


def test_bad_signature_is_401_and_changes_nothing(stack: Stack) -> None:
    """A delivery signed with the wrong secret gets 401: nothing stored, nobody engaged."""
    incident = create_incident(stack.pd, "Checkout API returning 500s")
    body = envelope("incident.triggered", incident=webhook_data(incident))
    assert stack.deliver(body, webhook_id="bad", secret="not-the-secret") == 401
    assert stack.inbox.events() == []
    assert engaged_state(stack.sandbox, incident["id"]) == ([], [], 0)


def test_priority_raised_p3_to_p1_engages_only_what_p1_needs(stack: Stack) -> None:
    """P3 then priority_updated to P1: Finance once (billing), then Support, Executive, Sales added."""
    incident = create_incident(stack.pd, "Checkout API slow", priority="P3")
    assert (
        stack.deliver(
            envelope("incident.triggered", incident=webhook_data(incident)), webhook_id="w1"
        )
        == 202
    )
    wait_for(
        lambda: len(stack.inbox.engagements(incident["id"])) == 1, timeout=20, what="P3 engagement"
    )
    assert engaged_state(stack.sandbox, incident["id"])[1] == [stack.ids["finance"]["team"]]
    raised = set_priority(stack.pd, incident["id"], "P1")
    body = envelope("incident.priority_updated", incident=webhook_data(raised))
    assert stack.deliver(body, webhook_id="w2") == 202
    wait_for(
        lambda: len(stack.inbox.engagements(incident["id"])) == 4, timeout=20, what="P1 engagements"
    )
    wait_for(stack.settled, timeout=10, what="drained inbox")
    eps, teams, notes = engaged_state(stack.sandbox, incident["id"])
    assert eps == [stack.ids["support"]["escalation_policy"]]
    assert teams == sorted(stack.ids[k]["team"] for k in ("executive", "finance", "sales"))
    assert notes == 2  # one per pass: P3, then P1
    assert note_tags(stack.sandbox, incident["id"]) == PACK_P1_TAGS
