"""Faults the sandbox injects: HTTP errors, dropped connections, slow answers, lagging creates.

Drawn per request by ``Faults`` (tests/test_faults.py, tests/test_read_after_write.py,
the benchmarks); ``app.py`` applies them around the handlers. Split from ``app.py``.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pdorgsync.sandbox.protocol import Body

HTTP_FAULTS = ("429", "500", "502", "503")
NETWORK_FAULTS = ("reset", "reset_after_apply", "timeout")
LAG_FAULTS = ("lag",)  # read-after-write lag of what a POST creates (Lag.start)
FAULT_KINDS = HTTP_FAULTS + NETWORK_FAULTS + LAG_FAULTS
RANDOM_FAULT_KINDS = HTTP_FAULTS + NETWORK_FAULTS  # lag is drawn only when asked for


@dataclass
class Faults:
    """Faults drawn per request: HTTP errors (never applied), resets and slow answers.

    ``reset`` drops the connection before the request is applied; ``reset_after_apply``
    applies it and then drops the connection (the ambiguous write PagerDuty can give
    you); ``timeout`` applies it and answers after ``slow_seconds``, later than a
    client timeout. A drawn 5xx repeats for ``burst`` consecutive requests. ``lag``
    applies a POST normally, but what it created stays invisible (404, left out of
    lists) for ``lag_seconds`` of sandbox time; it combines with one other kind as
    ``"lag+<kind>"`` in ``Sandbox.fault_next`` (e.g. ``lag+reset_after_apply``).
    """

    rng: random.Random
    rate: float = 0.0
    kinds: tuple[str, ...] = RANDOM_FAULT_KINDS
    burst: int = 1
    slow_seconds: float = 2.0
    retry_after: float = 0.0
    lag_seconds: float = 2.0
    queued: list[tuple[str, str | None]] = field(default_factory=list)  # (kind, method)
    drawn: list[str] = field(default_factory=list)

    def draw(self, method: str) -> str | None:
        for index, (kind, only) in enumerate(self.queued):
            if only is None or only == method:
                del self.queued[index]
                self.drawn.append(kind)
                return kind
        if not self.rate or self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(self.kinds)
        if kind in HTTP_FAULTS and kind != "429" and self.burst > 1:
            self.queued[:0] = [(kind, None)] * (self.burst - 1)
        self.drawn.append(kind)
        return kind


async def answer_late(request: Request, seconds: float) -> None:
    """Wait ``seconds``, or less once the client has hung up (so ``stop`` never waits on us)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))


def drop_connection(request: Request) -> Response:
    """Abort the TCP connection (RST) instead of answering.

    ASGI has no way to say "reset"; uvicorn's protocol objects (h11 and httptools
    alike) expose the transport on the request/response cycle that ``receive`` is
    bound to. Marking the cycle disconnected makes uvicorn drop our response quietly.
    """
    cycle: Any = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None:
        raise RuntimeError("this server does not let the sandbox drop connections")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cycle.disconnected = True
    transport.abort()
    return Response(status_code=204)


class Lag:
    """Read-after-write lag of created objects, on the sandbox clock.

    Right after a create PagerDuty can answer 404 for the new object and leave it
    out of lists for a short while (terraform-provider-pagerduty #273 and PR #274:
    a team read right after its create returned 404, fixed by retrying; #1069:
    the same for escalation policies and the schedules they reference). The
    sandbox emulates it for objects created by a request drawn with the "lag"
    fault: for ``Faults.lag_seconds`` of sandbox time the object is missing from
    list answers, and any request naming it in its path or body gets a 404 and
    is not applied. Times are sandbox-clock timestamps passed in by the caller.
    """

    def __init__(self) -> None:
        self.lagging: dict[str, float] = {}  # object id -> sandbox time it becomes visible
        self._lock = threading.Lock()

    def start(self, body: Body, until: float) -> None:
        """Hide what ``body`` (a create's answer) holds until ``until``."""
        if isinstance(body, dict):
            for value in body.values():
                if isinstance(value, dict) and isinstance(value.get("id"), str):
                    with self._lock:
                        self.lagging[value["id"]] = until

    def _now_hidden(self, now: float) -> set[str]:
        with self._lock:
            for object_id in [i for i, until in self.lagging.items() if until <= now]:
                del self.lagging[object_id]
            return set(self.lagging)

    def named_in(self, path: str, raw: bytes, now: float) -> str | None:
        """The id of a still-lagging object the request names (path or body), if any."""
        if not self.lagging:
            return None
        text = raw.decode("utf-8", "replace")
        for object_id in self._now_hidden(now):
            if f"/{object_id}" in path or f'"{object_id}"' in text:
                return object_id
        return None

    def hide(self, body: Body, now: float) -> None:
        """Drop still-lagging objects from a list answer (the plural key's items)."""
        if not self.lagging or not isinstance(body, dict):
            return
        hidden = self._now_hidden(now)
        for key, value in body.items():
            if isinstance(value, list) and key != "errors":
                body[key] = [
                    item
                    for item in value
                    if not (isinstance(item, dict) and item.get("id") in hidden)
                ]
