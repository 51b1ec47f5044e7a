"""Error mapping: a failed PagerDuty answer or network failure becomes one pdorgsync
error, and the one place that decides which of them are retried.

Temporary vs permanent is decided here (``http_error``, ``network_error``) and acted
on here (``should_retry``), never by status codes elsewhere. No message built here
may carry the API token: callers pass ``scrub``.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from pdorgsync.errors import (
    InboxError,
    NotFoundError,
    OutcomeUnknownError,
    PagerDutyError,
    PermanentPagerDutyError,
    TemporaryPagerDutyError,
    is_temporary,
)

__all__ = [
    "http_error",
    "network_error",
    "parse_retry_after",
    "sent_nothing",
    "should_retry",
    "unreadable_success",
]

_MAYBE_APPLIED = (
    "; the request may or may not have been applied — re-read the account before sending it again"
)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``ratelimit-reset``."""
    for name in ("Retry-After", "ratelimit-reset"):
        raw = headers.get(name)
        if raw is None:
            continue
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return None


def _error_details(response: requests.Response) -> tuple[str, int | None, list[str], bool]:
    """(message, code, errors, has_pagerduty_error_body) from a failed response."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        errors = error.get("errors")
        return (
            str(error.get("message") or response.reason or "error"),
            code if isinstance(code, int) else None,
            [str(e) for e in errors] if isinstance(errors, list) else [],
            True,
        )
    if isinstance(error, str) and error:
        return error, None, [], True
    text = (response.text or "").strip()
    if len(text) > 200:
        text = text[:200] + "…"
    return (text or response.reason or "no error body"), None, [], False


def sent_nothing(exc: BaseException) -> bool:
    """True when a network failure happened before the request left this host."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
        exc, requests.exceptions.ProxyError | requests.exceptions.SSLError
    ):
        for arg in exc.args:
            reason = arg.reason if isinstance(arg, MaxRetryError) else arg
            # NewConnectionError (refused, DNS) is a ConnectTimeoutError subclass.
            if isinstance(reason, ConnectTimeoutError):
                return True
    return False


def unreadable_success(
    response: requests.Response, method: str, path: str, request_id: str | None, retry_safe: bool
) -> PagerDutyError:
    """A 2xx we cannot read: the request was processed but we do not know the result.
    Retrying a read is fine; a non-idempotent write is ambiguous."""
    cls = TemporaryPagerDutyError if retry_safe else OutcomeUnknownError
    return cls(
        "unreadable success response (expected a JSON object)",
        status=response.status_code,
        method=method,
        path=path,
        request_id=request_id,
    )


def http_error(
    response: requests.Response,
    method: str,
    path: str,
    request_id: str | None,
    *,
    retry_safe: bool,
    scrub: Callable[[str], str],
) -> PagerDutyError:
    """The pdorgsync error for a non-2xx answer."""
    status = response.status_code
    message, code, errors, pd_body = _error_details(response)
    message = scrub(message)
    fields: dict[str, Any] = {
        "status": status,
        "code": code,
        "errors": [scrub(e) for e in errors],
        "method": method,
        "path": path,
        "request_id": request_id,
    }
    if status == 401:
        return PermanentPagerDutyError(
            f"{message} — PagerDuty rejected the API token; check PDORGSYNC_API_TOKEN",
            **fields,
        )
    if status == 404:
        return NotFoundError(message, **fields)
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers)
        # Why a non-idempotent POST is only retried on proof it was not
        # applied: PagerDuty has no idempotency keys, so resending a POST that
        # did land creates a duplicate (a second responder request pages
        # people twice; a second schedule/EP is an orphan). 429 is refused
        # before processing; a 503 carrying PagerDuty's own error body comes
        # from the API itself saying it is unavailable, not from a proxy that
        # lost track of a forwarded request. 500/502/504 (and a bare 503) may
        # come after the write was committed, so we stop and let the caller
        # re-observe the account before deciding.
        not_applied = status == 429 or (status == 503 and pd_body)
        if not retry_safe and not not_applied:
            return OutcomeUnknownError(message + _MAYBE_APPLIED, retry_after=retry_after, **fields)
        return TemporaryPagerDutyError(message, retry_after=retry_after, **fields)
    if 400 <= status < 500:
        return PermanentPagerDutyError(message, **fields)
    return PermanentPagerDutyError(f"unexpected HTTP status: {message}", **fields)


def network_error(
    base_url: str,
    timeout: float,
    method: str,
    path: str,
    cause: BaseException,
    *,
    retry_safe: bool,
) -> PagerDutyError:
    """The pdorgsync error for a request that got no answer."""
    if isinstance(
        cause,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidHeader
        | requests.exceptions.URLRequired,
    ):
        return PermanentPagerDutyError(
            f"invalid PagerDuty URL {base_url!r} ({type(cause).__name__}); check PDORGSYNC_API_URL",
            method=method,
            path=path,
        )
    if isinstance(cause, requests.exceptions.Timeout) and not sent_nothing(cause):
        what = f"no response within {timeout:g}s"
    elif sent_nothing(cause):
        what = "cannot connect"
    else:
        what = "connection failed"
    message = f"{what} to {base_url} ({type(cause).__name__})"
    # Same reasoning as for 5xx in http_error: once the request bytes may have left
    # (read timeout, connection reset mid-response), a POST's fate is unknown.
    if not retry_safe and not sent_nothing(cause):
        return OutcomeUnknownError(message + _MAYBE_APPLIED, method=method, path=path)
    return TemporaryPagerDutyError(message, method=method, path=path)


def should_retry(exc: BaseException, *, names_fresh_object: bool = False) -> bool:
    # Read-after-write lag: right after a create PagerDuty can answer 404 for the new
    # object (terraform-provider-pagerduty #273, PR #274 retries such reads; #1069).
    # A 404 on a request that names an object this client created is retried with
    # backoff like a temporary error; any other 404 is final. A 404 means nothing was
    # applied, so even a POST is safe to resend.
    if isinstance(exc, NotFoundError):
        return names_fresh_object
    # OutcomeUnknownError is temporary in kind but must never be resent blindly. A state
    # store that cannot grant a token (shared budget, database away) is the caller's to
    # retry: nothing was sent.
    return is_temporary(exc) and not isinstance(exc, OutcomeUnknownError | InboxError)
