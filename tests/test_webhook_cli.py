"""`pdorgsync webhook ensure` against the sandbox: create once, then update in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pdorgsync.cli import main
from pdorgsync.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
URL = "https://pdorgsync.acme.test/webhooks/pagerduty"


@pytest.fixture
def env(sandbox: Sandbox) -> dict[str, str]:
    return {
        "PDORGSYNC_API_URL": str(sandbox.base_url),
        "PDORGSYNC_FROM_EMAIL": "pdorgsync-bot@acme.test",
        "PDORGSYNC_ORG_FILE": str(ROOT / "examples" / "org.yaml"),
        "PDORGSYNC_POLICY_DIR": str(ROOT / "policies"),
    }


def test_ensure_creates_once_and_prints_the_secret_once(
    sandbox: Sandbox, env: dict[str, str]
) -> None:
    """First run creates the subscription and shows its secret; the second changes nothing."""
    runner = CliRunner()
    first = runner.invoke(main, ["webhook", "ensure", "--url", URL], env=env)
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    assert "PDORGSYNC_WEBHOOK_SECRETS=" in first.output
    [sub] = sandbox.state.webhook_subscriptions.values()
    assert "incident.triggered" in sub["events"]
    assert "incident.priority_updated" in sub["events"]
    assert sub["filter"]["type"] == "account_reference"

    second = runner.invoke(main, ["webhook", "ensure", "--url", URL], env=env)
    assert second.exit_code == 0, second.output
    assert "unchanged" in second.output
    assert "PDORGSYNC_WEBHOOK_SECRETS=" not in second.output
    assert len(sandbox.state.webhook_subscriptions) == 1


def test_ensure_scoped_to_a_service(sandbox: Sandbox, env: dict[str, str]) -> None:
    """--filter service:<name> scopes the subscription to that service's id."""
    result = CliRunner().invoke(
        main, ["webhook", "ensure", "--url", URL, "--filter", "service:Checkout API"], env=env
    )
    assert result.exit_code == 0, result.output
    [sub] = sandbox.state.webhook_subscriptions.values()
    assert sub["filter"]["type"] == "service_reference"
    [service] = [s for s in sandbox.state.services.values() if s["name"] == "Checkout API"]
    assert sub["filter"]["id"] == service["id"]


def test_another_filter_updates_the_same_subscription(
    sandbox: Sandbox, env: dict[str, str]
) -> None:
    """Re-scoping (account → team:support → service) keeps one subscription and its secret."""
    runner = CliRunner()
    first = runner.invoke(main, ["webhook", "ensure", "--url", URL], env=env)
    assert first.exit_code == 0, first.output
    [sub] = sandbox.state.webhook_subscriptions.values()
    secret = sub["secret"]

    scoped = runner.invoke(
        main, ["webhook", "ensure", "--url", URL, "--filter", "team:support"], env=env
    )
    assert scoped.exit_code == 0, scoped.output
    assert "updated" in scoped.output
    assert "PDORGSYNC_WEBHOOK_SECRETS=" not in scoped.output
    [sub] = sandbox.state.webhook_subscriptions.values()
    [team] = [t for t in sandbox.state.teams.values() if t["name"] == "Customer Support"]
    assert sub["filter"] == {"type": "team_reference", "id": team["id"]}
    assert sub["secret"] == secret

    sub["events"] = ["incident.triggered"]  # someone narrowed it in the PagerDuty UI
    again = runner.invoke(
        main, ["webhook", "ensure", "--url", URL, "--filter", "service:Checkout API"], env=env
    )
    assert again.exit_code == 0, again.output
    [sub] = sandbox.state.webhook_subscriptions.values()
    assert sub["filter"]["type"] == "service_reference"
    assert {"incident.triggered", "incident.priority_updated", "incident.resolved"} <= set(
        sub["events"]
    )
    assert sub["secret"] == secret


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://example.com/hook"], "HTTPS only"),
        (["--url", URL, "--filter", "team:nope"], "no department 'nope'"),
        (["--url", URL, "--filter", "service:No Such Service"], "no PagerDuty service"),
        (["--url", URL, "--filter", "region:eu"], "expected account"),
    ],
)
def test_ensure_refuses_bad_input_clearly(
    sandbox: Sandbox, env: dict[str, str], args: list[str], message: str
) -> None:
    """Bad URLs and filters are one clear error line, exit 1, and create nothing."""
    result = CliRunner().invoke(main, ["webhook", "ensure", *args], env=env)
    assert result.exit_code == 1
    assert message in result.output
    assert sandbox.state.webhook_subscriptions == {}


def test_a_second_subscription_for_the_url_is_reported(
    sandbox: Sandbox, env: dict[str, str]
) -> None:
    """Two subscriptions delivering to one URL (every event twice) are named, one is kept."""
    from pdorgsync.pagerduty import PagerDutyClient

    runner = CliRunner()
    assert runner.invoke(main, ["webhook", "ensure", "--url", URL], env=env).exit_code == 0
    pd = PagerDutyClient(sandbox.token, str(sandbox.base_url), "pdorgsync-bot@acme.test")
    extra = pd.post(
        "/webhook_subscriptions",
        {
            "webhook_subscription": {
                "type": "webhook_subscription",
                "events": ["incident.triggered"],
                "filter": {"type": "account_reference"},
                "delivery_method": {"type": "http_delivery_method", "url": URL},
            }
        },
    )["webhook_subscription"]
    result = runner.invoke(main, ["webhook", "ensure", "--url", URL], env=env)
    assert result.exit_code == 0, result.output
    assert f"warning: subscription(s) {extra['id']} also deliver to {URL}" in result.stderr
    assert len(sandbox.state.webhook_subscriptions) == 2  # deleting is left to a human
