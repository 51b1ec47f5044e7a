"""Fault injection: apply converges without duplicates, the worker engages once, nothing 202 is lost.

The sandbox breaks requests at the wire (``Sandbox.inject_faults`` / ``fault_next``):
429 with Retry-After, bursts of 500/502/503, connection resets before the request
is applied, resets *after* it was applied (the ambiguous POST), and answers slower
than the client's timeout. Clients get a no-op ``sleep`` so retries cost no time.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdorgsync.core.planning import plan
from pdorgsync.loading import load_org
from pdorgsync.models.events import parse_envelope
from pdorgsync.models.org import Org
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox, load_seed
from pdorgsync.state.sqlite import Inbox
from pdorgsync.webhooks import WEBHOOK_PATH, ReceiverHooks, create_app, sign
from tests.support.daemon import serve_one_worker
from tests.support.engagement import (
    BOT_EMAIL,
    PACK_P1_TAGS,
    applied_seed,
    client_for,
    create_incident,
    department_ids,
    engaged_state,
    example_worker,
    note_tags,
    org_and_policies,
    serving_sandbox,
    webhook_data,
)
from tests.support.serving import wait_for
from tests.support.webhooks import SECRET, FakeClock, TestClient, envelope, signed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
COLLECTIONS = ("/teams", "/schedules", "/escalation_policies", "/services")
CLIENT_TIMEOUT = 0.3  # the sandbox's slow answers take 1 s: every "timeout" fault times out


@pytest.fixture(scope="module")
def org() -> Org:
    return load_org(EXAMPLES / "org.yaml").org


@pytest.fixture(scope="module")
def users_only() -> dict[str, Any]:
    seed = load_seed(EXAMPLES / "sandbox-account.json")
    return {key: seed[key] for key in ("users", "priorities") if key in seed}


@pytest.fixture
def box(users_only: dict[str, Any]) -> Iterator[Sandbox]:
    yield from serving_sandbox(json.loads(json.dumps(users_only)), random_seed=7)


def _client(sandbox: Sandbox, *, faulty: bool) -> PagerDutyClient:
    assert sandbox.base_url is not None
    return PagerDutyClient(
        sandbox.token,
        sandbox.base_url,
        BOT_EMAIL,
        sleep=lambda _s: None,
        timeout=CLIENT_TIMEOUT if faulty else 10.0,
        max_attempts=8,
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _converge(client: PagerDutyClient, org: Org, rounds: int = 6) -> int:
    """Plan and apply until the plan is empty (what the daemon's apply loop does); rounds used."""
    for used in range(1, rounds + 1):
        try:
            current = plan(org, observe(client, org), now=_now())
        except Exception:  # a read that gave up: the daemon would try again next interval
            continue
        if not current.changes:
            return used
        apply(client, current)
    raise AssertionError(f"apply did not converge in {rounds} rounds")


def _account(sandbox: Sandbox) -> dict[str, Any]:
    """What a user sees in the account, ids left out: names, descriptions, links, members."""
    client = _client(sandbox, faulty=False)
    teams = {t["id"]: t["name"] for t in client.list_all("/teams")}
    schedules = {s["id"]: s["name"] for s in client.list_all("/schedules")}
    eps = {e["id"]: e["name"] for e in client.list_all("/escalation_policies")}
    users = {u["id"]: u["email"] for u in client.list_all("/users")}
    out: dict[str, Any] = {path: Counter() for path in COLLECTIONS}
    for path in COLLECTIONS:
        for item in client.list_all(path):
            out[path][item["name"]] += 1
    out["members"] = sorted(
        (teams[tid], users[m["user"]["id"]], m["role"])
        for tid in teams
        for m in client.list_all(f"/teams/{tid}/members")
    )
    out["layers"] = sorted(
        (name, layer["name"], tuple(users[u["user"]["id"]] for u in layer["users"]))
        for sid, name in schedules.items()
        for layer in client.get(f"/schedules/{sid}")["schedule"]["schedule_layers"]
    )
    out["services"] = sorted(
        (s["name"], eps.get(s["escalation_policy"]["id"], "?"), s.get("description"))
        for s in client.list_all("/services")
    )
    return out


def _duplicates(account: dict[str, Any]) -> list[str]:
    return [
        f"{path} {name!r} x{n}"
        for path in COLLECTIONS
        for name, n in account[path].items()
        if n > 1
    ]


# --------------------------------------------------------------------------- reconcile


@pytest.fixture(scope="module")
def clean_account(users_only: dict[str, Any], org: Org) -> dict[str, Any]:
    """The account after a fault-free apply of examples/org.yaml."""
    with Sandbox(json.loads(json.dumps(users_only))) as sandbox:
        assert _converge(_client(sandbox, faulty=False), org) == 2
        return _account(sandbox)


@pytest.mark.parametrize(
    "kinds",
    [
        pytest.param(("429",), id="429-retry-after"),
        pytest.param(("500", "502", "503"), id="5xx-bursts"),
        pytest.param(("reset", "reset_after_apply"), id="connection-resets"),
        pytest.param(("timeout",), id="timeouts"),
        pytest.param(
            ("429", "500", "502", "503", "reset", "reset_after_apply", "timeout"), id="all"
        ),
    ],
)
def test_apply_under_faults_converges_to_the_clean_result_without_duplicates(
    box: Sandbox, org: Org, clean_account: dict[str, Any], kinds: tuple[str, ...]
) -> None:
    """With about one request in seven broken, repeated apply ends exactly where a clean apply does."""
    box.inject_faults(0.15 if kinds != ("timeout",) else 0.06, kinds, burst=2, slow_seconds=1.0)
    _converge(_client(box, faulty=True), org, rounds=8)
    drawn = Counter(box.runtime.faults.drawn)
    box.inject_faults(0.0)
    assert sum(drawn.values()) >= 5, f"too few faults to prove anything: {drawn}"
    account = _account(box)
    assert _duplicates(account) == []
    assert account == clean_account


def test_ambiguous_posts_are_looked_up_not_sent_twice(box: Sandbox, org: Org) -> None:
    """Every create applied but its answer lost (reset or timeout): one apply, no duplicates, all reported applied."""
    client = _client(box, faulty=True)
    first = plan(org, observe(client, org), now=_now())
    creates = sum(1 for r in (c.requests for c in first.changes) for q in r if q.method == "POST")
    box.fault_next("reset_after_apply", creates // 2, method="POST")
    box.fault_next("timeout", creates - creates // 2, method="POST")
    box.inject_faults(0.0, slow_seconds=1.0)
    report = apply(client, first)
    assert [r.error for r in report.results if r.outcome != "applied"] == []
    assert Counter(box.runtime.faults.drawn) == {
        "reset_after_apply": creates // 2,
        "timeout": creates - creates // 2,
    }
    assert _duplicates(_account(box)) == []
    assert not plan(org, observe(client, org), now=_now()).changes


# --------------------------------------------------------------------------- worker


def test_worker_engages_every_incident_exactly_once_under_faults(tmp_path: Path) -> None:
    """Eight incidents, a quarter of API requests broken: every one engaged once, one note each."""
    org, _ = org_and_policies()
    with Sandbox(applied_seed(), random_seed=3) as sandbox:
        assert sandbox.base_url is not None
        pd = client_for(sandbox.base_url)
        ids = department_ids(pd, org)
        incidents = [create_incident(pd, f"Checkout API outage {n}") for n in range(8)]
        clock = FakeClock()
        with Inbox(tmp_path / "state.db", clock=clock) as inbox:
            for incident in incidents:
                raw = json.dumps(
                    envelope(
                        "incident.triggered", incident=webhook_data(incident), occurred_at=clock()
                    )
                )
                inbox.store(parse_envelope(raw), raw)
            faulty = PagerDutyClient(
                "sandbox",
                sandbox.base_url,
                BOT_EMAIL,
                sleep=lambda _s: None,
                timeout=CLIENT_TIMEOUT,
                max_attempts=3,
            )
            worker = example_worker(inbox, faulty, clock=clock, max_attempts=50)
            sandbox.inject_faults(0.25, burst=2, slow_seconds=1.0)
            for _ in range(60):
                worker.drain()
                if inbox.stats().pending == 0:
                    break
                clock.advance(3600)
            drawn = Counter(sandbox.runtime.faults.drawn)
            sandbox.inject_faults(0.0)
            assert {e.status for e in inbox.events()} == {"done"}, [
                e.last_error for e in inbox.events()
            ]
        assert sum(drawn.values()) >= 10, drawn
        for incident in incidents:
            eps, teams, notes = engaged_state(sandbox, incident["id"])
            assert eps == [ids["support"]["escalation_policy"]], incident["id"]
            assert teams == sorted(ids[k]["team"] for k in ("executive", "finance", "sales"))
            assert notes >= 1
            assert note_tags(sandbox, incident["id"]) == PACK_P1_TAGS  # each once


# --------------------------------------------------------------------------- receiver


class _Secrets:
    def secrets(self) -> list[str]:
        return [SECRET]


class _FillableInbox(Inbox):
    """An inbox whose database cannot grow while ``full`` is set (SQLITE_FULL, as on a full disk)."""

    full = False

    def _conn(self) -> sqlite3.Connection:
        conn = super()._conn()
        if self.full:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")
        else:
            conn.execute("PRAGMA max_page_count = 1073741823")
        return conn


def test_full_database_answers_503_then_accepts_the_retry(tmp_path: Path) -> None:
    """A store that cannot grow (disk full) answers 503 so PagerDuty retries; nothing half-stored."""
    inbox = _FillableInbox(tmp_path / "state.db")
    outcomes: list[str] = []
    app = create_app(_Secrets(), inbox, ReceiverHooks(on_delivery=outcomes.append))
    big = envelope(event_id="big-one")
    big["event"]["data"]["title"] = "x" * 200_000
    raw, headers = signed(big)
    with TestClient(app) as client:
        inbox.full = True
        assert client.post(WEBHOOK_PATH, content=raw, headers=headers).status_code == 503
        assert inbox.events() == []
        inbox.full = False  # space freed; PagerDuty's retry arrives
        assert client.post(WEBHOOK_PATH, content=raw, headers=headers).status_code == 202
    assert [e.event_id for e in inbox.events()] == ["big-one"]
    assert outcomes.count("store_failed") == 1
    inbox.close()


@pytest.mark.slow
def test_sigkill_at_a_random_point_of_a_burst_loses_nothing_answered_202(tmp_path: Path) -> None:
    """Kill -9 while 12 deliveries arrive from 3 senders: every event answered 202 is engaged once."""
    rng = random.Random(int(os.environ.get("PDORGSYNC_FAULT_SEED", "11")))
    with Sandbox(applied_seed()) as sandbox:
        assert sandbox.base_url is not None
        pd = client_for(sandbox.base_url)
        org, _ = org_and_policies()
        ids = department_ids(pd, org)
        incidents = [create_incident(pd, f"Checkout API outage {n}") for n in range(12)]
        state = tmp_path / "state.db"
        proc, url = serve_one_worker(state, sandbox.base_url, tmp_path)
        accepted: set[str] = set()
        lock = threading.Lock()
        kill_after = rng.randint(2, 10)

        def send(batch: list[dict[str, Any]]) -> None:
            with httpx.Client(timeout=5) as http:
                for incident in batch:
                    raw = json.dumps(
                        envelope("incident.triggered", incident=webhook_data(incident))
                    ).encode()
                    headers = {"X-PagerDuty-Signature": sign(raw, SECRET)}
                    try:
                        status = http.post(
                            url + WEBHOOK_PATH, content=raw, headers=headers
                        ).status_code
                    except httpx.TransportError:
                        continue  # no answer: PagerDuty would retry; not our promise
                    if status == 202:
                        with lock:
                            accepted.add(incident["id"])
                            if len(accepted) == kill_after:
                                os.kill(proc.pid, signal.SIGKILL)

        senders = [threading.Thread(target=send, args=(incidents[i::3],)) for i in range(3)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(timeout=30)
        proc.wait(timeout=10)
        assert len(accepted) >= kill_after

        proc, _url = serve_one_worker(state, sandbox.base_url, tmp_path)
        try:
            with Inbox(state) as inbox:
                wait_for(
                    lambda: (
                        inbox.stats().pending == 0
                        and {e.incident_id for e in inbox.events()} >= accepted
                    ),
                    timeout=60,
                    what="every accepted event to be processed after the restart",
                )
                assert accepted <= {e.incident_id for e in inbox.events() if e.status == "done"}
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
                proc.wait()
        for incident in incidents:
            eps, teams, notes = engaged_state(sandbox, incident["id"])
            if incident["id"] not in accepted and not eps:
                continue  # never answered 202 and never stored: PagerDuty would redeliver
            assert eps == [ids["support"]["escalation_policy"]], incident["id"]
            assert teams == sorted(ids[k]["team"] for k in ("executive", "finance", "sales"))
            assert notes >= 1
            assert note_tags(sandbox, incident["id"]) == PACK_P1_TAGS  # each once
