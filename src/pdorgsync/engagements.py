"""Performing one engagement in PagerDuty, exactly once.

``core.policies.evaluate`` decides *who* to engage; this module makes it so:
a responder request to the department's escalation policy, or the department's
team subscribed to status updates, plus one incident note naming the policy.

Exactly once, across retries, duplicate deliveries and crashes, comes from two
checks made before any write: the ledger (``inbox.ledger``, keyed
``(incident, department, as)``) and a read of what the incident already has
(``GET /incidents/{id}`` for responder requests, ``.../status_updates/subscribers``
for subscriptions, ``.../notes`` for our note). A crash between a write and the
ledger row is therefore harmless: the next attempt finds the write on the
incident and only records it.

What it must never do: write anything for an engagement already in the ledger,
or treat a 200 from the subscribe call as success without checking each item's
``result`` (PagerDuty answers 200 even when an item failed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pdorgsync.abilities import RESPONDERS, TEAMS, WITHOUT, Abilities, read_abilities
from pdorgsync.core.policies import Engagement, managed_service_labels
from pdorgsync.errors import ConfigError, PermanentPagerDutyError
from pdorgsync.logs import get_logger
from pdorgsync.models.org import Department, Org, parse_marker
from pdorgsync.state.base import StateStore

__all__ = ["ApiClient", "Directory", "EngagementOutcome", "Engager", "Outcome", "note_tag"]

log = get_logger("pdorgsync.engagements")

# PagerDuty documents no ability name for status-update subscriptions (plan-gated,
# Business and higher): the 402 of the subscribe call is the answer (see abilities).
NO_SUBSCRIPTIONS = (
    "this PagerDuty account cannot subscribe teams to status updates (PagerDuty answered "
    "402: a plan-gated feature): subscriber engagements are skipped"
)

Outcome = Literal["engaged", "already_engaged", "skipped"]


class ApiClient(Protocol):
    """The slice of ``pagerduty.PagerDutyClient`` the worker uses."""

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]: ...

    def post(
        self, path: str, body: Mapping[str, Any], *, idempotent: bool = False
    ) -> dict[str, Any]: ...

    def list_all(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...


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


class Directory:
    """Department → PagerDuty ids (escalation policy, team), the bot user, managed labels.

    Objects are matched like the planner does: ownership marker first, then exact
    name. Lists are cached; a miss refreshes at most every ``min_refresh`` seconds
    (a department applied a minute ago is found without a restart), and everything
    refreshes after ``ttl`` seconds.
    """

    def __init__(
        self,
        client: ApiClient,
        org: Org,
        *,
        ttl: float = 300.0,
        min_refresh: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.org = org
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._monotonic = monotonic
        self._loaded_at: float | None = None
        self._eps: list[dict[str, Any]] = []
        self._teams: list[dict[str, Any]] = []
        self._services: list[dict[str, Any]] = []
        self._users: dict[str, str] = {}

    def set_org(self, org: Org) -> None:
        self.org = org
        self._loaded_at = None

    def refresh(self) -> None:
        self._eps = self.client.list_all("/escalation_policies")
        try:
            self._teams = self.client.list_all("/teams")
        except PermanentPagerDutyError as exc:
            if exc.status != 402:
                raise
            self._teams = []  # no "teams" ability (plan-gated): there are none to find
        self._services = self.client.list_all("/services")
        self._loaded_at = self._monotonic()

    def _ensure(self, *, missed: bool = False) -> None:
        now = self._monotonic()
        if (
            self._loaded_at is None
            or now - self._loaded_at >= self.ttl
            or (missed and now - self._loaded_at >= self.min_refresh)
        ):
            self.refresh()

    def _find(self, items: Iterable[dict[str, Any]], dept: Department, name: str) -> str | None:
        by_name = None
        for item in items:
            marker = parse_marker(item.get("description"))
            if marker == (self.org.org, dept.key):
                return str(item["id"])
            if by_name is None and item.get("name") == name:
                by_name = str(item["id"])
        return by_name

    def _lookup(self, kind: str, dept: Department) -> str | None:
        self._ensure()
        for attempt in range(2):
            if kind == "escalation_policy":
                found = self._find(self._eps, dept, dept.escalation_policy_name)
            else:
                found = self._find(self._teams, dept, dept.team_name)
            if found is not None or attempt == 1:
                return found
            self._ensure(missed=True)
        return None  # pragma: no cover - loop always returns

    def escalation_policy_id(self, dept: Department) -> str | None:
        return self._lookup("escalation_policy", dept)

    def team_id(self, dept: Department) -> str | None:
        return self._lookup("team", dept)

    def managed_labels(self) -> dict[str, list[str]]:
        """``{service id: labels}`` of the services this org manages."""
        self._ensure()
        return managed_service_labels(
            self.org, ((str(s["id"]), s.get("description")) for s in self._services if s.get("id"))
        )

    def user_id(self, email: str) -> str:
        """The id of the user with this email (``GET /users?query=``), cached forever."""
        key = email.casefold()
        if key not in self._users:
            for user in self.client.list_all("/users", {"query": email}):
                if str(user.get("email", "")).casefold() == key:
                    self._users[key] = str(user["id"])
                    break
            else:
                raise ConfigError(
                    f"PDORGSYNC_FROM_EMAIL: no PagerDuty user has the email {email}; "
                    "responder requests and notes need a real user as requester"
                )
        return self._users[key]


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
class Engager:
    """Performs engagements for one org; shared by the worker and ``engage --event``."""

    inbox: StateStore
    client: ApiClient
    org: Org
    from_email: str
    incident_notes: bool = True
    directory: Directory = field(init=False)

    def __post_init__(self) -> None:
        self.directory = Directory(self.client, self.org)
        self._abilities: Abilities | None = None
        self._no_subscriptions: str | None = None  # why, once PagerDuty answered 402
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
        key, as_ = engagement.department, engagement.as_

        def outcome(kind: Outcome, detail: str) -> EngagementOutcome:
            result = EngagementOutcome(incident_id, key, as_, engagement.policy, kind, detail)
            log.info(
                f"engagement.{kind}",
                incident_id=incident_id,
                department=key,
                as_=as_,
                policy=engagement.policy,
                detail=detail,
            )
            return result

        if self.inbox.has_engagement(incident_id, key, as_):
            return outcome("already_engaged", "recorded in the ledger")
        dept = self.org.department(key)
        if dept is None:
            return outcome("skipped", f"department {key!r} is not in the org file")
        if as_ == "responder" and not self.abilities().has(RESPONDERS):
            return outcome("skipped", self._lacking(WITHOUT[RESPONDERS]))
        if as_ == "subscriber" and not self.abilities().has(TEAMS):
            return outcome("skipped", self._lacking(WITHOUT[TEAMS]))
        if as_ == "subscriber" and self._no_subscriptions is not None:
            return outcome("skipped", self._no_subscriptions)
        incident = self.client.get(f"/incidents/{incident_id}").get("incident") or {}
        if incident.get("status") == "resolved":
            # The event may be old (a late retry, a replayed capture, the poll's
            # backlog): what counts is the incident now. Nobody is paged for it.
            return outcome("skipped", "the incident is resolved")
        if as_ == "responder":
            target_id = self.directory.escalation_policy_id(dept)
            if target_id is None:
                return outcome(
                    "skipped",
                    f"no escalation policy {dept.escalation_policy_name!r} in PagerDuty "
                    "(run pdorgsync apply; audit reports it as COV008)",
                )
            wrote = self._request_responders(
                incident_id, target_id, dept, engagement.message, incident
            )
            details = {"escalation_policy_id": target_id}
        else:
            target_id = self.directory.team_id(dept)
            if target_id is None:
                return outcome(
                    "skipped",
                    f"no team {dept.team_name!r} in PagerDuty "
                    "(run pdorgsync apply; audit reports it as COV008)",
                )
            try:
                wrote = self._subscribe_team(incident_id, target_id, dept)
            except PermanentPagerDutyError as exc:
                if exc.status != 402:
                    raise
                self._no_subscriptions = self._lacking(NO_SUBSCRIPTIONS)
                return outcome("skipped", self._no_subscriptions)
            details = {"team_id": target_id}
        if self.incident_notes:
            self._note(incident_id, dept, as_, engagement.policy)
        self.inbox.record_engagement(
            incident_id, key, as_, policy=engagement.policy, event_id=event_id, details=details
        )
        if wrote:
            what = "responder request sent" if as_ == "responder" else "team subscribed"
            return outcome("engaged", f"{what} ({target_id})")
        return outcome("already_engaged", f"already on the incident ({target_id})")

    def _request_responders(
        self,
        incident_id: str,
        ep_id: str,
        dept: Department,
        message: str,
        incident: Mapping[str, Any],
    ) -> bool:
        if incident_has_responder_request(incident, ep_id, dept.escalation_policy_name):
            return False
        self.client.post(
            f"/incidents/{incident_id}/responder_requests",
            {
                "requester_id": self.bot_user_id(),
                "message": message[:1000],
                "responder_request_targets": [
                    {
                        "responder_request_target": {
                            "id": ep_id,
                            "type": "escalation_policy_reference",
                        }
                    }
                ],
            },
        )
        return True

    def _subscribe_team(self, incident_id: str, team_id: str, dept: Department) -> bool:
        path = f"/incidents/{incident_id}/status_updates/subscribers"
        current = self.client.get(path).get("subscribers") or []
        if any(
            s.get("subscriber_id") == team_id and s.get("subscriber_type") == "team"
            for s in current
            if isinstance(s, Mapping)
        ):
            return False
        body = self.client.post(
            path, {"subscribers": [{"subscriber_id": team_id, "subscriber_type": "team"}]}
        )
        items = body.get("subscriptions")
        if not isinstance(items, list) or not items:
            raise PermanentPagerDutyError(
                "subscribe answered without a 'subscriptions' list", method="POST", path=path
            )
        for item in items:
            result = item.get("result") if isinstance(item, Mapping) else None
            if result not in ("success", "duplicate"):
                raise PermanentPagerDutyError(
                    f"subscribing team {dept.team_name!r} ({team_id}) failed: result {result!r}",
                    method="POST",
                    path=path,
                )
        return True

    def _note(self, incident_id: str, dept: Department, as_: str, policy: str) -> None:
        path = f"/incidents/{incident_id}/notes"
        tag = note_tag(dept.key, as_)
        notes = self.client.get(path).get("notes") or []
        if any(isinstance(n, Mapping) and tag in str(n.get("content", "")) for n in notes):
            return
        how = (
            "responder request to its escalation policy"
            if as_ == "responder"
            else "its team subscribed to status updates"
        )
        content = f"pdorgsync engaged {dept.name} as {as_} ({how}), policy {policy}. {tag}"
        self.client.post(path, {"note": {"content": content}})
