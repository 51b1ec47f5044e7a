"""Shared fixtures: a PagerDuty sandbox seeded with Acme's account, and a client on it.

One sandbox server runs per test session (starting uvicorn costs far more than a
test); every test gets it reset to the seed, so tests never see each other's
writes. A test FAILS at teardown if any request it made, or any response the
sandbox sent, broke PagerDuty's official OpenAPI description.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox, load_seed
from pdorgsync.state.sqlite import Inbox
from tests.support.engagement import applied_seed
from tests.support.paths import BOT_EMAIL, EXAMPLES


@pytest.fixture(scope="session")
def account_seed() -> dict[str, Any]:
    """examples/sandbox-account.json, parsed once."""
    return load_seed(EXAMPLES / "sandbox-account.json")


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[Sandbox]:
    server = Sandbox()
    server.start()
    yield server
    server.stop()


def _checked(server: Sandbox, seed: dict[str, Any]) -> Iterator[Sandbox]:
    server.reset(json.loads(json.dumps(seed)))  # deep copy: the seed is shared
    yield server
    errors = list(server.validation_errors)
    server.reset(None)
    assert errors == [], (
        "requests/responses that PagerDuty's OpenAPI description refuses:\n"
        + "\n".join(f"  - {e}" for e in errors)
    )


@pytest.fixture
def sandbox(_sandbox_server: Sandbox, account_seed: dict[str, Any]) -> Iterator[Sandbox]:
    """The running sandbox, reset to examples/sandbox-account.json; fails on invalid traffic."""
    yield from _checked(_sandbox_server, account_seed)


@pytest.fixture
def empty_sandbox(_sandbox_server: Sandbox, account_seed: dict[str, Any]) -> Iterator[Sandbox]:
    """The running sandbox holding only the seed's users (and priorities/abilities)."""
    users_only: dict[str, Any] = {
        key: account_seed[key] for key in ("users", "priorities") if key in account_seed
    }
    yield from _checked(_sandbox_server, users_only)


@pytest.fixture
def sandbox_url(sandbox: Sandbox) -> str:
    assert sandbox.base_url is not None
    return sandbox.base_url


@pytest.fixture
def pd(sandbox: Sandbox) -> PagerDutyClient:
    """A PagerDutyClient on the seeded sandbox, From the bot user; retries never really sleep."""
    assert sandbox.base_url is not None
    return PagerDutyClient(sandbox.token, sandbox.base_url, BOT_EMAIL, sleep=lambda _s: None)


@pytest.fixture
def empty_pd(empty_sandbox: Sandbox) -> PagerDutyClient:
    """A PagerDutyClient on the users-only sandbox."""
    assert empty_sandbox.base_url is not None
    return PagerDutyClient(
        empty_sandbox.token, empty_sandbox.base_url, BOT_EMAIL, sleep=lambda _s: None
    )


@pytest.fixture
def applied(sandbox: Sandbox) -> Sandbox:
    """The seeded sandbox with each department's team and escalation policy already
    there, marked as ours (what ``pdorgsync apply`` leaves behind)."""
    sandbox.reset(applied_seed())
    return sandbox


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    """A SQLite inbox in the test's folder, on the real clock (modules needing a fake
    clock define their own)."""
    store = Inbox(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture(scope="session")
def _examples_server() -> Iterator[Sandbox]:
    server = Sandbox(examples=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def examples_sandbox(_examples_server: Sandbox) -> Iterator[Sandbox]:
    """A sandbox answering every request with PagerDuty's published response example
    (``Sandbox(examples=True)``); fails if a request broke PagerDuty's description."""
    yield from _checked(_examples_server, {})


# -- PostgreSQL (issue 12): a throw-away cluster per session --------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A running PostgreSQL server (tests/support/pgcluster.py); skipped without one, except in CI."""
    from tests.support.pgcluster import PgCluster, find_bin_dir

    if find_bin_dir() is None:
        reason = "PostgreSQL not installed (apt-get install postgresql; .ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    cluster = PgCluster().init().start()
    yield cluster
    cluster.remove()


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    if not pg_cluster.running:  # a test that stopped it failed before restarting it
        pg_cluster.start()
    return str(pg_cluster.new_database())
