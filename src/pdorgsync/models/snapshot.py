"""Observed PagerDuty state as plain frozen data (what ``observe.py`` builds).

The pure core (planning, coverage) reads only these models, never the API. Fields
hold what PagerDuty returned, normalised just enough to compare: ids as strings,
times as aware datetimes, references reduced to ids. ``None`` for a collection
means "not fetched", which is different from "fetched and empty".
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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
    email: str  # lower-cased
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

    def user_by_email(self, email: str) -> User | None:
        email = email.lower()
        return next((u for u in self.users if u.email == email), None)

    def user_by_id(self, user_id: str) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)

    def schedule_by_id(self, schedule_id: str) -> Schedule | None:
        return next((s for s in self.schedules if s.id == schedule_id), None)

    def escalation_policy_by_id(self, ep_id: str) -> EscalationPolicy | None:
        return next((e for e in self.escalation_policies if e.id == ep_id), None)
