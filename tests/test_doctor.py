"""`pdorgsync doctor` over HTTP on the sandbox (issue 10, item 12; SPEC §3).

One line per check; exit 0 all good, 3 something to fix, 1 error. Read-only.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pdorgsync.cli import main
from pdorgsync.cli.webhook import ensure_subscription, needed_events
from pdorgsync.loading import load_org, load_policies
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from tests.support.cli import isolated_cli

ROOT = Path(__file__).resolve().parents[1]
BOT = "pdorgsync-bot@acme.test"


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, **extra: str) -> None:
    isolated_cli(monkeypatch, tmp_path, api_url=url, from_email=BOT)
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    shutil.copy(ROOT / "examples" / "org.yaml", tmp_path / "org.yaml")
    shutil.copytree(ROOT / "policies", tmp_path / "policies")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Path:
    assert sandbox.base_url is not None
    _env(monkeypatch, tmp_path, sandbox.base_url)
    return tmp_path


def doctor() -> Result:
    return CliRunner().invoke(main, ["doctor"])


def lines(result: Result) -> dict[str, list[str]]:
    """``{check name: [status + message, ...]}`` from doctor's output."""
    out: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, message = rest.strip().partition(": ")
        out.setdefault(name, []).append(f"{status} {message}")
    return out


def _subscribe(sandbox: Sandbox, workdir: Path) -> dict[str, Any]:
    org = load_org(workdir / "org.yaml").org
    policies = load_policies(workdir / "policies", org).policies
    client = PagerDutyClient(sandbox.token, str(sandbox.base_url), BOT)
    events = needed_events([t for p in policies for t in p.on])
    _, sub, _, _ = ensure_subscription(
        client,
        "https://pdorgsync.example.test/webhooks/pagerduty",
        events,
        {"type": "account_reference"},
    )
    return sub


def test_all_good_exits_0_one_line_per_check(sandbox: Sandbox, workdir: Path) -> None:
    """Account key, FROM_EMAIL a user, abilities present, subscription enabled: exit 0."""
    _subscribe(sandbox, workdir)
    before = len(sandbox.requests)
    result = doctor()
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert found["token"] == [
        "OK works; an account-level key (acts for the whole account; writes that need a "
        "user name PDORGSYNC_FROM_EMAIL)"
    ]
    assert found["from_email"][0].startswith(f"OK {BOT} is PagerDuty user")
    assert found["abilities"][0].startswith(
        "OK the account has what the files need (teams, coordinated_responding)"
    )
    assert found["webhook"][0].startswith("OK subscription ")
    assert found["rate_limit"][0].startswith("INFO PagerDuty sent no rate-limit headers")
    assert [r for r in sandbox.requests[before:] if r[0] != "GET"] == []  # read-only


def test_what_to_fix_is_named_and_exits_3(sandbox: Sandbox, workdir: Path) -> None:
    """No subscription, FROM_EMAIL unknown, abilities missing: a FIX line each, exit 3."""
    sandbox.state.abilities = ["urgencies"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PDORGSYNC_FROM_EMAIL", "nobody@acme.test")
        result = doctor()
    assert result.exit_code == 3, result.output
    found = lines(result)
    assert found["from_email"] == [
        "FIX no PagerDuty user has the email nobody@acme.test (PDORGSYNC_FROM_EMAIL)"
    ]
    fixes = [line for line in found["abilities"] if line.startswith("FIX")]
    assert len(fixes) == 2
    assert "'teams' ability" in fixes[0]
    assert "'coordinated_responding' ability" in fixes[1]
    assert found["webhook"][0].startswith("FIX no webhook subscription for `pdorgsync serve`")


def test_disabled_subscription_is_a_fix(sandbox: Sandbox, workdir: Path) -> None:
    """PagerDuty disabled the subscription (3 dropped deliveries): doctor says so."""
    sub = _subscribe(sandbox, workdir)
    sandbox.state.webhook_subscriptions[sub["id"]]["active"] = False
    result = doctor()
    assert result.exit_code == 3
    assert "is disabled" in lines(result)["webhook"][0]


def test_rejected_token_is_the_only_line(sandbox: Sandbox, workdir: Path) -> None:
    """A token PagerDuty rejects: one FIX line (nothing else can be checked), exit 3."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PDORGSYNC_API_TOKEN", "not-the-token")
        result = doctor()
    assert result.exit_code == 3
    assert result.stdout.splitlines() == [
        "FIX  token: PagerDuty rejects the token (401): check PDORGSYNC_API_TOKEN"
    ]
    assert "not-the-token" not in result.output


@pytest.fixture
def limited(account_seed: dict[str, Any]) -> Iterator[Sandbox]:
    box = Sandbox(
        json.loads(json.dumps(account_seed)),
        rate_limit_per_minute=200,
        user_tokens={"u+sam-token": "sam.patel@acme.test"},
    )
    box.start()
    yield box
    box.stop()
    assert box.validation_errors == []


def test_user_key_and_rate_headroom(
    limited: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user-level key is named with its user; ratelimit-* headers give the headroom."""
    assert limited.base_url is not None
    _env(monkeypatch, tmp_path, limited.base_url, PDORGSYNC_API_TOKEN="u+sam-token")
    result = doctor()
    found = lines(result)
    assert found["token"][0].startswith("OK works; a user-level key acting as sam.patel@acme.test")
    assert found["rate_limit"][0].startswith("OK ")
    assert "of 200 requests left" in found["rate_limit"][0]
    client = PagerDutyClient("u+sam-token", limited.base_url, BOT, max_attempts=1)
    for _ in range(185):  # another client spends most of the token's budget
        client.get("/abilities")
    found = lines(doctor())
    assert found["rate_limit"][0].startswith("FIX ")
    assert "little headroom" in found["rate_limit"][0]


def test_unreachable_api_is_an_error_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listening: one error line, exit 1 (an error, not a check)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _env(monkeypatch, tmp_path, f"http://127.0.0.1:{port}")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.output
