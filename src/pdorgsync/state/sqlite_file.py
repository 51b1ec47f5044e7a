"""One SQLite state file, opened safely: the connections, transactions and file checks
under ``state.sqlite.Inbox``.

What it guarantees: the file is created ``0600`` and switched to WAL; each thread
has its own connection (closed when its thread has ended); a write is one
``BEGIN IMMEDIATE`` transaction behind a process-wide lock, committed with
``synchronous=FULL`` before anyone is told "stored"; every write first checks that
the path still names the file opened (SQLite keeps writing to an unlinked file);
and every SQLite failure is an ``InboxError`` (``InboxBusyError`` for lock
contention, worth retrying).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pdorgsync.errors import InboxBusyError, InboxError

__all__ = ["SqliteFile"]


class SqliteFile:
    """A SQLite file shared by this process's threads (see the module docstring).

    ``busy_timeout`` bounds how long a write waits for a lock held by another
    connection before failing with ``InboxBusyError``; ``schema`` is run at open.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 1.0, schema: str = "") -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        # Each connection with the thread that opened it: anyio's worker threads come
        # and go, so connections of threads that have ended are closed (see _conn).
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        # Writers of this process queue here rather than in SQLite's busy handler,
        # which retries by sleeping: under concurrent deliveries that turned into
        # p99s near the busy timeout and needless 503s. Other processes still
        # meet SQLite's lock and busy_timeout as before.
        self._write_lock = threading.Lock()
        self._identity: tuple[int, int] | None = None
        self._last_write_failure: tuple[float, str] | None = None
        _create_private(self.path)
        try:
            conn = self._conn()
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise InboxError(f"inbox {self.path}: cannot switch to WAL mode (got {mode})")
            conn.executescript(schema)
        except sqlite3.Error as exc:
            raise InboxError(f"inbox {self.path}: {exc}") from None
        self._identity = _file_identity(self.path)

    # -- the file itself ------------------------------------------------------------------

    def check_file(self) -> None:
        """InboxError if the state file was deleted or replaced under us.

        SQLite keeps writing to an unlinked file through its open descriptor, so
        after ``rm pdorgsync.db*`` every "stored" event would vanish at the next
        start. One ``stat`` per write compares the path with what was opened.
        """
        if self._identity is None:
            return
        current = _file_identity(self.path)
        if current is None:
            raise InboxError(f"inbox {self.path}: the state file was deleted; restart the daemon")
        if current != self._identity:
            raise InboxError(
                f"inbox {self.path}: the state file was replaced by another file; "
                "restart the daemon"
            )

    def quick_check(self) -> None:
        """``PRAGMA quick_check``; InboxError naming the first problem of a damaged file."""
        rows = self._read("PRAGMA quick_check")
        result = str(rows[0][0]) if rows else "no answer"
        if result != "ok":
            raise InboxError(f"inbox {self.path}: damaged database (quick_check: {result})")

    def write_failure(self, *, within: float = 60.0) -> str | None:
        """The last write failure of the past ``within`` seconds (for /readyz), or None."""
        failure = self._last_write_failure
        if failure is None or time.monotonic() - failure[0] > within:
            return None
        return failure[1]

    # -- connections and transactions ---------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                if self.path.parent and not self.path.parent.exists():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(self.path),
                    timeout=self.busy_timeout,
                    isolation_level=None,  # explicit BEGIN/COMMIT below
                    check_same_thread=False,
                )
            except (sqlite3.Error, OSError) as exc:
                raise InboxError(f"inbox {self.path}: cannot open: {exc}") from None
            conn.row_factory = sqlite3.Row
            # FULL: a commit is on disk before the receiver answers 202, even on power loss.
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
            with self._lock:
                ended = [(t, c) for t, c in self._connections if not t.is_alive()]
                self._connections = [(t, c) for t, c in self._connections if t.is_alive()]
                self._connections.append((threading.current_thread(), conn))
            for _thread, old in ended:  # its thread is gone: nobody can be using it
                with contextlib.suppress(sqlite3.Error):  # closing is best effort
                    old.close()
        return conn

    @property
    def open_connections(self) -> int:
        """Connections this inbox holds open (at most one per live thread that used it)."""
        with self._lock:
            return len(self._connections)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; a failure is remembered for ``write_failure``.

        Lock contention (``InboxBusyError``) is not a failure of the store: it is
        retried, and must not make ``/readyz`` refuse traffic for a minute.
        """
        try:
            self.check_file()
            with self._write_transaction() as conn:
                yield conn
        except InboxBusyError:
            raise
        except InboxError as exc:
            self._last_write_failure = (time.monotonic(), str(exc))
            raise

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction (takes the write lock up front, waits busy_timeout)."""
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise InboxBusyError(
                f"inbox {self.path}: busy (another write took over {self.busy_timeout:g} s)"
            )
        try:
            try:
                conn = self._conn()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise self._error(exc) from None
            except BaseException:
                _rollback(conn)
                raise
        finally:
            self._write_lock.release()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(self._conn().execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> InboxError:
        """SQLITE_BUSY / SQLITE_LOCKED (another process kept the lock past busy_timeout)
        is contention, worth retrying; anything else is a real fault."""
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return InboxBusyError(f"inbox {self.path}: busy ({exc})")
        return InboxError(f"inbox {self.path}: {exc}")

    def close(self) -> None:
        """Close every connection this inbox opened (in any thread)."""
        with self._lock:
            for _thread, conn in self._connections:
                with contextlib.suppress(sqlite3.Error):  # closing is best effort
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- what SqlBackend's shared queries run on --------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._read(sql.replace("%s", "?"), params)

    def _change(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._write() as conn:
            return conn.execute(sql.replace("%s", "?"), params).rowcount


def _create_private(path: Path) -> None:
    """Create the state file readable by its owner only (it holds incident titles and
    names); SQLite gives its -wal and -shm files the same mode."""
    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise InboxError(f"inbox {path}: cannot create: {exc.strerror}") from None
    os.close(fd)


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:  # pragma: no cover - the connection is already broken
        pass
