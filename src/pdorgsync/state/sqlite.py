"""The SQLite backend: ``pdorgsync.inbox.Inbox`` (kept there; re-exported under ``state``)."""

from __future__ import annotations

from pdorgsync.inbox import Inbox

__all__ = ["Inbox"]
