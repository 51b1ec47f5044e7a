"""uvicorn's HTTP/1.1 protocol hardened for a port that anyone on the network can reach.

Why it exists: uvicorn bounds the time between two requests on a kept-alive
connection, but not the time a client takes to send its headers, nor how many
connections it holds open. Idle connections, unfinished headers and slow bodies
stayed open for minutes; with the open-file limit reached, real deliveries and
``/healthz`` timed out and asyncio wrote tens of thousands of tracebacks
(issue 15). Here:

- a connection must deliver complete request headers within ``read_timeout``
  seconds of connecting (or of the previous response), else it is closed;
- the body has the same deadline, enforced by the receiver (``webhooks.py``: 408);
- at most ``max_connections`` are open; one more evicts the connection that has
  waited longest for its headers (an attacker's idle socket, never a request in
  progress), or is refused when every slot is busy;
- ``max_connections`` stays below the process's open-file limit with a reserve for
  SQLite, the API client and logs, and a connection whose descriptor number comes
  within ``FD_HEADROOM`` plus one accept burst of the limit is shed the same way, so ``accept()`` and
  SQLite do not meet ``EMFILE``.

What it must never do: cut a request whose headers have arrived (its body and
the application have their own deadlines), or log per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "FD_HEADROOM",
    "FD_RESERVE",
    "accept_backlog",
    "connection_budget",
    "guarded_protocol",
    "raise_open_file_limit",
]

#: Descriptors kept free for everything that is not a client connection: the SQLite
#: file and its WAL (per connection), API sockets, log and notify sockets, threads.
FD_RESERVE = 128


def raise_open_file_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (systemd's ``LimitNOFILE``);
    returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):  # not allowed: keep what we have
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def connection_budget(wanted: int, open_file_limit: int) -> int:
    """How many client connections may be open: ``wanted``, but always leaving
    ``FD_RESERVE`` descriptors free (and at least 8 connections)."""
    return max(8, min(wanted, open_file_limit - FD_RESERVE))


#: Descriptors that must stay free above the newest client socket besides one
#: accept burst: the SQLite connections of the worker threads, API sockets.
FD_HEADROOM = 32


def accept_backlog(open_file_limit: int) -> int:
    """The listen backlog: asyncio accepts up to this many sockets in one burst,
    before any of them can be shed, so it must fit in the headroom."""
    return min(128, max(16, open_file_limit // 8))


class _GuardedH11Protocol(H11Protocol):
    read_timeout: float = 10.0
    max_connections: int = 256
    open_file_limit: int = 1024
    fd_headroom: int = FD_HEADROOM + 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self.waiting_since: float | None = None

    # -- waiting for headers ---------------------------------------------------------------

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._header_timer is None:
            self.waiting_since = time.monotonic()
            self._header_timer = self.loop.call_later(self.read_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self.waiting_since = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()

    # -- protocol events -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows BaseTransport
        super().connection_made(transport)
        if self._over_budget() and not self._evict_one():
            transport.abort()  # every slot holds a request in progress
            return
        self._arm()

    def _over_budget(self) -> bool:
        if len(self.connections) > self.max_connections:
            return True
        # Descriptors are allocated lowest first, so the new socket's number is
        # about how many are open: shed before accept() or SQLite meets EMFILE.
        sock = self.transport.get_extra_info("socket")
        fileno = sock.fileno() if sock is not None else -1
        return fileno >= self.open_file_limit - self.fd_headroom

    def _evict_one(self) -> bool:
        idle = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, _GuardedH11Protocol)
            and c.waiting_since is not None
            and c._waiting_for_headers()
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.waiting_since or 0.0)
        oldest._disarm()
        oldest.transport.abort()
        return True

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_headers():
            self._arm()  # not re-armed: the deadline runs from the first wait
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers have the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(
    *, read_timeout: float, max_connections: int, open_file_limit: int
) -> type[asyncio.Protocol]:
    """An H11 protocol class with these limits (pass as ``uvicorn.Config(http=...)``)."""
    return type(
        "GuardedH11Protocol",
        (_GuardedH11Protocol,),
        {
            "read_timeout": read_timeout,
            "max_connections": max_connections,
            "open_file_limit": open_file_limit,
            "fd_headroom": FD_HEADROOM + accept_backlog(open_file_limit),
        },
    )
