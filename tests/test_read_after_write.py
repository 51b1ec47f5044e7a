"""Read-after-write lag (issue 10, item 6): right after a create, PagerDuty can answer 404
for the new object and leave it out of lists for a short while
(terraform-provider-pagerduty #273, PR #274, #1069).

The sandbox's ``lag`` fault emulates it on its own clock; the client's injected
sleep advances that clock, so retries and waits cost no real time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from pdorgsync.core.planning import plan
from pdorgsync.errors import NotFoundError
from pdorgsync.loading import load_org
from pdorgsync.models.org import Org
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox
from tests.support.engagement import serving_sandbox
from tests.support.paths import BOT_EMAIL, EXAMPLES

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    """The sandbox's clock; the client's ``sleep`` moves it forward."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box(account_seed: dict[str, Any], clock: Clock) -> Iterator[Sandbox]:
    users_only = {k: account_seed[k] for k in ("users", "priorities") if k in account_seed}
    yield from serving_sandbox(json.loads(json.dumps(users_only)), clock=clock)


@pytest.fixture
def client(box: Sandbox, clock: Clock) -> PagerDutyClient:
    assert box.base_url is not None
    return PagerDutyClient(box.token, box.base_url, BOT_EMAIL, sleep=clock.sleep, max_attempts=6)


@pytest.fixture(scope="module")
def org() -> Org:
    return load_org(EXAMPLES / "org.yaml").org


def _team(name: str) -> dict[str, Any]:
    return {"team": {"type": "team", "name": name, "description": "lag test"}}


def test_sandbox_hides_a_fresh_object_for_the_lag(box: Sandbox, clock: Clock) -> None:
    """Drawn ``lag``: the new team answers 404 and is missing from lists, until the lag is over."""
    plain = PagerDutyClient(box.token, str(box.base_url), BOT_EMAIL, max_attempts=1)
    box.fault_next("lag", method="POST")
    team = plain.post("/teams", _team("Fresh"))["team"]
    other = PagerDutyClient(box.token, str(box.base_url), BOT_EMAIL, max_attempts=1)
    with pytest.raises(NotFoundError):
        other.get(f"/teams/{team['id']}")
    assert team["id"] not in {t["id"] for t in other.list_all("/teams")}
    clock.sleep(box.runtime.faults.lag_seconds)
    assert other.get(f"/teams/{team['id']}")["team"]["name"] == "Fresh"
    assert team["id"] in {t["id"] for t in other.list_all("/teams")}


def test_client_retries_a_404_on_what_it_created_only(
    box: Sandbox, client: PagerDutyClient
) -> None:
    """A 404 naming an object this client created is retried; any other 404 fails at once."""
    box.fault_next("lag", method="POST")
    team = client.post("/teams", _team("Fresh"))["team"]
    assert client.get(f"/teams/{team['id']}")["team"]["id"] == team["id"]
    assert client.calls[("GET", "/teams/{id}")] > 1  # it waited out the lag
    client.reset_counts()
    with pytest.raises(NotFoundError):
        client.get("/teams/PNOSUCH")
    assert client.calls[("GET", "/teams/{id}")] == 1


def test_apply_with_every_create_lagging_succeeds_without_duplicates(
    box: Sandbox, client: PagerDutyClient, org: Org
) -> None:
    """Memberships, policies and services that name a fresh object are not refused as missing."""
    first = plan(org, observe(client, org), now=START)
    posts = sum(1 for c in first.changes for r in c.requests if r.method == "POST")
    box.fault_next("lag", posts, method="POST")
    report = apply(client, first)
    assert [r.error for r in report.results if r.outcome != "applied"] == []
    assert box.runtime.faults.drawn.count("lag") == posts
    names = Counter(t["name"] for t in client.list_all("/teams"))
    assert [n for n, count in names.items() if count > 1] == []


def test_lookup_after_an_ambiguous_post_waits_for_lists_to_settle(
    box: Sandbox, client: PagerDutyClient, org: Org
) -> None:
    """A create whose answer was lost and whose object still lags is found, never sent twice."""
    first = plan(org, observe(client, org), now=START)
    created = first.changes[0]
    assert (created.action, created.kind) == ("create", "team")
    box.fault_next("lag+reset_after_apply", method="POST")
    with capture_logs() as logs:
        report = apply(client, first)
    assert report.results[0].outcome == "applied"
    same = [t for t in client.list_all("/teams") if t["name"] == created.name]
    assert len(same) == 1
    assert report.results[0].id == same[0]["id"]
    assert any(e["event"] == "reconcile.lookup_waiting" for e in logs)
