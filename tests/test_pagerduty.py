"""The PagerDuty adapter, faked at the wire with ``responses``."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import structlog.testing
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from pdorgsync.errors import (
    NotFoundError,
    OutcomeUnknownError,
    PagerDutyError,
    PermanentPagerDutyError,
    TemporaryPagerDutyError,
)
from pdorgsync.pagerduty import PagerDutyClient, route_of
from pdorgsync.settings import load_settings

BASE = "https://api.pagerduty.test"
TOKEN = "y_NbAkKc66ryYTWUXYEu"  # made-up, shaped like a PagerDuty REST key
PD_429 = {"error": {"message": "Rate Limit Exceeded", "code": 2020}}


class Sleeps:
    """An injected ``sleep`` that records instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> PagerDutyClient:
    return PagerDutyClient(TOKEN, BASE, "pdorgsync-bot@acme.test", sleep=sleeps, max_attempts=4)


def _query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def _refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on the port (nothing was sent)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")  # type: ignore[arg-type]  # no connection object: nothing reads it
    return requests.exceptions.ConnectionError(MaxRetryError(None, BASE, reason))  # type: ignore[arg-type]  # no pool: nothing reads it


# --------------------------------------------------------------------------- headers


def test_sends_pagerduty_headers(rsps: responses.RequestsMock, client: PagerDutyClient) -> None:
    """Every request carries the exact auth spelling, the v2 Accept header, JSON type and From."""
    rsps.get(f"{BASE}/users/me", json={"user": {"id": "PBOT001"}})
    assert client.get("/users/me") == {"user": {"id": "PBOT001"}}
    headers = rsps.calls[0].request.headers
    assert headers["Authorization"] == f"Token token={TOKEN}"
    assert headers["Accept"] == "application/vnd.pagerduty+json;version=2"
    assert headers["Content-Type"] == "application/json"
    assert headers["From"] == "pdorgsync-bot@acme.test"
    user_agent = headers["User-Agent"]
    assert isinstance(user_agent, str)
    assert user_agent.startswith("pdorgsync/")


def test_no_from_header_without_from_email(rsps: responses.RequestsMock, sleeps: Sleeps) -> None:
    """Without a configured requester no From header is sent."""
    rsps.get(f"{BASE}/teams/PT00001", json={"team": {}})
    PagerDutyClient(TOKEN, BASE, sleep=sleeps).get("/teams/PT00001")
    assert "From" not in rsps.calls[0].request.headers


def test_from_settings_uses_token_url_and_from(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """from_settings wires the configured token, API URL and From address."""
    monkeypatch.setenv("PDORGSYNC_API_TOKEN", TOKEN)
    monkeypatch.setenv("PDORGSYNC_API_URL", BASE + "/")
    monkeypatch.setenv("PDORGSYNC_FROM_EMAIL", "ops@acme.test")
    rsps.get(f"{BASE}/abilities", json={"abilities": []})
    PagerDutyClient.from_settings(load_settings(_env_file=None)).get("/abilities")
    headers = rsps.calls[0].request.headers
    assert headers["Authorization"] == f"Token token={TOKEN}"
    assert headers["From"] == "ops@acme.test"


# --------------------------------------------------------------------------- bodies


def test_post_sends_and_returns_wrapped_bodies(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """A POST sends the wrapped entity as JSON and returns the wrapped response as given."""
    rsps.post(f"{BASE}/teams", json={"team": {"id": "PT00001", "name": "Support"}}, status=201)
    created = client.post("/teams", {"team": {"type": "team", "name": "Support"}})
    assert created == {"team": {"id": "PT00001", "name": "Support"}}
    sent = rsps.calls[0].request
    assert isinstance(sent.body, bytes | str)
    assert json.loads(sent.body) == {"team": {"type": "team", "name": "Support"}}
    assert sent.headers["Content-Type"] == "application/json"


def test_put_without_body_and_delete_204(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """A body-less PUT and a 204 DELETE both return an empty dict."""
    rsps.put(f"{BASE}/teams/PT00001/users/PU00001", status=204)
    rsps.delete(f"{BASE}/schedules/PS00001", status=204)
    assert client.put("/teams/PT00001/users/PU00001") == {}
    assert client.delete("/schedules/PS00001") == {}
    assert rsps.calls[0].request.body is None


# --------------------------------------------------------------------------- pagination


def _paged(total: int, key: str = "teams") -> Any:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        assert request.url is not None
        query = parse_qs(urlsplit(request.url).query)
        offset, limit = int(query["offset"][0]), int(query["limit"][0])
        items = [{"id": f"P{i:06d}"} for i in range(offset, min(offset + limit, total))]
        body = {key: items, "offset": offset, "limit": limit, "more": offset + limit < total}
        return 200, {}, json.dumps(body)

    return callback


def test_list_all_walks_three_pages(rsps: responses.RequestsMock, client: PagerDutyClient) -> None:
    """250 teams come back in order from exactly 3 requests of 100."""
    rsps.add_callback(responses.GET, f"{BASE}/teams", callback=_paged(250))
    teams = client.list_all("/teams")
    assert [t["id"] for t in teams] == [f"P{i:06d}" for i in range(250)]
    assert len(rsps.calls) == 3
    assert [_query(c)["offset"] for c in rsps.calls] == [["0"], ["100"], ["200"]]
    assert all(_query(c)["limit"] == ["100"] for c in rsps.calls)
    assert client.calls[("GET", "/teams")] == 3


def test_array_and_boolean_params(rsps: responses.RequestsMock, client: PagerDutyClient) -> None:
    """Array filters repeat `key[]`; booleans are sent as PagerDuty's lowercase words."""
    rsps.get(f"{BASE}/services", json={"services": [], "more": False})
    client.list_all(
        "/services", {"team_ids[]": ["PT1", "PT2"], "include": ["teams"], "total": True}
    )
    query = _query(rsps.calls[0])
    assert query["team_ids[]"] == ["PT1", "PT2"]
    assert query["include[]"] == ["teams"]
    assert query["total"] == ["true"]


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/teams/PT00001/members", "members"),
        ("/oncalls", "oncalls"),
        ("/escalation_policies", "escalation_policies"),
        ("/users/PU00001/contact_methods", "contact_methods"),
    ],
)
def test_list_all_unwraps_plural_key(
    rsps: responses.RequestsMock, client: PagerDutyClient, path: str, key: str
) -> None:
    """The list is unwrapped from the last non-id segment of the path."""
    rsps.get(f"{BASE}{path}", json={key: [{"id": "PX"}], "more": False, "limit": 100})
    assert client.list_all(path) == [{"id": "PX"}]


def test_unpaginated_endpoint_sends_no_paging(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """Endpoints without paging (schedule users) are read once, without limit/offset."""
    rsps.get(f"{BASE}/schedules/PS00001/users", json={"users": [{"id": "PU1"}]})
    assert client.list_all("/schedules/PS00001/users", {"since": "2026-01-01T00:00:00Z"}) == [
        {"id": "PU1"}
    ]
    assert _query(rsps.calls[0]) == {"since": ["2026-01-01T00:00:00Z"]}


def test_pagination_ceiling_raises_clear_error(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """Past 10000 results the client stops before PagerDuty's 400 and says to narrow with filters."""
    rsps.add_callback(responses.GET, f"{BASE}/users", callback=_paged(12_000, "users"))
    with pytest.raises(PermanentPagerDutyError, match="filters") as info:
        client.list_all("/users")
    assert len(rsps.calls) == 100
    last = _query(rsps.calls[-1])
    assert int(last["offset"][0]) + int(last["limit"][0]) == 10_000
    assert info.value.path == "/users"


def test_exactly_10000_results_is_fine(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """A list that ends exactly at the ceiling is returned whole."""
    rsps.add_callback(responses.GET, f"{BASE}/users", callback=_paged(10_000, "users"))
    assert len(client.list_all("/users")) == 10_000


def test_missing_collection_key_is_an_error(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """A list response without the expected plural key is reported, not silently empty."""
    rsps.get(f"{BASE}/teams", json={"something_else": []})
    with pytest.raises(PermanentPagerDutyError, match="'teams'"):
        client.list_all("/teams")


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("header", ["Retry-After", "ratelimit-reset"])
def test_429_waits_at_least_retry_after(
    rsps: responses.RequestsMock, client: PagerDutyClient, sleeps: Sleeps, header: str
) -> None:
    """A rate-limited GET waits at least as long as PagerDuty asks, then succeeds."""
    rsps.get(f"{BASE}/teams/PT00001", json=PD_429, status=429, headers={header: "17"})
    rsps.get(f"{BASE}/teams/PT00001", json={"team": {"id": "PT00001"}})
    assert client.get("/teams/PT00001") == {"team": {"id": "PT00001"}}
    assert len(sleeps.calls) == 1
    assert sleeps.calls[0] >= 17
    assert client.status_counts == {429: 1, 200: 1}


def test_429_without_headers_backs_off(
    rsps: responses.RequestsMock, client: PagerDutyClient, sleeps: Sleeps
) -> None:
    """A 429 without rate-limit headers still waits a positive, bounded time."""
    rsps.get(f"{BASE}/teams", json=PD_429, status=429)
    rsps.get(f"{BASE}/teams", json={"teams": []})
    client.get("/teams")
    assert 0 < sleeps.calls[0] <= 60


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_get_retries_5xx_then_succeeds(
    rsps: responses.RequestsMock, client: PagerDutyClient, sleeps: Sleeps, status: int
) -> None:
    """A server error on a read is retried and the second answer returned."""
    rsps.get(f"{BASE}/services/PV00001", body="upstream trouble", status=status)
    rsps.get(f"{BASE}/services/PV00001", json={"service": {"id": "PV00001"}})
    assert client.get("/services/PV00001")["service"]["id"] == "PV00001"
    assert len(rsps.calls) == 2
    assert len(sleeps.calls) == 1


@pytest.mark.parametrize(
    "failure",
    [
        _refused(),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout(),
    ],
    ids=["refused", "read-timeout", "connect-timeout"],
)
def test_get_retries_network_errors(
    rsps: responses.RequestsMock, client: PagerDutyClient, failure: Exception
) -> None:
    """Connection failures and timeouts on a read are retried."""
    rsps.get(f"{BASE}/priorities", body=failure)
    rsps.get(f"{BASE}/priorities", json={"priorities": [], "more": False})
    assert client.list_all("/priorities") == []
    assert client.calls[("GET", "/priorities")] == 2


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_put_and_delete_are_retried(
    rsps: responses.RequestsMock, client: PagerDutyClient, method: str
) -> None:
    """PUT and DELETE are idempotent in PagerDuty, so a 500 is retried."""
    url = f"{BASE}/teams/PT00001/users/PU00001"
    rsps.add(method, url, status=500, json={"error": {"message": "Internal", "code": 5000}})
    rsps.add(method, url, status=204)
    assert client._call(method, "/teams/PT00001/users/PU00001", retry_safe=True) == {}
    assert len(rsps.calls) == 2


def test_exhausted_retries_raise_temporary(
    rsps: responses.RequestsMock, client: PagerDutyClient, sleeps: Sleeps
) -> None:
    """After max_attempts failures the last temporary error surfaces, saying it gave up."""
    rsps.get(f"{BASE}/oncalls", status=503, json={"error": {"message": "Unavailable"}})
    with pytest.raises(TemporaryPagerDutyError, match="gave up after 4 attempts") as info:
        client.list_all("/oncalls")
    assert not isinstance(info.value, OutcomeUnknownError)
    assert info.value.status == 503
    assert len(rsps.calls) == 4
    assert len(sleeps.calls) == 3


def test_backoff_grows(rsps: responses.RequestsMock, sleeps: Sleeps) -> None:
    """Waits between attempts grow exponentially and stay under max_backoff."""
    rsps.get(f"{BASE}/teams", status=500)
    client = PagerDutyClient(TOKEN, BASE, sleep=sleeps, max_attempts=6, max_backoff=10)
    with pytest.raises(TemporaryPagerDutyError):
        client.get("/teams")
    assert len(sleeps.calls) == 5
    assert sleeps.calls[0] < sleeps.calls[2] < sleeps.calls[3]
    assert all(0 < s <= 10 for s in sleeps.calls)


# --------------------------------------------------------------------------- POST safety


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError(ProtocolError("Connection aborted.")),
        502,
        504,
        500,
        503,  # a bare 503 (no PagerDuty error body) may come from a proxy
    ],
    ids=["read-timeout", "reset", "502", "504", "500", "bare-503"],
)
def test_ambiguous_post_raises_outcome_unknown_after_one_request(
    rsps: responses.RequestsMock, client: PagerDutyClient, sleeps: Sleeps, failure: Any
) -> None:
    """A POST that may have landed is never resent: one request, OutcomeUnknownError."""
    url = f"{BASE}/incidents/Q2W3E4R5T6Y7U8/responder_requests"
    if isinstance(failure, int):
        rsps.post(url, status=failure, body="gateway trouble")
    else:
        rsps.post(url, body=failure)
    with pytest.raises(OutcomeUnknownError, match="may or may not have been applied"):
        client.post(url.removeprefix(BASE), {"requester_id": "PBOT001"})
    assert len(rsps.calls) == 1
    assert sleeps.calls == []


@pytest.mark.parametrize(
    "first",
    [
        {"status": 429, "json": PD_429, "headers": {"ratelimit-reset": "3"}},
        {"status": 503, "json": {"error": {"message": "Service Unavailable", "code": 5003}}},
        {"body": _refused()},
    ],
    ids=["429", "503-pagerduty", "refused"],
)
def test_post_retried_when_provably_not_applied(
    rsps: responses.RequestsMock, client: PagerDutyClient, first: dict[str, Any]
) -> None:
    """A POST refused before processing (429, PagerDuty's own 503, no connection) is retried."""
    rsps.post(f"{BASE}/schedules", **first)
    rsps.post(f"{BASE}/schedules", json={"schedule": {"id": "PS00001"}}, status=201)
    assert client.post("/schedules", {"schedule": {}}) == {"schedule": {"id": "PS00001"}}
    assert len(rsps.calls) == 2


def test_idempotent_post_is_retried_after_timeout(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """A POST marked idempotent (e.g. schedule preview) is retried after a read timeout."""
    rsps.post(f"{BASE}/schedules/preview", body=requests.exceptions.ReadTimeout())
    rsps.post(f"{BASE}/schedules/preview", json={"schedule": {}})
    assert client.post("/schedules/preview", {"schedule": {}}, idempotent=True) == {"schedule": {}}
    assert client.calls[("POST", "/schedules/preview")] == 2


def test_real_refused_connection_is_temporary(sleeps: Sleeps) -> None:
    """Nothing listening on a local port gives a clean TemporaryPagerDutyError, not a requests error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PagerDutyClient(TOKEN, f"http://127.0.0.1:{port}", sleep=sleeps, max_attempts=2)
    with pytest.raises(TemporaryPagerDutyError, match="cannot connect") as info:
        client.post("/teams", {"team": {}})
    assert not isinstance(info.value, OutcomeUnknownError)  # nothing was sent: safe to resend
    assert client.total_calls == 2
    assert TOKEN not in str(info.value)


# --------------------------------------------------------------------------- error mapping


def test_404_maps_to_not_found(rsps: responses.RequestsMock, client: PagerDutyClient) -> None:
    """404 becomes NotFoundError carrying status, code, message, method, path and request id."""
    rsps.get(
        f"{BASE}/schedules/PS00404",
        status=404,
        json={"error": {"message": "Not Found", "code": 2100}},
        headers={"X-Request-Id": "req-abc-123"},
    )
    with pytest.raises(NotFoundError) as info:
        client.get("/schedules/PS00404")
    err = info.value
    assert (err.status, err.code, err.message) == (404, 2100, "Not Found")
    assert (err.method, err.path, err.request_id) == ("GET", "/schedules/PS00404", "req-abc-123")
    assert (
        str(err) == "GET /schedules/PS00404 HTTP 404 code 2100: Not Found [request id req-abc-123]"
    )
    assert len(rsps.calls) == 1


def test_400_maps_to_permanent_with_errors(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """400 becomes a non-retried PermanentPagerDutyError listing PagerDuty's errors[]."""
    rsps.delete(
        f"{BASE}/schedules/PS00001",
        status=400,
        json={
            "error": {
                "message": "Invalid Input Provided",
                "code": 2001,
                "errors": ["Schedule can't be deleted if it's being used by escalation policies"],
            }
        },
    )
    with pytest.raises(PermanentPagerDutyError) as info:
        client.delete("/schedules/PS00001")
    err = info.value
    assert not isinstance(err, NotFoundError)
    assert err.code == 2001
    assert err.errors == ["Schedule can't be deleted if it's being used by escalation policies"]
    assert "used by escalation policies" in str(err)
    assert len(rsps.calls) == 1


def test_401_names_the_setting_not_the_token(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """A rejected token says which setting to fix and never echoes the token."""
    rsps.get(
        f"{BASE}/users/me", status=401, json={"error": {"message": "Unauthorized", "code": 2006}}
    )
    with pytest.raises(PermanentPagerDutyError, match="PDORGSYNC_API_TOKEN") as info:
        client.get("/users/me")
    assert TOKEN not in str(info.value)
    assert TOKEN[-4:] not in str(info.value)
    assert len(rsps.calls) == 1


def test_error_text_echoing_token_is_scrubbed(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """Even if an error body quoted the token back, the error message does not contain it."""
    rsps.get(f"{BASE}/teams", status=403, body=f"forbidden for Token token={TOKEN}")
    with pytest.raises(PermanentPagerDutyError) as info:
        client.get("/teams")
    assert TOKEN not in str(info.value)


def test_only_pdorgsync_errors_escape(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """An unreadable success body becomes a PagerDutyError, not a JSON exception."""
    rsps.get(f"{BASE}/teams", body="<html>proxy</html>")
    with pytest.raises(PagerDutyError, match="unreadable"):
        client.get("/teams")


# --------------------------------------------------------------------------- accounting


def test_calls_counted_by_templated_route(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """Calls are counted per method and route with ids templated by position, retries included."""
    rsps.get(f"{BASE}/schedules/PABC123", json={"schedule": {}})
    rsps.get(f"{BASE}/schedules/PXYZ789", status=500)
    rsps.get(f"{BASE}/schedules/PXYZ789", json={"schedule": {}})
    rsps.put(f"{BASE}/teams/P1/users/P2", status=204)
    rsps.get(f"{BASE}/incidents/Q2W3E4R5T6Y7U8", json={"incident": {}})
    client.get("/schedules/PABC123")
    client.get("/schedules/PXYZ789")
    client.put("/teams/P1/users/P2")
    client.get("/incidents/Q2W3E4R5T6Y7U8")
    assert client.calls == {
        ("GET", "/schedules/{id}"): 3,
        ("PUT", "/teams/{id}/users/{user_id}"): 1,
        ("GET", "/incidents/{id}"): 1,
    }
    assert client.total_calls == 5
    assert client.status_counts == {200: 3, 500: 1, 204: 1}
    client.reset_counts()
    assert client.total_calls == 0
    assert not client.status_counts


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/schedules/PABC123", "/schedules/{id}"),
        ("/schedules/preview", "/schedules/preview"),
        ("/users/me", "/users/me"),
        ("/teams/P1/users/P2", "/teams/{id}/users/{user_id}"),
        (
            "/teams/PT1/escalation_policies/PE1",
            "/teams/{id}/escalation_policies/{escalation_policy_id}",
        ),
        ("/incidents/Q2W3E4R5T6Y7U8/notes", "/incidents/{id}/notes"),
        ("/schedules/PS1/overrides/Q0RUQ3GR2UYUO6", "/schedules/{id}/overrides/{override_id}"),
        ("/teams/PT1/tags", "/teams/{id}/tags"),
        ("/oncalls", "/oncalls"),
        ("/widgets/PW1/gears/PG2", "/widgets/{id}/gears/{gear_id}"),
    ],
)
def test_route_templating(path: str, route: str) -> None:
    """Ids are templated by their position in known route shapes, whatever their length."""
    assert route_of(path) == route


# --------------------------------------------------------------------------- one retry owner


def test_pdpyras_never_retries_429(rsps: responses.RequestsMock, sleeps: Sleeps) -> None:
    """With one attempt allowed, a 429 causes exactly one HTTP request (pdpyras would loop forever)."""
    rsps.get(f"{BASE}/teams", status=429, json=PD_429)
    client = PagerDutyClient(TOKEN, BASE, sleep=sleeps, max_attempts=1)
    with pytest.raises(TemporaryPagerDutyError):
        client.get("/teams")
    assert len(rsps.calls) == 1
    assert sleeps.calls == []


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 429, "json": PD_429},
        {"status": 500},
        {"status": 503},
        {"body": _refused()},
        {"body": requests.exceptions.ReadTimeout()},
    ],
    ids=["429", "500", "503", "refused", "timeout"],
)
def test_one_http_request_per_attempt(
    rsps: responses.RequestsMock, sleeps: Sleeps, failure: dict[str, Any]
) -> None:
    """Each tenacity attempt sends exactly one request: pdpyras's own retry loop is off."""
    rsps.get(f"{BASE}/teams", **failure)
    client = PagerDutyClient(TOKEN, BASE, sleep=sleeps, max_attempts=3)
    with pytest.raises(TemporaryPagerDutyError):
        client.get("/teams")
    assert len(rsps.calls) == 3
    assert client.total_calls == 3
    assert len(sleeps.calls) == 2


# --------------------------------------------------------------------------- hooks and logs


def test_limiter_acquired_before_every_attempt(
    rsps: responses.RequestsMock, sleeps: Sleeps
) -> None:
    """A shared rate limiter is asked before each attempt, retries included, with the priority."""
    acquired: list[str] = []

    class Limiter:
        def acquire(self, priority: str) -> None:
            acquired.append(priority)

    rsps.get(f"{BASE}/teams", status=429, json=PD_429)
    rsps.get(f"{BASE}/teams", json={"teams": []})
    client = PagerDutyClient(TOKEN, BASE, sleep=sleeps, limiter=Limiter(), priority="incident")
    client.get("/teams")
    assert acquired == ["incident", "incident"]


def test_logs_requests_and_retries(rsps: responses.RequestsMock, client: PagerDutyClient) -> None:
    """Each attempt logs pagerduty.request with status and request id; a retry logs pagerduty.retry."""
    rsps.get(f"{BASE}/teams/PT1", status=502, headers={"X-Request-Id": "r1"})
    rsps.get(f"{BASE}/teams/PT1", json={"team": {}}, headers={"X-Request-Id": "r2"})
    with structlog.testing.capture_logs() as events:
        client.get("/teams/PT1")
    requests_logged = [e for e in events if e["event"] == "pagerduty.request"]
    assert [(e["status"], e["request_id"], e["log_level"]) for e in requests_logged] == [
        (502, "r1", "debug"),
        (200, "r2", "debug"),
    ]
    assert all(e["method"] == "GET" and "duration_ms" in e for e in requests_logged)
    retries = [e for e in events if e["event"] == "pagerduty.retry"]
    assert len(retries) == 1
    assert retries[0]["log_level"] == "warning"
    assert TOKEN not in repr(events)


def test_retry_after_as_http_date(
    rsps: responses.RequestsMock, client: PagerDutyClient, sleeps: Sleeps
) -> None:
    """A Retry-After given as an HTTP date is honoured as the time left until then."""
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    rsps.get(f"{BASE}/teams", status=429, json=PD_429, headers={"Retry-After": when})
    rsps.get(f"{BASE}/teams", json={"teams": []})
    client.get("/teams")
    assert 30 <= sleeps.calls[0] <= 41


def test_real_read_timeout_on_post_is_outcome_unknown(sleeps: Sleeps) -> None:
    """A local server that accepts a POST and never answers: one request, OutcomeUnknownError."""
    received: list[bytes] = []
    done = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)

        def serve_one() -> None:
            conn, _ = server.accept()
            with conn:
                received.append(conn.recv(65536))
                done.wait(5)  # hold the connection open, never answer

        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.getsockname()[1]}"
        client = PagerDutyClient(TOKEN, base, timeout=0.2, sleep=sleeps, max_attempts=3)
        try:
            with pytest.raises(OutcomeUnknownError, match=r"no response within 0\.2s"):
                client.post("/incidents/Q2W3E4R5T6Y7U8/notes", {"note": {"content": "hi"}})
        finally:
            done.set()
            thread.join(5)
    assert len(received) == 1
    assert received[0].startswith(b"POST /incidents/Q2W3E4R5T6Y7U8/notes ")
    assert client.total_calls == 1
    assert sleeps.calls == []


def test_multi_status_array_answer_is_wrapped_under_the_collection_key(
    rsps: responses.RequestsMock, client: PagerDutyClient
) -> None:
    """POST /schedules/{id}/overrides answers a bare array of per-item results; it is kept whole."""
    items = [
        {"status": 201, "override": {"id": "POVR001"}},
        {"status": 400, "errors": ["Override must end after its start"]},
    ]
    rsps.post(f"{BASE}/schedules/PSCHED1/overrides", json=items, status=201)
    answer = client.post("/schedules/PSCHED1/overrides", {"overrides": []})
    assert answer == {"overrides": items}
    assert len(rsps.calls) == 1


def test_clients_from_settings_share_one_rate_budget_per_token() -> None:
    """The worker's and the reconcile loop's clients draw on one limiter, 900/min by default."""
    from pdorgsync.ratelimit import reset_registry

    reset_registry()
    settings = load_settings(api_token=TOKEN, api_url=BASE)
    first = PagerDutyClient.from_settings(settings, priority="engagement")
    second = PagerDutyClient.from_settings(settings, priority="reconcile")
    assert first.limiter is not None
    assert first.limiter is second.limiter
    assert first.limiter.per_minute == 900  # type: ignore[attr-defined]  # TokenBucketLimiter


@pytest.mark.parametrize(
    ("url", "setting", "expected"),
    [
        ("http://127.0.0.1:8081", None, 900),  # loopback alone: maybe a proxy to PagerDuty
        (BASE, 0, None),  # explicitly off
        (BASE, 600, 600),
    ],
)
def test_rate_budget_setting(url: str, setting: int | None, expected: int | None) -> None:
    """PDORGSYNC_RATE_LIMIT_PER_MINUTE sets the shared budget; 0 turns it off."""
    settings = load_settings(api_token=TOKEN, api_url=url, rate_limit_per_minute=setting)
    assert settings.effective_rate_limit() == expected


def test_proxy_named_by_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY applies (resolved once per client now, not per request): the request
    for a host that does not exist reaches the proxy, which answers it."""
    import http.server

    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b'{"priorities": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
        for name in ("NO_PROXY", "no_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        client = PagerDutyClient("token", "http://api.pagerduty.invalid", "bot@acme.test")
        assert client.get("/priorities") == {"priorities": []}
        assert client.get("/priorities") == {"priorities": []}
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["http://api.pagerduty.invalid/priorities"] * 2
