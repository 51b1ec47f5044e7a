"""Performing engagements in PagerDuty, exactly once, in few requests.

``core.policies.evaluate`` decides *who* to engage; this module makes it so:
a responder request to the department's escalation policy, or the department's
team subscribed to status updates, plus one incident note per pass naming each
department, its ``as`` and its policy (SPEC §2).

Exactly once, across retries, duplicate deliveries and crashes, comes from the
ledger (``inbox.ledger``, keyed ``(incident, department, as)``) plus what the
incident shows: ``GET /incidents/{id}`` before a responder request (requests
already made, ours or a person's), PagerDuty's own per-item ``duplicate``
result for a team already subscribed, and, only when the ledger cannot tell
(a retried event, a CLI run), a read of ``.../notes`` for our tags. A crash
between a write and the ledger row is therefore harmless: the next attempt
finds the write on the incident and only records it.

What it must never do: write anything for an engagement already in the ledger,
or treat a 200 from the subscribe call as success without checking each item's
``result`` (PagerDuty answers 200 even when an item failed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pdorgsync.abilities import RESPONDERS, TEAMS, WITHOUT, Abilities, read_abilities
from pdorgsync.core.policies import Engagement
from pdorgsync.directory import Directory
from pdorgsync.errors import PdOrgSyncError, PermanentPagerDutyError
from pdorgsync.logs import get_logger
from pdorgsync.models.org import Department, Org
from pdorgsync.state.base import StateStore

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

__all__ = ["Directory", "EngagementOutcome", "Engager", "Outcome", "note_tag"]

log = get_logger("pdorgsync.engagements")

# PagerDuty documents no ability name for status-update subscriptions (plan-gated,
# Business and higher): the 402 of the subscribe call is the answer (see abilities).
NO_SUBSCRIPTIONS = (
    "this PagerDuty account cannot subscribe teams to status updates (PagerDuty answered "
    "402: a plan-gated feature): subscriber engagements are skipped"
)

Outcome = Literal["engaged", "already_engaged", "skipped"]


@dataclass(frozen=True)
class EngagementOutcome:
    incident_id: str
    department: str
    as_: str
    policy: str
    outcome: Outcome
    detail: str

    def __str__(self) -> str:
        return f"{self.department} as {self.as_} ({self.policy}): {self.outcome} - {self.detail}"


def note_tag(department: str, as_: str) -> str:
    """The machine-readable tag closing our note; how a re-run recognises it."""
    return f"[pdorgsync:{department}/{as_}]"


def _targets(request: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for item in request.get("responder_request_targets") or []:
        if isinstance(item, Mapping):
            # The live API wraps each target; the schema shows them flat. Accept both.
            inner = item.get("responder_request_target", item)
            if isinstance(inner, Mapping):
                yield inner


def incident_has_responder_request(incident: Mapping[str, Any], ep_id: str, ep_name: str) -> bool:
    """Was a responder request to this escalation policy already made on the incident?"""
    for request in incident.get("responder_requests") or []:
        if isinstance(request, Mapping):
            for target in _targets(request):
                if target.get("id") == ep_id and "escalation_policy" in str(target.get("type")):
                    return True
    for responder in incident.get("incidents_responders") or []:
        # PagerDuty's description (IncidentsRespondersReference) holds the *names* of the
        # escalation policies a responder was requested through, never their ids. This
        # catches a request made outside pdorgsync (the web UI, another tool) whose
        # ``responder_requests`` entry the incident no longer shows.
        requested = (
            responder.get("escalation_policy_requests") if isinstance(responder, Mapping) else None
        )
        if isinstance(requested, list) and ep_name in requested:
            return True
    return False


@dataclass
class _Pending:
    """One engagement of a pass that is not in the ledger yet, with its PagerDuty target."""

    engagement: Engagement
    dept: Department
    target_id: str
    on_incident: bool = False  # found already done on the incident (not written by this pass)


@dataclass
class Engager:
    """Performs engagements for one org; shared by the worker and ``engage --event``.

    A pass (:meth:`engage_all`) costs at most five requests however many
    departments it engages: the incident read once (when anything is due: it
    shows responder requests already made, ours or a person's, and whether it
    is resolved, in which case nobody is engaged), one
    ``POST .../responder_requests`` carrying every responder target, one
    ``POST .../status_updates/subscribers`` carrying every team (idempotent:
    PagerDuty answers ``duplicate`` per item for a team already subscribed, so
    it is never read first), one note naming them all, and the existing notes
    read only when the ledger cannot tell whether an earlier attempt wrote ours.
    """

    inbox: StateStore
    client: PagerDutyApi
    org: Org
    from_email: str
    incident_notes: bool = True
    directory: Directory = field(init=False)

    def __post_init__(self) -> None:
        self.directory = Directory(self.client, self.org)
        self._abilities: Abilities | None = None
        self._no_subscriptions: str | None = None  # why, once PagerDuty answered 402
        self._no_responders: str | None = None  # likewise for responder requests
        self._said: set[str] = set()

    def abilities(self) -> Abilities:
        """The account's abilities, read once (``GET /abilities``) for this engager."""
        if self._abilities is None:
            self._abilities = read_abilities(self.client)
        return self._abilities

    def _lacking(self, notice: str) -> str:
        if notice not in self._said:  # said once per run, not once per event
            self._said.add(notice)
            log.warning("abilities.missing", notice=notice)
        return notice

    def set_org(self, org: Org) -> None:
        self.org = org
        self.directory.set_org(org)

    def bot_user_id(self) -> str:
        return self.directory.user_id(self.from_email)

    def engage(
        self, incident_id: str, engagement: Engagement, *, event_id: str | None
    ) -> EngagementOutcome:
        """Perform one engagement unless the ledger or the incident already has it."""
        [result] = self.engage_all(incident_id, [engagement], event_id=event_id)
        return result

    def engage_all(
        self,
        incident_id: str,
        engagements: Sequence[Engagement],
        *,
        event_id: str | None,
        history_known: bool = False,
    ) -> list[EngagementOutcome]:
        """Perform one pass of engagements on an incident; one outcome per engagement.

        ``history_known`` means the caller knows no earlier attempt for this
        incident can have written anything the ledger lacks (the worker's first
        attempt at an event, with no failed event of the incident before it);
        then our notes on the incident are not read first. Successful items are
        noted and recorded before a failure of another item is raised, so a retry
        redoes only what failed.
        """
        outcomes: dict[tuple[str, str], EngagementOutcome] = {}
        pending: list[_Pending] = []
        order: list[tuple[str, str]] = []

        def outcome(engagement: Engagement, kind: Outcome, detail: str) -> None:
            key = (engagement.department, engagement.as_)
            outcomes[key] = EngagementOutcome(
                incident_id, engagement.department, engagement.as_, engagement.policy, kind, detail
            )
            log.info(
                f"engagement.{kind}",
                incident_id=incident_id,
                department=engagement.department,
                as_=engagement.as_,
                policy=engagement.policy,
                detail=detail,
            )

        for engagement in engagements:
            key = (engagement.department, engagement.as_)
            if key in order:
                continue  # at most once per incident and `as`, within a pass too
            order.append(key)
            if self.inbox.has_engagement(incident_id, *key):
                outcome(engagement, "already_engaged", "recorded in the ledger")
                continue
            found = self._target(engagement)
            if isinstance(found, str):
                outcome(engagement, "skipped", found)
            else:
                pending.append(found)

        incident: Mapping[str, Any] = {}
        if pending:
            # Read once per pass: the responder requests it shows, and its status now.
            # The event may be old (a late retry, a replayed capture, the poll's
            # backlog): a resolved incident pages nobody and subscribes nobody.
            incident = self.client.get(f"/incidents/{incident_id}").get("incident") or {}
            if incident.get("status") == "resolved":
                for item in pending:
                    outcome(item.engagement, "skipped", "the incident is resolved")
                pending = []
        error: PdOrgSyncError | None = None
        responders = [p for p in pending if p.engagement.as_ == "responder"]
        subscribers = [p for p in pending if p.engagement.as_ != "responder"]
        written: list[_Pending] = []
        # The subscribe call does not depend on the responder request: it runs alongside
        # (one round trip less per pass), and even when the responder request fails,
        # stakeholders still hear.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="subscribe") as pool:
            subscribing = (
                pool.submit(self._subscribe_teams, incident_id, subscribers)
                if subscribers
                else None
            )
            if responders:
                try:
                    written += self._request_responders(incident_id, responders, incident)
                except PermanentPagerDutyError as exc:
                    if exc.status != 402:
                        error = exc
                    else:  # plan-gated (`coordinated_responding`): degrade, say it once
                        self._no_responders = self._lacking(WITHOUT[RESPONDERS])
                        for item in responders:
                            outcome(item.engagement, "skipped", self._no_responders)
                except PdOrgSyncError as exc:
                    error = exc
            if subscribing is not None:
                done, failure = subscribing.result()
                written += done
                if isinstance(failure, PermanentPagerDutyError) and failure.status == 402:
                    # Plan-gated with no documented ability: the 402 is the answer.
                    self._no_subscriptions = self._lacking(NO_SUBSCRIPTIONS)
                    for item in subscribers:
                        outcome(item.engagement, "skipped", self._no_subscriptions)
                else:
                    error = error or failure
        if written:
            if self.incident_notes:
                # A failure here leaves the writes unrecorded: the retry finds them on
                # the incident (or as `duplicate`) and then writes only the note.
                self._note(incident_id, written, read_first=not history_known)
            for item in written:
                engagement = item.engagement
                details = (
                    {"escalation_policy_id": item.target_id}
                    if engagement.as_ == "responder"
                    else {"team_id": item.target_id}
                )
                self.inbox.record_engagement(
                    incident_id,
                    engagement.department,
                    engagement.as_,
                    policy=engagement.policy,
                    event_id=event_id,
                    details=details,
                )
                if item.on_incident:
                    outcome(
                        engagement, "already_engaged", f"already on the incident ({item.target_id})"
                    )
                else:
                    what = (
                        "responder request sent"
                        if engagement.as_ == "responder"
                        else "team subscribed"
                    )
                    outcome(engagement, "engaged", f"{what} ({item.target_id})")
        if error is not None:
            raise error
        return [outcomes[key] for key in order if key in outcomes]

    def _target(self, engagement: Engagement) -> _Pending | str:
        """The department and PagerDuty target of an engagement, or why it is skipped."""
        dept = self.org.department(engagement.department)
        if dept is None:
            return f"department {engagement.department!r} is not in the org file"
        if engagement.as_ == "responder" and not self.abilities().has(RESPONDERS):
            return self._lacking(WITHOUT[RESPONDERS])
        if engagement.as_ != "responder" and not self.abilities().has(TEAMS):
            return self._lacking(WITHOUT[TEAMS])
        if engagement.as_ != "responder" and self._no_subscriptions is not None:
            return self._no_subscriptions
        if engagement.as_ == "responder" and self._no_responders is not None:
            return self._no_responders
        if engagement.as_ == "responder":
            target_id = self.directory.escalation_policy_id(dept)
            if target_id is None:
                return (
                    f"no escalation policy {dept.escalation_policy_name!r} in PagerDuty "
                    "(run pdorgsync apply; audit reports it as COV008)"
                )
        else:
            target_id = self.directory.team_id(dept)
            if target_id is None:
                return (
                    f"no team {dept.team_name!r} in PagerDuty "
                    "(run pdorgsync apply; audit reports it as COV008)"
                )
        return _Pending(engagement, dept, target_id)

    def _request_responders(
        self, incident_id: str, items: list[_Pending], incident: Mapping[str, Any]
    ) -> list[_Pending]:
        """One responder request for every escalation policy not yet asked on the incident."""
        new: list[_Pending] = []
        for item in items:
            if incident_has_responder_request(
                incident, item.target_id, item.dept.escalation_policy_name
            ):
                item.on_incident = True
            elif all(other.target_id != item.target_id for other in new):
                new.append(item)
        if new:
            messages = list(
                dict.fromkeys(i.engagement.message for i in new if i.engagement.message)
            )
            path = f"/incidents/{incident_id}/responder_requests"
            body = self.client.post(
                path,
                {
                    "requester_id": self.bot_user_id(),
                    "message": "\n".join(messages)[:1000],
                    "responder_request_targets": [
                        {
                            "responder_request_target": {
                                "id": item.target_id,
                                "type": "escalation_policy_reference",
                            }
                        }
                        for item in new
                    ],
                },
            )
            request = body.get("responder_request")
            answered = {
                str(t.get("id")) for t in _targets(request if isinstance(request, Mapping) else {})
            }
            missing = [i for i in new if i.target_id not in answered]
            if missing and answered:
                # Per-target check: a target the answer leaves out was not requested.
                raise PermanentPagerDutyError(
                    "responder request answered without "
                    + ", ".join(
                        f"{i.dept.escalation_policy_name!r} ({i.target_id})" for i in missing
                    ),
                    method="POST",
                    path=path,
                )
        by_target = {i.target_id for i in new}
        for item in items:
            if not item.on_incident and item.target_id not in by_target:
                item.on_incident = True  # same escalation policy as another item of the pass
        return items

    def _subscribe_teams(
        self, incident_id: str, items: list[_Pending]
    ) -> tuple[list[_Pending], PdOrgSyncError | None]:
        """Subscribe every team in one call; checks each item's ``result``.

        Returns the items that are subscribed now and the error for the rest (if any).
        """
        path = f"/incidents/{incident_id}/status_updates/subscribers"
        teams = list(dict.fromkeys(i.target_id for i in items))
        try:
            body = self.client.post(
                path,
                {"subscribers": [{"subscriber_id": t, "subscriber_type": "team"} for t in teams]},
                # Safe to resend: a team already subscribed comes back as `duplicate`
                # (CONTRACT §5, `createIncidentNotificationSubscribers`).
                idempotent=True,
            )
        except PdOrgSyncError as exc:
            return [], exc
        answered = body.get("subscriptions")
        if not isinstance(answered, list) or not answered:
            return [], PermanentPagerDutyError(
                "subscribe answered without a 'subscriptions' list", method="POST", path=path
            )
        results: dict[str, Any] = {}
        for entry in answered:
            if isinstance(entry, Mapping) and entry.get("subscriber_type", "team") == "team":
                results[str(entry.get("subscriber_id"))] = entry.get("result")
        done: list[_Pending] = []
        failed: list[str] = []
        for item in items:
            result = results.get(item.target_id)
            if result in ("success", "duplicate"):
                item.on_incident = result == "duplicate"
                done.append(item)
            else:
                failed.append(f"team {item.dept.team_name!r} ({item.target_id}): result {result!r}")
        if failed:
            return done, PermanentPagerDutyError(
                "subscribing failed for " + "; ".join(failed), method="POST", path=path
            )
        return done, None

    def _note(self, incident_id: str, items: list[_Pending], *, read_first: bool) -> None:
        """One note for the pass naming each department, its `as` and its policy."""
        path = f"/incidents/{incident_id}/notes"
        if read_first:
            notes = self.client.get(path).get("notes") or []
            existing = " ".join(str(n.get("content", "")) for n in notes if isinstance(n, Mapping))
            items = [
                i
                for i in items
                if note_tag(i.engagement.department, i.engagement.as_) not in existing
            ]
        if not items:
            return
        parts = []
        for item in items:
            as_ = item.engagement.as_
            how = (
                "responder request to its escalation policy"
                if as_ == "responder"
                else "its team subscribed to status updates"
            )
            parts.append(f"{item.dept.name} as {as_} ({how}), policy {item.engagement.policy}")
        tags = " ".join(note_tag(i.engagement.department, i.engagement.as_) for i in items)
        content = f"pdorgsync engaged {'; '.join(parts)}. {tags}"
        self.client.post(path, {"note": {"content": content}})
