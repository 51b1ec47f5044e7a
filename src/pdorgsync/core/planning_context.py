"""What every part of the planner reads: the plan's inputs, indexed once, and a department's
matches.

``planning.py`` matches each department to the observed objects (``DepartmentPlan``)
and hands a ``PlanContext`` to the change builders: ``planning_objects`` (team,
escalation policy, service), ``planning_memberships``, ``planning_schedules`` and
``planning_deletes``. Pure like the rest of ``core``: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pdorgsync.models.org import Department, Org, managed_description, parse_marker
from pdorgsync.models.plan import Conflict, placeholder
from pdorgsync.models.snapshot import Snapshot

Path = tuple[str | int, ...]
Locate = Callable[[Path], str | None]

KIND_LABEL = {
    "team": "team",
    "team_membership": "team membership",
    "schedule": "schedule",
    "escalation_policy": "escalation policy",
    "service": "service",
}

# PagerDuty fixes the team role of some account (base) roles (support.pagerduty.com,
# "Advanced Permissions" → team roles; SPEC §1 "Account roles"): owner and admins are
# always team managers, stakeholder seats always observers. Wanting that fixed role is
# the only way not to see drift on them forever.
FIXED_TEAM_ROLES = {
    "owner": "manager",
    "admin": "manager",
    "read_only_user": "observer",
    "read_only_limited_user": "observer",
}
STAKEHOLDER_ROLES = frozenset({"read_only_user", "read_only_limited_user"})


@dataclass(slots=True)
class Match:
    """The observed object a department's object of one kind is matched to."""

    obj: Any = None  # the snapshot object, or None (create)
    adopt: bool = False


@dataclass(slots=True)
class DepartmentPlan:
    """One department of the file while it is planned: its matches and its conflicts."""

    dept: Department
    index: int
    conflicts: list[Conflict] = field(default_factory=list)
    matches: dict[str, Match] = field(default_factory=dict)
    # Each person the department names, resolved once while it is matched (complete
    # when it has no conflict), so the builders read this small table and not the
    # account-wide ones: email -> user id, and user id -> account role.
    people: dict[str, str] = field(default_factory=dict)
    account_roles: dict[str, str] = field(default_factory=dict)

    def id_or_placeholder(self, kind: str) -> str:
        """The matched object's id, or the placeholder a create of it resolves."""
        match = self.matches.get(kind)
        if match is not None and match.obj is not None:
            return str(match.obj.id)
        return placeholder(kind, self.dept.key)

    def team_role(self, user_id: str, role: str) -> str:
        """The role PagerDuty will hold for ``user_id`` when ``role`` is asked for."""
        return FIXED_TEAM_ROLES.get(self.account_roles.get(user_id, "user"), role)


@dataclass(frozen=True)
class PlanContext:
    """The plan's inputs and the look-ups every builder needs, built once per plan."""

    org: Org
    snap: Snapshot
    now: datetime
    at_next_handoff: bool
    locate: Locate
    teams_enabled: bool
    user_ids: dict[str, str]  # email (lower case) -> user id
    emails: dict[str, str]  # user id -> email
    base_roles: dict[str, str]  # user id -> account role
    objects: dict[str, Sequence[Any]]  # kind -> observed objects
    # kind -> object id -> (org, department) of its ownership marker, parsed once per plan
    owners: dict[str, dict[str, tuple[str, str]]]

    @classmethod
    def build(
        cls,
        org: Org,
        snapshot: Snapshot,
        *,
        now: datetime,
        at_next_handoff: bool,
        locate: Locate,
        teams_enabled: bool,
    ) -> PlanContext:
        objects: dict[str, Sequence[Any]] = {
            "team": snapshot.teams,
            "schedule": snapshot.schedules,
            "escalation_policy": snapshot.escalation_policies,
            "service": snapshot.services,
        }
        owners = {
            kind: {
                obj.id: owner
                for obj in objs
                if (owner := parse_marker(obj.description)) is not None
            }
            for kind, objs in objects.items()
        }
        return cls(
            org=org,
            snap=snapshot,
            now=now,
            at_next_handoff=at_next_handoff,
            locate=locate,
            teams_enabled=teams_enabled,
            user_ids={u.email: u.id for u in snapshot.users},  # lower case already
            emails={u.id: u.email for u in snapshot.users},
            base_roles={u.id: u.role for u in snapshot.users},
            objects=objects,
            owners=owners,
        )

    def description(self, dept: Department, text: str | None = None) -> str:
        """The managed description of one of ``dept``'s objects (the marker appended)."""
        return managed_description(text or dept.name, self.org.marker(dept.key))
