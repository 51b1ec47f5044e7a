"""Pure policy evaluation: every condition, dedupe, skips, recent-incident state."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdorgsync.core.policies import (
    Evaluation,
    IncidentDataError,
    IncidentFacts,
    RecentIncidents,
    evaluate,
    managed_service_labels,
    render_message,
    service_labels,
)
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)

_EP = {"levels": [{"targets": ["schedule"]}]}
_LAYER = {
    "name": "Primary",
    "rotation": "weekly",
    "start": "2026-01-05T09:00:00",
    "users": ["a@acme.test"],
}

ORG = Org.model_validate(
    {
        "version": 1,
        "org": "acme",
        "service_labels": {"Checkout API": ["customer-facing", "billing"]},
        "departments": [
            {
                "key": "support",
                "name": "Customer Support",
                "schedule": {"layers": [_LAYER]},
                "escalation_policy": _EP,
                "service": {"labels": ["customer-facing"]},
            },
            {"key": "executive", "name": "Executive", "escalation_policy": _EP},
            {"key": "marketing", "name": "Marketing"},  # no escalation policy
        ],
    }
)


def facts(**overrides: Any) -> IncidentFacts:
    base: dict[str, Any] = {
        "id": "Q1",
        "number": 42,
        "title": "Checkout down",
        "html_url": "https://acme.pagerduty.com/incidents/Q1",
        "status": "triggered",
        "priority": "P1",
        "urgency": "high",
        "service_id": "PSVC1",
        "service_name": "Checkout API",
        "created_at": NOW,
    }
    base.update(overrides)
    return IncidentFacts(**base)


def policy(name: str = "p", **data: Any) -> Policy:
    data.setdefault("engage", [{"department": "support", "as": "responder"}])
    return Policy.model_validate({"name": name, **data})


def run(
    p: list[Policy], f: IncidentFacts | None = None, event: str = "incident.triggered"
) -> Evaluation:
    return evaluate(event, f or facts(), ORG, p, RecentIncidents(), NOW, {})


@pytest.mark.parametrize(
    ("when", "incident", "reason"),
    [
        ({"priorities": ["P1", "P2"]}, {"priority": "P3"}, "priority P3 is not one of P1, P2"),
        (
            {"priorities": ["P1"]},
            {"priority": None},
            "incident has no priority (wanted one of P1)",
        ),
        ({"urgencies": ["high"]}, {"urgency": "low"}, "urgency low is not one of high"),
        (
            {"services": ["Payroll Sync"]},
            {},
            "service 'Checkout API' is not one of 'Payroll Sync'",
        ),
        (
            {"labels": ["employee-data"]},
            {},
            "'Checkout API' has labels billing, customer-facing, none of employee-data",
        ),
        (
            {"labels": ["billing"]},
            {"service_name": "Other"},
            "'Other' has no labels, none of billing",
        ),
        (
            {"title_regex": "(?i)breach"},
            {},
            "title 'Checkout down' does not match /(?i)breach/",
        ),
        (
            {"min_impacted_services": 2},
            {},
            "1 impacted service in the last 60 minutes, fewer than 2",
        ),
    ],
)
def test_failing_condition_is_explained(
    when: dict[str, Any], incident: dict[str, Any], reason: str
) -> None:
    """A policy that does not match says which condition failed, in words."""
    evaluation = run([policy(when=when)], facts(**incident))
    assert evaluation.engagements == []
    assert evaluation.results[0].matched is False
    assert evaluation.results[0].reason == reason


@pytest.mark.parametrize(
    ("when", "incident"),
    [
        ({"priorities": ["P1", "P2"]}, {"priority": "P2"}),
        ({"priorities": ["p1"]}, {"priority": "P1"}),
        ({"urgencies": ["low", "high"]}, {"urgency": "high"}),
        ({"services": ["Checkout API"]}, {}),
        ({"labels": ["billing"]}, {}),
        ({"title_regex": "(?i)DOWN|outage"}, {}),
        ({"min_impacted_services": 1}, {}),
        ({}, {}),
    ],
)
def test_holding_condition_engages(when: dict[str, Any], incident: dict[str, Any]) -> None:
    """A policy whose conditions all hold engages its department."""
    evaluation = run([policy(when=when)], facts(**incident))
    assert evaluation.results[0].matched is True
    assert [(e.department, e.as_, e.policy) for e in evaluation.engagements] == [
        ("support", "responder", "p")
    ]


def test_first_failing_condition_is_reported() -> None:
    """With several failing conditions, the reason names the first one checked."""
    evaluation = run(
        [policy(when={"priorities": ["P1"], "labels": ["employee-data"]})],
        facts(priority="P4"),
    )
    assert evaluation.results[0].reason == "priority P4 is not one of P1"


def test_event_not_in_on_does_not_match() -> None:
    """An event type the policy does not listen to is explained, not engaged."""
    evaluation = run([policy()], event="incident.acknowledged")
    assert evaluation.engagements == []
    assert evaluation.results[0].reason is not None
    assert evaluation.results[0].reason.startswith("event incident.acknowledged is not one of")


@pytest.mark.parametrize(
    "event",
    ["incident.triggered", "incident.priority_updated", "incident.escalated", "incident.reopened"],
)
def test_default_on_covers_spec_events(event: str) -> None:
    """A policy without `on` runs on the four SPEC §2 default events."""
    assert run([policy()], event=event).engagements


def test_department_engaged_once_per_as_first_policy_wins() -> None:
    """Two matching policies engaging the same department and role engage it once."""
    evaluation = run([policy("first"), policy("second")])
    assert [e.policy for e in evaluation.engagements] == ["first"]
    assert [(s.policy, s.kind) for s in evaluation.skipped] == [("second", "duplicate")]
    assert "already engaged as responder by policy first" in evaluation.skipped[0].reason
    assert evaluation.matched == ["first", "second"]


def test_same_department_as_subscriber_and_responder_is_two_engagements() -> None:
    """`as` is part of the dedupe key: responder and subscriber both happen."""
    p = policy(
        engage=[
            {"department": "support", "as": "responder"},
            {"department": "support", "as": "subscriber"},
        ]
    )
    assert [e.as_ for e in run([p]).engagements] == ["responder", "subscriber"]


def test_responder_without_escalation_policy_is_skipped_with_reason() -> None:
    """A responder request to a department with no EP is skipped and says why."""
    evaluation = run([policy(engage=[{"department": "marketing", "as": "responder"}])])
    assert evaluation.engagements == []
    assert evaluation.skipped[0].kind == "no_escalation_policy"
    assert "COV008" in evaluation.skipped[0].reason


def test_subscriber_without_escalation_policy_is_engaged() -> None:
    """Subscribing needs only the department's team, which every department has."""
    evaluation = run([policy(engage=[{"department": "marketing", "as": "subscriber"}])])
    assert [(e.department, e.as_) for e in evaluation.engagements] == [("marketing", "subscriber")]


def test_message_placeholders_are_rendered() -> None:
    """Message placeholders are filled from the incident, policy and department."""
    p = policy(
        "liaison",
        engage=[
            {
                "department": "support",
                "as": "responder",
                "message": "#{incident.number} {incident.priority}/{incident.urgency} "
                "{incident.service}: {incident.title} [{policy.name} -> {department.name}] "
                "{incident.id} {incident.html_url}",
            }
        ],
    )
    assert run([p]).engagements[0].message == (
        "#42 P1/high Checkout API: Checkout down [liaison -> Customer Support] "
        "Q1 https://acme.pagerduty.com/incidents/Q1"
    )


def test_default_message_names_department_and_policy() -> None:
    """Without a message, the responder request still says who is needed and why."""
    message = run([policy("liaison")]).engagements[0].message
    assert "Customer Support" in message
    assert "liaison" in message
    assert "#42" in message


def test_render_message_leaves_braces_in_titles_alone() -> None:
    """A title containing braces is not re-interpreted as a placeholder."""
    rendered = render_message("{incident.title}", facts(title="{policy.name} {0}"), "p", "Support")
    assert rendered == "{policy.name} {0}"


def test_min_impacted_services_counts_other_open_incidents() -> None:
    """Two services with open incidents in the last hour satisfy min_impacted_services 2."""
    other = facts(id="Q2", service_id="PSVC2", service_name="Search", created_at=NOW)
    recent = RecentIncidents().with_event("incident.triggered", other, NOW - timedelta(minutes=5))
    evaluation = evaluate(
        "incident.triggered",
        facts(),
        ORG,
        [policy(when={"min_impacted_services": 2})],
        recent,
        NOW,
        {},
    )
    assert evaluation.results[0].matched


def test_resolved_incidents_do_not_count() -> None:
    """A resolved incident no longer counts as an impacted service."""
    other = facts(id="Q2", service_id="PSVC2", created_at=NOW - timedelta(minutes=5))
    recent = RecentIncidents().with_event("incident.triggered", other, other.created_at)
    recent = recent.with_event("incident.resolved", other, NOW)
    assert recent.impacted_services(NOW) == 0


def test_incidents_older_than_an_hour_do_not_count() -> None:
    """Only incidents triggered in the last 60 minutes count."""
    old = facts(id="Q2", service_id="PSVC2", created_at=NOW - timedelta(minutes=61))
    recent = RecentIncidents().with_event("incident.triggered", old, old.created_at)
    assert recent.impacted_services(NOW) == 0
    assert recent.pruned(NOW).incidents == ()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["incident.triggered", "incident.resolved", "incident.acknowledged"]),
            st.integers(0, 5),  # incident
            st.integers(0, 3),  # service
            st.integers(0, 120),  # minutes before NOW
        ),
        max_size=30,
    )
)
def test_impacted_services_matches_a_simple_model(
    events: list[tuple[str, int, int, int]],
) -> None:
    """RecentIncidents agrees with a naive replay of triggered/resolved events."""
    recent = RecentIncidents()
    model: dict[str, tuple[str, datetime]] = {}
    for event, inc, svc, minutes in events:
        at = NOW - timedelta(minutes=minutes)
        f = facts(
            id=f"Q{inc}",
            service_id=f"S{svc}",
            created_at=at,
            status="resolved" if event == "incident.resolved" else "triggered",
        )
        recent = recent.with_event(event, f, at)
        if event == "incident.resolved":
            model.pop(f.id, None)
        elif event == "incident.triggered" or f.id not in model:
            model[f.id] = (f"S{svc}", at)
        else:
            model[f.id] = (f"S{svc}", model[f.id][1])
    expected = {svc for svc, at in model.values() if NOW - timedelta(minutes=60) <= at <= NOW}
    assert recent.impacted_services(NOW) == len(expected)


@settings(max_examples=80, deadline=None)
@given(
    priority=st.one_of(st.none(), st.sampled_from(["P1", "P2", "P3", "P4", "P5"])),
    urgency=st.one_of(st.none(), st.sampled_from(["high", "low"])),
    service=st.one_of(st.none(), st.sampled_from(["Checkout API", "Search", "Customer Support"])),
    title=st.text(max_size=40),
    wanted_priorities=st.one_of(
        st.none(), st.sets(st.sampled_from(["P1", "P2", "P3"]), min_size=1)
    ),
    wanted_labels=st.one_of(
        st.none(), st.sets(st.sampled_from(["billing", "customer-facing", "pr"]), min_size=1)
    ),
    pattern=st.one_of(st.none(), st.sampled_from(["a", "(?i)down", "^$", "x|y"])),
)
def test_matched_iff_every_condition_holds(
    priority: str | None,
    urgency: str | None,
    service: str | None,
    title: str,
    wanted_priorities: set[str] | None,
    wanted_labels: set[str] | None,
    pattern: str | None,
) -> None:
    """A policy matches exactly when every given condition holds, else gives a reason."""
    when: dict[str, Any] = {}
    if wanted_priorities:
        when["priorities"] = sorted(wanted_priorities)
    if wanted_labels:
        when["labels"] = sorted(wanted_labels)
    if pattern:
        when["title_regex"] = pattern
    f = facts(priority=priority, urgency=urgency, service_name=service, title=title)
    labels = service_labels(f, ORG, {})
    expected = (
        (not wanted_priorities or priority in wanted_priorities)
        and (not wanted_labels or bool(labels & wanted_labels))
        and (not pattern or re.search(pattern, title) is not None)
    )
    result = run([policy(when=when)], f).results[0]
    assert result.matched is expected
    assert (result.reason is None) is expected


def test_service_labels_managed_by_id_before_name() -> None:
    """A managed service's labels are found by id; unmanaged ones by org service_labels."""
    f = facts(service_id="PMANAGED", service_name="Checkout API")
    assert service_labels(f, ORG, {"PMANAGED": ["brand"]}) == {"brand"}
    assert service_labels(f, ORG, {}) == {"customer-facing", "billing"}


def test_service_labels_offline_match_managed_service_by_name() -> None:
    """Without managed ids (offline), a managed service is recognised by its derived name."""
    f = facts(service_id="PX", service_name="Customer Support")
    assert service_labels(f, ORG, None) == {"customer-facing"}
    assert service_labels(f, ORG, {}) == set()


def test_managed_service_labels_reads_ownership_marker() -> None:
    """Services whose description carries this org's marker map to their department labels."""
    labels = managed_service_labels(
        ORG,
        [
            ("PS1", "Intake\n\nManaged by pdorgsync (org=acme, department=support)"),
            ("PS2", "Managed by pdorgsync (org=other, department=support)"),
            ("PS3", None),
        ],
    )
    assert labels == {"PS1": ["customer-facing"]}


def test_facts_from_webhook_example() -> None:
    """The V3 webhook data of the contract's example becomes IncidentFacts."""
    data = {
        "id": "Q1X7K2M9T4B8ZD",
        "type": "incident",
        "html_url": "https://example-org.pagerduty.com/incidents/Q1X7K2M9T4B8ZD",
        "number": 4821,
        "status": "triggered",
        "created_at": "2026-03-14T10:00:00Z",
        "title": "Checkout API 5xx",
        "service": {"id": "PSVC0A1", "summary": "checkout-api (payments)"},
        "priority": {"id": "PPRIO01", "summary": "P1"},
        "urgency": "high",
    }
    f = IncidentFacts.from_webhook_data(data)
    assert (f.id, f.number, f.priority, f.service_id, f.service_name) == (
        "Q1X7K2M9T4B8ZD",
        4821,
        "P1",
        "PSVC0A1",
        "checkout-api (payments)",
    )
    assert f.created_at == datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def test_facts_from_api_incident_uses_incident_number() -> None:
    """REST incidents carry `incident_number`; a null priority means no priority."""
    f = IncidentFacts.from_api_incident(
        {
            "id": "PINC1",
            "incident_number": 7,
            "title": "t",
            "status": "resolved",
            "created_at": "2026-03-14T09:00:00+01:00",
            "priority": None,
            "service": {"id": "PS", "summary": "Search"},
        }
    )
    assert (f.number, f.priority, f.is_open) == (7, None, False)


@pytest.mark.parametrize(
    "data",
    [{}, {"id": "Q1"}, {"id": "Q1", "created_at": "yesterday"}, {"id": 5, "created_at": "x"}],
)
def test_bad_incident_data_is_a_clear_error(data: dict[str, Any]) -> None:
    """Incident data without id or created_at raises a pdorgsync error, not a crash."""
    with pytest.raises(IncidentDataError):
        IncidentFacts.from_webhook_data(data)


def test_recent_incidents_from_history_is_the_state_at_that_time() -> None:
    """Replay sees the incidents open in the hour before each incident, not today's state."""
    a = facts(id="QA", service_id="S1", created_at=NOW - timedelta(minutes=30))
    b = facts(id="QB", service_id="S2", created_at=NOW - timedelta(minutes=10))
    c = facts(id="QC", service_id="S3", created_at=NOW - timedelta(minutes=90))
    d = facts(id="QD", service_id="S4", created_at=NOW + timedelta(minutes=5))
    history = [
        (a, None),
        (b, NOW - timedelta(minutes=1)),  # resolved before NOW: no longer open
        (c, None),  # too old
        (d, None),  # after NOW
    ]
    assert RecentIncidents.from_history(history, NOW).impacted_services(NOW) == 1
    later = NOW - timedelta(minutes=5)
    assert RecentIncidents.from_history(history, later).impacted_services(later) == 2
