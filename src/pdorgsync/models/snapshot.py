"""Observed PagerDuty state as plain frozen data (what ``observe.py`` builds).

The pure core (planning, coverage) reads only these models, never the API. Fields
hold what PagerDuty returned, normalised just enough to compare: ids as strings,
times as aware datetimes, references reduced to ids. ``None`` for a collection
means "not fetched", which is different from "fetched and empty".
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class _Snap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Ref(_Snap):
    """A PagerDuty reference reduced to what we compare: ``id`` and ``type``."""

    id: str
    type: str


class ContactMethod(_Snap):
    id: str
    type: str  # email_contact_method | phone_contact_method | sms_contact_method | push_notification_contact_method
    address: str | None = None


class NotificationRule(_Snap):
    id: str
    urgency: str  # high | low
    start_delay_in_minutes: int = 0
    contact_method_id: str | None = None


class User(_Snap):
    id: str
    name: str
    email: Annotated[str, AfterValidator(str.lower)]  # look-ups are by lower-case email
    role: str = "user"
    time_zone: str | None = None
    contact_methods: list[ContactMethod] | None = None  # None: not fetched
    notification_rules: list[NotificationRule] | None = None  # None: not fetched


class TeamMember(_Snap):
    user_id: str
    role: str  # observer | responder | manager


class Team(_Snap):
    id: str
    name: str
    description: str | None = None
    members: list[TeamMember] | None = None  # None: not fetched


class Restriction(_Snap):
    type: str  # daily_restriction | weekly_restriction
    start_time_of_day: str  # HH:MM:SS
    duration_seconds: int
    start_day_of_week: int | None = None  # 1 = Monday … 7 = Sunday


class ScheduleLayer(_Snap):
    id: str
    name: str
    start: datetime
    end: datetime | None = None
    rotation_virtual_start: datetime
    rotation_turn_length_seconds: int
    user_ids: list[str]  # rotation order
    restrictions: list[Restriction] = Field(default_factory=list)


class Schedule(_Snap):
    id: str
    name: str
    type: str = "schedule"  # "schedule_v3" for shift-based schedules (CONTRACT §9.11): skip
    description: str | None = None
    time_zone: str
    user_ids: list[str] = Field(default_factory=list)  # from the list response
    team_ids: list[str] = Field(default_factory=list)
    layers: list[ScheduleLayer] | None = None  # None: details not fetched


class EscalationRule(_Snap):
    id: str | None = None
    escalation_delay_in_minutes: int
    targets: list[Ref]


class EscalationPolicy(_Snap):
    id: str
    name: str
    description: str | None = None
    num_loops: int = 0
    rules: list[EscalationRule] = Field(default_factory=list)
    team_ids: list[str] = Field(default_factory=list)
    service_ids: list[str] = Field(default_factory=list)


class Service(_Snap):
    id: str
    name: str
    description: str | None = None
    status: str = "active"  # active | warning | critical | maintenance | disabled
    escalation_policy_id: str | None = None
    urgency: str | None = None  # constant rule's urgency; None for support-hours rules
    team_ids: list[str] = Field(default_factory=list)


class Snapshot(_Snap):
    """Everything observed in one pass. Lookups are by id or (lower-case) email."""

    users: list[User] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    escalation_policies: list[EscalationPolicy] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    observed_at: datetime | None = None

    @cached_property
    def lookup_tables(self) -> dict[str, tuple[object, int, dict[Any, Any]]]:
        """Look-up tables built on first use (not a field: ignored by ``==`` and dumps).

        Each remembers the list it was built from, so a copy with other users
        (``model_copy(update=...)`` shares this dict) rebuilds its own.
        """
        return {}

    def _table(
        self, name: str, items: Sequence[Any], key: Callable[[Any], Hashable | None]
    ) -> dict[Any, Any]:
        cached = self.lookup_tables.get(name)
        if cached is None or cached[0] is not items or cached[1] != len(items):
            table: dict[Any, Any] = {}
            for item in items:
                found = key(item)
                if found is not None:
                    table.setdefault(found, item)  # the first one wins, as a scan would
            cached = (items, len(items), table)
            self.lookup_tables[name] = cached
        return cached[2]

    def user_by_email(self, email: str) -> User | None:
        table = self._table("users.email", self.users, lambda u: u.email)
        found: User | None = table.get(email.lower())
        return found

    def user_by_id(self, user_id: str) -> User | None:
        found: User | None = self._table("users.id", self.users, lambda u: u.id).get(user_id)
        return found

    def team_by_id(self, team_id: str) -> Team | None:
        found: Team | None = self._table("teams.id", self.teams, lambda t: t.id).get(team_id)
        return found

    def schedule_by_id(self, schedule_id: str) -> Schedule | None:
        table = self._table("schedules.id", self.schedules, lambda s: s.id)
        found: Schedule | None = table.get(schedule_id)
        return found

    def escalation_policy_by_id(self, ep_id: str) -> EscalationPolicy | None:
        table = self._table("escalation_policies.id", self.escalation_policies, lambda e: e.id)
        found: EscalationPolicy | None = table.get(ep_id)
        return found

    def _collection(self, kind: str) -> Sequence[Team | Schedule | EscalationPolicy | Service]:
        collections: dict[str, Sequence[Team | Schedule | EscalationPolicy | Service]] = {
            "team": self.teams,
            "schedule": self.schedules,
            "escalation_policy": self.escalation_policies,
            "service": self.services,
        }
        return collections[kind]

    def by_marker(
        self, kind: str, org: str, department: str
    ) -> Team | Schedule | EscalationPolicy | Service | None:
        """The first ``kind`` object whose description carries the ownership marker."""
        from pdorgsync.models.org import parse_marker

        items = self._collection(kind)
        table = self._table(f"{kind}.marker", items, lambda o: parse_marker(o.description))
        found: Team | Schedule | EscalationPolicy | Service | None = table.get((org, department))
        return found

    def by_name(self, kind: str, name: str) -> Team | Schedule | EscalationPolicy | Service | None:
        """The first ``kind`` object with exactly this name."""
        table = self._table(f"{kind}.name", self._collection(kind), lambda o: o.name)
        found: Team | Schedule | EscalationPolicy | Service | None = table.get(name)
        return found
