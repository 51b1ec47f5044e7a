"""The receiver: status codes in SPEC §5 order, signatures, durable store, 503 on store failure."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdorgsync.errors import ConfigError
from pdorgsync.state.sqlite import Inbox
from pdorgsync.webhooks import WEBHOOK_PATH, ReceiverHooks, create_app, sign, signature_matches
from tests.support.webhooks import (
    INDEX,
    OLD_SECRET,
    SECRET,
    FakeClock,
    TestClient,
    envelope,
    example_bytes,
    example_headers,
    signed,
)


class Secrets:
    def __init__(self, *values: str) -> None:
        self.values = list(values)

    def secrets(self) -> list[str]:
        return self.values


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    # The example deliveries occurred on 2026-03-14: a clock on that day keeps them fresh.
    box = Inbox(tmp_path / "state.db", busy_timeout=0.1, clock=FakeClock())
    yield box
    box.close()


@pytest.fixture
def outcomes() -> list[str]:
    return []


@pytest.fixture
def client(inbox: Inbox, outcomes: list[str]) -> Iterator[TestClient]:
    app = create_app(Secrets(SECRET), inbox, ReceiverHooks(on_delivery=outcomes.append))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("delivery", INDEX["deliveries"], ids=lambda d: d["file"])
def test_example_deliveries_are_accepted(
    client: TestClient, inbox: Inbox, delivery: dict[str, object]
) -> None:
    """Every example delivery with its published signature gets 202 and is stored."""
    name = str(delivery["file"]).removesuffix(".json")
    response = client.post(WEBHOOK_PATH, content=example_bytes(name), headers=example_headers(name))
    assert response.status_code == 202
    [event] = inbox.events()
    assert event.event_type == delivery["event_type"]
    expected = "ignored" if delivery["event_type"] == "pagey.ping" else "pending"
    assert event.status == expected


def test_rotation_header_with_two_signatures_is_accepted(client: TestClient, inbox: Inbox) -> None:
    """During secret rotation the header carries two v1 values; either matching is enough."""
    headers = example_headers("incident.triggered")
    headers["X-PagerDuty-Signature"] = INDEX["deliveries"][0]["signature_during_rotation"]
    response = client.post(
        WEBHOOK_PATH, content=example_bytes("incident.triggered"), headers=headers
    )
    assert response.status_code == 202


def test_old_secret_alone_is_accepted_when_configured(inbox: Inbox) -> None:
    """With both secrets configured, a delivery signed only with the old one passes."""
    body = example_bytes("incident.triggered")
    app = create_app(Secrets("new-secret", OLD_SECRET), inbox)
    with TestClient(app) as c:
        r = c.post(
            WEBHOOK_PATH, content=body, headers={"X-PagerDuty-Signature": sign(body, OLD_SECRET)}
        )
    assert r.status_code == 202


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=deadbeef",
        "v0=" + "0" * 64,
        "sha256=abc",
        ("v1=" + "é" * 64).encode("utf-8"),
        ",,,",
    ],
)
def test_bad_signature_is_401_and_stores_nothing(
    client: TestClient, inbox: Inbox, header: str | bytes | None, outcomes: list[str]
) -> None:
    """A missing, wrong, non-ASCII or non-v1 signature gets 401 and nothing is stored."""
    headers: dict[str, str | bytes] = {} if header is None else {"X-PagerDuty-Signature": header}
    response = client.post(
        WEBHOOK_PATH, content=example_bytes("incident.triggered"), headers=headers
    )
    assert response.status_code == 401
    assert inbox.events() == []
    assert outcomes == ["unauthorized"]


def test_non_v1_entries_are_ignored_next_to_a_valid_one(client: TestClient) -> None:
    """Unknown schemes in the header do not spoil a valid v1 value."""
    raw, headers = signed(envelope())
    headers["X-PagerDuty-Signature"] = "v2=zzz, " + headers["X-PagerDuty-Signature"] + ",junk"
    assert client.post(WEBHOOK_PATH, content=raw, headers=headers).status_code == 202


def test_signature_over_modified_body_fails(client: TestClient, inbox: Inbox) -> None:
    """Re-serialised JSON (same content, other bytes) does not match the signature."""
    headers = example_headers("incident.triggered")
    body = json.dumps(json.loads(example_bytes("incident.triggered"))).encode()
    assert client.post(WEBHOOK_PATH, content=body, headers=headers).status_code == 401
    assert inbox.events() == []


def test_too_large_body_is_413_before_signature(client: TestClient, inbox: Inbox) -> None:
    """A body over 1 MiB gets 413 even when unsigned (size is checked first)."""
    big = b"{" + b" " * (1024 * 1024) + b"}"
    response = client.post(WEBHOOK_PATH, content=big)
    assert response.status_code == 413
    assert inbox.events() == []


def test_too_large_streamed_body_without_length_is_413(client: TestClient) -> None:
    """A chunked body with no Content-Length is still capped at 1 MiB."""

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 65536

    response = client.post(WEBHOOK_PATH, content=chunks())
    assert response.status_code == 413


def test_lying_content_length_does_not_bypass_the_cap(inbox: Inbox) -> None:
    """A small declared Content-Length with a huge body is still rejected with 413."""
    app = create_app(Secrets(SECRET), inbox)
    big = b"x" * (1024 * 1024 + 10)
    sent = {"done": False}
    messages: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if sent["done"]:
            return {"type": "http.disconnect"}
        sent["done"] = True
        return {"type": "http.request", "body": big, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    import asyncio

    scope = {
        "type": "http",
        "method": "POST",
        "path": WEBHOOK_PATH,
        "raw_path": WEBHOOK_PATH.encode(),
        "query_string": b"",
        "headers": [(b"content-length", b"10")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]  # a hand-built ASGI scope
    assert messages[0]["status"] == 413


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"event": {}}',
        b'{"nope": 1}',
        b"\xff\xfe",
        b'{"event": {"id": "x"}}',
        # A valid envelope, but UTF-16 with a BOM: PagerDuty sends UTF-8 only.
        example_bytes("incident.triggered").decode().encode("utf-16"),
    ],
)
def test_signed_garbage_is_400(client: TestClient, inbox: Inbox, body: bytes) -> None:
    """A correctly signed body that is not a V3 envelope gets 400 and is not stored."""
    raw, headers = signed(body)
    response = client.post(WEBHOOK_PATH, content=raw, headers=headers)
    assert response.status_code == 400
    assert inbox.events() == []


def test_duplicate_delivery_is_202_and_stored_once(
    client: TestClient, inbox: Inbox, outcomes: list[str]
) -> None:
    """The same delivery three times: three 202s, one stored event."""
    body, headers = example_bytes("incident.triggered"), example_headers("incident.triggered")
    codes = [client.post(WEBHOOK_PATH, content=body, headers=headers).status_code for _ in range(3)]
    assert codes == [202, 202, 202]
    assert len(inbox.events()) == 1
    assert outcomes == ["accepted", "duplicate", "duplicate"]


def test_unknown_event_type_is_202_and_ignored(client: TestClient, inbox: Inbox) -> None:
    """An event type PagerDuty adds later is acknowledged and stored as ignored."""
    raw, headers = signed(envelope("incident.something_new"))
    assert client.post(WEBHOOK_PATH, content=raw, headers=headers).status_code == 202
    assert [e.status for e in inbox.events()] == ["ignored"]


def test_locked_database_gives_503(client: TestClient, inbox: Inbox, outcomes: list[str]) -> None:
    """When another connection holds the write lock past the busy timeout, the answer is 503."""
    raw, headers = signed(envelope())
    blocker = sqlite3.connect(inbox.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = client.post(WEBHOOK_PATH, content=raw, headers=headers)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status_code == 503
    assert outcomes == ["store_failed"]
    # PagerDuty retries; the retry succeeds once the lock is gone.
    assert client.post(WEBHOOK_PATH, content=raw, headers=headers).status_code == 202
    assert len(inbox.events()) == 1


def test_stored_hook_fires_only_for_new_pending_events(inbox: Inbox) -> None:
    """on_stored (worker wake-up) fires for a new processable event, not for duplicates or pings."""
    woken: list[int] = []
    app = create_app(Secrets(SECRET), inbox, ReceiverHooks(on_stored=lambda: woken.append(1)))
    with TestClient(app) as c:
        raw, headers = signed(envelope(event_id="one"))
        c.post(WEBHOOK_PATH, content=raw, headers=headers)
        c.post(WEBHOOK_PATH, content=raw, headers=headers)
        c.post(
            WEBHOOK_PATH, content=example_bytes("pagey.ping"), headers=example_headers("pagey.ping")
        )
    assert woken == [1]


def test_no_secrets_is_a_config_error(inbox: Inbox) -> None:
    """A receiver without any secret refuses to start (it could verify nothing)."""
    with pytest.raises(ConfigError, match="PDORGSYNC_WEBHOOK_SECRETS"):
        create_app(Secrets(), inbox)


def test_signature_matches_rejects_without_secrets() -> None:
    """No configured secret never verifies anything."""
    body = b"{}"
    assert not signature_matches(sign(body, "s"), body, [])
    assert signature_matches(sign(body, "s"), body, ["other", "s"])


def test_get_is_not_allowed(client: TestClient) -> None:
    """Only POST is served on the webhook path."""
    assert client.get(WEBHOOK_PATH).status_code == 405
