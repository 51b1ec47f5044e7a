"""The import's working state (``core.importing``): what every step of the mapping
reads (the snapshot, the org id, ``now``, users by id, names that clash) and fills in
(the departments drafted so far, which department took which object, notes for the
top of the file), with the checks each step shares; plus the ``Note`` vocabulary and
the categories of what does not fit (SPEC §6). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pdorgsync.core.import_values import Unfit
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import parse_marker

Path = tuple[str | int, ...]
HORIZON_DAYS = 28
STAKEHOLDER_ROLES = ("read_only_user", "read_only_limited_user")
ACCOUNT_MANAGER_ROLES = ("owner", "admin")  # PagerDuty makes them team managers (SPEC §1)

# Summary categories of "does not fit" (SPEC §6); the order is the summary's order.
SECOND_SCHEDULE = "second schedule of a team"
SECOND_EP = "second escalation policy of a team"
SECOND_SERVICE = "second service of a team"
TEAMLESS_SCHEDULE = "schedule with no team"
TEAMLESS_EP = "escalation policy with no team"
TEAMLESS_SERVICE = "service with no department"
V3_SCHEDULE = "shift-based (v3) schedule"
ENDED_LAYER = "layer that has ended"
ENDING_LAYER = "layer with an end date"
EMPTY_LAYER = "layer without users"
UNFIT_SCHEDULE = "schedule the org file cannot describe"
UNFIT_EP = "escalation policy the org file cannot describe"
UNFIT_SERVICE = "service the org file cannot describe"
UNFIT_TEAM = "team the org file cannot describe"
EXTRA_MANAGER = "team manager beyond the point of contact"
OBSERVER = "team observer"
OVERRIDE = "schedule override"
CATEGORIES = (
    SECOND_SCHEDULE,
    SECOND_EP,
    SECOND_SERVICE,
    TEAMLESS_SCHEDULE,
    TEAMLESS_EP,
    TEAMLESS_SERVICE,
    V3_SCHEDULE,
    ENDED_LAYER,
    ENDING_LAYER,
    EMPTY_LAYER,
    UNFIT_SCHEDULE,
    UNFIT_EP,
    UNFIT_SERVICE,
    UNFIT_TEAM,
    EXTRA_MANAGER,
    OBSERVER,
    OVERRIDE,
)


@dataclass(frozen=True)
class Note:
    """A YAML comment: before the key at ``path`` (or at the end of its line when ``inline``).

    ``category`` is set for what does not fit (counted in the summary), None for a remark.
    """

    path: Path
    text: str
    category: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class Override:
    """A schedule override as read from ``GET /schedules/{id}/overrides``."""

    start: datetime
    end: datetime
    user_id: str


def by_name(items: Iterable[Any]) -> list[Any]:
    """Objects in the import's deterministic order: name (case-folded, then exact), id."""
    return sorted(items, key=lambda o: (o.name.casefold(), o.name, o.id))


@dataclass
class DeptDraft:
    """One department being drafted from its team, and the notes about it."""

    team: snap.Team
    key: str
    notes: list[Note] = field(default_factory=list)
    schedule: snap.Schedule | None = None
    other_schedules: list[snap.Schedule] = field(default_factory=list)
    ep: snap.EscalationPolicy | None = None
    ep_seen: snap.EscalationPolicy | None = None  # the team's policy, even if it does not fit
    service: snap.Service | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def note(
        self, block: str, text: str, category: str | None = None, *, inline: bool = False
    ) -> None:
        """A note about this department's ``block`` (``_document`` anchors it to a key
        that exists)."""
        self.notes.append(Note(("departments", self.key, block), text, category, inline))


class ImportState:
    """The snapshot being imported and what the steps decided so far (see the module)."""

    def __init__(
        self,
        snapshot: snap.Snapshot,
        org_id: str,
        now: datetime,
        overrides: Mapping[str, Sequence[Override]],
    ) -> None:
        self.snap = snapshot
        self.overrides = overrides
        self.org_id = org_id
        self.now = now
        self.users = {u.id: u for u in snapshot.users}
        self.top: list[Note] = []
        self.depts: list[DeptDraft] = []
        self.schedule_owner: dict[str, str] = {}  # schedule id -> department key (imported)
        self.ep_owner: dict[str, str] = {}
        self.service_owner: dict[str, str] = {}
        self.noted_services: set[str] = set()
        self.objects: dict[str, Sequence[Any]] = {
            "schedule": snapshot.schedules,
            "escalation_policy": snapshot.escalation_policies,
            "service": snapshot.services,
        }
        self.clashing = {
            kind: self._clashing(objs)
            for kind, objs in (
                ("team", snapshot.teams),
                ("schedule", snapshot.schedules),
                ("escalation_policy", snapshot.escalation_policies),
                ("service", snapshot.services),
            )
        }

    @staticmethod
    def _clashing(objs: Sequence[Any]) -> set[str]:
        """Ids of objects sharing their name (case-insensitively) with another of the kind.

        The planner cannot match such a name to one object, and the org file refuses
        two departments with the same derived name.
        """
        names = Counter(o.name.casefold() for o in objs)
        return {o.id for o in objs if names[o.name.casefold()] > 1}

    def owner_problem(self, obj: Any, label: str, key: str | None) -> str | None:
        """Why ``obj``'s marker keeps it out (another org, another department), or None."""
        owner = parse_marker(obj.description)
        if owner is None:
            return None
        if owner[0] != self.org_id:
            return f"{label} {obj.name!r} ({obj.id}) is managed by pdorgsync for org={owner[0]}"
        if key is not None and owner[1] != key:
            return (
                f"{label} {obj.name!r} ({obj.id}) is managed by pdorgsync for department "
                f"{owner[1]!r}"
            )
        return None

    def mine(self, obj: Any, key: str) -> bool:
        """Whether ``obj`` carries this org's marker for department ``key``."""
        return parse_marker(obj.description) == (self.org_id, key)

    def marked_elsewhere(self, kind: str, label: str, chosen: Any, key: str) -> None:
        """Unfit if another object of ``kind`` carries the department's marker.

        The planner matches by marker first, so it would take that object instead.
        """
        for other in by_name(self.objects[kind]):
            if other.id != chosen.id and self.mine(other, key):
                raise Unfit(
                    f"{label} {other.name!r} ({other.id}) carries this department's marker, "
                    "so the plan would match that one"
                )

    def check_claimable(self, obj: Any, kind: str, label: str, key: str) -> None:
        """Unfit unless department ``key`` may take ``obj``: its name is unique in its
        kind, its marker (if any) is this department's, and no other object of the kind
        carries this department's marker."""
        if obj.id in self.clashing[kind]:
            raise Unfit(f"another {label} is also named {obj.name!r}")
        problem = self.owner_problem(obj, label, key)
        if problem:
            raise Unfit(problem)
        self.marked_elsewhere(kind, label, obj, key)

    def email(self, user_id: str, what: str) -> str:
        """The email the org file names user ``user_id`` by; Unfit if it cannot be paged."""
        user = self.users.get(user_id)
        if user is None or not user.email:
            raise Unfit(f"{what} {user_id} is not a user of the account")
        if user.role in STAKEHOLDER_ROLES:
            raise Unfit(f"{what} {user.email} has a stakeholder seat and cannot be paged")
        return user.email
