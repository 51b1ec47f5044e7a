"""The sandbox account: every PagerDuty object it holds, behind one lock.

Objects are kept close to PagerDuty's wire form (plain dicts) so handlers stay
short; references (``{id, type, summary, self, html_url}``) are made on the way
out. Ids look like PagerDuty's ("P" + 6 upper-case letters/digits) and are
deterministic for a given ``random_seed``. Time comes from an injected clock so
tests and the token bucket never depend on the wall clock.
"""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pdorgsync.models import zones
from pdorgsync.sandbox.protocol import invalid, not_found

ID_ALPHABET = string.ascii_uppercase + string.digits
PLURAL = {
    "user": "users",
    "team": "teams",
    "schedule": "schedules",
    "escalation_policy": "escalation_policies",
    "service": "services",
    "incident": "incidents",
    "priority": "priorities",
    "contact_method": "contact_methods",
    "notification_rule": "notification_rules",
    "webhook_subscription": "webhook_subscriptions",
    "log_entry": "log_entries",
    "tag": "tags",
}
DEFAULT_ABILITIES = [
    "teams",
    "coordinated_responding",
    "urgencies",
    "response_plays",
    "status_update_subscribers",
    "webhooks_v3",
    "priorities",
]


# PagerDuty fixes the team role of some base roles (support.pagerduty.com, "Advanced
# Permissions" → team roles, and "User Roles"; SPEC §1 "Account roles"): the account
# owner and global admins are managers of every team they are on, stakeholder seats
# (read-only users, limited stakeholders) are always observers. Asking for another
# role leaves the fixed one in place.
FIXED_TEAM_ROLES = {
    "owner": "manager",
    "admin": "manager",
    "read_only_user": "observer",
    "read_only_limited_user": "observer",
}


def team_role_of(user: dict[str, Any], asked: str) -> str:
    """The team role PagerDuty stores for ``user`` when ``asked`` is requested."""
    return FIXED_TEAM_ROLES.get(str(user.get("role") or "user"), asked)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None, zone: str | None = None) -> str | None:
    """PagerDuty's timestamp form: ISO-8601 with offset (``Z`` for UTC)."""
    if moment is None:
        return None
    if zone:
        moment = moment.astimezone(ZoneInfo(zone))
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if zone in (None, "UTC", "Etc/UTC") else text


def parse_time(value: Any, field: str) -> datetime:
    """An ISO-8601 timestamp from a request; naive values are UTC like PagerDuty's."""
    if not isinstance(value, str):
        raise invalid(f"{field} must be an ISO-8601 timestamp")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(f"{field} is not a valid ISO-8601 timestamp: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_zone(value: Any, field: str = "time_zone", *, documented_only: bool = True) -> str:
    """A zone from a request: PagerDuty accepts only the identifiers it documents.

    PagerDuty/developer-docs ``docs/REST-API/06-Types.md`` "Time Zone" lists them
    (``models/pagerduty_time_zones.json``); other IANA names are refused with 400,
    ``US/Mountain`` in terraform-provider-pagerduty #796 and ``UTC`` in #1148. A seed
    stands for data PagerDuty already holds (``documented_only=False``): PagerDuty
    itself returns ``UTC`` for some schedules (#1148), so a seed may hold any IANA name.
    """
    if not isinstance(value, str) or not value:
        raise invalid(f"{field} is required")
    try:
        ZoneInfo(value)
    except (KeyError, ValueError) as exc:
        raise invalid(f"{field} {value!r} is not a known time zone") from exc
    if documented_only and not zones.is_accepted(value):
        raise invalid(f"{field} {value!r} is not a valid time zone")
    return value


class State:
    """One PagerDuty account. Callers hold ``lock`` around every read and write."""

    def __init__(
        self,
        *,
        random_seed: int = 0,
        clock: Callable[[], datetime] = utc_now,
        base_url: str = "https://api.pagerduty.com",
    ) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(random_seed)
        self.clock = clock
        self.base_url = base_url
        self.users: dict[str, dict[str, Any]] = {}
        self.contact_methods: dict[str, dict[str, Any]] = {}  # id -> cm (with "user_id")
        self.notification_rules: dict[str, dict[str, Any]] = {}  # id -> rule (with "user_id")
        self.teams: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, str]] = {}  # team id -> user id -> role
        self.schedules: dict[str, dict[str, Any]] = {}
        self.escalation_policies: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.priorities: dict[str, dict[str, Any]] = {}
        self.abilities: list[str] = list(DEFAULT_ABILITIES)
        self.incidents: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}  # incident id -> notes
        self.subscribers: dict[str, list[dict[str, Any]]] = {}  # incident id -> subscribers
        self.webhook_subscriptions: dict[str, dict[str, Any]] = {}
        self.log_entries: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, Any]] = {}
        self.entity_tags: dict[tuple[str, str], list[str]] = {}  # (entity_type, id) -> tag ids
        self.incident_counter = 0
        self._issued: set[str] = set()
        # Reverse look-ups built once per read (see ``reading``); None outside one.
        self._indexes: dict[str, dict[Any, list[str]]] | None = None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Within: one read-only request under ``lock``, so the account cannot change.

        The reverse look-ups below (teams of a user, policies targeting an object,
        services of a policy) are then indexed once on first use instead of scanning
        every team, policy or service for each object of a list page (quadratic at
        thousands of departments). Outside, or for writes, they scan as before.
        """
        with self.lock:
            self._indexes = {}
            try:
                yield
            finally:
                self._indexes = None

    def _indexed(
        self, name: str, build: Callable[[], dict[Any, list[str]]]
    ) -> dict[Any, list[str]] | None:
        if self._indexes is None:
            return None
        index = self._indexes.get(name)
        if index is None:
            index = self._indexes[name] = build()
        return index

    # -- ids and references -------------------------------------------------

    def new_id(self) -> str:
        while True:
            candidate = "P" + "".join(self.rng.choice(ID_ALPHABET) for _ in range(6))
            if candidate not in self._issued:
                self._issued.add(candidate)
                return candidate

    def table(self, kind: str) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = getattr(self, PLURAL[kind])
        return table

    def get(self, kind: str, object_id: str) -> dict[str, Any]:
        """The object or PagerDuty's 404 (code 2100)."""
        found = self.table(kind).get(object_id)
        # An upgraded (shift-based, v3) schedule is gone from the v2 endpoints: it
        # "disappears from GET /schedules" and lives under /v3/schedules (PagerDuty
        # developer docs, "Schedules v2 to v3 Upgrade"). What a v2 read of its id
        # answers is not documented; a 404 is the safe choice here: pdorgsync never
        # reads or writes it through v2.
        if found is not None and kind == "schedule" and found.get("v3"):
            found = None
        if found is None:
            raise not_found(f"{kind.replace('_', ' ').title()} {object_id}")
        return found

    def self_url(self, kind: str, object_id: str) -> str:
        return f"{self.base_url}/{PLURAL[kind]}/{object_id}"

    def html_url(self, kind: str, object_id: str) -> str:
        return f"https://acme.pagerduty.com/{PLURAL[kind]}/{object_id}"

    def summary(self, kind: str, object_id: str) -> str:
        found = self.table(kind).get(object_id) or {}
        text = found.get("name") or found.get("title") or found.get("summary") or object_id
        return str(text)

    def ref(self, kind: str, object_id: str) -> dict[str, Any]:
        """A PagerDuty reference ``{id, type: <kind>_reference, summary, self, html_url}``."""
        return {
            "id": object_id,
            "type": f"{kind}_reference",
            "summary": self.summary(kind, object_id),
            "self": self.self_url(kind, object_id),
            "html_url": self.html_url(kind, object_id),
        }

    def stamp(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Add the server-made fields every full object carries."""
        obj.update(
            summary=self.summary(kind, obj["id"]),
            self=self.self_url(kind, obj["id"]),
            html_url=self.html_url(kind, obj["id"]),
        )
        return obj

    def resolve_ref(self, value: Any, kinds: tuple[str, ...], field: str) -> tuple[str, str]:
        """``(kind, id)`` of a reference in a request; 400 if malformed, 404 if missing."""
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise invalid(f"{field} must be a reference with an id")
        ref_type = str(value.get("type", ""))
        kind = ref_type.removesuffix("_reference")
        if kind not in kinds:
            if ref_type or len(kinds) != 1:
                raise invalid(f"{field} has an unsupported type {ref_type!r}")
            kind = kinds[0]
        if value["id"] not in self.table(kind):
            raise not_found(f"{kind.replace('_', ' ').title()} {value['id']}")
        return kind, value["id"]

    # -- lookups ------------------------------------------------------------

    def user_by_email(self, email: str | None) -> dict[str, Any] | None:
        if not email:
            return None
        email = email.strip().lower()
        return next((u for u in self.users.values() if u["email"].lower() == email), None)

    def requester(self, from_header: str | None) -> dict[str, Any]:
        """The user named by ``From``; PagerDuty answers 400 when it is missing or unknown."""
        if not from_header:
            raise invalid("A From header with a valid user email is required")
        user = self.user_by_email(from_header)
        if user is None:
            raise invalid(f"Requester User Not Found: {from_header}")
        return user

    def teams_of_user(self, user_id: str) -> list[str]:
        index = self._indexed("teams_of_user", self._teams_by_user)
        if index is not None:
            return list(index.get(user_id, ()))
        return [team_id for team_id, members in self.members.items() if user_id in members]

    def owned_by(self, table: str, user_id: str) -> list[dict[str, Any]]:
        """The ``contact_methods`` or ``notification_rules`` of a user, in table order."""
        rows: dict[str, dict[str, Any]] = getattr(self, table)
        index = self._indexed(table, lambda: self._by_user(rows))
        if index is not None:
            return [rows[row_id] for row_id in index.get(user_id, ())]
        return [row for row in rows.values() if row["user_id"] == user_id]

    @staticmethod
    def _by_user(rows: dict[str, dict[str, Any]]) -> dict[Any, list[str]]:
        index: dict[Any, list[str]] = {}
        for row_id, row in rows.items():
            index.setdefault(row["user_id"], []).append(row_id)
        return index

    def _teams_by_user(self) -> dict[Any, list[str]]:
        index: dict[Any, list[str]] = {}
        for team_id, members in self.members.items():
            for user_id in members:  # a dict: each user once per team
                index.setdefault(user_id, []).append(team_id)
        return index

    def _policies_by_target(self) -> dict[Any, list[str]]:
        index: dict[Any, list[str]] = {}
        for ep in self.escalation_policies.values():
            targets = {
                (t["type"].removesuffix("_reference"), t["id"])
                for rule in ep["escalation_rules"]
                for t in rule["targets"]
            }
            for target in targets:
                index.setdefault(target, []).append(ep["id"])
        return index

    def escalation_policies_targeting(self, kind: str, object_id: str) -> list[str]:
        index = self._indexed("policies_by_target", self._policies_by_target)
        if index is not None:
            return list(index.get((kind, object_id), ()))
        found = []
        for ep in self.escalation_policies.values():
            for rule in ep["escalation_rules"]:
                if any(
                    t["id"] == object_id and t["type"].removesuffix("_reference") == kind
                    for t in rule["targets"]
                ):
                    found.append(ep["id"])
                    break
        return found

    def upgrade_schedule(self, schedule_id: str) -> None:
        """Upgrade a layer-based schedule to shift-based (v3), as PagerDuty's upgrade
        tool does: same id, same on-call, only reachable under ``/v3/schedules``."""
        self.get("schedule", schedule_id)["v3"] = True

    def is_v3_schedule(self, schedule_id: str) -> bool:
        return bool(self.schedules.get(schedule_id, {}).get("v3"))

    def services_using(self, ep_id: str) -> list[str]:
        index = self._indexed("services_by_policy", self._services_by_policy)
        if index is not None:
            return list(index.get(ep_id, ()))
        return [s["id"] for s in self.services.values() if s["escalation_policy_id"] == ep_id]

    def _services_by_policy(self) -> dict[Any, list[str]]:
        index: dict[Any, list[str]] = {}
        for service in self.services.values():
            index.setdefault(service["escalation_policy_id"], []).append(service["id"])
        return index

    def now(self) -> datetime:
        return self.clock()
