"""The PostgreSQL schema of pdorgsync, its versioned migrations, and URL checks.

``migrate`` brings a database to ``SCHEMA_VERSION`` in one transaction under a
transaction-level advisory lock, so replicas starting together are safe; each
entry of ``_MIGRATIONS`` moves the schema one version up and is never edited
once released. Messages never include the password of ``DATABASE_URL``.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pdorgsync.errors import ConfigError, InboxError

__all__ = [
    "LEADER_LOCK_KEY",
    "MIGRATION_LOCK_KEY",
    "SCHEMA_VERSION",
    "check_url",
    "describe_url",
    "migrate",
    "one_line",
]

# Advisory lock keys (64-bit): "pdorgsyn" and "pdorgmig" as big-endian integers.
LEADER_LOCK_KEY = int.from_bytes(b"pdorgsyn", "big") & 0x7FFF_FFFF_FFFF_FFFF
MIGRATION_LOCK_KEY = int.from_bytes(b"pdorgmig", "big") & 0x7FFF_FFFF_FFFF_FFFF

# Each entry moves the schema from version i to i + 1; never edit a released one.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id        TEXT NOT NULL UNIQUE,
        webhook_id      TEXT UNIQUE,
        received_at     DOUBLE PRECISION NOT NULL,
        event_type      TEXT NOT NULL,
        incident_id     TEXT,
        source          TEXT NOT NULL DEFAULT 'webhook',
        status          TEXT NOT NULL CHECK (status IN ('pending', 'done', 'ignored', 'dead')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        claimed_until   DOUBLE PRECISION,
        claimed_by      TEXT,
        finished_at     DOUBLE PRECISION,
        payload         TEXT NOT NULL
    );
    CREATE INDEX events_pending ON events (incident_id, seq) WHERE status = 'pending';
    CREATE INDEX events_received ON events (received_at);
    CREATE TABLE ledger (
        incident_id  TEXT NOT NULL,
        department   TEXT NOT NULL,
        as_          TEXT NOT NULL,
        policy       TEXT NOT NULL,
        event_id     TEXT,
        engaged_at   DOUBLE PRECISION NOT NULL,
        details      TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (incident_id, department, as_)
    );
    CREATE TABLE recent_incidents (
        incident_id   TEXT PRIMARY KEY,
        service_id    TEXT,
        service_name  TEXT,
        triggered_at  DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE state (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    CREATE TABLE rate_budget (
        key         TEXT PRIMARY KEY,
        tokens      DOUBLE PRECISION NOT NULL,
        updated_at  DOUBLE PRECISION NOT NULL
    );
    """,
    # 2: the state each incident was last handled in (catch-up poll, retention).
    """
    CREATE TABLE handled_incidents (
        incident_id  TEXT PRIMARY KEY,
        status       TEXT NOT NULL,
        priority     TEXT,
        urgency      TEXT,
        service_id   TEXT,
        observed_at  DOUBLE PRECISION NOT NULL,
        handled_at   DOUBLE PRECISION NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


def check_url(url: str) -> dict[str, str]:
    """Parse a ``postgresql://`` URL; ConfigError (one line, no password) if it is not one."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "PDORGSYNC_DATABASE_URL: expected postgresql://USER:PASSWORD@HOST:PORT/DB, "
            f"got a value starting {url.split(':', 1)[0]!r}"
        )
    try:
        parsed = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise ConfigError(f"PDORGSYNC_DATABASE_URL: not a valid PostgreSQL URL: {reason}") from None
    return {k: str(v) for k, v in parsed.items() if v is not None}


def describe_url(url: str) -> str:
    """``user@host:port/db`` for messages (never the password)."""
    try:
        parts = check_url(url)
    except ConfigError:
        return "the database"
    host = parts.get("host", "localhost")
    port = parts.get("port", "5432")
    user = parts.get("user", "")
    db = parts.get("dbname", user)
    return f"{user + '@' if user else ''}{host}:{port}/{db}"


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the schema to ``SCHEMA_VERSION`` in one transaction; returns the old version.

    The transaction-level advisory lock serialises replicas starting together;
    the second one finds the work done.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS pdorgsync_schema ("
            " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM pdorgsync_schema").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise InboxError(
                f"database schema version {current} is newer than this pdorgsync "
                f"({SCHEMA_VERSION}): upgrade pdorgsync"
            )
        for version in range(current, SCHEMA_VERSION):
            conn.execute(_MIGRATIONS[version])
            conn.execute("INSERT INTO pdorgsync_schema (version) VALUES (%s)", (version + 1,))
    return current
