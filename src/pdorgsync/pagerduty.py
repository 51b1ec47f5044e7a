"""The PagerDuty REST API v2 adapter: the ONLY module that imports pdpyras.

Everything else talks to PagerDuty through :class:`PagerDutyClient`, which

* sends the headers PagerDuty insists on (``Authorization: Token token=…``,
  the v2 ``Accept`` header, ``Content-Type`` and, when configured, ``From``);
* turns every failure into a pdorgsync error (``raise … from exc``) — callers
  never see a pdpyras, requests or urllib3 exception;
* owns retrying through tenacity, with pdpyras's own retry loop switched off;
* counts every HTTP attempt per (method, route) so commands can report their
  API budget.

It must never put the API token (or any request header) into an error message
or a log event, and it must never decide retry policy anywhere but
``_classify`` and ``_should_retry``.
"""

from __future__ import annotations

import email.utils
import logging
import re
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import requests
import tenacity
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from pdorgsync import __version__
from pdorgsync.errors import (
    InboxError,
    NotFoundError,
    OutcomeUnknownError,
    PagerDutyError,
    PermanentPagerDutyError,
    TemporaryPagerDutyError,
    is_temporary,
)
from pdorgsync.logs import get_logger, register_secrets
from pdorgsync.ratelimit import limiter_for
from pdorgsync.settings import PAGERDUTY_API_HOSTS, SANDBOX_TOKEN

with warnings.catch_warnings():
    # pdpyras 5.4.1 calls ``warn(...)`` at import (a UserWarning) to say it is
    # deprecated in favour of the ``pagerduty`` package. Silence exactly that one.
    warnings.filterwarnings(
        "ignore", message=r'The package "pdpyras" is deprecated', category=UserWarning
    )
    import pdpyras

if TYPE_CHECKING:
    from pdorgsync.settings import Settings

__all__ = ["PagerDutyClient", "RateLimiter", "route_of"]

log = get_logger("pdorgsync.pagerduty")

JSON = dict[str, Any]

ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_SIZE = 100
# Classic pagination refuses (HTTP 400) any request whose offset + limit exceeds
# 10000. We stop before sending such a request.
PAGINATION_CEILING = 10_000
# How long after creating an object a 404 for it counts as PagerDuty's read-after-
# write lag (seconds to a minute in the reports cited at _should_retry).
FRESH_SECONDS = 300.0

# pdpyras logs its own warnings/errors (e.g. on every 5xx) to the stdlib logger
# "pdpyras", which would reach stderr through logging's last-resort handler. We
# log every attempt ourselves, so give the session a logger that never emits.
_SILENT = logging.Logger("pdorgsync.pdpyras-silenced", level=logging.CRITICAL + 1)
_SILENT.disabled = True


class RateLimiter(Protocol):
    """A shared limiter consulted before every HTTP attempt (see issue 7).

    ``acquire`` blocks until the caller may send one request; ``priority`` lets
    interactive work (incident engagement) overtake bulk reads.
    """

    def acquire(self, priority: str) -> None: ...


# --------------------------------------------------------------------------- #
# Route templating for call accounting
# --------------------------------------------------------------------------- #

# Route shapes we call (openapi-subset.json) plus a few neighbours. Ids are
# recognised by *position* against these shapes, never by length: PagerDuty ids
# are usually 7 characters, but incidents have 14-character ``Q…`` ids too.
_ROUTES = (
    "/abilities/{id}",
    "/escalation_policies/{id}",
    "/escalation_policies/{id}/audit/records",
    "/incidents/{id}",
    "/incidents/{id}/alerts",
    "/incidents/{id}/log_entries",
    "/incidents/{id}/merge",
    "/incidents/{id}/notes",
    "/incidents/{id}/responder_requests",
    "/incidents/{id}/responder_requests/cancel",
    "/incidents/{id}/snooze",
    "/incidents/{id}/status_updates",
    "/incidents/{id}/status_updates/subscribers",
    "/incidents/{id}/status_updates/unsubscribe",
    "/log_entries/{id}",
    "/maintenance_windows/{id}",
    "/schedules/preview",
    "/schedules/{id}",
    "/schedules/{id}/overrides",
    "/schedules/{id}/overrides/{override_id}",
    "/schedules/{id}/users",
    "/services/{id}",
    "/services/{id}/integrations/{integration_id}",
    "/tags/{id}",
    "/tags/{id}/{entity_type}",
    "/teams/{id}",
    "/teams/{id}/escalation_policies/{escalation_policy_id}",
    "/teams/{id}/members",
    "/teams/{id}/users/{user_id}",
    "/users/me",
    "/users/{id}",
    "/users/{id}/contact_methods",
    "/users/{id}/contact_methods/{contact_method_id}",
    "/users/{id}/notification_rules",
    "/users/{id}/notification_rules/{notification_rule_id}",
    "/v3/schedules/{id}",
    "/webhook_subscriptions/{id}",
    "/webhook_subscriptions/{id}/enable",
    "/webhook_subscriptions/{id}/ping",
    "/{entity_type}/{id}/change_tags",
    "/{entity_type}/{id}/tags",
)
_ROUTE_SEGMENTS = tuple(tuple(r.strip("/").split("/")) for r in _ROUTES)
_LOOKS_LIKE_ID = re.compile(r"^[A-Z0-9]{2,}$")


def _is_placeholder(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name.removesuffix("s")


def route_of(path: str) -> str:
    """The templated route of a request path: ``/teams/P1/users/P2`` → ``/teams/{id}/users/{user_id}``."""
    segments = [s for s in path.split("?", 1)[0].strip("/").split("/") if s]
    best: tuple[str, ...] | None = None
    best_literals = -1
    for shape in _ROUTE_SEGMENTS:
        if len(shape) != len(segments):
            continue
        literals = 0
        for want, got in zip(shape, segments, strict=True):
            if _is_placeholder(want):
                continue
            if want != got:
                break
            literals += 1
        else:
            if literals > best_literals:
                best, best_literals = shape, literals
    if best is not None:
        out = [
            got if want == "{entity_type}" or not _is_placeholder(want) else want
            for want, got in zip(best, segments, strict=True)
        ]
        return "/" + "/".join(out)
    # Unknown shape: REST collections alternate name/id, so an id can only sit
    # right after a collection name; it must also look like a PagerDuty id.
    out = []
    for index, segment in enumerate(segments):
        if index % 2 == 1 and _LOOKS_LIKE_ID.match(segment):
            out.append("{id}" if index == 1 else "{" + _singular(segments[index - 1]) + "_id}")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def _collection_key(path: str) -> str:
    """The plural key of a list response: the last non-id segment of the route."""
    segments = [s for s in route_of(path).strip("/").split("/") if not _is_placeholder(s)]
    if not segments:
        raise ValueError(f"no collection in path {path!r}")
    return segments[-1]


# GET endpoints that take no limit/offset and return everything at once.
_UNPAGINATED = frozenset(
    {
        "/schedules/{id}/users",
        "/schedules/{id}/overrides",
        "/incidents/{id}/notes",
        "/incidents/{id}/status_updates/subscribers",
    }
)


# --------------------------------------------------------------------------- #
# Error mapping
# --------------------------------------------------------------------------- #


def _parse_retry_after(headers: Mapping[str, str]) -> float | None:
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


def _sent_nothing(exc: BaseException) -> bool:
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


# --------------------------------------------------------------------------- #
# The client
# --------------------------------------------------------------------------- #


class PagerDutyClient:
    """A small, retrying, counting PagerDuty REST API v2 client."""

    def __init__(
        self,
        token: str,
        url: str = "https://api.pagerduty.com",
        from_email: str | None = None,
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        max_backoff: float = 60.0,
        user_agent: str = f"pdorgsync/{__version__}",
        limiter: RateLimiter | None = None,
        priority: str = "normal",
        on_response: Callable[[str, str, int | None], None] | None = None,
    ) -> None:
        if not token:
            raise PermanentPagerDutyError("no API token given")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = url.rstrip("/")
        self.from_email = from_email
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.user_agent = user_agent
        self.limiter = limiter
        self.priority = priority
        # Metrics hook: (method, route, status or None for no response), per attempt.
        self.on_response = on_response
        self._sleep = sleep
        self._token = token
        if token != SANDBOX_TOKEN:
            register_secrets([token])  # second line of defence: logs scrub it too
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.status_counts: Counter[int] = Counter()
        # Ids of objects this client created (from POST answers): a 404 naming one of
        # them is PagerDuty's read-after-write lag, not a missing object (see _attempt).
        self._created: dict[str, float] = {}  # id -> time.monotonic() of its create
        # PagerDuty's rate-limit headers of the latest answer that carried them:
        # (limit, remaining, seconds to reset or None); ``pdorgsync doctor`` shows them.
        self.rate_limit: tuple[int, int, float | None] | None = None
        self._session = self._make_session()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, announce: bool = True, **kwargs: Any
    ) -> PagerDutyClient:
        """A client for ``PDORGSYNC_API_URL`` with the configured token and ``From``.

        Every client of the process made here shares one rate budget per token
        (``ratelimit.limiter_for``), unless a ``limiter`` is passed explicitly.
        ``announce``: say on stderr, once per URL and process, which API this is.
        """
        target = resolve_target(settings)
        if announce:
            _announce(target)
        if "limiter" not in kwargs:
            per_minute = settings.effective_rate_limit(target.sandbox)
            kwargs["limiter"] = limiter_for(target.token, per_minute) if per_minute else None
        return cls(target.token, target.url, settings.from_email, **kwargs)

    def _make_session(self) -> Any:
        session = pdpyras.APISession(self._token, default_from=self.from_email)
        session.url = self.base_url
        session.timeout = self.timeout
        session.log = _SILENT
        # Retries have exactly one owner: tenacity, in this class. pdpyras's
        # request loop would otherwise retry 429 forever and network errors 3
        # more times, sleeping with time.sleep. With these settings it makes
        # exactly one attempt per call (verified against pdpyras 5.4.1 source):
        # - network errors: it raises once ``attempts > max_network_attempts``,
        #   i.e. on the first failure when the limit is 0;
        # - statuses listed in ``retry`` with n > 0 are returned as soon as
        #   ``sum(attempts so far) > max_http_attempts``, which holds for 0 > -1
        #   on the first response. 429 must be listed, or it takes the
        #   retry-forever branch; the 5xx are listed only to make the intent
        #   explicit (unlisted statuses are returned untouched anyway).
        session.max_network_attempts = 0
        session.max_http_attempts = -1
        session.retry = {429: 1, 500: 1, 502: 1, 503: 1, 504: 1}
        # PagerDuty's OpenAPI description requires Content-Type on every
        # operation, reads included; pdpyras only adds it for POST/PUT.
        session.headers.update({"Accept": ACCEPT, "Content-Type": "application/json"})
        # requests re-reads the environment (proxy variables, no_proxy, CA bundle,
        # ~/.netrc) on every request, about half a millisecond each; the URL never
        # changes, so resolve the proxies and CA bundle for it once, here. (~/.netrc is
        # not consulted: the token is the only credential sent.)
        found = session.merge_environment_settings(self.base_url, {}, None, None, None)
        session.proxies.update(found["proxies"])
        session.verify = found["verify"]
        session.trust_env = False
        return session

    # ------------------------------------------------------------------ counts

    @property
    def total_calls(self) -> int:
        """Every HTTP attempt made since the last ``reset_counts``, retries included."""
        return sum(self.calls.values())

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.status_counts.clear()

    def sleep(self, seconds: float) -> None:
        """Wait with the injected ``sleep`` (callers that wait for PagerDuty use it too)."""
        self._sleep(seconds)

    def _mentions_created(self, path: str, body: Mapping[str, Any] | None) -> bool:
        with self._lock:
            created = self._fresh_ids()
        if not created:
            return False
        segments = set(path.split("?", 1)[0].strip("/").split("/"))
        if segments & created:
            return True
        return body is not None and bool(_ids_in(body) & created)

    # ------------------------------------------------------------------- verbs

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        """GET ``path``; returns the parsed (still wrapped) JSON body."""
        return self._call("GET", path, params=params, retry_safe=True)

    def post(self, path: str, body: Mapping[str, Any], *, idempotent: bool = False) -> JSON:
        """POST a wrapped body. Retried only when provably not applied, or if ``idempotent``."""
        return self._call("POST", path, body=body, retry_safe=idempotent)

    def put(self, path: str, body: Mapping[str, Any] | None = None) -> JSON:
        """PUT (idempotent in PagerDuty, so retried on temporary errors)."""
        return self._call("PUT", path, body=body, retry_safe=True)

    def delete(self, path: str) -> JSON:
        """DELETE (idempotent in PagerDuty); returns ``{}`` for the usual 204."""
        return self._call("DELETE", path, retry_safe=True)

    def iter_all(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[JSON]:
        """Every item of a classic-paginated list, unwrapped from its plural key.

        Stops with a PermanentPagerDutyError rather than cross PagerDuty's
        offset + limit ≤ 10000 ceiling: a silently truncated list would make the
        planner believe objects are missing and create duplicates or report
        false gaps, so an incomplete read must fail loudly.
        """
        key = _collection_key(path)
        base = dict(params or {})
        paginated = route_of(path) not in _UNPAGINATED
        limit = int(base.pop("limit", PAGE_SIZE)) if paginated else 0
        offset = int(base.pop("offset", 0)) if paginated else 0
        while True:
            page_params = dict(base)
            if paginated:
                if offset + limit > PAGINATION_CEILING:
                    raise PermanentPagerDutyError(
                        f"more than {offset} results; PagerDuty refuses to page past "
                        f"offset+limit={PAGINATION_CEILING}. Narrow the request with filters "
                        "(e.g. query, team_ids[], since/until)",
                        method="GET",
                        path=path,
                    )
                page_params.update(limit=limit, offset=offset)
            body = self.get(path, page_params)
            items = body.get(key)
            if not isinstance(items, list):
                raise PermanentPagerDutyError(
                    f"unexpected response: no {key!r} list in the body", method="GET", path=path
                )
            yield from items
            if not paginated or not body.get("more") or not items:
                return
            # Advance by what we received: the server may cap the page size.
            offset += len(items)

    def list_all(self, path: str, params: Mapping[str, Any] | None = None) -> list[JSON]:
        """``list(iter_all(path, params))``."""
        return list(self.iter_all(path, params))

    # ---------------------------------------------------------------- plumbing

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        retry_safe: bool,
    ) -> JSON:
        if not path.startswith("/"):
            path = "/" + path
        query = _normalize_params(params) if params else None
        backoff = tenacity.wait_exponential_jitter(multiplier=1, max=self.max_backoff, jitter=1)

        def wait(state: tenacity.RetryCallState) -> float:
            seconds = float(backoff(state))
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                seconds = max(seconds, float(retry_after))  # never earlier than asked
            return seconds

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "pagerduty.retry",
                method=method,
                path=path,
                attempt=state.attempt_number,
                max_attempts=self.max_attempts,
                wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
                status=getattr(exc, "status", None),
                error=str(exc),
                read_after_write=isinstance(exc, NotFoundError),
            )

        def should_retry(exc: BaseException) -> bool:
            fresh = isinstance(exc, NotFoundError) and self._mentions_created(path, body)
            return _should_retry(exc, names_fresh_object=fresh)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(should_retry),
            sleep=self._sleep,
            before_sleep=before_sleep,
        )
        try:
            result: JSON = retrying(self._attempt, method, path, query, body, retry_safe)
        except tenacity.RetryError as gave_up:
            last = gave_up.last_attempt.exception()
            assert isinstance(last, PagerDutyError)  # only these are retried
            raise type(last)(
                f"{last.message}; gave up after {self.max_attempts} attempts",
                status=last.status,
                code=last.code,
                errors=last.errors,
                method=last.method,
                path=last.path,
                request_id=last.request_id,
                retry_after=last.retry_after,
            ) from last
        return result

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        retry_safe: bool,
    ) -> JSON:
        """One HTTP attempt: exactly one request on the wire, or a pdorgsync error."""
        if self.limiter is not None:
            self.limiter.acquire(self.priority)
        route = route_of(path)
        with self._lock:
            self.calls[(method, route)] += 1
        kwargs: dict[str, Any] = {"headers": {"User-Agent": self.user_agent}}
        if params:
            kwargs["params"] = params
        if body is not None:
            kwargs["json"] = body
        started = time.perf_counter()
        try:
            response = self._session.request(method, path, **kwargs)
        except pdpyras.PDHTTPError as exc:  # pdpyras raises on 401 itself
            response = exc.response
        except pdpyras.PDClientError as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            log.debug(
                "pagerduty.request",
                method=method,
                path=path,
                route=route,
                status=None,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                request_id=None,
                error=type(cause).__name__,
            )
            if self.on_response is not None:
                self.on_response(method, route, None)
            raise self._network_error(method, path, cause, retry_safe) from exc
        status = response.status_code
        request_id = response.headers.get("X-Request-Id")
        seen_limit = _rate_limit_headers(response.headers)
        with self._lock:
            self.status_counts[status] += 1
            if seen_limit is not None:
                self.rate_limit = seen_limit
        if self.on_response is not None:
            self.on_response(method, route, status)
        log.debug(
            "pagerduty.request",
            method=method,
            path=path,
            route=route,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            request_id=request_id,
        )
        if 200 <= status < 300:
            data = self._parse_success(response, method, path, request_id, retry_safe)
            if method == "POST":
                self._remember_created(data)
            return data
        raise self._http_error(response, method, path, request_id, retry_safe)

    def _fresh_ids(self) -> set[str]:
        """Ids created within ``FRESH_SECONDS`` (caller holds the lock); older ones are
        forgotten: a 404 for them is a real one, and a daemon's set stays small."""
        horizon = time.monotonic() - FRESH_SECONDS
        for object_id in [i for i, at in self._created.items() if at < horizon]:
            del self._created[object_id]
        return set(self._created)

    def _remember_created(self, data: JSON) -> None:
        ids = {
            str(value["id"])
            for value in data.values()
            if isinstance(value, dict) and isinstance(value.get("id"), str)
        }
        if ids:
            with self._lock:
                now = time.monotonic()
                self._created.update(dict.fromkeys(ids, now))

    def _parse_success(
        self,
        response: requests.Response,
        method: str,
        path: str,
        request_id: str | None,
        retry_safe: bool,
    ) -> JSON:
        if _is_empty(response):
            return {}
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
        if isinstance(data, list):
            # PagerDuty answers some bulk writes (POST /schedules/{id}/overrides)
            # with a bare array of per-item results ({status, errors?, override});
            # wrap it under the collection key so every method returns an object.
            # Callers must check each item's status: the HTTP status stays 2xx.
            return {_collection_key(path): data}
        # A 2xx we cannot read: the request was processed but we do not know the
        # result. Retrying a read is fine; a non-idempotent write is ambiguous.
        cls = TemporaryPagerDutyError if retry_safe else OutcomeUnknownError
        raise cls(
            "unreadable success response (expected a JSON object)",
            status=response.status_code,
            method=method,
            path=path,
            request_id=request_id,
        )

    def _http_error(
        self,
        response: requests.Response,
        method: str,
        path: str,
        request_id: str | None,
        retry_safe: bool,
    ) -> PagerDutyError:
        status = response.status_code
        message, code, errors, pd_body = _error_details(response)
        message = self._scrub(message)
        errors = [self._scrub(e) for e in errors]
        fields: dict[str, Any] = {
            "status": status,
            "code": code,
            "errors": errors,
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
            retry_after = _parse_retry_after(response.headers)
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
                return OutcomeUnknownError(
                    f"{message}; the request may or may not have been applied — "
                    "re-read the account before sending it again",
                    retry_after=retry_after,
                    **fields,
                )
            return TemporaryPagerDutyError(message, retry_after=retry_after, **fields)
        if 400 <= status < 500:
            return PermanentPagerDutyError(message, **fields)
        return PermanentPagerDutyError(f"unexpected HTTP status: {message}", **fields)

    def _network_error(
        self, method: str, path: str, cause: BaseException, retry_safe: bool
    ) -> PagerDutyError:
        if isinstance(
            cause,
            requests.exceptions.InvalidURL
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidSchema
            | requests.exceptions.InvalidHeader
            | requests.exceptions.URLRequired,
        ):
            return PermanentPagerDutyError(
                f"invalid PagerDuty URL {self.base_url!r} ({type(cause).__name__}); "
                "check PDORGSYNC_API_URL",
                method=method,
                path=path,
            )
        if isinstance(cause, requests.exceptions.Timeout) and not _sent_nothing(cause):
            what = f"no response within {self.timeout:g}s"
        elif _sent_nothing(cause):
            what = "cannot connect"
        else:
            what = "connection failed"
        message = f"{what} to {self.base_url} ({type(cause).__name__})"
        # Same reasoning as for 5xx above: once the request bytes may have left
        # (read timeout, connection reset mid-response), a POST's fate is unknown.
        if not retry_safe and not _sent_nothing(cause):
            return OutcomeUnknownError(
                f"{message}; the request may or may not have been applied — "
                "re-read the account before sending it again",
                method=method,
                path=path,
            )
        return TemporaryPagerDutyError(message, method=method, path=path)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[REDACTED]") if self._token in text else text


def _rate_limit_headers(headers: Mapping[str, str]) -> tuple[int, int, float | None] | None:
    """``ratelimit-limit`` / ``-remaining`` / ``-reset`` (developer docs, "Rate Limits")."""
    try:
        limit = int(headers["ratelimit-limit"])
        remaining = int(headers["ratelimit-remaining"])
    except (KeyError, ValueError):
        return None
    try:
        reset: float | None = float(headers["ratelimit-reset"])
    except (KeyError, ValueError):
        reset = None
    return limit, remaining, reset


def _is_empty(response: requests.Response) -> bool:
    """204, or a 2xx with no body at all."""
    return response.status_code == 204 or not response.content.strip()


def _should_retry(exc: BaseException, *, names_fresh_object: bool = False) -> bool:
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


def _ids_in(value: Any) -> set[str]:
    """Every ``"id"`` string in a JSON body (references at any depth)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "id" and isinstance(item, str):
                found.add(item)
            else:
                found |= _ids_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= _ids_in(item)
    return found


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"  # requests would send "True"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(_query_value(v) for v in value)
    if isinstance(value, list | tuple):
        return [_query_value(v) for v in value]
    return value


def _normalize_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """PagerDuty array filters repeat ``key[]``; requests repeats list values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset) and not key.endswith("[]"):
            key += "[]"
        out[key] = _query_value(value)
    return out


# ------------------------------------------------------------------ the API target


@dataclass(frozen=True)
class ApiTarget:
    """Where requests go, with which token, and whether it is pdorgsync's sandbox."""

    url: str
    token: str
    sandbox: bool

    def describe(self) -> str:
        if self.sandbox:
            kind = "pdorgsync sandbox"
        elif urlsplit(self.url).hostname in PAGERDUTY_API_HOSTS:
            kind = "PagerDuty"
        else:
            kind = "not PagerDuty's own host: PDORGSYNC_API_URL from the environment"
        return f"{self.url} ({kind})"


SANDBOX_HEADER = "X-Pdorgsync-Sandbox"
SANDBOX_IDENTITY_PATH = "/_pdorgsync/sandbox"
_identified: dict[str, bool] = {}
_announced: set[str] = set()
_target_lock = threading.Lock()


def identify_sandbox(url: str, *, timeout: float = 5.0) -> bool:
    """True if ``url`` is pdorgsync's own sandbox: it says so in a response header.

    Asked without any credential, so nothing secret reaches whoever answers.
    PagerDuty's own hosts are never asked. Cached per URL for the process.
    """
    base = url.rstrip("/")
    if urlsplit(base).hostname in PAGERDUTY_API_HOSTS:
        return False
    with _target_lock:
        if base in _identified:
            return _identified[base]
    try:
        response = requests.get(
            base + SANDBOX_IDENTITY_PATH, timeout=timeout, allow_redirects=False
        )
        found = response.headers.get(SANDBOX_HEADER) == "1"
    except requests.RequestException:
        found = False  # unreachable: not known to be the sandbox; the real call will say why
    with _target_lock:
        _identified[base] = found
    return found


def resolve_target(settings: Settings) -> ApiTarget:
    """The API target of ``settings``: ConfigError when there is no token and the
    server is not pdorgsync's sandbox (a loopback address alone does not count)."""
    # Asked only when no token is configured: with a token, the budget stays on
    # (RATE_LIMIT_PER_MINUTE=0 turns it off) and nothing needs the answer.
    sandbox = settings.configured_token() is None and identify_sandbox(settings.api_url)
    return ApiTarget(settings.api_url.rstrip("/"), settings.token(sandbox=sandbox), sandbox)


def _announce(target: ApiTarget) -> None:
    with _target_lock:
        if target.url in _announced:
            return
        _announced.add(target.url)
    print(f"pdorgsync: API {target.describe()}", file=sys.stderr)
