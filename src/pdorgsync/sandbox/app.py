"""The sandbox's HTTP layer: PagerDuty's auth, errors, limits and validation around the handlers.

Order of checks per request, as PagerDuty applies them: authentication (401),
injected failures and rate limiting (429/5xx, never validated: they stand for
outages), then the request is validated against the official description (400 in
PagerDuty's error shape, and recorded), the handler runs under the state lock, and
the response is validated too (recorded, never changed). Latency is injected
before answering, without holding the lock.

Injected faults are ``faults.py``'s. A response is checked right after its bytes are
sent (``_CheckedAfterSending``), so the client reads and parses it while the sandbox
validates it; whoever reads ``validation_errors`` through ``Sandbox`` first waits for
the checks in flight (``Runtime.settle``).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pdorgsync.sandbox import (  # noqa: F401  (imported for their @route registrations)
    oncall,
    routes_engagement,
    routes_incidents,
    routes_misc,
    routes_policies,
    routes_schedules,
    routes_schedules_v3,
    routes_teams,
    routes_users,
)
from pdorgsync.sandbox.examples import answer as example_answer
from pdorgsync.sandbox.examples import has_example
from pdorgsync.sandbox.faults import (
    HTTP_FAULTS,
    Faults,
    Lag,
    answer_late,
    drop_connection,
)
from pdorgsync.sandbox.protocol import (
    INVALID_INPUT,
    RATE_LIMITED,
    ROUTES,
    ApiError,
    Body,
    Call,
    Handler,
    not_found,
)
from pdorgsync.sandbox.state import State
from pdorgsync.sandbox.validation import (
    WireRequest,
    WireResponse,
    request_problem,
    response_problem,
    route_key,
)

UNAUTHORIZED = 2006

# Plan-gated features: without the ability PagerDuty answers 402, code 2014 (CONTRACT
# §4; OpenAPI: every /teams operation lists 402; responder requests need
# ``coordinated_responding``). Status-update subscriptions are plan-gated too
# (support.pagerduty.com, stakeholder/status updates: Business and higher), but no
# ability name for them is documented; the sandbox gates them on its own name
# ``status_update_subscribers`` so tests can take the feature away. pdorgsync never
# looks that name up: it reads PagerDuty's 402 as the answer.
GATED: dict[str, str] = {
    "/teams": "teams",
    "/teams/{id}": "teams",
    "/teams/{id}/members": "teams",
    "/teams/{id}/users/{user_id}": "teams",
    "/teams/{id}/escalation_policies/{escalation_policy_id}": "teams",
    "/incidents/{id}/status_updates/subscribers": "status_update_subscribers",
}
SUBSCRIBE_ONLY = {"/incidents/{id}/status_updates/subscribers": "POST"}
# Sandbox-only: lets a handler know which user a user-level token acts as.
TOKEN_USER_HEADER = "x-pdorgsync-sandbox-token-user"
# The live API answers flat responder targets with its own 404 (CONTRACT §5), so that
# handler sees requests the description refuses; the refusal is still recorded.
HANDLER_DECIDES = {"/incidents/{id}/responder_requests"}


@dataclass
class Outcome:
    status: int
    body: Body
    headers: dict[str, str] = field(default_factory=dict)
    validate: bool = True


class Runtime:
    """Everything about the sandbox that is not PagerDuty data: knobs, logs, failures."""

    def __init__(
        self,
        state: State,
        *,
        token: str,
        latency: float,
        failure_rate: float,
        rate_limit_per_minute: int | None,
        random_seed: int,
        examples: bool = False,
    ) -> None:
        self.state = state
        self.examples = examples  # answer with PagerDuty's published examples (examples.py)
        self.token = token
        self.latency = latency
        self.failure_rate = failure_rate
        self.rate_limit_per_minute = rate_limit_per_minute
        self.failure_rng = random.Random(random_seed + 1)
        self.requests: list[tuple[str, str, int]] = []
        self.validation_errors: list[str] = []
        self.pending_checks = 0  # responses sent and not yet validated
        self.checks_done = threading.Condition()
        self.forced: list[tuple[int, float]] = []  # (status, retry_after) for the next requests
        self.lock = threading.Lock()
        self.faults = Faults(rng=random.Random(random_seed + 2))
        self.lag = Lag()  # read-after-write lag of created objects (faults.py)
        self.user_tokens: dict[str, str] = {}  # user-level API keys: token -> user email
        self._tokens = float(rate_limit_per_minute or 0)
        self._refilled_at: float | None = None

    # -- failures -------------------------------------------------------------

    def _bucket(self) -> tuple[bool, int, float]:
        """Token bucket on the sandbox clock: (allowed, remaining, seconds until a token)."""
        limit = self.rate_limit_per_minute
        assert limit is not None
        now = self.state.now().timestamp()
        if self._refilled_at is not None:
            self._tokens = min(limit, self._tokens + (now - self._refilled_at) * limit / 60.0)
        self._refilled_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True, int(self._tokens), 0.0
        return False, 0, (1 - self._tokens) * 60.0 / limit

    def _injected(self) -> Outcome | None:
        if self.forced:
            status, retry_after = self.forced.pop(0)
            return _failure(status, retry_after, self.rate_limit_per_minute or 960)
        if self.rate_limit_per_minute is not None:
            allowed, _remaining, wait = self._bucket()
            if not allowed:
                return _failure(429, wait, self.rate_limit_per_minute)
        if self.failure_rate and self.failure_rng.random() < self.failure_rate:
            return _failure(self.failure_rng.choice((500, 502, 503)), 0, 0)
        return None

    def rate_headers(self) -> dict[str, str]:
        """PagerDuty's ``ratelimit-*`` headers (developer docs, "Rate Limits"): sent with
        the answers when the sandbox enforces a limit, so a client can see its headroom."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return {}
        with self.lock:
            remaining = max(0, int(self._tokens))
        return {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": "60",
        }

    # -- one request ----------------------------------------------------------

    def _authenticated(self, request: Request) -> dict[str, str] | None:
        """The request's headers (lower-cased; a user-level key's user added), or None: 401."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        headers.pop(TOKEN_USER_HEADER, None)
        auth = headers.get("authorization", "")
        user_token = next(
            (email for token, email in self.user_tokens.items() if auth == f"Token token={token}"),
            None,
        )
        if auth != f"Token token={self.token}" and user_token is None:
            return None
        if user_token is not None:
            headers[TOKEN_USER_HEADER] = user_token
        return headers

    def dispatch(self, template: str, handler: Handler, request: Request, raw: bytes) -> Outcome:
        headers = self._authenticated(request)
        if headers is None:
            return Outcome(
                401, {"error": {"message": "Unauthorized", "code": UNAUTHORIZED}}, validate=False
            )
        with self.lock:
            injected = self._injected()
        if injected is not None:
            return injected
        problem = request_problem(_wire(template, request, raw))
        if problem is not None:
            self._record(f"{request.method} {request.url.path}: request: {problem}")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return Outcome(
                400,
                ApiError(
                    400, INVALID_INPUT, "Invalid Input Provided", ["Body is not valid JSON"]
                ).body(),
            )
        if problem is not None and template not in HANDLER_DECIDES:
            return Outcome(
                400, ApiError(400, INVALID_INPUT, "Invalid Input Provided", [problem]).body()
            )
        call = Call(
            method=request.method,
            path=request.url.path,
            params={k: str(v) for k, v in request.path_params.items()},
            query=_multi(request),
            headers=headers,
            body=body,
        )
        ability = GATED.get(template)
        if SUBSCRIBE_ONLY.get(template, request.method) != request.method:
            ability = None
        if ability is not None and ability not in self.state.abilities:
            return Outcome(402, _missing_ability(ability))
        if self.examples and has_example(request.method, template):
            # PagerDuty's data, verbatim: not ours to judge against its own schema.
            status, out = example_answer(request.method, template, call)
            return Outcome(status, out, validate=False)
        # A GET changes nothing, so the state may index its reverse look-ups for it.
        with self.state.reading() if request.method == "GET" else self.state.lock:
            try:
                status, out = handler(self.state, call)
            except ApiError as exc:
                status, out = exc.status, exc.body()
        # PagerDuty answers a few errors with a bare string (GET /users/me with an
        # account key); its description does not type that shape, so skip the check.
        string_error = isinstance(out, dict) and isinstance(out.get("error"), str)
        return Outcome(status, out, validate=not string_error)

    def _record(self, message: str) -> None:
        with self.lock:
            self.validation_errors.append(message)

    def check_later(self) -> None:
        with self.checks_done:
            self.pending_checks += 1

    def checked(self) -> None:
        with self.checks_done:
            self.pending_checks = max(0, self.pending_checks - 1)
            self.checks_done.notify_all()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every response sent so far has been validated (and recorded)."""
        with self.checks_done:
            self.checks_done.wait_for(lambda: self.pending_checks == 0, timeout)

    def check_response(
        self, template: str, request: Request, raw: bytes, response: Response, data: bytes
    ) -> None:
        problem = response_problem(
            _wire(template, request, raw),
            WireResponse(response.status_code, Headers(raw=response.raw_headers), data),
        )
        if problem is None:
            return
        if response.status_code >= 400 and "Unknown response http status" in problem:
            return  # PagerDuty sends error statuses its description does not list (e.g. 404 on DELETE)
        self._record(
            f"{request.method} {request.url.path}: response {response.status_code}: {problem}"
        )


def _wire(template: str, request: Request, raw: bytes) -> WireRequest:
    route = route_key(template, {k: str(v) for k, v in request.path_params.items()})
    return WireRequest(
        request.method, request.url.path, request.query_params, request.headers, raw, route
    )


def _missing_ability(ability: str) -> Body:
    return {
        "error": {
            "message": "Required abilities are unavailable",
            "code": 2014,
            "errors": [f"The {ability} account ability is required"],
        }
    }


def _failure(status: int, retry_after: float, limit: int) -> Outcome:
    if status == 429:
        wait = max(0, math.ceil(retry_after))
        headers = {
            "Retry-After": str(wait),
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(wait),
        }
        return Outcome(
            429, {"error": {"message": "Rate Limit Exceeded", "code": RATE_LIMITED}}, headers, False
        )
    return Outcome(status, {"error": {"message": "Internal Server Error", "code": 2000}}, {}, False)


def _multi(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def _endpoint(runtime: Runtime, template: str, handler: Handler) -> Any:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        if runtime.latency > 0:
            await asyncio.sleep(runtime.latency)
        with runtime.lock:
            drawn = runtime.faults.draw(request.method)
        # A drawn fault may combine "lag" with one other kind ("lag+reset_after_apply").
        parts = set(drawn.split("+")) if drawn else set()
        lag = "lag" in parts
        fault = next((p for p in parts if p != "lag"), None)
        if fault == "reset":  # nothing applied, the connection just dies
            return _drop_connection(runtime, request)
        if fault in HTTP_FAULTS:
            outcome = _failure(
                int(fault), runtime.faults.retry_after, runtime.rate_limit_per_minute or 960
            )
        else:
            now = runtime.state.now().timestamp()
            hidden = runtime.lag.named_in(request.url.path, raw, now)
            if hidden is not None:
                outcome = Outcome(404, not_found(hidden).body())
            else:
                outcome = runtime.dispatch(template, handler, request, raw)
                if lag and request.method == "POST" and 200 <= outcome.status < 300:
                    runtime.lag.start(outcome.body, now + runtime.faults.lag_seconds)
                elif request.method == "GET" and outcome.status == 200:
                    runtime.lag.hide(outcome.body, now)
        if fault == "reset_after_apply":  # applied, but the client never hears of it
            return _drop_connection(runtime, request)
        if fault == "timeout":  # applied, answered after the client gave up
            await answer_late(request, runtime.faults.slow_seconds)
        data = b"" if outcome.body is None else json.dumps(outcome.body).encode("utf-8")
        headers = {
            "X-Request-Id": runtime.state.new_id(),
            SANDBOX_HEADER: "1",
            **runtime.rate_headers(),
            **outcome.headers,
        }
        if outcome.body is None:
            response = Response(status_code=outcome.status, headers=headers)
        else:
            response = Response(data, outcome.status, headers, media_type="application/json")
        with runtime.lock:
            runtime.requests.append((request.method, request.url.path, outcome.status))
        if outcome.validate:
            return _CheckedAfterSending(runtime, template, request, raw, response, data)
        return response

    return endpoint


class _CheckedAfterSending(Response):
    """``response``, validated against the description once its bytes are sent.

    The check reads the same bytes and headers it did before the answer left; it
    runs in the event loop right after the send (also when the send fails), so a
    sequential client parses the answer while the sandbox checks it.
    """

    def __init__(
        self,
        runtime: Runtime,
        template: str,
        request: Request,
        raw: bytes,
        response: Response,
        data: bytes,
    ) -> None:
        self.status_code = response.status_code
        self.body = response.body
        self.raw_headers = response.raw_headers
        self.background = None
        self._check = (runtime, template, request, raw, response, data)
        runtime.check_later()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        runtime, template, request, raw, response, data = self._check
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                runtime.check_response(template, request, raw, response, data)
            finally:
                runtime.checked()


def _drop_connection(runtime: Runtime, request: Request) -> Response:
    response = drop_connection(request)
    with runtime.lock:
        runtime.requests.append((request.method, request.url.path, 0))
    return response


#: Every sandbox response carries this header, and ``IDENTITY_PATH`` answers with
#: it: that (not a loopback address) is how pdorgsync knows it talks to its own
#: sandbox and may go without a token and a rate budget (SPEC §4). Not a PagerDuty
#: behaviour: PagerDuty's API sends no such header and answers 404 there.
SANDBOX_HEADER = "X-Pdorgsync-Sandbox"
IDENTITY_PATH = "/_pdorgsync/sandbox"


async def _identity(_request: Request) -> Response:
    # Outside the API surface: not counted, not validated, never faulted.
    return Response(
        json.dumps({"sandbox": "pdorgsync"}).encode("utf-8"),
        200,
        {SANDBOX_HEADER: "1"},
        media_type="application/json",
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    body = json.dumps(not_found().body()).encode("utf-8")
    status = 405 if getattr(exc, "status_code", 404) == 405 else 404
    return Response(body, status, {SANDBOX_HEADER: "1"}, media_type="application/json")


def build_app(runtime: Runtime) -> Starlette:
    """A Starlette app over ``runtime``; static path segments win over ``{params}``."""
    ordered = sorted(ROUTES, key=lambda r: (r[1].startswith("/{"), r[1].count("{")))
    grouped: dict[str, dict[str, Handler]] = {}
    for method, template, handler in ordered:
        grouped.setdefault(template, {})[method] = handler
    routes = [Route(IDENTITY_PATH, _identity, methods=["GET"])]
    for template, handlers in grouped.items():
        for method, handler in handlers.items():
            routes.append(Route(template, _endpoint(runtime, template, handler), methods=[method]))
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
