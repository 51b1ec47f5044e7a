"""The org file (``org.yaml``, SPEC §1) as frozen pydantic models.

Field-level rules live on the fields; rules that span the file (unique keys,
references between departments, derived-name clashes) live in
``models.org_checks.check_org``, which returns located problems as ``(path, message)`` pairs so the
loader can attach line and column. Nothing here touches the network or disk.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Literal, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)

# Re-exported: the marker helpers are imported from here across the package.
from pdorgsync.models.markers import MARKER_PREFIX as MARKER_PREFIX
from pdorgsync.models.markers import MARKER_RE as MARKER_RE
from pdorgsync.models.markers import managed_description as managed_description
from pdorgsync.models.markers import parse_marker as parse_marker
from pdorgsync.models.zones import zone_problem

KEY_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
LABEL_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROTATION_HOURS_RE = re.compile(r"^([0-9]+)h$")
HHMM_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Function = Literal[
    "engineering",
    "support",
    "marketing",
    "product",
    "executive",
    "sales",
    "hr",
    "finance",
    "security",
    "legal",
    "other",
]
Coverage = Literal["always", "business_hours", "none"]
Urgency = Literal["high", "low", "severity_based"]


def _key(value: str) -> str:
    if not KEY_RE.match(value):
        raise ValueError(
            f"expected lower-case letters, digits and dashes ([a-z0-9-]+), got {value!r}"
        )
    return value


def _email(value: str) -> str:
    if not EMAIL_RE.match(value):
        raise ValueError(f"expected an email address, got {value!r}")
    return value.lower()


def _label(value: str) -> str:
    if not LABEL_RE.match(value):
        raise ValueError(
            f"expected a label of lower-case letters, digits, '-' or '_', got {value!r}"
        )
    return value


def _zone(value: str) -> str:
    """Only PagerDuty's documented identifiers (SPEC §1 "Time zones"; models/zones.py)."""
    problem = zone_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _hhmm(value: str) -> str:
    if not HHMM_RE.match(value):
        raise ValueError(f"expected a time of day HH:MM (00:00-23:59), got {value!r}")
    return value


_WEEKDAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri")

Key = Annotated[str, AfterValidator(_key)]
Email = Annotated[str, AfterValidator(_email)]
Label = Annotated[str, AfterValidator(_label)]
TimeZone = Annotated[str, AfterValidator(_zone)]
TimeOfDay = Annotated[str, AfterValidator(_hhmm)]


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def rotation_seconds(rotation: str) -> int:
    """``daily`` → 86400, ``weekly`` → 604800, ``"<N>h"`` → N·3600 (SPEC §1)."""
    if rotation == "daily":
        return 86_400
    if rotation == "weekly":
        return 604_800
    match = ROTATION_HOURS_RE.match(rotation)
    assert match, rotation  # validated at load
    return int(match.group(1)) * 3600


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Defaults(_Model):
    time_zone: TimeZone = "Etc/UTC"
    # Strict: YAML 1.2 reads `on`/`yes` as strings, and pydantic would turn them back into True.
    adopt_existing: StrictBool = False


class BusinessHours(_Model):
    days: list[Day] = Field(default_factory=lambda: list(_WEEKDAYS), min_length=1)
    start: TimeOfDay = "09:00"
    end: TimeOfDay = "17:00"

    @field_validator("days")
    @classmethod
    def _unique_days(cls, value: list[Day]) -> list[Day]:
        if len(set(value)) != len(value):
            raise ValueError("days must not repeat")
        return value

    def model_post_init(self, _context: object) -> None:
        if parse_hhmm(self.start) >= parse_hhmm(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")


def _full_window(hours: float, kind: str) -> NoReturn:
    raise ValueError(
        f"a {kind} window of {hours:g} hours is the whole {'day' if kind == 'daily' else 'week'}, "
        "which PagerDuty refuses (code 3001); omit this restriction (a layer without "
        "restrictions is on call around the clock)"
    )


class Restriction(_Model):
    """A weekly window (with ``day``) or a daily window (without)."""

    day: Day | None = None
    start: TimeOfDay
    hours: float = Field(gt=0)

    @field_validator("hours")
    @classmethod
    def _max_hours(cls, value: float, info: ValidationInfo) -> float:
        # PagerDuty refuses a restriction as long as its period (code 3001:
        # hashicorp/terraform#11135, terraform-provider-pagerduty PR #439): a window
        # covering the whole day/week is written by leaving restrictions out.
        daily = "day" in info.data and info.data["day"] is None  # an invalid day: judge as weekly
        period, kind = (24, "daily") if daily else (168, "weekly")
        if value == period:
            return _full_window(value, kind)
        if value > period:
            what = "a daily window (no 'day')" if daily else "a weekly window"
            raise ValueError(f"{what} lasts less than {period} hours, got {value:g}")
        return value

    @property
    def duration(self) -> timedelta:
        return timedelta(hours=self.hours)


class Layer(_Model):
    name: str = Field(min_length=1, max_length=100)
    rotation: str
    start: datetime
    users: list[Email] = Field(min_length=1)
    restrictions: list[Restriction] = Field(default_factory=list)

    @field_validator("start")
    @classmethod
    def _whole_minute(cls, value: datetime) -> datetime:
        # PagerDuty zeroes seconds in layer times (terraform-provider-pagerduty PR #483,
        # #659), so a start with seconds would drift on every plan.
        if value.second or value.microsecond:
            whole = value.replace(second=0, microsecond=0).isoformat()
            raise ValueError(
                "PagerDuty keeps schedule times to the minute (it zeroes seconds); "
                f"write {whole!r} or another whole minute"
            )
        return value

    @field_validator("rotation")
    @classmethod
    def _rotation(cls, value: str) -> str:
        if value in ("daily", "weekly"):
            return value
        match = ROTATION_HOURS_RE.match(value)
        if match and 1 <= int(match.group(1)) <= 8760:
            return value
        raise ValueError(f"expected daily, weekly or <N>h with 1 <= N <= 8760, got {value!r}")

    @property
    def turn_seconds(self) -> int:
        return rotation_seconds(self.rotation)


class Schedule(_Model):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    layers: list[Layer] = Field(min_length=1)


Target = str  # "schedule" | "schedule:<key>" | "user:<email>", checked by _target


def _target(value: str) -> str:
    if value == "schedule":
        return value
    kind, sep, rest = value.partition(":")
    if sep and kind == "schedule":
        return f"schedule:{_key(rest)}"
    if sep and kind == "user":
        return f"user:{_email(rest)}"
    raise ValueError(
        f"expected 'schedule', 'schedule:<department key>' or 'user:<email>', got {value!r}"
    )


class Level(_Model):
    delay_minutes: int = Field(default=30, ge=0)
    targets: list[Annotated[str, AfterValidator(_target)]] = Field(min_length=1, max_length=10)


class EscalationPolicy(_Model):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    loops: int = Field(default=0, ge=0, le=9)
    levels: list[Level] = Field(min_length=1)


class Service(_Model):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = None
    labels: list[Label] = Field(default_factory=list)
    urgency: Urgency = "high"


class Team(_Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)


class Department(_Model):
    key: Key
    name: str = Field(min_length=1, max_length=100)
    function: Function = "other"
    point_of_contact: Email | None = None
    members: list[Email] = Field(default_factory=list)
    coverage: Coverage = "always"
    business_hours: BusinessHours | None = None
    time_zone: TimeZone | None = None
    team: Team | None = None
    schedule: Schedule | None = None
    escalation_policy: EscalationPolicy | None = None
    service: Service | None = None

    # Derived object names (SPEC §1 defaults).
    @property
    def team_name(self) -> str:
        return self.team.name if self.team and self.team.name else self.name

    @property
    def schedule_name(self) -> str:
        return (
            self.schedule.name if self.schedule and self.schedule.name else None
        ) or f"{self.name} On-Call"

    @property
    def escalation_policy_name(self) -> str:
        ep = self.escalation_policy
        return (ep.name if ep and ep.name else None) or f"{self.name} Escalation"

    @property
    def service_name(self) -> str:
        return (self.service.name if self.service and self.service.name else None) or self.name

    @property
    def effective_business_hours(self) -> BusinessHours:
        return self.business_hours or BusinessHours()

    def all_people(self) -> list[str]:
        """Every email the department names (members, contact, layers, user targets), in order."""
        seen: dict[str, None] = {}
        if self.point_of_contact:
            seen[self.point_of_contact] = None
        for email in self.members:
            seen[email] = None
        if self.schedule:
            for layer in self.schedule.layers:
                for email in layer.users:
                    seen[email] = None
        if self.escalation_policy:
            for level in self.escalation_policy.levels:
                for target in level.targets:
                    if target.startswith("user:"):
                        seen[target[5:]] = None
        return list(seen)


class Org(_Model):
    version: Literal[1]
    org: Key
    defaults: Defaults = Field(default_factory=Defaults)
    service_labels: dict[str, list[Label]] = Field(default_factory=dict)
    departments: list[Department] = Field(default_factory=list)

    def zone_of(self, department: Department) -> str:
        return department.time_zone or self.defaults.time_zone

    @cached_property
    def department_index(self) -> tuple[object, int, dict[str, Department]]:
        """Departments by key, built on first use (not a field: ignored by ``==``)."""
        index: dict[str, Department] = {}
        for dept in self.departments:
            index.setdefault(dept.key, dept)  # the first one wins, as a scan would
        return self.departments, len(self.departments), index

    def department(self, key: str) -> Department | None:
        built_from, size, index = self.department_index
        if built_from is not self.departments or size != len(self.departments):
            del self.__dict__["department_index"]  # a copy with other departments
            built_from, size, index = self.department_index
        return index.get(key)

    def marker(self, department_key: str) -> str:
        """The ownership marker line for an object of ``department_key``."""
        return f"{MARKER_PREFIX} (org={self.org}, department={department_key})"
