"""The one exception hierarchy of pdorgsync.

    PdOrgSyncError                      anything pdorgsync reports as a clean one-line error
    ├── ConfigError                     settings missing or invalid (names the variable)
    ├── FileValidationError             org/policy file invalid; carries every located problem
    ├── PagerDutyError                  the PagerDuty API said no or could not be reached
    │   ├── TemporaryPagerDutyError     429, 5xx, connection/timeout: worth retrying
    │   │   └── OutcomeUnknownError     a non-idempotent write may or may not have happened
    │   └── PermanentPagerDutyError     4xx other than 429: retrying cannot help
    │       └── NotFoundError           404
    └── InboxError                      the durable webhook inbox could not store or read
        │                               (temporary: the store may answer again, e.g. a
        │                               database that went away; the worker retries)
        └── InboxBusyError              another writer held the lock past the busy timeout: retry

Whether to retry is decided here, by the class, and nowhere else: callers ask
``is_temporary(exc)``; status codes are never compared outside ``pagerduty/failures.py``.
Messages never contain the API token or webhook secrets (``logs.redact`` scrubs
them anyway, as a second line of defence).
"""

from __future__ import annotations

from dataclasses import dataclass


class PdOrgSyncError(Exception):
    """Base of every error pdorgsync reports to users as one clear line."""


class ConfigError(PdOrgSyncError):
    """A setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a YAML file: ``file:line:column: path: message``."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        prefix = "warning: " if self.severity == "warning" else ""
        if self.path:
            return f"{where}: {prefix}{self.path}: {self.message}"
        return f"{where}: {prefix}{self.message}"


class FileValidationError(PdOrgSyncError):
    """An org or policy file is invalid. ``problems`` holds every located error."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PagerDutyError(PdOrgSyncError):
    """The PagerDuty API refused a request or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        errors: list[str] | None = None,
        method: str | None = None,
        path: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.errors = errors or []
        self.method = method
        self.path = path
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.method and self.path:
            parts.append(f"{self.method} {self.path}")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code is not None:
            parts.append(f"code {self.code}")
        head = " ".join(parts)
        text = self.message
        if self.errors:
            text += " (" + "; ".join(self.errors) + ")"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return f"{head}: {text}" if head else text


class TemporaryPagerDutyError(PagerDutyError):
    """429, 5xx or a network failure: the same request may succeed later."""


class OutcomeUnknownError(TemporaryPagerDutyError):
    """A non-idempotent write (POST) failed in a way that leaves its outcome unknown.

    The request may have been applied. Never resend it blindly: re-observe the
    account first and only then decide whether to send it again.
    """


class PermanentPagerDutyError(PagerDutyError):
    """A 4xx other than 429: the request itself is wrong or not allowed."""


class NotFoundError(PermanentPagerDutyError):
    """404: the object does not exist (or the token cannot see it)."""


class InboxError(PdOrgSyncError):
    """The durable webhook inbox could not store or read an event."""


class InboxBusyError(InboxError):
    """Lock contention: another writer held the state store past the busy timeout.

    Nothing is wrong with the event or the store; the same work succeeds once the
    other writer is done, so it is retried and never dead-letters an event.
    """


def is_temporary(exc: BaseException) -> bool:
    """The single place that decides whether an error is worth retrying.

    An ``InboxError`` met while handling an event (the state store locked, full,
    or a database that went away; ``InboxBusyError`` among them) is temporary:
    the event is retried, never dead-lettered for it.
    """
    return isinstance(exc, TemporaryPagerDutyError | InboxError)
