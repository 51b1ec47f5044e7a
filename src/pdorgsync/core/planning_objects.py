"""Change builders of the planner: one function per object kind (team, memberships,
schedule, escalation policy, service) turning a matched department into Changes.

Split from ``planning.py`` (matching, conflicts, orphans, ordering), which drives it.
Pure like the rest of ``core``: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pdorgsync.core.planning_schedules import (
    normalise_text,
    on_call_impact,
    plan_schedule,
)
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import Department, Org, managed_description
from pdorgsync.models.plan import (
    Change,
    Conflict,
    FieldDiff,
    Kind,
    OnCallImpact,
    Request,
    placeholder,
)

Path = tuple[str | int, ...]
Locate = Callable[[Path], str | None]

KIND_LABEL = {
    "team": "team",
    "team_membership": "team membership",
    "schedule": "schedule",
    "escalation_policy": "escalation policy",
    "service": "service",
}
COLLECTION = {
    "team": "/teams",
    "schedule": "/schedules",
    "escalation_policy": "/escalation_policies",
    "service": "/services",
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


@dataclass
class _Match:
    obj: Any = None  # the snapshot object, or None (create)
    adopt: bool = False


@dataclass
class _Dept:
    dept: Department
    index: int
    conflicts: list[Conflict] = field(default_factory=list)
    matches: dict[str, _Match] = field(default_factory=dict)


class ObjectPlanner:
    """State shared by the planner and the per-kind change builders."""

    def __init__(
        self,
        org: Org,
        snapshot: snap.Snapshot,
        now: datetime,
        prune: bool,
        at_next_handoff: bool,
        locate: Locate,
    ) -> None:
        self.org = org
        self.snap = snapshot
        self.now = now
        self.prune = prune
        self.at_next_handoff = at_next_handoff
        self.locate = locate
        self.user_ids = {u.email.lower(): u.id for u in snapshot.users}
        self.emails = {u.id: u.email for u in snapshot.users}
        self.base_roles = {u.id: u.role for u in snapshot.users}
        self.objects: dict[str, Sequence[Any]] = {
            "team": snapshot.teams,
            "schedule": snapshot.schedules,
            "escalation_policy": snapshot.escalation_policies,
            "service": snapshot.services,
        }
        self.changes: list[Change] = []
        self.impacts: list[OnCallImpact] = []
        self.teams_enabled = True  # False: the account lacks the "teams" ability

    # -- matching -------------------------------------------------------------------------
    def _description(self, dept: Department, text: str | None = None) -> str:
        return managed_description(text or dept.name, self.org.marker(dept.key))

    def _id_or_placeholder(self, kind: str, d: _Dept) -> str:
        match = d.matches.get(kind)
        if match is not None and match.obj is not None:
            return str(match.obj.id)
        return placeholder(kind, d.dept.key)

    def _emit(
        self,
        kind: Kind,
        d: _Dept,
        name: str,
        wrapper: str,
        body: dict[str, Any],
        compare: dict[str, tuple[Any, Any]],
    ) -> None:
        """Create, adopt or update ``kind`` of ``d`` from ``compare`` = field -> (observed, wanted)."""
        match = d.matches[kind]
        marker = self.org.marker(d.dept.key)
        ref = f"{kind}:{d.dept.key}"
        if match.obj is None:
            diff = {f: FieldDiff(before=None, after=w) for f, (_o, w) in compare.items()}
            request = Request(method="POST", path=COLLECTION[kind], body={wrapper: body})
            self.changes.append(
                Change(
                    action="create",
                    kind=kind,
                    department=d.dept.key,
                    name=name,
                    diff=diff,
                    ref=ref,
                    requests=[request],
                    marker=marker,
                )
            )
            return
        diff = {f: FieldDiff(before=o, after=w) for f, (o, w) in compare.items() if o != w}
        if not diff and not match.adopt:
            return
        path = f"{COLLECTION[kind]}/{match.obj.id}"
        self.changes.append(
            Change(
                action="adopt" if match.adopt else "update",
                kind=kind,
                department=d.dept.key,
                name=name,
                id=match.obj.id,
                diff=diff,
                ref=ref,
                marker=marker,
                requests=[Request(method="PUT", path=path, body={wrapper: body})],
            )
        )

    def _plan_department(self, d: _Dept, depts: dict[str, _Dept], impact: bool) -> None:
        dept = d.dept
        if self.teams_enabled:
            self._plan_team(d)
        if dept.schedule:
            self._plan_schedule(d, impact)
        if dept.escalation_policy:
            self._plan_escalation_policy(d, depts)
        if dept.service:
            self._plan_service(d)

    def _text(self, value: str | None) -> str:
        return normalise_text(value)

    def _plan_team(self, d: _Dept) -> None:
        dept = d.dept
        obj: snap.Team | None = d.matches["team"].obj
        description = self._description(dept)
        body = {"type": "team", "name": dept.team_name, "description": description}
        compare = {
            "name": (obj.name if obj else None, dept.team_name),
            "description": (
                self._text(obj.description) if obj else None,
                self._text(description) if obj else description,
            ),
        }
        self._emit("team", d, dept.team_name, "team", body, compare)
        team_id = self._id_or_placeholder("team", d)
        wanted: dict[str, str] = {}
        for email in dept.members:
            wanted[self.user_ids[email]] = self._team_role(self.user_ids[email], "responder")
        if dept.point_of_contact:
            contact = self.user_ids[dept.point_of_contact]
            wanted[contact] = self._team_role(contact, "manager")
        have = {m.user_id: m.role for m in (obj.members or [])} if obj else {}
        for user_id, role in wanted.items():
            if have.get(user_id) == role:
                continue
            email = self.emails[user_id]
            action = "update" if user_id in have else "create"
            self._membership(d, email, user_id, team_id, action, have.get(user_id), role)
        for user_id, role in have.items():
            if user_id not in wanted:
                email = self.emails.get(user_id, user_id)
                self._membership(d, email, user_id, team_id, "delete", role, None)

    def _team_role(self, user_id: str, role: str) -> str:
        """The role PagerDuty will hold for ``user_id`` when ``role`` is asked for."""
        return FIXED_TEAM_ROLES.get(self.base_roles.get(user_id, "user"), role)

    def _membership(
        self,
        d: _Dept,
        email: str,
        user_id: str,
        team_id: str,
        action: str,
        before: str | None,
        after: str | None,
    ) -> None:
        path = f"/teams/{team_id}/users/{user_id}"
        request = (
            Request(method="DELETE", path=path)
            if action == "delete"
            else Request(method="PUT", path=path, body={"role": after})
        )
        self.changes.append(
            Change(
                action=action,
                kind="team_membership",
                department=d.dept.key,
                name=email,
                id=user_id if action != "create" else None,
                diff={"role": FieldDiff(before=before, after=after)},
                ref=f"team_membership:{d.dept.key}:{email}",
                requests=[request],
            )
        )

    def _plan_schedule(self, d: _Dept, impact: bool) -> None:
        dept = d.dept
        match = d.matches["schedule"]
        obj: snap.Schedule | None = match.obj
        if obj is not None and obj.type == "schedule_v3":
            # SPEC §1 "Shift-based (v3) schedules": PagerDuty upgraded it; the v2 layer
            # model cannot describe it, so it is neither rewritten nor recreated.
            self.changes.append(
                Change(
                    action="skip",
                    kind="schedule",
                    department=dept.key,
                    name=obj.name,
                    id=obj.id,
                    ref=f"schedule:{dept.key}",
                    reason=(
                        "PagerDuty upgraded it to a shift-based (v3) schedule: pdorgsync "
                        "leaves it as it is (edit it in PagerDuty, or remove the schedule "
                        "block from the file)"
                    ),
                )
            )
            return
        result = plan_schedule(
            self.org,
            dept,
            obj,
            user_ids=self.user_ids,
            emails=self.emails,
            now=self.now,
            at_next_handoff=self.at_next_handoff,
            description=self._description(dept),
            adopt=match.adopt,
        )
        if result.body is None:
            return
        marker = self.org.marker(dept.key)
        ref = f"schedule:{dept.key}"
        name = dept.schedule_name
        if obj is None:
            change = Change(
                action="create",
                kind="schedule",
                department=dept.key,
                name=name,
                diff=result.diff,
                ref=ref,
                marker=marker,
                requests=[Request(method="POST", path="/schedules", body=result.body)],
            )
        else:
            change = Change(
                action="adopt" if match.adopt else "update",
                kind="schedule",
                department=dept.key,
                name=name,
                id=obj.id,
                diff=result.diff,
                ref=ref,
                marker=marker,
                requests=[Request(method="PUT", path=f"/schedules/{obj.id}", body=result.body)],
            )
        self.changes.append(change)
        if impact:
            self.impacts.append(
                on_call_impact(
                    dept,
                    self.org.zone_of(dept),
                    name,
                    result.before,
                    [la for la in result.after if la.end is None or la.end > self.now],
                    self.emails,
                    self.now,
                )
            )

    def _target_name(self, ref: snap.Ref) -> str:
        kind = ref.type.removesuffix("_reference")
        if kind == "user":
            return f"user:{self.emails.get(ref.id, ref.id)}"
        found = self.snap.schedule_by_id(ref.id)
        return f"schedule:{found.name if found else ref.id}"

    def _plan_escalation_policy(self, d: _Dept, depts: dict[str, _Dept]) -> None:
        dept = d.dept
        spec = dept.escalation_policy
        assert spec is not None
        obj: snap.EscalationPolicy | None = d.matches["escalation_policy"].obj
        rules: list[dict[str, Any]] = []
        shown: list[dict[str, Any]] = []
        for level in spec.levels:
            targets: list[dict[str, str]] = []
            names: list[str] = []
            for target in level.targets:
                if target.startswith("user:"):
                    targets.append({"id": self.user_ids[target[5:]], "type": "user_reference"})
                    names.append(target)
                    continue
                other = depts[target[9:]] if target != "schedule" else d
                sched_id = self._id_or_placeholder("schedule", other)
                found = other.matches.get("schedule")
                v3 = found is not None and getattr(found.obj, "type", None) == "schedule_v3"
                # An upgraded schedule is referenced as schedule_v3_reference (developer
                # docs, "Schedules v2 to v3 Upgrade"): keep pointing at it, same id.
                ref_type = "schedule_v3_reference" if v3 else "schedule_reference"
                targets.append({"id": sched_id, "type": ref_type})
                names.append(f"schedule:{other.dept.schedule_name}")
            rules.append({"escalation_delay_in_minutes": level.delay_minutes, "targets": targets})
            shown.append({"delay_minutes": level.delay_minutes, "targets": names})
        team_id = self._id_or_placeholder("team", d)
        description = self._description(dept)
        body: dict[str, Any] = {
            "type": "escalation_policy",
            "name": dept.escalation_policy_name,
            "description": description,
            "num_loops": spec.loops,
            "escalation_rules": rules,
            "teams": [{"id": team_id, "type": "team_reference"}],
        }
        if not self.teams_enabled:
            del body["teams"]  # setting it needs the "teams" ability (402 otherwise)
        if obj is None:
            compare: dict[str, tuple[Any, Any]] = {
                "name": (None, dept.escalation_policy_name),
                "description": (None, description),
                "num_loops": (None, spec.loops),
                "escalation_rules": (None, shown),
                "team": (None, dept.team_name),
            }
        else:
            observed_rules = [
                {
                    "delay_minutes": r.escalation_delay_in_minutes,
                    "targets": [self._target_name(t) for t in r.targets],
                }
                for r in obj.rules
            ]
            have_rules = [
                (r.escalation_delay_in_minutes, [(_kind(t), t.id) for t in r.targets])
                for r in obj.rules
            ]
            want_rules = [
                (
                    r["escalation_delay_in_minutes"],
                    [(_kind_str(t["type"]), t["id"]) for t in r["targets"]],
                )
                for r in rules
            ]
            rules_diff = (observed_rules, shown) if have_rules != want_rules else (shown, shown)
            team_ids = obj.team_ids
            compare = {
                "name": (obj.name, dept.escalation_policy_name),
                "description": (self._text(obj.description), self._text(description)),
                "num_loops": (obj.num_loops, spec.loops),
                "escalation_rules": rules_diff,
                "team": (
                    [self._team_name(t) for t in team_ids],
                    [self._team_name(team_id)],
                ),
            }
        if not self.teams_enabled:
            compare.pop("team", None)
        self._emit(
            "escalation_policy", d, dept.escalation_policy_name, "escalation_policy", body, compare
        )

    def _team_name(self, team_id: str) -> str:
        found = self.snap.team_by_id(team_id)
        if found is not None:
            return found.name
        for dept in self.org.departments:
            if team_id == placeholder("team", dept.key):
                return dept.team_name
        return team_id

    def _plan_service(self, d: _Dept) -> None:
        dept = d.dept
        spec = dept.service
        assert spec is not None
        obj: snap.Service | None = d.matches["service"].obj
        ep_id = self._id_or_placeholder("escalation_policy", d)
        description = self._description(dept, spec.description)
        body = {
            "type": "service",
            "name": dept.service_name,
            "description": description,
            "escalation_policy": {"id": ep_id, "type": "escalation_policy_reference"},
            "incident_urgency_rule": {"type": "constant", "urgency": spec.urgency},
        }
        ep_name = dept.escalation_policy_name
        if obj is None:
            compare: dict[str, tuple[Any, Any]] = {
                "name": (None, dept.service_name),
                "description": (None, description),
                "escalation_policy": (None, ep_name),
                "urgency": (None, spec.urgency),
            }
        else:
            have_ep = obj.escalation_policy_id
            found = self.snap.escalation_policy_by_id(have_ep) if have_ep else None
            compare = {
                "name": (obj.name, dept.service_name),
                "description": (self._text(obj.description), self._text(description)),
                "escalation_policy": (
                    ep_name if have_ep == ep_id else (found.name if found else have_ep),
                    ep_name,
                ),
                "urgency": (obj.urgency, spec.urgency),
            }
        self._emit("service", d, dept.service_name, "service", body, compare)


def _kind(ref: snap.Ref) -> str:
    return _kind_str(ref.type)


def _kind_str(value: str) -> str:
    return value.removesuffix("_reference")
