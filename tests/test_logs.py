"""Structured logging: secrets never reach a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import requests
import responses
import structlog

from pdorgsync.errors import PagerDutyError
from pdorgsync.logs import (
    REDACTED,
    RateLimitFilter,
    configure_logging,
    get_logger,
    redact_text,
    register_secrets,
)
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.webhooks import RejectionLog

TOKEN = "Zq8-fake-token-wKp3xT"  # made up; registered as a secret below

# Created at import, before any configure_logging call, like every module logger.
module_log = get_logger("tests.logs")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured to JSON in a StringIO, with the token registered; reset afterwards."""
    buffer = io.StringIO()
    register_secrets([TOKEN])
    configure_logging("debug", "json", buffer)
    yield buffer
    structlog.reset_defaults()


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_token_in_value_is_redacted(stream: io.StringIO) -> None:
    """A token inside a string value is replaced by [REDACTED]."""
    get_logger("t").info("webhook.ensure", note=f"created with key {TOKEN} ok")
    (line,) = _lines(stream)
    assert line["note"] == f"created with key {REDACTED} ok"
    assert TOKEN not in stream.getvalue()


def test_token_in_nested_values_is_redacted(stream: io.StringIO) -> None:
    """Tokens nested in dicts and lists are redacted too."""
    get_logger("t").warning(
        "pagerduty.debug", request={"headers": {"auth": TOKEN}, "args": ["x", TOKEN]}
    )
    (line,) = _lines(stream)
    assert line["request"] == {"headers": {"auth": REDACTED}, "args": ["x", REDACTED]}
    assert TOKEN not in stream.getvalue()


def test_token_in_traceback_is_redacted(stream: io.StringIO) -> None:
    """A token inside an exception message is scrubbed from the rendered traceback."""
    log = get_logger("t")
    try:
        raise RuntimeError(f"boom with {TOKEN}")
    except RuntimeError:
        log.exception("worker.crashed")
    (line,) = _lines(stream)
    assert "Traceback" in str(line["exception"])
    assert REDACTED in str(line["exception"])
    assert TOKEN not in stream.getvalue()


def test_logger_created_before_configuration_is_redacted(stream: io.StringIO) -> None:
    """A module-level logger made at import time still writes JSON through the redactor."""
    module_log.info("inbox.event_stored", secret=TOKEN)
    (line,) = _lines(stream)
    assert line["logger"] == "tests.logs"
    assert line["secret"] == REDACTED


def test_console_format_is_redacted_too() -> None:
    """The console renderer also never shows the token."""
    buffer = io.StringIO()
    register_secrets([TOKEN])
    configure_logging("info", "console", buffer)
    try:
        get_logger("t").info("cli.start", value=TOKEN)
    finally:
        structlog.reset_defaults()
    assert "cli.start" in buffer.getvalue()
    assert TOKEN not in buffer.getvalue()
    assert REDACTED in buffer.getvalue()


def test_level_filters_debug(stream: io.StringIO) -> None:
    """At level info, debug events are not written."""
    configure_logging("info", "json", stream)
    log = get_logger("t")
    log.debug("pagerduty.request")
    log.info("reconcile.done")
    assert [line["event"] for line in _lines(stream)] == ["reconcile.done"]


def test_unregistered_authorization_header_is_redacted() -> None:
    """An Authorization header value is scrubbed even if the token was never registered."""
    text = redact_text("sent {'Authorization': 'Token token=unregistered123'} and Bearer abc.def")
    assert "unregistered123" not in text
    assert "abc.def" not in text
    assert text.count(REDACTED) == 2


def test_failed_request_error_never_contains_token(stream: io.StringIO) -> None:
    """A PagerDutyError for a failed request, and its logged traceback, hold no token or headers."""
    client = PagerDutyClient(
        TOKEN, "https://api.pagerduty.test", max_attempts=1, sleep=lambda s: None
    )
    with responses.RequestsMock() as rsps:
        rsps.get("https://api.pagerduty.test/teams", status=500, body="internal error")
        rsps.get("https://api.pagerduty.test/users", body=requests.exceptions.ReadTimeout())
        for path in ("/teams", "/users"):
            with pytest.raises(PagerDutyError) as info:
                client.get(path)
            message = str(info.value)
            assert TOKEN not in message
            assert "Authorization" not in message
            assert "Token token" not in message
            try:
                raise info.value
            except PagerDutyError:
                get_logger("t").exception("reconcile.failed")
    assert "reconcile.failed" in stream.getvalue()
    # Not even the redactor had to step in: the whole exception chain is token-free.
    assert TOKEN not in stream.getvalue()
    assert REDACTED not in stream.getvalue()


def test_stdlib_records_are_json_redacted_and_rate_limited(stream: io.StringIO) -> None:
    """uvicorn/asyncio records: one JSON line each, token scrubbed, a flood cut to ten."""
    flood = logging.getLogger("asyncio")
    for _ in range(500):
        flood.error("socket.accept() out of system resource: %s", TOKEN)
    lines = _lines(stream)
    assert len(lines) == 10
    assert all(line["logger"] == "asyncio" and line["level"] == "error" for line in lines)
    assert TOKEN not in stream.getvalue()


def test_rate_limit_reports_what_it_dropped() -> None:
    """After a quiet window the first record says how many similar ones were dropped."""
    limiter = RateLimitFilter(budget=2, window=10.0)

    def record(at: float) -> logging.LogRecord:
        rec = logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, "busy", (), None)
        rec.created = at
        return rec

    passed = [limiter.filter(record(t)) for t in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert passed == [True, True, False, False, False]
    later = record(11.0)
    assert limiter.filter(later)
    assert getattr(later, "suppressed", None) == 3


def test_rejected_requests_are_logged_truncated_and_counted(stream: io.StringIO) -> None:
    """The receiver's rejection log: values cut to 120 characters, 20 a window, then a count."""
    now = [0.0]
    rejections = RejectionLog(budget=20, window=10.0, clock=lambda: now[0])
    for _ in range(100):
        rejections.warning("webhooks.bad_signature", subscription="x" * 100_000)
    now[0] = 10.0
    rejections.warning("webhooks.bad_signature", subscription="short")
    lines = _lines(stream)
    assert len(lines) == 22
    assert all(len(str(line.get("subscription", ""))) < 200 for line in lines)
    assert {"event": "webhooks.rejections_suppressed", "count": 80}.items() <= lines[20].items()
