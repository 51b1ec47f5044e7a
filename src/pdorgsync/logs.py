"""Structured logging: JSON when not on a TTY, console otherwise, secrets always redacted.

Event names are stable and dotted (``inbox.event_stored``); tests may assert on them.
The redaction processor is the last line of defence: it scrubs every registered
secret (API token, webhook secrets) from every string in every event, including
rendered exception text, before anything is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

REDACTED = "[REDACTED]"

_secrets: set[str] = set()
# An Authorization header value that slipped into a message, registered or not.
_AUTH_HEADER = re.compile(r"(Token token=|Bearer )(?!\[REDACTED\])[^\s'\",}]+")


def register_secrets(values: Iterable[str]) -> None:
    """Add values (token, webhook secrets) that must never appear in a log line."""
    for value in values:
        if value and len(value) >= 4:
            _secrets.add(value)


def redact_text(text: str) -> str:
    """Replace every registered secret in ``text``; also ``Token token=...`` headers."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: scrub registered secrets from every value of the event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


def configure_logging(level: str = "info", fmt: str | None = None, stream: Any = None) -> None:
    """Configure structlog once per process. ``fmt`` is ``json`` or ``console``."""
    stream = stream if stream is not None else sys.stderr
    if fmt is None:
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    _route_stdlib_logging(renderer, stream, level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,  # after format_exc_info so tracebacks are scrubbed too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


class RateLimitFilter(logging.Filter):
    """At most ``budget`` records per logger and message per ``window`` seconds.

    uvicorn and asyncio log per connection or per failed ``accept()``; under a
    flood (or at the open-file limit) that was 67,570 tracebacks in 10 s. The
    first record after a quiet spell carries ``suppressed``: how many were dropped.
    """

    def __init__(self, budget: int = 10, window: float = 10.0) -> None:
        super().__init__()
        self.budget = budget
        self.window = window
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [start, count, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = record.created
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            dropped = int(entry[2]) if entry else 0
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[key] = [now, 1, 0]
            if dropped:
                record.suppressed = dropped
            return True
        if entry[1] >= self.budget:
            entry[2] += 1
            return False
        entry[1] += 1
        return True


def _route_stdlib_logging(renderer: Any, stream: Any, level: str) -> None:
    """Send stdlib records (uvicorn, asyncio) through the same rendering and redaction,
    rate limited, so the log stays one JSON object per line."""
    formatter = structlog.stdlib.ProcessorFormatter(
        processor=renderer,
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RateLimitFilter())
    handler.set_name("pdorgsync")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "pdorgsync"]:
        root.removeHandler(old)
    root.addHandler(handler)
    # Their info lines are per connection ("Started server process"...); warnings up.
    root.setLevel(max(logging.getLevelNamesMapping()[level.upper()], logging.WARNING))


class _LazyLogger:
    """A logger that resolves the structlog configuration at every call.

    Modules create their logger at import time, before ``configure_logging``
    runs; binding a structlog logger then would freeze the default
    configuration (no JSON, no redaction) into it for good.
    """

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def bind(self, **values: Any) -> _LazyLogger:
        return _LazyLogger({**self._context, **values})

    def unbind(self, *keys: str) -> _LazyLogger:
        return _LazyLogger({k: v for k, v in self._context.items() if k not in keys})

    def __getattr__(self, name: str) -> Any:
        return getattr(structlog.get_logger().bind(**self._context), name)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; ``name`` becomes the ``logger`` key."""
    return _LazyLogger({"logger": name} if name else {})
