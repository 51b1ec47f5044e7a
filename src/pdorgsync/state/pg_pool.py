"""The PostgreSQL connections under ``state.postgres.PostgresState``: the schema
migration at open, the pool, one transaction per call and the mapping of database
failures to ``InboxError`` (``InboxBusyError`` for contention, worth retrying).

Every pooled session gets server-side limits (``SESSION_LIMITS``) so that no
statement, lock wait or idle transaction outlasts PagerDuty's 5-second delivery
budget by much, and TCP keepalives so that a vanished peer is noticed in ~15 s.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from pdorgsync.errors import InboxBusyError, InboxError
from pdorgsync.logs import get_logger
from pdorgsync.state.pg_schema import SCHEMA_VERSION, check_url, describe_url, migrate, one_line

__all__ = ["SESSION_LIMITS", "PgConnections", "Row"]

#: Server-side limits of every pooled session (milliseconds).
SESSION_LIMITS = (
    "-c statement_timeout=4000 -c lock_timeout=2000 -c idle_in_transaction_session_timeout=10000"
)
_CONTENTION = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.QueryCanceled,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)

log = get_logger("pdorgsync.state")

Row = dict[str, Any]


class PgConnections:
    """A migrated database and a pool of connections to it (thread-safe)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        connect_timeout: float = 5.0,
        max_connections: int = 8,
    ) -> None:
        check_url(url)
        self.url = url
        self.where = describe_url(url)
        self.timeout = timeout
        self._last_failure: tuple[float, str] | None = None
        try:
            with psycopg.connect(url, connect_timeout=int(max(1, connect_timeout))) as conn:
                old = migrate(conn)
        except psycopg.Error as exc:
            raise InboxError(f"database {self.where}: {one_line(exc)}") from None
        if old != SCHEMA_VERSION:
            log.info("state.migrated", database=self.where, old=old, new=SCHEMA_VERSION)
        self.pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": int(max(1, connect_timeout)),
                # A vanished peer is noticed within ~15 s instead of the kernel's hours.
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 5,
                "keepalives_count": 2,
                # No statement, lock wait or open transaction may outlast PagerDuty's
                # 5-second delivery budget by much: a frozen replica holding a row
                # lock (an event, the budget row) must not stall the others.
                "options": SESSION_LIMITS,
            },
            connection_class=psycopg.Connection[Row],
            min_size=1,
            max_size=max_connections,
            timeout=timeout,
            # A connection broken while the database was away is replaced, not reused.
            check=ConnectionPool.check_connection,
            # psycopg-pool retries a lost connection with an uncapped exponential
            # backoff (1, 2, 4, 8, 16 s, ...) for reconnect_timeout: after a minute's
            # outage the next try could be a minute away. Giving an attempt up after
            # 10 s lets the next request start a fresh one at once, so the store
            # answers within seconds of the database coming back.
            reconnect_timeout=10.0,
            name="pdorgsync",
            open=True,
        )

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Row]]:
        """One transaction on a pooled connection; any failure is an InboxError.

        Contention (no free connection, a lock or statement timeout, a deadlock or
        serialisation failure) is ``InboxBusyError``: retried, never dead-lettering
        an event, and not a fault of the store. Other failures are remembered for
        ``write_failure`` (the readiness check).
        """
        try:
            with self.pool.connection(timeout=self.timeout) as conn, conn.transaction():
                yield conn
            # The database answers again: an outage that is over is not a problem now
            # (the health thread's probe write fails while it lasts).
            self._last_failure = None
        except PoolTimeout:
            raise InboxBusyError(
                f"database {self.where}: no connection within {self.timeout:g} s"
            ) from None
        except _CONTENTION as exc:
            raise InboxBusyError(f"database {self.where}: busy: {one_line(exc)}") from None
        except psycopg.Error as exc:
            message = f"database {self.where}: {one_line(exc)}"
            self._last_failure = (time.monotonic(), message)
            raise InboxError(message) from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._tx() as conn:
            return list(conn.execute(sql, params).fetchall())

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._tx() as conn:
            return conn.execute(sql, params).rowcount

    # SqlBackend's shared queries are written with psycopg's placeholders already.
    _rows = _read
    _change = _write

    def check_file(self) -> None:
        """Nothing to check: a database server has no file of ours to lose (SQLite does)."""

    def quick_check(self) -> None:
        """Nothing to check at start: the server keeps its own files consistent."""

    def write_failure(self, *, within: float = 60.0) -> str | None:
        """The last database failure of the past ``within`` seconds, unless a transaction
        succeeded since (for /readyz), or None."""
        failure = self._last_failure
        if failure is None or time.monotonic() - failure[0] > within:
            return None
        return failure[1]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            self.pool.close(timeout=2)

    @property
    def open_connections(self) -> int:
        """Connections the pool holds now (bounded by its ``max_size``)."""
        return int(self.pool.get_stats().get("pool_size", 0))
