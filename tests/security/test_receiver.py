"""Probes against the webhook receiver of a real ``pdorgsync serve`` (issue 15 items 5-8)."""

from __future__ import annotations

import contextlib
import json
import socket
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pdorgsync.state.sqlite import Inbox
from tests.support.daemon import Served
from tests.support.serving import wait_for
from tests.support.webhooks import SECRET, envelope, signed

pytestmark = pytest.mark.slow


def _raw_request(served: Served, data: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", served.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# -- item 5: read deadlines and a connection cap --------------------------------------------


def test_idle_and_slow_clients_are_cut_and_real_deliveries_still_get_in(
    serve: Callable[..., Served],
) -> None:
    """Idle sockets, unfinished headers and trickled bodies are closed; /healthz and a delivery answer."""
    served = serve(PDORGSYNC_HTTP_READ_TIMEOUT="1", PDORGSYNC_HTTP_MAX_CONNECTIONS="16")
    idle = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(40)]
    partial = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    partial.sendall(b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    slow_body = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    slow_body.sendall(
        b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
    )
    try:
        # Forty idle sockets against a cap of sixteen: the real client still gets in,
        # evicting the sockets that waited longest for their headers.
        started = time.monotonic()
        assert httpx.get(f"{served.base}/healthz", timeout=3).status_code == 200
        assert served.deliver().status_code == 202
        assert time.monotonic() - started < 3
        # Within the deadline (1 s, plus slack) every one of them is closed by the server.
        for sock in [*idle, partial]:
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):  # evicted with a reset: closed too
                assert sock.recv(1024) == b""
        slow_body.settimeout(5)
        answer = slow_body.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408") or answer == b""
    finally:
        for sock in [*idle, partial, slow_body]:
            sock.close()
    assert httpx.get(f"{served.base}/healthz", timeout=3).status_code == 200
    events = served.log_events()  # every line is JSON: no asyncio traceback flood
    assert "Traceback" not in served.log()
    assert len(events) < 200


def test_at_the_open_file_limit_the_daemon_neither_floods_the_log_nor_stops_answering(
    serve: Callable[..., Served],
) -> None:
    """With RLIMIT_NOFILE=160, 200 open client sockets: no EMFILE flood, /healthz answers."""
    served = serve(open_files=160, PDORGSYNC_HTTP_READ_TIMEOUT="2")
    sockets = []
    try:
        for _ in range(200):
            try:
                sockets.append(socket.create_connection(("127.0.0.1", served.port), timeout=5))
            except OSError:
                break  # the backlog is full: the kernel refuses, the daemon is unharmed
        assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200
        assert served.deliver().status_code == 202
    finally:
        for sock in sockets:
            sock.close()
    assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200
    log = served.log()
    assert "Traceback" not in log
    assert len(served.log_events()) < 100  # every line JSON, and few of them


# -- item 6: log amplification --------------------------------------------------------------


def test_unauthenticated_requests_are_logged_truncated_and_rate_limited(
    shared_serve: Served,
) -> None:
    """80 unsigned requests with 50 KB of headers produce a few short log lines, not 4 MB."""
    served = shared_serve
    huge = "x" * 25_000  # two of them: under the 64 KiB header limit (over it: 400)
    body, headers = signed(envelope())
    headers = {**headers, "X-PagerDuty-Signature": "v1=" + "0" * 64}
    with httpx.Client(timeout=5) as client:
        for _ in range(80):
            answer = client.post(
                f"{served.base}/webhooks/pagerduty",
                content=body,
                headers={**headers, "X-Webhook-Subscription": huge, "X-Webhook-Id": huge},
            )
            assert answer.status_code == 401
    log = served.log()
    assert len(log) < 30_000
    assert huge[:1000] not in log
    lines = [e for e in served.log_events() if e.get("event") == "webhooks.bad_signature"]
    assert 1 <= len(lines) <= 20


def test_uvicorn_log_lines_are_json_too(shared_serve: Served) -> None:
    """A malformed request makes uvicorn log a warning: it is one JSON line like ours."""
    served = shared_serve
    answer = _raw_request(served, b"GARBAGE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    wait_for(lambda: "Invalid HTTP request" in served.log(), timeout=5, what="uvicorn's warning")
    lines = [e for e in served.log_events() if "Invalid HTTP request" in e["event"]]
    assert lines
    assert all(e["level"] == "warning" and e["logger"].startswith("uvicorn") for e in lines)


# -- item 7: replays ---------------------------------------------------------------------


def test_replayed_old_delivery_is_acknowledged_and_ignored(shared_serve: Served) -> None:
    """A validly signed delivery that occurred 4 days ago gets 202 but is stored as ignored."""
    served = shared_serve
    old = datetime.now(UTC) - timedelta(days=4)
    answer = served.deliver(event_id="replayed", occurred_at=old)
    assert answer.status_code == 202
    assert answer.json()["status"] == "ignored"
    with Inbox(served.state) as inbox:
        event = inbox.get("replayed")
        assert event is not None
        assert event.status == "ignored"
        assert "stale delivery" in (event.last_error or "")


# -- item 8: smaller holes ----------------------------------------------------------------


def test_smaller_holes(shared_serve: Served) -> None:
    """Split signature lines count; no slash redirect; NaN, 1e999, blank ids, CL+TE refused."""
    served = shared_serve
    body, headers = signed(envelope(event_id="split-signature"))
    good = headers.pop("X-PagerDuty-Signature")
    split = httpx.post(
        f"{served.base}/webhooks/pagerduty",
        content=body,
        headers=[
            *headers.items(),
            ("X-PagerDuty-Signature", "v1=" + "0" * 64),
            ("X-PagerDuty-Signature", good),
        ],
        timeout=5,
    )
    assert split.status_code == 202

    slash = httpx.post(
        f"{served.base}/webhooks/pagerduty/",
        content=body,
        headers={**headers, "X-PagerDuty-Signature": good, "Host": "attacker.example"},
        timeout=5,
    )
    assert slash.status_code == 404
    assert "location" not in slash.headers

    base = json.dumps(envelope(event_id="numbers"))
    for bad in (
        base.replace('"numbers"', '"numbers", "x": NaN'),
        base.replace('"numbers"', '"numbers", "x": 1e999'),
        json.dumps(envelope(event_id="   ")),
    ):
        raw, sig_headers = signed(bad.encode())
        assert served.post(raw, sig_headers).status_code == 400, bad[:80]

    raw, sig_headers = signed(envelope(event_id="smuggled"))
    request = (
        b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: x\r\n"
        + f"X-PagerDuty-Signature: {sig_headers['X-PagerDuty-Signature']}\r\n".encode()
        + f"Content-Length: {len(raw)}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + f"{len(raw):x}\r\n".encode()
        + raw
        + b"\r\n0\r\n\r\n"
    )
    answer = _raw_request(served, request)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    with Inbox(served.state) as inbox:
        assert inbox.get("smuggled") is None
        assert inbox.get("numbers") is None

    for path in (served.state, served.state.with_name(served.state.name + "-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert SECRET not in served.log()
