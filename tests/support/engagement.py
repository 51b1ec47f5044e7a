"""Helpers for worker / end-to-end / crash tests: an account with the departments applied.

The departments' teams and escalation policies are created through the API with
the ownership marker (what ``pdorgsync apply`` leaves behind), so these tests do
not depend on the reconciler.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from pdorgsync.loading import load_org, load_policies
from pdorgsync.models.events import webhook_data as webhook_data  # re-exported for the tests
from pdorgsync.models.org import Org, managed_description
from pdorgsync.models.policy import Policy
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from pdorgsync.state.base import StateStore
from pdorgsync.worker import Worker
from tests.support.paths import BOT_EMAIL as BOT_EMAIL  # re-exported for the tests
from tests.support.paths import ORG_FILE as ORG_FILE
from tests.support.paths import POLICY_DIR as POLICY_DIR
from tests.support.paths import SEED_FILE

# Used only until examples/sandbox-account.json exists: the slice of the example
# account these tests touch.
_FALLBACK_SEED: dict[str, Any] = {
    "users": [
        {"name": "pdorgsync bot", "email": BOT_EMAIL},
        *(
            {"name": email.split("@")[0].replace(".", " ").title(), "email": email}
            for email in (
                "alex.rivera@acme.test",
                "sam.patel@acme.test",
                "maya.lopez@acme.test",
                "priya.shah@acme.test",
                "erin.walsh@acme.test",
                "sofia.rossi@acme.test",
                "hana.sato@acme.test",
                "fiona.grant@acme.test",
            )
        ),
    ],
    "escalation_policies": [
        {
            "name": "Platform Escalation",
            "rules": [
                {"escalation_delay_in_minutes": 30, "targets": ["user:alex.rivera@acme.test"]}
            ],
        }
    ],
    "services": [
        {"name": "Checkout API", "escalation_policy": "Platform Escalation"},
        {"name": "Payroll Sync", "escalation_policy": "Platform Escalation"},
    ],
    "priorities": [{"name": f"P{n}"} for n in range(1, 6)],
}


def seed() -> dict[str, Any]:
    if SEED_FILE.exists():
        from pdorgsync.sandbox import load_seed

        return load_seed(SEED_FILE)
    fallback: dict[str, Any] = json.loads(json.dumps(_FALLBACK_SEED))
    return fallback


def applied_seed(keys: list[str] | None = None) -> dict[str, Any]:
    """The example account with each department's team and escalation policy already
    applied (marked as ours), as ``pdorgsync apply`` would leave it. No API calls."""
    data = seed()
    org, _ = org_and_policies()
    teams = {t["name"] for t in data.setdefault("teams", [])}
    eps = {e["name"] for e in data.setdefault("escalation_policies", [])}
    for dept in org.departments:
        if keys is not None and dept.key not in keys:
            continue
        description = managed_description(dept.name, org.marker(dept.key))
        if dept.team_name not in teams:
            data["teams"].append({"name": dept.team_name, "description": description})
        if (
            dept.escalation_policy is not None
            and dept.point_of_contact
            and dept.escalation_policy_name not in eps
        ):
            data["escalation_policies"].append(
                {
                    "name": dept.escalation_policy_name,
                    "description": description,
                    "team": dept.team_name,
                    "rules": [{"targets": [f"user:{dept.point_of_contact}"]}],
                }
            )
    return data


def department_ids(pd: PagerDutyClient, org: Org) -> dict[str, dict[str, str]]:
    """``{department: {"team": id, "escalation_policy": id}}`` as found in the account."""
    teams = {t["name"]: str(t["id"]) for t in pd.list_all("/teams")}
    eps = {e["name"]: str(e["id"]) for e in pd.list_all("/escalation_policies")}
    ids: dict[str, dict[str, str]] = {}
    for dept in org.departments:
        entry = {}
        if dept.team_name in teams:
            entry["team"] = teams[dept.team_name]
        if dept.escalation_policy_name in eps:
            entry["escalation_policy"] = eps[dept.escalation_policy_name]
        ids[dept.key] = entry
    return ids


def org_and_policies() -> tuple[Org, list[Policy]]:
    org = load_org(ORG_FILE).org
    return org, load_policies(POLICY_DIR, org).policies


def client_for(url: str, *, max_attempts: int = 1) -> PagerDutyClient:
    return PagerDutyClient(
        "sandbox", url, BOT_EMAIL, max_attempts=max_attempts, sleep=lambda _s: None
    )


def user_id(pd: PagerDutyClient, email: str) -> str:
    [user] = [u for u in pd.list_all("/users", {"query": email}) if u["email"] == email]
    return str(user["id"])


def provision(
    pd: PagerDutyClient, org: Org, keys: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """Create each department's team and escalation policy, marked as ours; returns ids."""
    ids: dict[str, dict[str, str]] = {}
    for dept in org.departments:
        if keys is not None and dept.key not in keys:
            continue
        marker = org.marker(dept.key)
        team = (
            _existing(pd, "/teams", dept.team_name)
            or pd.post(
                "/teams",
                {
                    "team": {
                        "type": "team",
                        "name": dept.team_name,
                        "description": managed_description(dept.name, marker),
                    }
                },
            )["team"]
        )
        entry = {"team": str(team["id"])}
        existing_ep = _existing(pd, "/escalation_policies", dept.escalation_policy_name)
        if existing_ep is not None:
            entry["escalation_policy"] = str(existing_ep["id"])
        elif dept.escalation_policy is not None and dept.point_of_contact:
            ep = pd.post(
                "/escalation_policies",
                {
                    "escalation_policy": {
                        "type": "escalation_policy",
                        "name": dept.escalation_policy_name,
                        "description": managed_description(dept.name, marker),
                        "escalation_rules": [
                            {
                                "escalation_delay_in_minutes": 30,
                                "targets": [
                                    {
                                        "id": user_id(pd, dept.point_of_contact),
                                        "type": "user_reference",
                                    }
                                ],
                            }
                        ],
                        "teams": [{"id": team["id"], "type": "team_reference"}],
                    }
                },
            )["escalation_policy"]
            entry["escalation_policy"] = str(ep["id"])
        ids[dept.key] = entry
    return ids


def _existing(pd: PagerDutyClient, path: str, name: str) -> dict[str, Any] | None:
    for item in pd.list_all(path, {"query": name}):
        if item.get("name") == name:
            return item
    return None


def priority_id(pd: PagerDutyClient, name: str) -> str:
    [found] = [p for p in pd.list_all("/priorities") if p["name"] == name]
    return str(found["id"])


def service_id(pd: PagerDutyClient, name: str) -> str:
    [found] = [s for s in pd.list_all("/services", {"query": name}) if s["name"] == name]
    return str(found["id"])


def create_incident(
    pd: PagerDutyClient, title: str, service: str = "Checkout API", priority: str | None = "P1"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "incident",
        "title": title,
        "service": {"id": service_id(pd, service), "type": "service_reference"},
    }
    if priority is not None:
        body["priority"] = {"id": priority_id(pd, priority), "type": "priority_reference"}
    incident: dict[str, Any] = pd.post("/incidents", {"incident": body})["incident"]
    return incident


def set_priority(pd: PagerDutyClient, incident_id: str, priority: str) -> dict[str, Any]:
    body = {
        "incident": {
            "type": "incident_reference",
            "priority": {"id": priority_id(pd, priority), "type": "priority_reference"},
        }
    }
    incident: dict[str, Any] = pd.put(f"/incidents/{incident_id}", body)["incident"]
    return incident


def sandbox_incident(sandbox: Sandbox, incident_id: str) -> dict[str, Any]:
    incident: dict[str, Any] = sandbox.state.incidents[incident_id]
    return incident


def engaged_state(sandbox: Sandbox, incident_id: str) -> tuple[list[str], list[str], int]:
    """(escalation policy ids asked as responders, team ids subscribed, note count)."""
    incident = sandbox_incident(sandbox, incident_id)
    eps = [
        t["responder_request_target"]["id"]
        for r in incident["responder_requests"]
        for t in r["responder_request_targets"]
    ]
    teams = [str(s.get("subscriber_id")) for s in sandbox.state.subscribers.get(incident_id, [])]
    return sorted(eps), sorted(teams), len(sandbox.state.notes.get(incident_id, []))


def iso(dt: datetime) -> str:
    return dt.isoformat()


PACK_P1_TAGS = sorted(
    f"[pdorgsync:{key}]"
    for key in (
        "support/responder",
        "executive/subscriber",
        "finance/subscriber",
        "sales/subscriber",
    )
)


def note_tags(sandbox: Sandbox, incident_id: str) -> list[str]:
    """Every engagement tag in the incident's notes, sorted, repeats kept (each must be once)."""
    import re

    return sorted(
        tag
        for note in sandbox.state.notes.get(incident_id, [])
        for tag in re.findall(r"\[pdorgsync:[^\]]+\]", str(note.get("content", "")))
    )


def serving_sandbox(seed: dict[str, Any], **options: Any) -> Iterator[Sandbox]:
    """A sandbox of its own on ``seed`` for one fixture (``yield from`` it): started,
    stopped at teardown, and the test fails there if any of its traffic broke
    PagerDuty's OpenAPI description."""
    sandbox = Sandbox(seed, **options)
    sandbox.start()
    yield sandbox
    sandbox.stop()
    assert sandbox.validation_errors == []


def example_worker(
    inbox: StateStore,
    client: Any,
    *,
    policies: Sequence[Policy] | None = None,
    worker_class: type[Worker] = Worker,
    **options: Any,
) -> Worker:
    """A worker on the example org (and its policies unless ``policies`` is given), From
    the bot user, with the catch-up poll off unless ``poll_interval`` says otherwise;
    ``options`` are the other Worker keywords (``clock``, ``max_attempts``, ...)."""
    org, example_policies = org_and_policies()
    options.setdefault("poll_interval", None)
    return worker_class(
        inbox,
        client,
        org,
        example_policies if policies is None else policies,
        from_email=BOT_EMAIL,
        **options,
    )
