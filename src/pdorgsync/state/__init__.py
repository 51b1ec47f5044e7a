"""The durable state behind one interface; ``open_state(settings)`` picks the backend.

Without ``DATABASE_URL`` it is the SQLite file at ``STATE_PATH`` (``inbox.Inbox``,
one process per file, the embedded default). With ``DATABASE_URL=postgresql://…``
it is ``postgres.PostgresState``, shared by any number of replicas. Nothing
outside this package needs to know which (see ``base.StateStore``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pdorgsync.state.base import Leader, StateStore

__all__ = [
    "Leader",
    "SoloLeader",
    "StateStore",
    "is_shared",
    "open_leader",
    "open_state",
    "shared_budget",
]


def _database_url(settings: Any) -> str | None:
    secret = getattr(settings, "database_url", None)
    if secret is None:
        return None
    value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
    return value.strip() or None


def open_state(settings: Any, **kwargs: Any) -> StateStore:
    """The configured store; ``InboxError``/``ConfigError`` (one line) if it cannot open."""
    url = _database_url(settings)
    if url is None:
        from pdorgsync.state.sqlite import Inbox

        return Inbox(settings.state_path, **kwargs)
    from pdorgsync.state.postgres import PostgresState

    return PostgresState(url, **kwargs)


def is_shared(store: StateStore) -> bool:
    """True for a store several replicas share (PostgreSQL)."""
    from pdorgsync.state.postgres import PostgresState

    return isinstance(store, PostgresState)


class SoloLeader:
    """The leader of a single-process deployment (SQLite): always this process."""

    def __init__(self, on_change: Callable[[bool], None] | None = None) -> None:
        self.on_change = on_change or (lambda _leading: None)

    def start(self) -> None:
        self.on_change(True)

    def stop(self) -> None:
        self.on_change(False)

    def is_leader(self) -> bool:
        return True


def open_leader(store: StateStore, on_change: Callable[[bool], None] | None = None) -> Leader:
    """The reconcile leadership for this store: an advisory lock on PostgreSQL, else solo."""
    from pdorgsync.state.postgres import PostgresState

    if isinstance(store, PostgresState):
        return store.leader(on_change)
    return SoloLeader(on_change)


def shared_budget(store: StateStore, token: str, per_minute: int | None) -> Any | None:
    """The API budget all replicas share (PostgreSQL), or None: use the process's own.

    The result implements ``pagerduty.RateLimiter``; ``per_minute`` None means no
    budget at all (the sandbox), as for the per-process limiter.
    """
    from pdorgsync.state.postgres import PostgresState

    if per_minute is None or not isinstance(store, PostgresState):
        return None
    return store.budget(token, per_minute)
