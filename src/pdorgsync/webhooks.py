"""The webhook receiver: ``POST /webhooks/pagerduty`` as a Starlette (ASGI) app.

It verifies, stores and answers; it never talks to PagerDuty and never evaluates
policies (the worker does, from the inbox). Checks run in the order SPEC §5 fixes:

0. both ``Content-Length`` and ``Transfer-Encoding`` → 400 (and close); a body not
   received within the read deadline → 408 (and close)
1. body larger than 1 MiB → 413 (read with a cap; Content-Length is not trusted)
2. ``X-PagerDuty-Signature`` (every header line) → 401 unless one ``v1=`` value
   matches the HMAC-SHA256 of the raw body under one configured secret (constant-time)
3. not JSON (``NaN`` and out-of-range numbers included) or not a V3 envelope → 400
4. stored durably (committed) → 202; duplicate → 202, not stored twice;
   unknown event types, and deliveries older than the dedupe window (a replay),
   are stored as ``ignored`` → 202
5. the store failed (locked past the busy timeout, disk full) → 503, so PagerDuty
   retries: it drops, never retries, deliveries answered with a 4xx other than 429.

What it must never do: answer 202 before the commit, log a secret or a raw body
(rejections are logged truncated and rate limited: anyone can send them),
or answer any other 5xx (every unexpected error while storing is a 503).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pdorgsync.errors import ConfigError, InboxError
from pdorgsync.logs import get_logger
from pdorgsync.models.events import EnvelopeError, WebhookEnvelope, parse_envelope
from pdorgsync.state.base import StateStore
from pdorgsync.state.records import DEDUPE_WINDOW

__all__ = [
    "MAX_BODY_BYTES",
    "WEBHOOK_PATH",
    "ReceiverHooks",
    "create_app",
    "sign",
    "signature_matches",
]

WEBHOOK_PATH = "/webhooks/pagerduty"
MAX_BODY_BYTES = 1024 * 1024

log = get_logger("pdorgsync.webhooks")


class HasSecrets(Protocol):
    """Anything with ``secrets()``: ``Settings``, or a small object in tests."""

    def secrets(self) -> list[str]: ...


def _noop_outcome(_outcome: str) -> None:
    return None


def _noop() -> None:
    return None


@dataclass(frozen=True)
class ReceiverHooks:
    """Metric and wake-up hook points for the daemon.

    ``on_delivery(outcome)`` is called once per request with one of ``accepted``,
    ``duplicate``, ``ignored``, ``unauthorized``, ``bad_request``, ``too_large``,
    ``store_failed`` (the label values of ``pdorgsync_webhooks_received_total``).
    ``on_stored()`` is called after a new pending event was committed (wire it to
    ``Worker.wake`` so engagement starts at once instead of at the next poll).
    """

    on_delivery: Callable[[str], None] = field(default=_noop_outcome)
    on_stored: Callable[[], None] = field(default=_noop)


def sign(body: bytes, secret: str) -> str:
    """The ``v1=<hex>`` signature PagerDuty sends for ``body`` under ``secret``."""
    return "v1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_matches(header: str | None, body: bytes, secrets: Sequence[str]) -> bool:
    """True if any ``v1=`` value of the header matches the body under any secret.

    Non-``v1`` entries are ignored. Every candidate is compared against every
    secret with ``hmac.compare_digest`` on bytes (no early exit on the first
    mismatching character; non-ASCII header bytes cannot raise).
    """
    if not header or not secrets:
        return False
    candidates = []
    for part in header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme.strip() == "v1":
            candidates.append(value.strip().encode("utf-8", "replace"))
    if not candidates:
        return False
    expected = [
        hmac.new(s.encode("utf-8"), body, hashlib.sha256).hexdigest().encode("ascii")
        for s in secrets
    ]
    matched = False
    for candidate in candidates:
        for digest in expected:
            matched |= hmac.compare_digest(candidate, digest)
    return matched


def stale_reason(envelope: WebhookEnvelope, now: datetime) -> str | None:
    """Why a delivery is too old to act on, or None.

    V3 signatures carry no timestamp, so a captured delivery verifies forever;
    only its ``occurred_at`` dates it. Older than the dedupe window, its id may
    already be purged: it is acknowledged (202) and stored as ignored, never
    evaluated with stale data. (PagerDuty itself stops retrying after 48 h.)
    """
    occurred = envelope.event.occurred_at
    if occurred is None:
        return None
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    if now - occurred > DEDUPE_WINDOW:
        hours = int(DEDUPE_WINDOW.total_seconds() // 3600)
        return f"stale delivery: occurred at {occurred.isoformat()}, more than {hours} h ago"
    return None


class _TooLarge(Exception):
    pass


class RejectionLog:
    """Logs rejected requests (401, 400, 413, 408) at most ``budget`` per ``window``
    seconds, values truncated: anyone can send them, and every 401 used to log
    whatever headers the sender chose (120 KB a request). Suppressed lines are
    counted in one ``webhooks.rejections_suppressed`` line per window."""

    def __init__(
        self, budget: int = 20, window: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self.window = window
        self.clock = clock
        self._started = clock()
        self._logged = 0
        self._suppressed = 0

    def warning(self, event: str, **values: object) -> None:
        now = self.clock()
        if now - self._started >= self.window:
            if self._suppressed:
                log.warning("webhooks.rejections_suppressed", count=self._suppressed)
            self._started, self._logged, self._suppressed = now, 0, 0
        if self._logged >= self.budget:
            self._suppressed += 1
            return
        self._logged += 1
        log.warning(event, **{k: _short(v) for k, v in values.items()})


def _short(value: object, limit: int = 120) -> object:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"…({len(value)} chars)"
    return value


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings_like: HasSecrets,
    inbox: StateStore,
    metrics_hooks: ReceiverHooks | None = None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    read_timeout: float = 10.0,
    rejections: RejectionLog | None = None,
) -> Starlette:
    """The receiver app. The daemon may add routes (``app.router.routes.append``).

    ``settings_like.secrets()`` is read once here; an empty list is a ConfigError,
    because a receiver that can verify nothing would answer 401 to everything.
    """
    secrets = list(settings_like.secrets())
    if not secrets:
        raise ConfigError(
            "PDORGSYNC_WEBHOOK_SECRETS is not set: put the secret printed by "
            "'pdorgsync webhook ensure' there (comma-separated during rotation)"
        )
    hooks = metrics_hooks or ReceiverHooks()
    rejected = rejections or RejectionLog()

    def answer(
        outcome: str, status: int, headers: dict[str, str] | None = None, **extra: object
    ) -> JSONResponse:
        hooks.on_delivery(outcome)
        return JSONResponse({"status": outcome, **extra}, status_code=status, headers=headers)

    async def receive(request: Request) -> JSONResponse:
        started = time.perf_counter()
        webhook_id = request.headers.get("x-webhook-id") or None
        if webhook_id is not None and len(webhook_id) > 200:
            webhook_id = None  # not PagerDuty's (a UUID); dedupe on the event id alone
        if "content-length" in request.headers and "transfer-encoding" in request.headers:
            # RFC 9112 §6.1: a request with both is a smuggling attempt or a broken
            # proxy; answer and close the connection rather than guess its framing.
            return answer(
                "bad_request",
                400,
                error="both Content-Length and Transfer-Encoding",
                headers={"connection": "close"},
            )
        try:
            # A body that trickles in holds a connection: it has a deadline too.
            async with asyncio.timeout(read_timeout):
                body = await _read_capped(request, max_body_bytes)
        except TimeoutError:
            rejected.warning("webhooks.body_timeout", webhook_id=webhook_id)
            return answer(
                "bad_request",
                408,
                error=f"body not received within {read_timeout:g} s",
                headers={"connection": "close"},
            )
        except _TooLarge:
            rejected.warning("webhooks.too_large", webhook_id=webhook_id)
            return answer("too_large", 413, error="body larger than 1 MiB")
        except ClientDisconnect:
            return answer("bad_request", 400, error="client disconnected")

        # Several header lines are one comma-separated list (RFC 9110 §5.3): a
        # proxy may split them, and only the first line counted before.
        signature = ", ".join(request.headers.getlist("x-pagerduty-signature"))
        if not signature_matches(signature, body, secrets):
            # Alert-worthy: three dropped deliveries in a row disable the subscription.
            rejected.warning(
                "webhooks.bad_signature",
                webhook_id=webhook_id,
                subscription=request.headers.get("x-webhook-subscription"),
            )
            return answer("unauthorized", 401, error="missing or invalid X-PagerDuty-Signature")

        try:
            envelope = parse_envelope(body)
        except EnvelopeError as exc:
            rejected.warning("webhooks.bad_request", webhook_id=webhook_id, reason=str(exc))
            return answer("bad_request", 400, error=str(exc))

        payload = body.decode("utf-8")  # parse_envelope proved it is valid UTF-8 JSON
        stale = stale_reason(envelope, inbox.clock())
        if stale is not None:
            log.warning(
                "webhooks.stale", event_id=envelope.event.id, webhook_id=webhook_id, reason=stale
            )
        try:
            result = await run_in_threadpool(
                inbox.store,
                envelope,
                payload,
                webhook_id=webhook_id,
                status="ignored" if stale else None,
                note=stale,
            )
        except InboxError as exc:
            log.error("webhooks.store_failed", event_id=envelope.event.id, error=str(exc))
            return answer("store_failed", 503, error="could not store the event; retry later")
        except Exception as exc:  # any store failure must be retryable for PagerDuty
            log.error(
                "webhooks.store_failed",
                event_id=envelope.event.id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return answer("store_failed", 503, error="could not store the event; retry later")

        event = envelope.event
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        if not result.stored:
            log.info(
                "webhooks.duplicate",
                event_id=event.id,
                webhook_id=webhook_id,
                event_type=event.event_type,
            )
            return answer("duplicate", 202, event_id=event.id)
        log.info(
            "inbox.event_stored",
            event_id=event.id,
            webhook_id=webhook_id,
            event_type=event.event_type,
            incident_id=event.incident_id,
            status=result.status,
            id=result.seq,
            ms=elapsed_ms,
        )
        if result.status == "pending":
            hooks.on_stored()
            return answer("accepted", 202, event_id=event.id, id=result.seq)
        return answer("ignored", 202, event_id=event.id, id=result.seq)

    app = Starlette(routes=[Route(WEBHOOK_PATH, receive, methods=["POST"])])
    # No 307 to a slash variant: its Location would be built from the client's Host
    # header (an open redirect), and PagerDuty never adds the slash.
    app.router.redirect_slashes = False
    return app
