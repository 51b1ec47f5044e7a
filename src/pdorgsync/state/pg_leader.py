"""Reconcile leadership across replicas: a PostgreSQL session advisory lock.

The lock is held on a dedicated connection (not a pooled one): it lives exactly
as long as that session, so a SIGKILLed leader's lock is free as soon as
PostgreSQL sees its connection close, and TCP keepalives bound that for a host
that vanished. Session-level locks need *session* pooling: behind PgBouncer in
transaction mode two replicas could both believe they lead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from pdorgsync.logs import get_logger
from pdorgsync.state.pg_schema import LEADER_LOCK_KEY, describe_url, one_line

__all__ = ["AdvisoryLeader"]

log = get_logger("pdorgsync.state")


class AdvisoryLeader:
    """Reconcile leadership: a session advisory lock held on a dedicated connection.

    A background thread tries ``pg_try_advisory_lock`` every ``interval`` seconds
    while not leading, and checks its connection while leading (a broken
    connection means the lock is gone: PostgreSQL released it with the session).
    ``on_change(leading)`` is called on every change (the metric).
    """

    def __init__(
        self,
        url: str,
        *,
        interval: float = 2.0,
        connect_timeout: float = 3.0,
        on_change: Callable[[bool], None] | None = None,
        key: int = LEADER_LOCK_KEY,
    ) -> None:
        self.url = url
        self.where = describe_url(url)
        self.interval = interval
        self.connect_timeout = connect_timeout
        self.on_change = on_change or (lambda _leading: None)
        self.key = key
        self._leading = False
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def is_leader(self) -> bool:
        return self._leading

    def start(self) -> None:
        self.step()
        self._thread = threading.Thread(target=self._run, name="leader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.step()

    def step(self) -> bool:
        """One round: keep or try to take the lock; returns whether this process leads."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=int(max(1, self.connect_timeout)),
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=5,
                    keepalives_count=2,
                    application_name="pdorgsync-leader",
                )
            if self._leading:
                self._conn.execute("SELECT 1")
                leading = True
            else:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                leading = bool(row and row[0])
        except psycopg.Error as exc:
            if self._leading:
                log.warning("leader.lost", database=self.where, error=one_line(exc))
            self._drop_connection()
            leading = False
        self._set(leading)
        return leading

    def _set(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            log.info("leader.elected" if leading else "leader.resigned", database=self.where)
        self.on_change(leading)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def stop(self) -> None:
        """Stop competing; closing the session releases the lock at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + self.connect_timeout + 1)
        if self._leading and self._conn is not None:
            # Unlock explicitly: closing alone frees it only once the server notices.
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._drop_connection()
        self._set(False)
