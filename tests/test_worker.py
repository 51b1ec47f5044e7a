"""The worker against the sandbox: engagements exactly once, echoes, retries, dead letters, polling."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pdorgsync.core.policies import Engagement
from pdorgsync.engagements import Engager, note_tag
from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.handling import WorkerHooks, perform_engagements
from pdorgsync.models.events import parse_envelope
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox
from pdorgsync.settings import Settings
from pdorgsync.state.sqlite import Inbox
from pdorgsync.worker import Worker
from tests.support.clients import DelegatingClient
from tests.support.engagement import (
    BOT_EMAIL,
    PACK_P1_TAGS,
    applied_seed,
    client_for,
    create_incident,
    department_ids,
    engaged_state,
    example_worker,
    note_tags,
    org_and_policies,
    serving_sandbox,
    set_priority,
    user_id,
    webhook_data,
)
from tests.support.webhooks import FakeClock, envelope

ALL = ["support", "executive", "finance", "sales", "product", "marketing", "hr"]
# make_worker(**overrides) -> Worker: see the fixture.
MakeWorker = Callable[..., Worker]


@pytest.fixture
def box(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    keys = getattr(request, "param", ALL)
    yield from serving_sandbox(applied_seed(keys))


@pytest.fixture
def pd(box: Sandbox) -> PagerDutyClient:
    assert box.base_url is not None
    return client_for(box.base_url)


@pytest.fixture
def org(pd: PagerDutyClient) -> Org:
    org, _ = org_and_policies()
    return org


@pytest.fixture
def ids(pd: PagerDutyClient, org: Org) -> dict[str, dict[str, str]]:
    return department_ids(pd, org)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inbox(tmp_path: Path, clock: FakeClock) -> Iterator[Inbox]:
    inbox = Inbox(tmp_path / "state.db", clock=clock)
    yield inbox
    inbox.close()


@pytest.fixture
def events() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture
def make_worker(inbox: Inbox, pd: PagerDutyClient, clock: FakeClock) -> MakeWorker:
    """``make_worker(**overrides)``: :func:`example_worker` on this test's inbox, client
    and fake clock. ``inbox=``, ``client=``, ``policies=`` or any other Worker keyword
    replaces the default."""

    def make(
        *,
        inbox: Inbox = inbox,
        client: Any = pd,
        policies: list[Policy] | None = None,
        **kwargs: Any,
    ) -> Worker:
        return example_worker(inbox, client, policies=policies, clock=clock, **kwargs)

    return make


@pytest.fixture
def worker(
    make_worker: MakeWorker,
    ids: dict[str, dict[str, str]],
    events: list[tuple[str, str, str]],
) -> Worker:
    return make_worker(hooks=WorkerHooks(on_engagement=lambda d, a, o: events.append((d, a, o))))


def _enqueue(inbox: Inbox, body: dict[str, Any]) -> None:
    raw = json.dumps(body)
    inbox.store(parse_envelope(raw), raw)


def _triggered(incident: dict[str, Any], clock: FakeClock, **kw: Any) -> dict[str, Any]:
    return envelope(
        "incident.triggered", incident=webhook_data(incident), occurred_at=clock(), **kw
    )


def _writes(box: Sandbox) -> list[tuple[str, str, int]]:
    return [r for r in box.requests if r[0] in ("POST", "PUT") and "/incidents/" in r[1]]


def test_p1_on_customer_facing_service_engages_what_the_pack_asks(
    worker: Worker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    ids: dict[str, dict[str, str]],
    clock: FakeClock,
) -> None:
    """P1 on Checkout API: Support as responder; Executive, Finance, Sales teams subscribed; a note each."""
    incident = create_incident(pd, "Checkout API 5xx above 5%")
    _enqueue(inbox, _triggered(incident, clock))
    assert worker.drain() == 1
    eps, teams, notes = engaged_state(box, incident["id"])
    assert eps == [ids["support"]["escalation_policy"]]
    assert teams == sorted(ids[k]["team"] for k in ("executive", "finance", "sales"))
    assert notes == 1  # one note for the pass, naming each department
    assert note_tags(box, incident["id"]) == PACK_P1_TAGS
    ledger = {(e.department, e.as_, e.policy) for e in inbox.engagements(incident["id"])}
    assert ledger == {
        ("support", "responder", "support-customer-liaison"),
        ("executive", "subscriber", "executive-major-incident"),
        ("finance", "subscriber", "finance-billing-impact"),
        ("sales", "subscriber", "sales-customer-impact"),
    }
    assert [e.status for e in inbox.events()] == ["done"]


def test_responder_request_is_wrapped_with_bot_requester_and_templated_message(
    worker: Worker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """The responder request names the bot user as requester and fills the message template."""
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    [request] = box.state.incidents[incident["id"]]["responder_requests"]
    assert request["requester"]["id"] == user_id(pd, BOT_EMAIL)
    number = incident["incident_number"]
    assert request["message"].startswith(
        f"Customer Liaison needed for #{number} (P1, Checkout API)"
    )


def test_note_names_the_policy(
    worker: Worker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """Each engagement leaves one note naming the policy that asked for it."""
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    contents = [n["content"] for n in box.state.notes[incident["id"]]]
    support = [c for c in contents if note_tag("support", "responder") in c]
    assert len(support) == 1
    assert "support-customer-liaison" in support[0]


def test_notes_can_be_turned_off(
    make_worker: MakeWorker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    clock: FakeClock,
    ids: dict[str, Any],
) -> None:
    """INCIDENT_NOTES=false: engagements happen, no notes are written."""
    worker = make_worker(incident_notes=False)
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    eps, teams, notes = engaged_state(box, incident["id"])
    assert (len(eps), len(teams), notes) == (1, 3, 0)


def test_same_incident_again_engages_nobody_twice(
    worker: Worker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """A second event for an engaged incident (another event id) makes no write at all."""
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock, event_id="first"))
    worker.drain()
    writes = len(_writes(box))
    _enqueue(
        inbox, envelope("incident.escalated", incident=webhook_data(incident), event_id="second")
    )
    worker.drain()
    assert len(_writes(box)) == writes
    assert [e.status for e in inbox.events()] == ["done", "done"]


def test_priority_raised_from_p3_to_p1_engages_only_what_is_new(
    worker: Worker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    ids: dict[str, dict[str, str]],
    clock: FakeClock,
) -> None:
    """P3 engages Finance (billing); raised to P1 adds Support, Executive, Sales, never Finance again."""
    incident = create_incident(pd, "Checkout slow", priority="P3")
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    assert engaged_state(box, incident["id"])[:2] == ([], [ids["finance"]["team"]])
    raised = set_priority(pd, incident["id"], "P1")
    _enqueue(inbox, envelope("incident.priority_updated", incident=webhook_data(raised)))
    worker.drain()
    eps, teams, notes = engaged_state(box, incident["id"])
    assert eps == [ids["support"]["escalation_policy"]]
    assert teams == sorted(ids[k]["team"] for k in ("executive", "finance", "sales"))
    assert notes == 2  # one per pass: P3, then P1
    assert note_tags(box, incident["id"]) == PACK_P1_TAGS


def test_our_own_echo_triggers_nothing(
    worker: Worker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient
) -> None:
    """incident.responder.added caused by the bot user is ignored without writes."""
    incident = create_incident(pd, "Checkout down")
    bot = {"id": user_id(pd, BOT_EMAIL), "type": "user_reference", "summary": "pdorgsync bot"}
    echo = envelope("incident.priority_updated", incident=webhook_data(incident), agent=bot)
    _enqueue(inbox, echo)
    worker.drain()
    [event] = inbox.events()
    assert event.status == "ignored"
    assert engaged_state(box, incident["id"]) == ([], [], 0)


def test_responder_added_event_is_ignored(
    worker: Worker, inbox: Inbox, pd: PagerDutyClient
) -> None:
    """Events whose data is not an incident (responder, note) are ignored."""
    incident = create_incident(pd, "Checkout down")
    body = envelope("incident.responder.added")
    body["event"]["data"] = {"type": "incident_responder", "incident": {"id": incident["id"]}}
    _enqueue(inbox, body)
    worker.drain()
    assert [e.status for e in inbox.events()] == ["ignored"]


def test_rate_limit_retries_after_retry_after(
    worker: Worker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """A 429 puts the event back with next attempt no earlier than Retry-After; then it succeeds."""
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    worker.engager.bot_user_id()
    worker.engager.directory.refresh()
    box.fail_next(1, status=429, retry_after=120)
    worker.drain()
    [event] = inbox.events()
    assert event.status == "pending"
    assert "429" in (event.last_error or "")
    assert event.next_attempt_at >= clock() + timedelta(seconds=120)
    clock.advance(60)
    assert worker.drain() == 0  # not due yet
    clock.advance(61)
    worker.drain()
    assert [e.status for e in inbox.events()] == ["done"]
    assert len(engaged_state(box, incident["id"])[0]) == 1


def test_temporary_failures_end_in_dead_letter_after_max_attempts(
    make_worker: MakeWorker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    clock: FakeClock,
    ids: dict[str, Any],
) -> None:
    """Server errors on every attempt: bounded retries, then dead with the error shown."""
    worker = make_worker(max_attempts=3)
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    box.fail_next(100, status=503)
    for _ in range(5):
        worker.drain()
        clock.advance(3600)
    [event] = inbox.events()
    assert (event.status, event.attempts) == ("dead", 3)
    assert "gave up after 3 attempts" in (event.last_error or "")


class _ContendedLedger(Inbox):
    """An inbox whose first ledger write meets a lock another process holds (really)."""

    contended = 0

    def record_engagement(self, *args: Any, **kwargs: Any) -> bool:
        if self.contended:
            return super().record_engagement(*args, **kwargs)
        self.contended += 1
        other = sqlite3.connect(self.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            return super().record_engagement(*args, **kwargs)
        finally:
            other.execute("ROLLBACK")
            other.close()


def test_lock_contention_retries_and_never_dead_letters(
    make_worker: MakeWorker,
    tmp_path: Path,
    box: Sandbox,
    pd: PagerDutyClient,
    clock: FakeClock,
    ids: dict[str, Any],
) -> None:
    """A ledger write that waited past the busy timeout is retried, even at the last attempt."""
    inbox = _ContendedLedger(tmp_path / "contended.db", busy_timeout=0.05, clock=clock)
    worker = make_worker(inbox=inbox, max_attempts=1)
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    [event] = inbox.events()
    # Contention is retried and not counted as an attempt (claims find a poison event).
    assert (event.status, event.attempts) == ("pending", 0)
    assert "busy" in (event.last_error or "")
    clock.advance(3600)
    worker.drain()
    assert [e.status for e in inbox.events()] == ["done"]
    assert engaged_state(box, incident["id"])[0] == [ids["support"]["escalation_policy"]]
    inbox.close()


def test_unknown_incident_is_dead_then_replayable(
    worker: Worker, inbox: Inbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """A 404 (incident gone) is permanent: dead at once; `inbox retry` re-queues it."""
    real = create_incident(pd, "Checkout down")
    ghost = {**webhook_data(real), "id": "QGHOST00000000"}
    _enqueue(inbox, envelope("incident.triggered", incident=ghost, occurred_at=clock()))
    worker.drain()
    [event] = inbox.events()
    assert (event.status, event.attempts) == ("dead", 1)
    assert "404" in (event.last_error or "")
    inbox.retry(event.seq)
    worker.drain()
    assert inbox.events()[0].status == "dead"


def test_write_done_before_a_crash_is_not_repeated(
    worker: Worker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    ids: dict[str, dict[str, str]],
    clock: FakeClock,
) -> None:
    """A responder request already on the incident (ledger lost in a crash) is not sent again."""
    incident = create_incident(pd, "Checkout down")
    pd.post(
        f"/incidents/{incident['id']}/responder_requests",
        {
            "requester_id": user_id(pd, BOT_EMAIL),
            "message": "sent before the crash",
            "responder_request_targets": [
                {
                    "responder_request_target": {
                        "id": ids["support"]["escalation_policy"],
                        "type": "escalation_policy_reference",
                    }
                }
            ],
        },
    )
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    eps, _teams, _notes = engaged_state(box, incident["id"])
    assert eps == [ids["support"]["escalation_policy"]]
    assert inbox.has_engagement(incident["id"], "support", "responder")


@pytest.mark.parametrize("box", [["executive", "finance", "sales"]], indirect=True)
def test_department_missing_in_pagerduty_is_skipped_not_recorded(
    make_worker: MakeWorker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    clock: FakeClock,
    events: list[Any],
) -> None:
    """Without the Support EP in PagerDuty the responder engagement is skipped (and may happen later)."""
    worker = make_worker(hooks=WorkerHooks(on_engagement=lambda d, a, o: events.append((d, a, o))))
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    assert ("support", "responder", "skipped") in events
    assert not inbox.has_engagement(incident["id"], "support", "responder")
    assert inbox.events()[0].status == "done"


def test_several_services_hit_engage_product(
    worker: Worker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    ids: dict[str, dict[str, str]],
    clock: FakeClock,
) -> None:
    """Two services with incidents triggered within the hour bring Product in (min_impacted_services)."""
    first = create_incident(pd, "Checkout errors", priority="P4")
    _enqueue(inbox, _triggered(first, clock))
    worker.drain()
    assert ids["product"]["escalation_policy"] not in engaged_state(box, first["id"])[0]
    clock.advance(600)
    second = create_incident(pd, "Payroll sync stuck", service="Payroll Sync", priority="P4")
    _enqueue(inbox, _triggered(second, clock))
    worker.drain()
    assert engaged_state(box, second["id"])[0] == [ids["product"]["escalation_policy"]]


def test_resolved_incident_no_longer_counts(
    worker: Worker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    ids: dict[str, dict[str, str]],
    clock: FakeClock,
) -> None:
    """A resolved incident leaves the recent-incident state, so it does not count for Product."""
    first = create_incident(pd, "Checkout errors", priority="P4")
    _enqueue(inbox, _triggered(first, clock))
    resolved = {**webhook_data(first), "status": "resolved"}
    _enqueue(inbox, envelope("incident.resolved", incident=resolved, occurred_at=clock()))
    worker.drain()
    second = create_incident(pd, "Payroll sync stuck", service="Payroll Sync", priority="P4")
    _enqueue(inbox, _triggered(second, clock))
    worker.drain()
    assert engaged_state(box, second["id"])[0] == []


def test_dry_run_writes_nothing(
    worker: Worker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """handle_event(dry_run=True) evaluates and returns engagements without any write."""
    incident = create_incident(pd, "Checkout down")
    result = worker.handle_event(_triggered(incident, clock), dry_run=True)
    assert {(e.department, e.as_) for e in result.evaluation.engagements} == {  # type: ignore[union-attr]  # a None fails the test too
        ("support", "responder"),
        ("executive", "subscriber"),
        ("finance", "subscriber"),
        ("sales", "subscriber"),
    }
    assert engaged_state(box, incident["id"]) == ([], [], 0)
    assert inbox.engagements() == []


def test_handle_event_performs_and_is_idempotent(
    worker: Worker, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """handle_event performs engagements once; calling it again reports them as already engaged."""
    incident = create_incident(pd, "Checkout down")
    first = worker.handle_event(_triggered(incident, clock))
    again = worker.handle_event(_triggered(incident, clock))
    assert {o.outcome for o in first.outcomes} == {"engaged"}
    assert {o.outcome for o in again.outcomes} == {"already_engaged"}
    assert len(engaged_state(box, incident["id"])[0]) == 1


def test_poll_picks_up_incidents_whose_webhook_never_came(
    worker: Worker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    ids: dict[str, dict[str, str]],
    clock: FakeClock,
) -> None:
    """The catch-up poll engages an incident no webhook told us about, once; a change is seen again."""
    clock.now = box.state.now()
    assert worker.poll_incidents() == 0  # first poll: the baseline
    incident = create_incident(pd, "Checkout slow", priority="P3")
    clock.advance(300)
    assert worker.poll_incidents() == 1
    worker.drain()
    assert engaged_state(box, incident["id"])[1] == [ids["finance"]["team"]]
    assert worker.poll_incidents() == 0  # unchanged: nothing queued
    set_priority(pd, incident["id"], "P1")
    assert worker.poll_incidents() == 1
    assert [e.event_type for e in inbox.events(statuses=["pending"])] == [
        "incident.priority_updated"
    ]
    worker.drain()
    assert engaged_state(box, incident["id"])[0] == [ids["support"]["escalation_policy"]]
    assert worker.poll_incidents() == 0
    assert inbox.get_state("poll_cursor") is not None


def test_first_poll_records_open_incidents_and_engages_none(
    make_worker: MakeWorker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """First start: yesterday's open incidents are the baseline, not a burst of engagements."""
    polls: list[tuple[str, dict[str, int]]] = []
    worker = make_worker(
        hooks=WorkerHooks(on_poll=lambda result, queued: polls.append((result, dict(queued)))),
        poll_interval=300.0,
    )
    old = [create_incident(pd, f"Checkout down {n}") for n in range(3)]
    clock.now = box.state.now()
    assert worker.poll_incidents() == 0
    worker.drain()
    assert all(engaged_state(box, i["id"]) == ([], [], 0) for i in old)
    assert polls == [("baseline", {})]

    clock.advance(300)
    new = create_incident(pd, "Checkout down again")
    assert worker.poll_incidents() == 1
    worker.drain()
    assert engaged_state(box, new["id"])[0]  # what came after the first start is caught up
    assert all(engaged_state(box, i["id"]) == ([], [], 0) for i in old)
    assert polls[-1] == ("ok", {"incident.triggered": 1})


def test_polled_priority_change_fires_only_policies_on_priority_updated(
    make_worker: MakeWorker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    clock: FakeClock,
    ids: dict[str, Any],
) -> None:
    """A policy `on: [incident.triggered]` ignores a priority raise the poll caught (SPEC §2)."""
    _, policies = org_and_policies()
    triggered_only = [
        p.model_copy(update={"on": ["incident.triggered"]}) if p.name == "support-customer-liaison" else p
        for p in policies
    ]  # fmt: skip
    worker = make_worker(policies=triggered_only, poll_interval=300.0)
    clock.now = box.state.now()
    worker.poll_incidents()  # baseline
    incident = create_incident(pd, "Checkout slow", priority="P3")
    clock.advance(300)
    assert worker.poll_incidents() == 1
    worker.drain()
    set_priority(pd, incident["id"], "P1")
    clock.advance(300)
    assert worker.poll_incidents() == 1
    worker.drain()
    eps, teams, _notes = engaged_state(box, incident["id"])
    assert eps == []  # support's policy fires on incident.triggered only
    assert ids["executive"]["team"] in teams  # executive's (default `on`) fires on the raise


def test_poll_leaves_incidents_with_a_waiting_event_to_it(
    worker: Worker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """An incident whose webhook is still in the inbox is not queued again by the poll."""
    clock.now = box.state.now()
    worker.poll_incidents()  # baseline
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    assert worker.poll_incidents() == 0
    worker.drain()
    assert worker.poll_incidents() == 0  # handled by the webhook: nothing was missed
    assert [e.source for e in inbox.events()] == ["webhook"]


def test_poll_is_due_by_interval(
    make_worker: MakeWorker, inbox: Inbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """poll_due: at start, then only after poll_interval."""
    worker = make_worker(poll_interval=300)
    assert worker.poll_due()
    worker.poll_incidents()
    clock.advance(299)
    assert not worker.poll_due()
    clock.advance(2)
    assert worker.poll_due()


def test_failed_subscription_item_is_an_error(
    inbox: Inbox, pd: PagerDutyClient, ids: dict[str, dict[str, str]], box: Sandbox
) -> None:
    """A 200 answer whose item says 'unauthorized' is a failure, not an engagement."""
    org, _ = org_and_policies()

    class Unauthorized(DelegatingClient):
        def post(self, path: str, body: Any, *, idempotent: bool = False) -> dict[str, Any]:
            answer = self.inner.post(path, body, idempotent=idempotent)
            if path.endswith("/status_updates/subscribers"):
                for item in answer["subscriptions"]:
                    item["result"] = "unauthorized"
            return answer

    engager = Engager(inbox=inbox, client=Unauthorized(pd), org=org, from_email=BOT_EMAIL)
    incident = create_incident(pd, "Checkout down")
    with pytest.raises(PermanentPagerDutyError, match="unauthorized"):
        engager.engage(
            incident["id"],
            Engagement(department="executive", as_="subscriber", policy="p", message=""),
            event_id=None,
        )
    assert not inbox.has_engagement(incident["id"], "executive", "subscriber")


def test_perform_engagements_for_the_engage_cli(
    tmp_path: Path, box: Sandbox, pd: PagerDutyClient, ids: dict[str, Any], clock: FakeClock
) -> None:
    """perform_engagements (engage --event) uses the same ledger as the daemon."""
    from pdorgsync.core.policies import IncidentFacts, RecentIncidents, evaluate

    org, policies = org_and_policies()
    incident = create_incident(pd, "Checkout down")
    facts = IncidentFacts.from_api_incident(incident)
    evaluation = evaluate("incident.triggered", facts, org, policies, RecentIncidents(), clock())
    settings = Settings(
        api_url=str(box.base_url), from_email=BOT_EMAIL, state_path=tmp_path / "cli.db"
    )
    first = perform_engagements(
        settings=settings, client=pd, org=org, facts=facts, evaluation=evaluation
    )
    second = perform_engagements(
        settings=settings, client=pd, org=org, facts=facts, evaluation=evaluation
    )
    assert {o.outcome for o in first} == {"engaged"}
    assert {o.outcome for o in second} == {"already_engaged"}


def test_retention_runs_hourly_and_keeps_what_still_matters(
    make_worker: MakeWorker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """The daemon's worker purges handled events past INBOX_RETENTION, once an hour."""
    purges: list[int] = []
    worker = make_worker(
        retention=timedelta(days=30), hooks=WorkerHooks(on_purge=lambda r: purges.append(r.events))
    )
    incident = create_incident(pd, "Checkout down")
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    engaged = len(inbox.engagements())
    assert worker.purge_due()
    assert worker.purge().events == 0
    clock.advance(59 * 60)
    assert not worker.purge_due()
    clock.advance(31 * 86400)
    assert worker.purge_due()
    assert worker.purge().events == 1
    assert inbox.events() == []
    assert len(inbox.engagements()) == engaged  # the incident is still open: ledger kept
    assert purges == [0, 1]


def test_late_trigger_of_a_resolved_incident_engages_nobody(
    worker: Worker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    clock: FakeClock,
) -> None:
    """A P1 trigger that arrives after the incident was resolved (a retry, a replay) pages nobody."""
    incident = create_incident(pd, "Checkout API down for EU customers")
    pd.put(
        f"/incidents/{incident['id']}",
        {"incident": {"type": "incident_reference", "status": "resolved"}},
    )
    _enqueue(inbox, _triggered(incident, clock))  # the payload still says "triggered"
    assert worker.drain() == 1
    assert engaged_state(box, incident["id"]) == ([], [], 0)
    assert inbox.engagements(incident["id"]) == []
    assert [e.status for e in inbox.events()] == ["done"]


# --------------------------------------------------------------------------- requests per pass


def _counted_worker(
    make_worker: MakeWorker, box: Sandbox, **kw: Any
) -> tuple[Worker, PagerDutyClient]:
    """A worker with its own client, so its per-route call counter sees only its requests."""
    assert box.base_url is not None
    client = client_for(box.base_url)
    worker = make_worker(client=client, **kw)
    return worker, client


def test_fully_engaged_incident_costs_exactly_four_requests(
    make_worker: MakeWorker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """1 responder + 3 subscriber departments, notes on: the incident read once, one
    responder request with the target, one subscribe call with all three teams, one note."""
    worker, client = _counted_worker(make_worker, box)
    warm = create_incident(pd, "Checkout API down (warm-up)")  # fills the directory caches
    _enqueue(inbox, _triggered(warm, clock, event_id="warm"))
    worker.drain()
    client.reset_counts()
    incident = create_incident(pd, "Checkout API 5xx above 5%")
    _enqueue(inbox, _triggered(incident, clock, event_id="counted"))
    assert worker.drain() == 1
    assert dict(client.calls) == {
        ("GET", "/incidents/{id}"): 1,
        ("POST", "/incidents/{id}/responder_requests"): 1,
        ("POST", "/incidents/{id}/status_updates/subscribers"): 1,
        ("POST", "/incidents/{id}/notes"): 1,
    }
    assert len(inbox.engagements(incident["id"])) == 4
    [request] = box.state.incidents[incident["id"]]["responder_requests"]
    assert len(request["responder_request_targets"]) == 1
    assert note_tags(box, incident["id"]) == PACK_P1_TAGS


def test_retried_event_reads_the_notes_first_and_costs_exactly_five(
    make_worker: MakeWorker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """When the ledger cannot tell (second attempt), the notes are read: five requests, one note."""
    worker, client = _counted_worker(make_worker, box)
    worker.engager.directory.refresh()
    worker.engager.bot_user_id()
    worker.engager.abilities()  # read once per run (GET /abilities), not per pass
    incident = create_incident(pd, "Checkout API down")
    _enqueue(inbox, _triggered(incident, clock))
    claimed = inbox.claim()
    assert claimed is not None
    inbox.fail(claimed.seq, "503 from PagerDuty", retry_at=clock())  # an attempt that wrote nothing
    client.reset_counts()
    assert worker.drain() == 1
    assert dict(client.calls) == {
        ("GET", "/incidents/{id}"): 1,
        ("GET", "/incidents/{id}/notes"): 1,
        ("POST", "/incidents/{id}/responder_requests"): 1,
        ("POST", "/incidents/{id}/status_updates/subscribers"): 1,
        ("POST", "/incidents/{id}/notes"): 1,
    }
    assert note_tags(box, incident["id"]) == PACK_P1_TAGS


def test_note_written_before_a_crash_is_not_written_again(
    make_worker: MakeWorker, inbox: Inbox, box: Sandbox, pd: PagerDutyClient, clock: FakeClock
) -> None:
    """Killed after every write of the pass but before the ledger rows: the restarted
    worker finds the responder request, the subscriptions and the note, and only records."""
    worker, _client = _counted_worker(make_worker, box)
    incident = create_incident(pd, "Checkout API down")
    _enqueue(inbox, _triggered(incident, clock))
    event = inbox.claim()
    assert event is not None
    dying, _ = _counted_worker(make_worker, box)
    dying.engager.inbox = _DiesBeforeLedger(inbox)  # type: ignore[assignment]  # a test double
    with pytest.raises(_Killed):
        dying.process(event)
    assert inbox.engagements(incident["id"]) == []
    assert inbox.release_claims() == 1  # the restarted worker hands the claim back
    assert worker.drain() == 1
    # The subscribe call is re-sent (each team answers `duplicate`); nothing else is.
    eps, teams, notes = engaged_state(box, incident["id"])
    assert (len(eps), len(teams), notes) == (1, 3, 1)
    assert note_tags(box, incident["id"]) == PACK_P1_TAGS
    assert len(inbox.engagements(incident["id"])) == 4


class _Killed(BaseException):
    """The process dying (not an error any code path handles)."""


class _DiesBeforeLedger:
    """An inbox whose process dies right before the first ledger row is written."""

    def __init__(self, inner: Inbox) -> None:
        self.inner = inner

    def has_engagement(self, incident_id: str, department: str, as_: str) -> bool:
        return self.inner.has_engagement(incident_id, department, as_)

    def record_engagement(self, *_a: Any, **_kw: Any) -> bool:
        raise _Killed


def test_partial_subscription_failure_retries_only_what_failed(
    make_worker: MakeWorker,
    inbox: Inbox,
    box: Sandbox,
    pd: PagerDutyClient,
    clock: FakeClock,
    ids: dict[str, Any],
) -> None:
    """One team's item fails: the others and the responder are noted and recorded; the
    replayed event subscribes only that team and writes one note naming only it."""
    failing = ids["finance"]["team"]

    class OneTeamRefused(DelegatingClient):
        refuse = True

        def post(self, path: str, body: Any, *, idempotent: bool = False) -> dict[str, Any]:
            if self.refuse and path.endswith("/status_updates/subscribers"):
                kept = [s for s in body["subscribers"] if s["subscriber_id"] != failing]
                answer = self.inner.post(path, {"subscribers": kept}, idempotent=idempotent)
                answer["subscriptions"].append(
                    {"subscriber_id": failing, "subscriber_type": "team", "result": "unauthorized"}
                )
                return answer
            return self.inner.post(path, body, idempotent=idempotent)

    client = OneTeamRefused(pd)
    worker = make_worker(client=client)
    incident = create_incident(pd, "Checkout API down")
    _enqueue(inbox, _triggered(incident, clock))
    worker.drain()
    [event] = inbox.events()
    assert event.status == "dead"
    assert "unauthorized" in (event.last_error or "")
    assert failing in (event.last_error or "")
    recorded = {(e.department, e.as_) for e in inbox.engagements(incident["id"])}
    assert recorded == {
        ("support", "responder"),
        ("executive", "subscriber"),
        ("sales", "subscriber"),
    }
    assert note_tags(box, incident["id"]) == sorted(
        [
            "[pdorgsync:support/responder]",
            "[pdorgsync:executive/subscriber]",
            "[pdorgsync:sales/subscriber]",
        ]
    )
    requests_before = len(box.state.incidents[incident["id"]]["responder_requests"])
    client.refuse = False  # the permission is fixed; the operator replays the event
    inbox.retry(event.seq)
    worker.drain()
    assert inbox.events()[0].status == "done"
    assert len(box.state.incidents[incident["id"]]["responder_requests"]) == requests_before
    assert note_tags(box, incident["id"]) == PACK_P1_TAGS  # finance noted once, nobody twice
    assert len(box.state.notes[incident["id"]]) == 2
    assert engaged_state(box, incident["id"])[1] == sorted(
        ids[k]["team"] for k in ("executive", "finance", "sales")
    )
