"""Every event type a policy may name in ``on`` can fire (SPEC §2; issue 10, item 10).

``validate`` accepts ``models.policy.INCIDENT_EVENT_TYPES``; ``webhook ensure``
subscribes to them; the receiver must store them for the worker (not as ignored)
and the worker must run the policy on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdorgsync.cli.webhook import ensure_subscription, needed_events
from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.loading import load_policies
from pdorgsync.models.events import HANDLED_EVENT_TYPES, parse_envelope
from pdorgsync.models.policy import INCIDENT_EVENT_TYPES
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from pdorgsync.state.sqlite import Inbox
from tests.support.engagement import (
    create_incident,
    department_ids,
    engaged_state,
    example_worker,
    org_and_policies,
    webhook_data,
)
from tests.support.webhooks import FakeClock, envelope


def test_every_type_accepted_in_on_is_stored_for_the_worker() -> None:
    """No type that validate accepts in ``on`` is stored as ignored by the receiver."""
    assert set(INCIDENT_EVENT_TYPES) <= HANDLED_EVENT_TYPES


@pytest.mark.parametrize("event_type", INCIDENT_EVENT_TYPES)
def test_policy_fires_on_each_type_it_names(
    event_type: str, applied: Sandbox, pd: PagerDutyClient, inbox: Inbox, tmp_path: Path
) -> None:
    """A policy with ``on: [<type>]`` engages when a webhook of that type arrives."""
    org, _ = org_and_policies()
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "one.yaml").write_text(
        "policies:\n"
        "  - name: only-this-type\n"
        f"    on: [{event_type}]\n"
        "    engage:\n"
        "      - {department: executive, as: subscriber}\n"
    )
    policies = load_policies(folder, org).policies
    incident = create_incident(pd, "Checkout down")
    raw = json.dumps(
        envelope(event_type, incident=webhook_data(incident), occurred_at=FakeClock()())
    )
    inbox.store(parse_envelope(raw), raw)
    worker = example_worker(inbox, pd, policies=policies, clock=FakeClock())
    assert worker.drain() == 1
    _, teams, _ = engaged_state(applied, incident["id"])
    assert teams == [department_ids(pd, org)["executive"]["team"]]
    assert [e.status for e in inbox.events()] == ["done"]


def test_webhook_ensure_subscribes_to_incident_type_changed(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """The subscription carries the type; the sandbox, like PagerDuty, accepts only documented types."""
    events = needed_events(["incident.incident_type.changed"])
    _, sub, _, _ = ensure_subscription(
        pd, "https://hooks.example.test/pd", events, {"type": "account_reference"}
    )
    assert "incident.incident_type.changed" in sub["events"]
    with pytest.raises(PermanentPagerDutyError, match="unknown event type"):
        ensure_subscription(
            pd,
            "https://hooks.example.test/other",
            ["incident.type_changed"],
            {"type": "account_reference"},
        )
