"""Responder requests and blocked deletes as PagerDuty really answers them (issue 10, item 11).

* ``escalation_policy_requests`` of an incident's responders holds escalation policy
  *names* (PagerDuty's OpenAPI description, ``IncidentsRespondersReference``);
* ``GET /incidents`` without ``date_range=all`` lists only the last 30 days, so an
  older open incident blocking a delete must still be found.
"""

from __future__ import annotations

from datetime import timedelta

from pdorgsync.core.policies import Engagement
from pdorgsync.engagements import Engager
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from pdorgsync.state.sqlite import Inbox
from tests.support.engagement import (
    BOT_EMAIL,
    create_incident,
    department_ids,
    org_and_policies,
    sandbox_incident,
    user_id,
)


def _request_via_ui(pd: PagerDutyClient, incident_id: str, ep_id: str) -> None:
    pd.post(
        f"/incidents/{incident_id}/responder_requests",
        {
            "requester_id": user_id(pd, BOT_EMAIL),
            "message": "join please",
            "responder_request_targets": [
                {"responder_request_target": {"id": ep_id, "type": "escalation_policy_reference"}}
            ],
        },
    )


def test_sandbox_lists_escalation_policy_names_in_responders(
    applied: Sandbox, pd: PagerDutyClient
) -> None:
    """A responder requested through an EP carries the EP's name, as PagerDuty documents."""
    org, _ = org_and_policies()
    ep_id = department_ids(pd, org)["support"]["escalation_policy"]
    incident = create_incident(pd, "Checkout down")
    _request_via_ui(pd, incident["id"], ep_id)
    responders = pd.get(f"/incidents/{incident['id']}")["incident"]["incidents_responders"]
    requested = {name for r in responders for name in r.get("escalation_policy_requests", [])}
    support = org.department("support")
    assert support is not None
    assert requested == {support.escalation_policy_name}
    assert ep_id not in requested


def test_responder_request_made_elsewhere_is_not_sent_again(
    applied: Sandbox, pd: PagerDutyClient, inbox: Inbox
) -> None:
    """A request someone made in the web UI (seen by EP name on the responders) is not repeated."""
    org, _ = org_and_policies()
    ep_id = department_ids(pd, org)["support"]["escalation_policy"]
    incident = create_incident(pd, "Checkout down")
    _request_via_ui(pd, incident["id"], ep_id)
    # The incident shows the responders but not the request object that made them
    # (the UI's request, long ago or by another integration): only the names tell.
    sandbox_incident(applied, incident["id"])["responder_requests"].clear()
    engager = Engager(inbox=inbox, client=pd, org=org, from_email=BOT_EMAIL, incident_notes=False)
    outcome = engager.engage(
        incident["id"],
        Engagement(department="support", as_="responder", policy="p", message="help"),
        event_id=None,
    )
    assert outcome.outcome == "already_engaged"
    assert sandbox_incident(applied, incident["id"])["responder_requests"] == []


def test_refused_delete_names_an_open_incident_older_than_30_days(
    sandbox: Sandbox, pd: PagerDutyClient
) -> None:
    """The open incident that blocks a delete is named even when it is months old."""
    from pdorgsync.loading import load_org
    from pdorgsync.observe import observe
    from pdorgsync.reconcile import apply
    from tests.support.paths import EXAMPLES
    from tests.support.reconcile import RefuseNth, edited, now, plan_for

    org = load_org(EXAMPLES / "org.yaml").org
    apply(pd, plan_for(pd, org))
    incident = create_incident(pd, "Brand at risk", service="Brand & PR", priority=None)
    stored = sandbox.state.incidents[incident["id"]]
    stored["created_at"] -= timedelta(days=90)
    without = edited(
        org,
        lambda d: d.update(departments=[x for x in d["departments"] if x["key"] != "marketing"]),
    )
    from pdorgsync.core.planning import plan

    p = plan(without, observe(pd, without), now=now(), prune=True)
    ep_delete = [i for i, c in enumerate(p.changes) if c.kind == "escalation_policy"]
    report = apply(RefuseNth(pd, sandbox, ep_delete[0] + 1), p)
    [failed] = [r for r in report.results if r.outcome == "failed"]
    assert incident["id"] in (failed.error or "")
