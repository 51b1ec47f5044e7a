"""The mapping of ``pdorgsync import`` (SPEC §6): observed account -> org document + notes.

Why this module exists: onboarding must be exact. A file that ``plan`` then reads
back has to describe the account so precisely that the first ``apply`` only adopts
(adds the ownership marker) and changes nobody's on-call time. So the rules here
are the planner's rules read backwards: layer ``start`` is the rotation anchor
(``rotation_virtual_start``, compared as an instant), layers keep the snapshot's
order (lowest priority first), an escalation target is the department's own
schedule, another department's schedule or a user, and a service must be routed
to its department's escalation policy.

Whatever the org model cannot hold is left out and becomes a ``Note`` with a
category (counted in the summary on stderr) and a path: the key of the document
the YAML comment goes before. Guesses (function, point of contact, coverage)
become notes without a category.

Pure: no network, disk, clock or logging; ``now`` is a parameter. The output is a
plain ``dict`` in SPEC §1 key order, deterministic for a given snapshot and ``now``
(departments sorted by key; every choice between objects ordered by name then id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pdorgsync.core import schedules
from pdorgsync.core.import_values import (
    FUNCTION_WORDS,
    Unfit,
    business_hours_of,
    description_text,
    guess_function,
    local_start,
    restriction_of,
    rotation_name,
    slug,
    zone_name,
)
from pdorgsync.core.intervals import Interval, clip
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import Org, parse_marker

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


@dataclass(frozen=True)
class Imported:
    """The org document (plain data, SPEC §1 key order) and its notes.

    ``schedules``: ids of the schedules written into the document (whose overrides
    the shell reads, to list them).
    """

    data: dict[str, Any]
    notes: list[Note]
    schedules: tuple[str, ...] = ()

    def org(self) -> Org:
        return Org.model_validate(self.data)

    def counts(self) -> dict[str, int]:
        """How many things did not fit, per category, in ``CATEGORIES`` order."""
        found = Counter(n.category for n in self.notes if n.category)
        return {c: found[c] for c in CATEGORIES if found[c]}


def _by_name(items: Iterable[Any]) -> list[Any]:
    return sorted(items, key=lambda o: (o.name.casefold(), o.name, o.id))


# -- the mapping ----------------------------------------------------------------------------


@dataclass
class _Dept:
    team: snap.Team
    key: str
    notes: list[Note] = field(default_factory=list)
    schedule: snap.Schedule | None = None
    other_schedules: list[snap.Schedule] = field(default_factory=list)
    ep: snap.EscalationPolicy | None = None
    ep_seen: snap.EscalationPolicy | None = None  # the team's policy, even if it does not fit
    service: snap.Service | None = None
    data: dict[str, Any] = field(default_factory=dict)


class _Importer:
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
        self.depts: list[_Dept] = []
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

    def _owner_problem(self, obj: Any, label: str, key: str | None) -> str | None:
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

    def _mine(self, obj: Any, key: str) -> bool:
        """Whether ``obj`` carries this org's marker for department ``key``."""
        return parse_marker(obj.description) == (self.org_id, key)

    def _marked_elsewhere(self, kind: str, label: str, chosen: Any, key: str) -> None:
        """Unfit if another object of ``kind`` carries the department's marker.

        The planner matches by marker first, so it would take that object instead.
        """
        for other in _by_name(self.objects[kind]):
            if other.id != chosen.id and self._mine(other, key):
                raise Unfit(
                    f"{label} {other.name!r} ({other.id}) carries this department's marker, "
                    "so the plan would match that one"
                )

    # -- departments ----------------------------------------------------------------------

    def run(self) -> Imported:
        self._departments()
        self._assign_eps()
        self._assign_schedules()
        fitted = {d.key: self._schedule_block(d) for d in self.depts}
        for d in self.depts:
            if fitted[d.key] is None:
                d.schedule = None
            else:
                assert d.schedule is not None
                self.schedule_owner[d.schedule.id] = d.key
        eps = {d.key: self._ep_block(d) for d in self.depts}
        for d in self.depts:
            if eps[d.key] is None:
                d.ep = None
            else:
                assert d.ep is not None
                self.ep_owner[d.ep.id] = d.key
        self._assign_services()
        self._leftovers()
        for d in self.depts:
            d.data = self._department(d, fitted[d.key], eps[d.key])
        return self._document()

    def _departments(self) -> None:
        """One department per team: a team with this org's marker keeps its key, others get slugs."""
        fitting: list[tuple[snap.Team, str | None]] = []
        claimed: set[str] = set()
        team_markers = Counter(
            owner[1]
            for t in self.snap.teams
            if (owner := parse_marker(t.description)) is not None and owner[0] == self.org_id
        )
        for team in _by_name(self.snap.teams):
            owner = parse_marker(team.description)
            problem = self._owner_problem(team, "team", None)
            if team.id in self.clashing["team"]:
                problem = f"another team is also named {team.name!r} (case-insensitively)"
            if not team.name.strip() or len(team.name) > 100:
                problem = f"team name {team.name!r} is empty or longer than 100 characters"
            marked = owner[1] if owner is not None and problem is None else None
            if marked is not None and team_markers[marked] > 1:
                # The planner would match whichever of them it meets first.
                problem = f"{team_markers[marked]} teams carry the marker of department {marked!r}"
            if problem:
                self.top.append(
                    Note(
                        ("departments",),
                        f"team {team.name!r} ({team.id}) not imported: {problem}",
                        UNFIT_TEAM,
                    )
                )
                continue
            if marked is not None:
                claimed.add(marked)
            fitting.append((team, marked))
        # A slug never takes a key some object already carries in its marker: the
        # planner would match that object to the new department.
        used = claimed | {
            owner[1]
            for objs in (self.snap.teams, *self.objects.values())
            for o in objs
            if (owner := parse_marker(o.description)) is not None and owner[0] == self.org_id
        }
        for team, marked in fitting:
            key = marked
            if key is None:
                key = base = slug(team.name)
                n = 2
                while key in used:
                    key, n = f"{base}-{n}", n + 1
                used.add(key)
            self.depts.append(_Dept(team=team, key=key))
        self.depts.sort(key=lambda d: d.key)

    def _assign_eps(self) -> None:
        routed = Counter(s.escalation_policy_id for s in self.snap.services)
        for d in self.depts:
            mine = [e for e in self.snap.escalation_policies if d.team.id in e.team_ids]
            mine.sort(
                key=lambda e: (
                    not self._mine(e, d.key),
                    -routed[e.id],
                    e.name.casefold(),
                    e.name,
                    e.id,
                )
            )
            if not mine:
                continue
            d.ep = d.ep_seen = mine[0]
            for other in _by_name(mine[1:]):
                d.notes.append(
                    Note(
                        self._at(d, "escalation_policy"),
                        f"escalation policy {other.name!r} ({other.id}) not imported: "
                        f"the department has one, {d.ep.name!r}",
                        SECOND_EP,
                    )
                )

    def _targeted(self, ep: snap.EscalationPolicy | None) -> list[str]:
        if ep is None:
            return []
        return [
            t.id
            for r in ep.rules
            for t in r.targets
            if t.type.removesuffix("_reference") == "schedule"
        ]

    def _assign_schedules(self) -> None:
        claimed: set[str] = set()
        v1 = [s for s in self.snap.schedules if s.type == "schedule"]
        for d in self.depts:  # a schedule of the team, preferably one its policy targets
            targeted = self._targeted(d.ep)
            mine = [s for s in v1 if d.team.id in s.team_ids and s.id not in claimed]
            mine.sort(
                key=lambda s: (
                    not self._mine(s, d.key),
                    targeted.index(s.id) if s.id in targeted else len(targeted),
                    s.name.casefold(),
                    s.name,
                    s.id,
                )
            )
            if mine:
                d.schedule = mine[0]
                claimed.add(mine[0].id)
                d.other_schedules = mine[1:]
        for d in self.depts:  # else a schedule of no team that its policy targets
            if d.schedule is not None:
                continue
            for sid in self._targeted(d.ep):
                found = self.snap.schedule_by_id(sid)
                if found and found.type == "schedule" and not found.team_ids and sid not in claimed:
                    d.schedule = found
                    claimed.add(sid)
                    d.notes.append(
                        Note(
                            self._at(d, "schedule"),
                            f"schedule {found.name!r} belongs to no team; imported here "
                            "because this department's escalation policy targets it",
                        )
                    )
                    break
        for d in self.depts:
            for other in d.other_schedules:
                if other.id in claimed:
                    continue  # shared with a team that imported it
                d.notes.append(
                    Note(
                        self._at(d, "schedule"),
                        f"schedule {other.name!r} ({other.id}) not imported: the department "
                        f"has one, {d.schedule.name if d.schedule else '?'!r}",
                        SECOND_SCHEDULE,
                    )
                )
                claimed.add(other.id)
        for s in _by_name(self.snap.schedules):
            if s.type != "schedule":
                self.top.append(
                    Note(
                        ("departments",),
                        f"schedule {s.name!r} ({s.id}) is shift-based (v3), which pdorgsync "
                        "cannot manage: not imported",
                        V3_SCHEDULE,
                    )
                )
            elif s.id not in claimed:
                teams = sorted(t.name for t in self.snap.teams if t.id in s.team_ids)
                text = f"schedule {s.name!r} ({s.id}) not imported: " + (
                    "it belongs to no team and no imported policy claims it"
                    if not teams
                    else f"its teams ({', '.join(teams)}) were not imported"
                )
                self.top.append(Note(("departments",), text, TEAMLESS_SCHEDULE))

    # -- schedule --------------------------------------------------------------------------

    def _email(self, user_id: str, what: str) -> str:
        user = self.users.get(user_id)
        if user is None or not user.email:
            raise Unfit(f"{what} {user_id} is not a user of the account")
        if user.role in STAKEHOLDER_ROLES:
            raise Unfit(f"{what} {user.email} has a stakeholder seat and cannot be paged")
        return user.email

    def _schedule_block(self, d: _Dept) -> dict[str, Any] | None:
        s = d.schedule
        if s is None:
            return None
        try:
            if s.id in self.clashing["schedule"]:
                raise Unfit(f"another schedule is also named {s.name!r}")
            problem = self._owner_problem(s, "schedule", d.key)
            if problem:
                raise Unfit(problem)
            self._marked_elsewhere("schedule", "schedule", s, d.key)
            if s.layers is None:
                raise Unfit("its layers could not be read")
            zone = zone_name(s.time_zone)
            layers: list[dict[str, Any]] = []
            names: set[str] = set()
            for layer in s.layers:
                if layer.end is not None:
                    ended = layer.end <= self.now
                    d.notes.append(
                        Note(
                            self._at(d, "schedule"),
                            f"layer {layer.name!r} of schedule {s.name!r} "
                            + (
                                f"ended at {layer.end.isoformat()}: history, not imported"
                                if ended
                                else f"ends at {layer.end.isoformat()}; the org file has no "
                                "layer end, so it is not imported (PagerDuty keeps it until then)"
                            ),
                            ENDED_LAYER if ended else ENDING_LAYER,
                        )
                    )
                    continue
                if not layer.user_ids:
                    d.notes.append(
                        Note(
                            self._at(d, "schedule"),
                            f"layer {layer.name!r} of schedule {s.name!r} has no users: not imported",
                            EMPTY_LAYER,
                        )
                    )
                    continue
                if not layer.name.strip() or len(layer.name) > 100 or layer.name in names:
                    raise Unfit(f"layer name {layer.name!r} is empty, too long or repeated")
                names.add(layer.name)
                restrictions = [restriction_of(r) for r in layer.restrictions]
                out: dict[str, Any] = {
                    "name": layer.name,
                    "rotation": rotation_name(layer.rotation_turn_length_seconds),
                    "start": local_start(layer.rotation_virtual_start, zone),
                    "users": [self._email(u, "layer user") for u in layer.user_ids],
                }
                if restrictions and all(r is not None for r in restrictions):
                    out["restrictions"] = restrictions
                layers.append(out)
            if not layers:
                raise Unfit("it has no layer in use")
        except Unfit as why:
            d.notes.append(
                Note(
                    self._at(d, "schedule"),
                    f"schedule {s.name!r} ({s.id}) not imported: {why}",
                    UNFIT_SCHEDULE,
                )
            )
            return None
        found = sorted(self.overrides.get(s.id, ()), key=lambda o: (o.start, o.end, o.user_id))
        for o in found:
            user = self.users.get(o.user_id)
            d.notes.append(
                Note(
                    self._at(d, "schedule"),
                    f"override of schedule {s.name!r}: {user.email if user else o.user_id} "
                    f"from {o.start.isoformat()} to {o.end.isoformat()}; overrides are one-off "
                    "and not part of the org file (apply leaves them as they are)",
                    OVERRIDE,
                )
            )
        block: dict[str, Any] = {}
        if s.name != f"{d.team.name} On-Call":
            block["name"] = s.name
        block["layers"] = layers
        return block

    # -- escalation policy -----------------------------------------------------------------

    def _ep_block(self, d: _Dept) -> dict[str, Any] | None:
        ep = d.ep
        if ep is None:
            return None
        try:
            if ep.id in self.clashing["escalation_policy"]:
                raise Unfit(f"another escalation policy is also named {ep.name!r}")
            problem = self._owner_problem(ep, "escalation policy", d.key)
            if problem:
                raise Unfit(problem)
            self._marked_elsewhere("escalation_policy", "escalation policy", ep, d.key)
            if not ep.rules:
                raise Unfit("it has no escalation rule")
            if not 0 <= ep.num_loops <= 9:
                raise Unfit(f"it loops {ep.num_loops} times (at most 9)")
            levels: list[dict[str, Any]] = []
            for number, rule in enumerate(ep.rules, 1):
                targets: list[str] = []
                for t in rule.targets:
                    kind = t.type.removesuffix("_reference")
                    if kind == "user":
                        target = f"user:{self._email(t.id, 'target user')}"
                    elif kind == "schedule":
                        owner = self.schedule_owner.get(t.id)
                        found = self.snap.schedule_by_id(t.id)
                        label = f"{found.name!r} ({t.id})" if found else t.id
                        if owner is None:
                            raise Unfit(
                                f"level {number} targets schedule {label}, which is not "
                                "imported as any department's schedule"
                            )
                        target = "schedule" if owner == d.key else f"schedule:{owner}"
                    elif kind == "schedule_v3":
                        raise Unfit(f"level {number} targets a shift-based (v3) schedule ({t.id})")
                    else:
                        raise Unfit(f"level {number} targets a {t.type}")
                    if target in targets:
                        raise Unfit(f"level {number} names {target} twice")
                    targets.append(target)
                if not 1 <= len(targets) <= 10:
                    raise Unfit(f"level {number} has {len(targets)} targets (1 to 10)")
                if rule.escalation_delay_in_minutes < 0:
                    raise Unfit(f"level {number} has a negative delay")
                levels.append(
                    {"delay_minutes": rule.escalation_delay_in_minutes, "targets": targets}
                )
        except Unfit as why:
            d.notes.append(
                Note(
                    self._at(d, "escalation_policy"),
                    f"escalation policy {ep.name!r} ({ep.id}) not imported: {why}",
                    UNFIT_EP,
                )
            )
            return None
        block: dict[str, Any] = {}
        if ep.name != f"{d.team.name} Escalation":
            block["name"] = ep.name
        block["loops"] = ep.num_loops
        block["levels"] = levels
        return block

    # -- services --------------------------------------------------------------------------

    def _assign_services(self) -> None:
        for d in self.depts:
            if d.ep_seen is None:
                continue
            routed = sorted(
                _by_name(s for s in self.snap.services if s.escalation_policy_id == d.ep_seen.id),
                key=lambda s: not self._mine(s, d.key),
            )
            for service in routed:
                why = None
                self.noted_services.add(service.id)
                if d.ep is None:
                    why = "its escalation policy is not imported"
                elif service.id in self.clashing["service"]:
                    why = f"another service is also named {service.name!r}"
                elif service.urgency not in ("high", "low", "severity_based"):
                    why = "its urgency follows support hours, which the org file cannot say"
                else:
                    why = self._owner_problem(service, "service", d.key)
                if why is None and d.service is None:
                    try:
                        self._marked_elsewhere("service", "service", service, d.key)
                    except Unfit as unfit:
                        why = str(unfit)
                if why is None and d.service is None:
                    d.service = service
                    self.service_owner[service.id] = d.key
                    continue
                reason = why or f"the department has one, {d.service.name if d.service else ''!r}"
                d.notes.append(
                    Note(
                        self._at(d, "service"),
                        f"service {service.name!r} ({service.id}) not imported: {reason}; "
                        "listed under service_labels",
                        UNFIT_SERVICE if why else SECOND_SERVICE,
                    )
                )

    def _leftovers(self) -> None:
        for ep in _by_name(self.snap.escalation_policies):
            if ep.team_ids or ep.id in self.ep_owner:
                continue
            self.top.append(
                Note(
                    ("departments",),
                    f"escalation policy {ep.name!r} ({ep.id}) belongs to no team: not imported",
                    TEAMLESS_EP,
                )
            )
        for service in _by_name(self.snap.services):
            if service.id in self.service_owner:
                continue
            if service.id in self.noted_services:
                continue  # already explained in its department
            self.top.append(
                Note(
                    ("service_labels",),
                    f"service {service.name!r} ({service.id}) is routed to no department's "
                    "escalation policy: not imported",
                    TEAMLESS_SERVICE,
                )
            )

    # -- the department block --------------------------------------------------------------

    def _at(self, d: _Dept, block: str) -> Path:
        """Placeholder path; ``_document`` moves it to a key that exists."""
        return ("departments", d.key, block)

    def _department(
        self, d: _Dept, schedule: dict[str, Any] | None, ep: dict[str, Any] | None
    ) -> dict[str, Any]:
        team = d.team
        data: dict[str, Any] = {"key": d.key, "name": team.name}
        function, found = guess_function(team.name)
        data["function"] = function
        if function == "other":
            d.notes.append(
                Note(
                    self._at(d, "function"),
                    "not guessed from the team name: engineering, support, marketing, product, "
                    "executive, sales, hr, finance, security or legal?",
                    inline=True,
                )
            )
        elif len(found) > 1:
            d.notes.append(
                Note(
                    self._at(d, "function"),
                    f"guessed; the name also suggests {', '.join(found[1:])}",
                    inline=True,
                )
            )
        poc, members = self._people(d)
        if poc:
            data["point_of_contact"] = poc
        data["members"] = members
        zone = zone_name(d.schedule.time_zone) if d.schedule is not None and schedule else None
        data.update(self._coverage(d, zone))
        if zone is not None:
            data["time_zone"] = zone
        if schedule is not None:
            data["schedule"] = schedule
        if ep is not None:
            data["escalation_policy"] = ep
        if d.service is not None:
            service: dict[str, Any] = {}
            if d.service.name != team.name:
                service["name"] = d.service.name
            text = description_text(d.service.description)
            if text:
                service["description"] = text
            service["urgency"] = d.service.urgency
            data["service"] = service
        return data

    def _people(self, d: _Dept) -> tuple[str | None, list[str]]:
        members = d.team.members or []
        emails: dict[str, str] = {}
        managers: list[str] = []
        fixed: set[str] = set()
        known = [(self.users.get(m.user_id), m) for m in members]
        for user, m in sorted(known, key=lambda um: (um[0].email if um[0] else "", um[1].user_id)):
            if user is None or not user.email:
                continue
            if m.role == "observer" or user.role in STAKEHOLDER_ROLES:
                if user.role not in STAKEHOLDER_ROLES:
                    d.notes.append(
                        Note(
                            self._at(d, "members"),
                            f"{user.email} is an observer of the team; the org file has no "
                            "observers (apply removes the membership unless you list them)",
                            OBSERVER,
                        )
                    )
                continue
            emails[user.email] = m.role
            if m.role == "manager":
                managers.append(user.email)
                if user.role in ACCOUNT_MANAGER_ROLES:
                    fixed.add(user.email)
        managers.sort(key=lambda e: (e in fixed, e))
        poc = managers[0] if managers else None
        if not managers:
            d.notes.append(
                Note(
                    self._at(d, "members"),
                    "the team has no manager, so no point_of_contact: name one",
                )
            )
        elif len(managers) > 1:
            d.notes.append(
                Note(
                    self._at(d, "point_of_contact"),
                    f"guessed: the team has {len(managers)} managers",
                    inline=True,
                )
            )
            for email in managers[1:]:
                if email in fixed:
                    continue  # the account role keeps them managers (SPEC §1): no drift
                d.notes.append(
                    Note(
                        self._at(d, "members"),
                        f"{email} is also a manager of the team; the org file has one point "
                        "of contact, so apply makes them a responder",
                        EXTRA_MANAGER,
                    )
                )
        return poc, sorted(emails)

    def _coverage(self, d: _Dept, zone: str | None) -> dict[str, Any]:
        """``coverage`` (and ``business_hours``) from who the schedule puts on call."""
        if d.schedule is None or zone is None or not d.schedule.layers:
            d.notes.append(
                Note(
                    self._at(d, "coverage"),
                    "no schedule imported: nothing says who is on call",
                    inline=True,
                )
            )
            return {"coverage": "none"}
        since = self.now
        until = since + timedelta(days=HORIZON_DAYS)
        specs = [schedules.LayerSpec.from_snapshot(la) for la in d.schedule.layers]
        shifts = schedules.render_schedule(specs, [], zone, since, until)
        cover = clip(schedules.covered(shifts), since, until)
        if cover == [Interval(since, until)]:
            return {"coverage": "always"}
        hours = business_hours_of(cover, zone, since, until)
        if hours is not None:
            return {"coverage": "business_hours", "business_hours": hours}
        d.notes.append(
            Note(
                self._at(d, "coverage"),
                "the schedule leaves gaps that no business_hours block describes; "
                "audit reports them",
                inline=True,
            )
        )
        return {"coverage": "always"}

    # -- the document ----------------------------------------------------------------------

    def _document(self) -> Imported:
        zones = Counter(d.data["time_zone"] for d in self.depts if "time_zone" in d.data)
        default_zone = min(zones, key=lambda z: (-zones[z], z)) if zones else "Etc/UTC"
        departments: list[dict[str, Any]] = []
        notes: list[Note] = []
        for index, d in enumerate(self.depts):
            data = d.data
            if data.get("time_zone") == default_zone:
                del data["time_zone"]
            departments.append(data)
            for note in d.notes:
                notes.append(
                    Note(
                        _anchor(data, index, str(note.path[-1])),
                        note.text,
                        note.category,
                        note.inline,
                    )
                )
        labels: dict[str, list[str]] = {
            s.name: []
            for s in sorted(self.snap.services, key=lambda s: (s.name, s.id))
            if s.id not in self.service_owner and s.name.strip()
        }
        document: dict[str, Any] = {
            "version": 1,
            "org": self.org_id,
            "defaults": {"time_zone": default_zone, "adopt_existing": True},
        }
        if labels:
            document["service_labels"] = labels
            notes.insert(
                0,
                Note(
                    ("service_labels",),
                    "services pdorgsync does not manage: give them labels so policies can match them",
                ),
            )
        document["departments"] = departments
        for note in self.top:
            path = note.path if note.path[0] in document else ("departments",)
            notes.append(Note(path, note.text, note.category, note.inline))
        imported = tuple(sorted(d.schedule.id for d in self.depts if d.schedule is not None))
        return Imported(document, notes, imported)


# Where a note about a block goes when the block itself is missing: before the next key.
_ORDER = (
    "key",
    "name",
    "function",
    "point_of_contact",
    "members",
    "coverage",
    "business_hours",
    "time_zone",
    "schedule",
    "escalation_policy",
    "service",
)


def _anchor(data: dict[str, Any], index: int, block: str) -> Path:
    if block in data:
        return ("departments", index, block)
    later = _ORDER[_ORDER.index(block) + 1 :] if block in _ORDER else ()
    for key in later:
        if key in data:
            return ("departments", index, key)
    return ("departments", index, "key") if block == "key" else ("departments", index)


def import_account(
    snapshot: snap.Snapshot,
    *,
    org_id: str,
    now: datetime,
    overrides: Mapping[str, Sequence[Override]] | None = None,
) -> Imported:
    """The org document describing ``snapshot`` (see the module docstring).

    ``overrides``: per schedule id, the overrides to list as comments (not read by default).
    """
    return _Importer(snapshot, org_id, now.replace(microsecond=0), overrides or {}).run()


def guess_org_id(snapshot: snap.Snapshot) -> str:
    """The org id for the file: the org of the markers found, else the users' mail domain."""
    orgs = Counter(
        owner[0]
        for objs in (
            snapshot.teams,
            snapshot.schedules,
            snapshot.escalation_policies,
            snapshot.services,
        )
        for o in objs
        if (owner := parse_marker(o.description)) is not None
    )
    if orgs:
        return min(orgs, key=lambda o: (-orgs[o], o))
    domains = Counter(
        u.email.partition("@")[2].split(".")[0] for u in snapshot.users if "@" in u.email
    )
    if domains:
        return slug(min(domains, key=lambda d: (-domains[d], d)))
    return "imported"


__all__ = [
    "CATEGORIES",
    "FUNCTION_WORDS",
    "Imported",
    "Note",
    "Override",
    "guess_function",
    "guess_org_id",
    "import_account",
    "local_start",
    "slug",
    "zone_name",
]
