"""The pure diff: desired org + observed snapshot -> Plan (SPEC §1 "Precise semantics").

Matching: an object carrying this department's ownership marker first, else an
object of exactly the derived name. A same-named object without the marker is a
conflict unless ``defaults.adopt_existing`` (then ``adopt``); one carrying another
owner's marker is always a conflict. Unknown users, names that cannot be taken and
references that do not resolve are conflicts too, and a conflict blocks the whole
department: none of its objects is created or changed. Owned objects nobody wants
any more are orphans, deleted only with ``prune``.

Changes come out in apply order: teams, memberships, schedules, escalation
policies, services; then deletes in reverse (services before the policies they
use, policies before the schedules they target, memberships, teams last).

Never modifies or deletes an object it does not own: every update/delete targets a
marker-matched object or one being adopted in the same plan.

Pure: no network, disk, clock or logging; ``now`` and ``locate`` are parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pdorgsync.core.planning_objects import (
    COLLECTION,
    KIND_LABEL,
    STAKEHOLDER_ROLES,
    Locate,
    ObjectPlanner,
    Path,
    _Dept,
    _Match,
)
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import Department, Org, parse_marker
from pdorgsync.models.plan import (
    Change,
    Conflict,
    FieldDiff,
    Orphan,
    Plan,
    Request,
)

# Apply order; deletes run in the reverse dependency order.
PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("team", ("create", "update", "adopt")),
    ("team_membership", ("create", "update")),
    ("schedule", ("create", "update", "adopt", "skip")),
    ("escalation_policy", ("create", "update", "adopt")),
    ("service", ("create", "update", "adopt")),
    ("service", ("delete",)),
    ("escalation_policy", ("delete",)),
    ("schedule", ("delete",)),
    ("team_membership", ("delete",)),
    ("team", ("delete",)),
]


class _Named(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str | None: ...


def plan(
    org: Org,
    snapshot: snap.Snapshot,
    *,
    now: datetime,
    prune: bool = False,
    at_next_handoff: bool = False,
    locate: Locate | None = None,
    impact: bool = True,
    teams: bool = True,
) -> Plan:
    """Build the plan that makes ``snapshot`` match ``org`` (see the module docstring).

    ``teams=False``: the account lacks PagerDuty's plan-gated "teams" ability, so no
    team or membership is planned and escalation policies get no team.
    """
    planner = _Planner(org, snapshot, now, prune, at_next_handoff, locate or (lambda _p: None))
    planner.teams_enabled = teams
    return planner.run(impact)


_Index = tuple[dict[tuple[str, str], _Named], dict[str, list[_Named]]]


def _index(objs: Sequence[_Named]) -> _Index:
    """Objects by ownership marker (the first one) and by name (all, in snapshot order)."""
    by_marker: dict[tuple[str, str], _Named] = {}
    by_name: dict[str, list[_Named]] = {}
    for obj in objs:
        owner = parse_marker(obj.description)
        if owner is not None:
            by_marker.setdefault(owner, obj)
        by_name.setdefault(obj.name, []).append(obj)
    return by_marker, by_name


class _Planner(ObjectPlanner):
    match_index: dict[str, _Index]
    delete_blockers: dict[str, dict[str, list[tuple[str, str]]]]

    def _desired_name(self, kind: str, dept: Department) -> str | None:
        if kind == "team":
            return dept.team_name
        if kind == "schedule":
            return dept.schedule_name if dept.schedule else None
        if kind == "escalation_policy":
            return dept.escalation_policy_name if dept.escalation_policy else None
        return dept.service_name if dept.service else None

    def _name_path(self, kind: str, d: _Dept) -> Path:
        block = {"team": "team", "schedule": "schedule"}.get(kind, kind)
        section = getattr(d.dept, block)
        if section is not None and getattr(section, "name", None):
            return ("departments", d.index, block, "name")
        return ("departments", d.index, "name")

    def _match(self, kind: str, d: _Dept) -> None:
        name = self._desired_name(kind, d.dept)
        if name is None:
            return
        label = KIND_LABEL[kind]
        by_marker, by_name = self.match_index[kind]
        mine = by_marker.get((self.org.org, d.dept.key))
        owned = [mine] if mine is not None else []
        if owned:
            d.matches[kind] = _Match(owned[0])
            taken = [o for o in by_name.get(name, ()) if o.id != owned[0].id]
            if owned[0].name != name and taken and kind != "schedule":
                d.conflicts.append(
                    self._conflict(
                        kind,
                        d,
                        name,
                        f"cannot rename {label} {owned[0].name!r} ({owned[0].id}): another "
                        f"{label} named {name!r} exists ({taken[0].id})",
                    )
                )
            return
        named = list(by_name.get(name, ()))
        if not named:
            d.matches[kind] = _Match()
            return
        if len(named) > 1:
            ids = ", ".join(o.id for o in named)
            reason = (
                f"{len(named)} {label}s named {name!r} exist ({ids}); rename or delete all but one"
            )
            d.conflicts.append(self._conflict(kind, d, name, reason))
            return
        obj = named[0]
        owner = parse_marker(obj.description)
        if getattr(obj, "type", "schedule") == "schedule_v3" and self.org.defaults.adopt_existing:
            d.matches[kind] = _Match(obj, adopt=True)  # planned as ``skip``: never written
        elif getattr(obj, "type", "schedule") == "schedule_v3":
            reason = f"{label} {name!r} ({obj.id}) is a shift-based (v3) schedule, which pdorgsync cannot manage"
            d.conflicts.append(self._conflict(kind, d, name, reason))
        elif owner is not None:
            reason = (
                f"{label} {name!r} ({obj.id}) is managed by pdorgsync for org={owner[0]}, "
                f"department={owner[1]}"
            )
            d.conflicts.append(self._conflict(kind, d, name, reason))
        elif self.org.defaults.adopt_existing:
            d.matches[kind] = _Match(obj, adopt=True)
        else:
            reason = (
                f"a {label} named {name!r} ({obj.id}) exists without the pdorgsync marker; "
                "rename it, or set defaults.adopt_existing: true to adopt it"
            )
            d.conflicts.append(self._conflict(kind, d, name, reason))

    def _conflict(self, kind: str, d: _Dept, name: str, reason: str) -> Conflict:
        return Conflict(
            kind=kind,
            department=d.dept.key,
            name=name,
            reason=reason,
            location=self.locate(self._name_path(kind, d)),
        )

    def _unknown_users(self, d: _Dept) -> None:
        dept = d.dept
        paths: list[tuple[str, Path]] = []
        if dept.point_of_contact:
            paths.append((dept.point_of_contact, ("departments", d.index, "point_of_contact")))
        paths += [(e, ("departments", d.index, "members", i)) for i, e in enumerate(dept.members)]
        if dept.schedule:
            for li, layer in enumerate(dept.schedule.layers):
                for ui, email in enumerate(layer.users):
                    paths.append(
                        (email, ("departments", d.index, "schedule", "layers", li, "users", ui))
                    )
        if dept.escalation_policy:
            for lv, level in enumerate(dept.escalation_policy.levels):
                for ti, target in enumerate(level.targets):
                    if target.startswith("user:"):
                        path: Path = ("departments", d.index, "escalation_policy", "levels", lv)
                        paths.append((target[5:], (*path, "targets", ti)))
        seen: set[str] = set()
        for email, path in paths:
            if email in seen:
                continue
            if email in self.user_ids:
                role = self.base_roles.get(self.user_ids[email], "user")
                if role not in STAKEHOLDER_ROLES:
                    continue
                # SPEC §1 "Account roles": a stakeholder seat is always a team observer
                # and cannot be paged, so it cannot fill any position the file gives.
                reason = (
                    f"{email} has a stakeholder seat ({role}): PagerDuty cannot page them "
                    "and keeps them a team observer; give them a full user license or "
                    "remove them from this position"
                )
            else:
                reason = f"{email} is not a PagerDuty user (pdorgsync never creates users)"
            seen.add(email)
            d.conflicts.append(
                Conflict(
                    kind="user",
                    department=dept.key,
                    name=email,
                    reason=reason,
                    location=self.locate(path),
                )
            )

    def _references(self, depts: dict[str, _Dept]) -> None:
        """EP targets and the service's EP must resolve; repeat until nothing new is blocked."""
        changed = True
        while changed:
            changed = False
            for d in depts.values():
                if d.conflicts:
                    continue
                reason = self._unresolved(d, depts)
                if reason:
                    kind, path, text = reason
                    d.conflicts.append(
                        Conflict(
                            kind=kind,
                            department=d.dept.key,
                            name=self._desired_name(kind, d.dept) or d.dept.name,
                            reason=text,
                            location=self.locate(path),
                        )
                    )
                    changed = True

    def _unresolved(self, d: _Dept, depts: dict[str, _Dept]) -> tuple[str, Path, str] | None:
        dept = d.dept
        ep = dept.escalation_policy
        base: Path = ("departments", d.index)
        if ep:
            for lv, level in enumerate(ep.levels):
                for ti, target in enumerate(level.targets):
                    path = (*base, "escalation_policy", "levels", lv, "targets", ti)
                    if target == "schedule" and dept.schedule is None:
                        return (
                            "escalation_policy",
                            path,
                            "targets its own schedule, but the department has no schedule block",
                        )
                    if target.startswith("schedule:"):
                        key = target[9:]
                        other = depts.get(key)
                        if other is None or other.dept.schedule is None:
                            return (
                                "escalation_policy",
                                path,
                                f"targets the schedule of department {key!r}, which has none in the file",
                            )
                        existing = other.matches.get("schedule")
                        if other.conflicts and (existing is None or existing.obj is None):
                            return (
                                "escalation_policy",
                                path,
                                f"targets the schedule of department {key!r}, which is blocked by a conflict and does not exist yet",
                            )
        if dept.service and not ep:
            return (
                "service",
                (*base, "service"),
                "a service needs the department's escalation policy, but the department has no escalation_policy block",
            )
        return None

    # -- the run --------------------------------------------------------------------------

    def run(self, impact: bool) -> Plan:
        # Indexed once, so matching and delete checks stay linear in the departments.
        self.match_index = {kind: _index(objs) for kind, objs in self.objects.items()}
        depts: dict[str, _Dept] = {}
        for index, dept in enumerate(self.org.departments):
            d = _Dept(dept, index)
            self._unknown_users(d)
            for kind in ("team", "schedule", "escalation_policy", "service"):
                if kind == "team" and not self.teams_enabled:
                    continue
                self._match(kind, d)
            depts[dept.key] = d
        self._references(depts)
        for d in depts.values():
            if not d.conflicts:
                self._plan_department(d, depts, impact)
        conflicts = [c for d in depts.values() for c in d.conflicts]
        orphans = self._orphans(depts, conflicts)
        order = {
            (kind, action): i for i, (kind, actions) in enumerate(PHASES) for action in actions
        }
        changes = sorted(self.changes, key=lambda c: order[(c.kind, c.action)])  # stable
        return Plan(
            org=self.org.org,
            generated_at=self.now,
            effective_at=self.now,
            at_next_handoff=self.at_next_handoff,
            prune=self.prune,
            changes=changes,
            conflicts=conflicts,
            orphans=orphans,
            impacts=self.impacts,
        )

    def _orphans(self, depts: dict[str, _Dept], conflicts: list[Conflict]) -> list[Orphan]:
        kept = {
            (kind, m.obj.id)
            for d in depts.values()
            for kind, m in d.matches.items()
            if m.obj is not None
        }
        orphans: list[Orphan] = []
        kinds = ("service", "escalation_policy", "schedule", "team")
        for kind in kinds if self.teams_enabled else kinds[:-1]:
            for obj in self.objects[kind]:
                owner = parse_marker(obj.description)
                if owner is None or owner[0] != self.org.org or (kind, obj.id) in kept:
                    continue
                orphans.append(Orphan(kind=kind, department=owner[1], name=obj.name, id=obj.id))
        v3 = {s.id for s in self.snap.schedules if s.type == "schedule_v3"}
        if self.prune:
            deleted: set[tuple[str, str]] = {(o.kind, o.id) for o in orphans}
            updated = {
                (c.kind, c.id) for c in self.changes if c.action in ("update", "adopt") and c.id
            }
            kept_ids = {
                m.obj.id
                for d in depts.values()
                if not d.conflicts
                for m in d.matches.values()
                if m.obj is not None
            }
            users: dict[str, list[tuple[str, str]]] = {}  # schedule id -> EPs targeting it
            for ep in self.snap.escalation_policies:
                for target_id in dict.fromkeys(t.id for r in ep.rules for t in r.targets):
                    users.setdefault(target_id, []).append((ep.id, ep.name))
            services: dict[str, list[tuple[str, str]]] = {}  # EP id -> services using it
            for svc in self.snap.services:
                if svc.escalation_policy_id:
                    services.setdefault(svc.escalation_policy_id, []).append((svc.id, svc.name))
            self.delete_blockers = {"schedule": users, "escalation_policy": services}
            for orphan in orphans:
                reason = self._delete_blocker(orphan, deleted | updated, kept_ids)
                if orphan.kind == "schedule" and orphan.id in v3:
                    reason = "not deleted: it is a shift-based (v3) schedule, which pdorgsync never changes"
                if reason:
                    conflicts.append(
                        Conflict(
                            kind=orphan.kind,
                            department=orphan.department,
                            name=orphan.name,
                            reason=reason,
                        )
                    )
                    continue
                self.changes.append(self._delete(orphan))
        return orphans

    def _delete_blocker(
        self, orphan: Orphan, handled: set[tuple[str, str]], kept_ids: set[str]
    ) -> str | None:
        """Why PagerDuty would refuse this delete after the plan's other changes, if it would.

        ``handled``: objects deleted, updated or adopted by the plan; ``kept_ids``: objects
        a managed, unblocked department keeps (then its desired state wins).
        """
        users = self.delete_blockers.get(orphan.kind, {}).get(orphan.id, [])
        if orphan.kind == "schedule":
            for ep_id, ep_name in users:
                if ("escalation_policy", ep_id) not in handled and ep_id not in kept_ids:
                    return f"not deleted: escalation policy {ep_name!r} ({ep_id}) still targets it and pdorgsync does not manage that policy"
        if orphan.kind == "escalation_policy":
            for svc_id, svc_name in users:
                if ("service", svc_id) not in handled and svc_id not in kept_ids:
                    return f"not deleted: service {svc_name!r} ({svc_id}) still uses it and pdorgsync does not manage that service"
        return None

    def _delete(self, orphan: Orphan) -> Change:
        path = f"{COLLECTION[orphan.kind]}/{orphan.id}"
        blockers: list[str] = []
        if orphan.kind == "escalation_policy":
            blockers = [orphan.id]
        elif orphan.kind == "schedule":
            blockers = [ep_id for ep_id, _ in self.delete_blockers["schedule"].get(orphan.id, [])]
        return Change(
            action="delete",
            kind=orphan.kind,
            department=orphan.department,
            name=orphan.name,
            id=orphan.id,
            diff={"name": FieldDiff(before=orphan.name, after=None)},
            ref=f"{orphan.kind}:{orphan.department}",
            requests=[Request(method="DELETE", path=path)],
            blocked_by_incidents_of=blockers,
        )
