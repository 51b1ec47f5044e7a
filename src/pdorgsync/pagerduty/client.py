"""The transport: :class:`PagerDutyClient` sends each request through pdpyras, retries
with tenacity, and hands failures to ``failures`` for mapping.

The only module importing pdpyras. It must never put the API token (or any request
header) into an error message or a log event, and it must never decide retry policy:
``failures.should_retry`` does.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import requests
import tenacity

from pdorgsync import __version__
from pdorgsync.errors import NotFoundError, PagerDutyError, PermanentPagerDutyError
from pdorgsync.logs import get_logger, register_secrets
from pdorgsync.pagerduty.api import JSON, RateLimit, RateLimiter
from pdorgsync.pagerduty.failures import (
    http_error,
    network_error,
    should_retry,
    unreadable_success,
)
from pdorgsync.pagerduty.ledger import CallLedger
from pdorgsync.pagerduty.pagination import iter_pages
from pdorgsync.pagerduty.routes import collection_key, normalize_params, route_of
from pdorgsync.pagerduty.target import announce as say_which
from pdorgsync.pagerduty.target import resolve_target
from pdorgsync.ratelimit import limiter_for
from pdorgsync.settings import SANDBOX_TOKEN

with warnings.catch_warnings():
    # pdpyras 5.4.1 calls ``warn(...)`` at import (a UserWarning) to say it is
    # deprecated in favour of the ``pagerduty`` package. Silence exactly that one.
    warnings.filterwarnings(
        "ignore", message=r'The package "pdpyras" is deprecated', category=UserWarning
    )
    import pdpyras

if TYPE_CHECKING:
    from pdorgsync.settings import Settings

__all__ = ["ACCEPT", "PagerDutyClient"]

log = get_logger("pdorgsync.pagerduty")

ACCEPT = "application/vnd.pagerduty+json;version=2"

# pdpyras logs its own warnings/errors (e.g. on every 5xx) to the stdlib logger
# "pdpyras", which would reach stderr through logging's last-resort handler. We
# log every attempt ourselves, so give the session a logger that never emits.
_SILENT = logging.Logger("pdorgsync.pdpyras-silenced", level=logging.CRITICAL + 1)
_SILENT.disabled = True


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
        # Attempts, statuses, rate-limit headers, and the ids this client created (a
        # 404 naming one of them is PagerDuty's read-after-write lag, see _call).
        self.ledger = CallLedger()
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
            say_which(target)
        if "limiter" not in kwargs:
            per_minute = settings.effective_rate_limit(target.sandbox)
            kwargs["limiter"] = limiter_for(target.token, per_minute) if per_minute else None
        return cls(target.token, target.url, settings.from_email, **kwargs)

    def _make_session(self) -> pdpyras.APISession:
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
    def calls(self) -> Counter[tuple[str, str]]:
        """HTTP attempts per (method, templated route) since the last ``reset_counts``."""
        return self.ledger.calls

    @property
    def status_counts(self) -> Counter[int]:
        return self.ledger.status_counts

    @property
    def rate_limit(self) -> RateLimit | None:
        """PagerDuty's rate-limit headers of the latest answer that carried them:
        (limit, remaining, seconds to reset or None); ``pdorgsync doctor`` shows them."""
        return self.ledger.rate_limit

    @property
    def total_calls(self) -> int:
        """Every HTTP attempt made since the last ``reset_counts``, retries included."""
        return self.ledger.total_calls

    def reset_counts(self) -> None:
        self.ledger.reset()

    def sleep(self, seconds: float) -> None:
        """Wait with the injected ``sleep`` (callers that wait for PagerDuty use it too)."""
        self._sleep(seconds)

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
        """Every item of a classic-paginated list, unwrapped from its plural key
        (``pagination.iter_pages``: it refuses to cross PagerDuty's 10000 ceiling)."""
        return iter_pages(self.get, path, params)

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
        query = normalize_params(params) if params else None
        retrying = self._retrying(method, path, body)
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

    def _retrying(
        self, method: str, path: str, body: Mapping[str, Any] | None
    ) -> tenacity.Retrying:
        """Exponential backoff with jitter, never sooner than ``Retry-After``; what is
        retried is ``failures.should_retry``'s decision."""
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

        def retry(exc: BaseException) -> bool:
            fresh = isinstance(exc, NotFoundError) and self.ledger.mentions_created(path, body)
            return should_retry(exc, names_fresh_object=fresh)

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(retry),
            sleep=self._sleep,
            before_sleep=before_sleep,
        )

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
        self.ledger.attempt(method, route)
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
            self._attempted(method, path, route, started, None, error=type(cause).__name__)
            raise network_error(
                self.base_url, self.timeout, method, path, cause, retry_safe=retry_safe
            ) from exc
        status = response.status_code
        request_id = response.headers.get("X-Request-Id")
        self.ledger.answer(status, response.headers)
        self._attempted(method, path, route, started, status, request_id=request_id)
        if 200 <= status < 300:
            data = self._parse_success(response, method, path, request_id, retry_safe)
            if method == "POST":
                self.ledger.remember_created(data)
            return data
        raise http_error(
            response, method, path, request_id, retry_safe=retry_safe, scrub=self._scrub
        )

    def _attempted(
        self,
        method: str,
        path: str,
        route: str,
        started: float,
        status: int | None,
        **extra: str | None,
    ) -> None:
        """The metrics hook and the ``pagerduty.request`` debug event of one attempt
        (``status`` None: no response)."""
        if self.on_response is not None:
            self.on_response(method, route, status)
        log.debug(
            "pagerduty.request",
            method=method,
            path=path,
            route=route,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            **({"request_id": None} | extra),
        )

    def _parse_success(
        self,
        response: requests.Response,
        method: str,
        path: str,
        request_id: str | None,
        retry_safe: bool,
    ) -> JSON:
        if response.status_code == 204 or not response.content.strip():
            return {}  # 204, or a 2xx with no body at all
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
            return {collection_key(path): data}
        raise unreadable_success(response, method, path, request_id, retry_safe)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[REDACTED]") if self._token in text else text
