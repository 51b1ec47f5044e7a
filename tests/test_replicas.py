"""Two real ``pdorgsync serve`` processes on one PostgreSQL (issue 12, SPEC §5 "Several replicas").

- deliveries alternate between the replicas and every redelivery goes to the other
  one; the leader is SIGKILLed mid-burst; every event answered 202 is engaged
  exactly once and the survivor leads within 30 s;
- a bad or unreachable DATABASE_URL at start: one clear line, exit 1;
- the database going away while running: /readyz and deliveries 503, nothing
  lost, and everything recovers without a restart.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdorgsync.sandbox import Sandbox
from pdorgsync.state.postgres import PostgresState
from pdorgsync.webhooks import WEBHOOK_PATH, sign
from tests.support.daemon import Served, run_pdorgsync, serve_env, start_serve
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
from tests.support.serving import free_port, wait_for
from tests.support.webhooks import SECRET, envelope

pytestmark = pytest.mark.slow

INCIDENTS = 8
LEADER_METRIC = re.compile(r"^pdorgsync_reconcile_leader (\S+)$", re.MULTILINE)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # 20 ms per API call: a replica is mid-way through its events when it is killed.
    yield from serving_sandbox(applied_seed(), latency=0.02)


@dataclass
class Replica:
    name: str
    served: Served

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.served.proc

    @property
    def url(self) -> str:
        return self.served.base

    @property
    def log(self) -> Path:
        return self.served.log_path

    def leader(self) -> float | None:
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        match = LEADER_METRIC.search(text)
        return float(match.group(1)) if match else None

    def stop(self) -> None:
        self.served.stop()


def _env(tmp_path: Path, name: str, db_url: str) -> dict[str, str]:
    """What a replica sets besides :func:`serve_env`: the shared database."""
    return {
        "PDORGSYNC_STATE_PATH": str(tmp_path / f"{name}.db"),  # must stay unused
        "PDORGSYNC_DATABASE_URL": db_url,
        # The shared budget in the database is in the request path of both replicas.
        "PDORGSYNC_RATE_LIMIT_PER_MINUTE": "6000",
    }


def _start(tmp_path: Path, name: str, db_url: str, api_url: str) -> Replica:
    served = start_serve(
        api_url, tmp_path, ready="/readyz", name=name, env=_env(tmp_path, name, db_url)
    )
    return Replica(name, served)


def _deliver(replica: Replica, raw: bytes, webhook_id: str) -> httpx.Response:
    headers = {"X-PagerDuty-Signature": sign(raw, SECRET), "X-Webhook-Id": webhook_id}
    return httpx.post(replica.url + WEBHOOK_PATH, content=raw, headers=headers, timeout=10)


def test_two_replicas_leader_killed_mid_burst_everything_engaged_exactly_once(
    sandbox: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    assert sandbox.base_url is not None
    pd = client_for(sandbox.base_url)
    org, _ = org_and_policies()
    ids = department_ids(pd, org)
    incidents = [create_incident(pd, f"Checkout API outage {n}") for n in range(INCIDENTS)]
    bodies = [
        json.dumps(envelope("incident.triggered", incident=webhook_data(i))).encode()
        for i in incidents
    ]
    replicas = [_start(tmp_path, "r0", pg_url, sandbox.base_url)]
    replicas.append(_start(tmp_path, "r1", pg_url, sandbox.base_url))
    try:
        wait_for(
            lambda: sorted(r.leader() or 0.0 for r in replicas) == [0.0, 1.0],
            timeout=15,
            what="exactly one leader",
        )
        leader = next(r for r in replicas if r.leader() == 1.0)
        survivor = next(r for r in replicas if r is not leader)
        answers: list[tuple[str, int, str]] = []
        half = INCIDENTS // 2
        # The first half meets a slow PagerDuty (300 ms a call, four calls an incident):
        # the first engagement is visible well before the last of the half is done.
        sandbox.runtime.latency = 0.3
        for n, raw in enumerate(bodies[:half]):
            first, other = replicas[n % 2], replicas[(n + 1) % 2]
            for target in (first, other):  # the redelivery goes to the other replica
                answer = _deliver(target, raw, f"w{n}")
                answers.append((target.name, answer.status_code, answer.json()["status"]))
        assert [a[1] for a in answers] == [202] * (2 * half)
        assert [a[2] for a in answers] == ["accepted", "duplicate"] * half
        assert {a[0] for a in answers if a[2] == "accepted"} == {"r0", "r1"}  # alternating

        with PostgresState(pg_url) as db:
            # Mid-burst: some engagements written, the leader still has work in hand.
            wait_for(lambda: len(db.engagements()) >= 1, timeout=20, what="first engagements")
            # Slower still at once, so that what is left of the first half is still in
            # hand when the kill lands even on a loaded machine (CI once saw the whole
            # half finish between the first engagement and the kill at 20 ms per call).
            sandbox.runtime.latency = 2.0
            leader.proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            leader.proc.wait(timeout=10)
            assert db.stats().pending > 0, "the kill came too late to prove anything"
            sandbox.runtime.latency = 0.02
            for n, raw in enumerate(bodies[half:], start=half):
                for _ in range(2):  # the delivery and its redelivery, both to the survivor
                    assert _deliver(survivor, raw, f"w{n}").status_code == 202
            wait_for(lambda: survivor.leader() == 1.0, timeout=30, what="the survivor to lead")
            took_over = time.monotonic() - killed_at
            assert took_over < 30
            wait_for(
                lambda: db.stats().pending == 0 and len(db.engagements()) >= 4 * INCIDENTS,
                timeout=60,
                what="every stored event to be processed by the survivor",
            )
            webhook_events = [e for e in db.events() if e.source == "webhook"]
            assert len(webhook_events) == INCIDENTS  # the redeliveries were not stored
            assert {e.status for e in db.events()} == {"done"}
            assert len(db.engagements()) == 4 * INCIDENTS
    finally:
        for replica in replicas:
            replica.stop()

    for incident in incidents:
        eps, teams, notes = engaged_state(sandbox, incident["id"])
        assert eps == [ids["support"]["escalation_policy"]], incident["id"]
        assert teams == sorted(ids[k]["team"] for k in ("executive", "finance", "sales"))
        assert notes == 1  # one note per incident and pass (SPEC §2)
        assert note_tags(sandbox, incident["id"]) == PACK_P1_TAGS
    assert not (tmp_path / "r0.db").exists()
    assert not (tmp_path / "r1.db").exists()
    for replica in replicas:
        assert "Traceback" not in replica.log.read_text()


def _serve_once(tmp_path: Path, db_url: str) -> subprocess.CompletedProcess[str]:
    env = serve_env("http://127.0.0.1:9", tmp_path, free_port(), **_env(tmp_path, "bad", db_url))
    # Not the sandbox (nothing answers there): serve needs a token before the database.
    env["PDORGSYNC_API_TOKEN"] = "u+pdorgsync-test-token"
    return run_pdorgsync(["serve"], env, tmp_path)


def test_bad_database_url_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = _serve_once(tmp_path, "mysql://app:pw@db/app")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PDORGSYNC_DATABASE_URL" in lines[0]
    assert "expected postgresql://" in lines[0]


def test_unreachable_database_at_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    port = free_port()
    result = _serve_once(tmp_path, f"postgresql://app:hunter2pw@127.0.0.1:{port}/app")
    assert result.returncode == 1
    # Besides the api.target log line every command prints (issue 15): one error line.
    lines = [ln for ln in result.stderr.strip().splitlines() if '"api.target"' not in ln]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert f"app@127.0.0.1:{port}/app" in lines[0]
    assert "hunter2pw" not in result.stderr
    assert "Traceback" not in result.stderr


def test_database_outage_503_then_recovery_without_restart(
    sandbox: Sandbox, pg_url: str, pg_cluster: Any, tmp_path: Path
) -> None:
    """An event is stored (202) and the database goes away while the worker is on it:
    /readyz 503 and deliveries 503 (PagerDuty retries); DB back: 200 and 202 again from
    the same process, and both the interrupted event and the retried one are engaged."""
    assert sandbox.base_url is not None
    pd = client_for(sandbox.base_url)
    ids = department_ids(pd, org_and_policies()[0])
    before, during = (create_incident(pd, f"Checkout API down {n}") for n in range(2))
    replica = _start(tmp_path, "r0", pg_url, sandbox.base_url)
    try:
        raw_during = json.dumps(envelope(incident=webhook_data(during))).encode()
        raw_before = json.dumps(envelope(incident=webhook_data(before))).encode()
        assert _deliver(replica, raw_before, "wb").status_code == 202
        pg_cluster.stop("immediate")  # the worker is mid-way through `before`
        try:
            wait_for(
                lambda: httpx.get(f"{replica.url}/readyz", timeout=10).status_code == 503,
                timeout=20,
                what="/readyz 503 without the database",
            )
            problems = httpx.get(f"{replica.url}/readyz", timeout=10).json()["problems"]
            assert any("state store not writable" in p for p in problems)
            answer = _deliver(replica, raw_during, "wd")
            assert answer.status_code == 503
            assert httpx.get(f"{replica.url}/healthz", timeout=5).status_code == 200
        finally:
            pg_cluster.start()
        wait_for(
            lambda: httpx.get(f"{replica.url}/readyz", timeout=10).status_code == 200,
            timeout=30,
            what="/readyz 200 once the database is back",
        )
        assert _deliver(replica, raw_before, "wb").status_code == 202  # a duplicate now
        assert _deliver(replica, raw_during, "wd").status_code == 202  # PagerDuty's retry
        with PostgresState(pg_url) as db:
            wait_for(
                lambda: db.stats().pending == 0 and len(db.engagements()) == 8,
                timeout=30,
                what="both incidents engaged after the recovery",
            )
        assert replica.proc.poll() is None  # never restarted
    finally:
        replica.stop()
    for incident in (before, during):
        eps, _teams, notes = engaged_state(sandbox, incident["id"])
        assert eps == [ids["support"]["escalation_policy"]]
        assert notes == 1  # one note per incident and pass (SPEC §2)
        assert note_tags(sandbox, incident["id"]) == PACK_P1_TAGS
    assert "Traceback" not in replica.log.read_text()
