"""Which PagerDuty objects each imported department takes (``core.importing``): one
department per team, then its escalation policy, schedule and service, each chosen
deterministically, and notes for every object left out and why. Pure.
"""

from __future__ import annotations

from collections import Counter

from pdorgsync.core.import_context import (
    SECOND_EP,
    SECOND_SCHEDULE,
    SECOND_SERVICE,
    TEAMLESS_EP,
    TEAMLESS_SCHEDULE,
    TEAMLESS_SERVICE,
    UNFIT_SERVICE,
    UNFIT_TEAM,
    V3_SCHEDULE,
    DeptDraft,
    ImportState,
    Note,
    by_name,
)
from pdorgsync.core.import_values import (
    Unfit,
    slug,
)
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import parse_marker


def make_departments(st: ImportState) -> None:
    """One department per team: a team with this org's marker keeps its key, others get slugs."""
    fitting: list[tuple[snap.Team, str | None]] = []
    claimed: set[str] = set()
    team_markers = Counter(
        owner[1]
        for t in st.snap.teams
        if (owner := parse_marker(t.description)) is not None and owner[0] == st.org_id
    )
    for team in by_name(st.snap.teams):
        owner = parse_marker(team.description)
        problem = st.owner_problem(team, "team", None)
        if team.id in st.clashing["team"]:
            problem = f"another team is also named {team.name!r} (case-insensitively)"
        if not team.name.strip() or len(team.name) > 100:
            problem = f"team name {team.name!r} is empty or longer than 100 characters"
        marked = owner[1] if owner is not None and problem is None else None
        if marked is not None and team_markers[marked] > 1:
            # The planner would match whichever of them it meets first.
            problem = f"{team_markers[marked]} teams carry the marker of department {marked!r}"
        if problem:
            st.top.append(
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
        for objs in (st.snap.teams, *st.objects.values())
        for o in objs
        if (owner := parse_marker(o.description)) is not None and owner[0] == st.org_id
    }
    for team, marked in fitting:
        key = marked
        if key is None:
            key = base = slug(team.name)
            n = 2
            while key in used:
                key, n = f"{base}-{n}", n + 1
            used.add(key)
        st.depts.append(DeptDraft(team=team, key=key))
    st.depts.sort(key=lambda d: d.key)


def assign_eps(st: ImportState) -> None:
    routed = Counter(s.escalation_policy_id for s in st.snap.services)
    for d in st.depts:
        mine = [e for e in st.snap.escalation_policies if d.team.id in e.team_ids]
        mine.sort(
            key=lambda e: (
                not st.mine(e, d.key),
                -routed[e.id],
                e.name.casefold(),
                e.name,
                e.id,
            )
        )
        if not mine:
            continue
        d.ep = d.ep_seen = mine[0]
        for other in by_name(mine[1:]):
            d.note(
                "escalation_policy",
                f"escalation policy {other.name!r} ({other.id}) not imported: "
                f"the department has one, {d.ep.name!r}",
                SECOND_EP,
            )


def targeted_schedules(st: ImportState, ep: snap.EscalationPolicy | None) -> list[str]:
    if ep is None:
        return []
    return [
        t.id for r in ep.rules for t in r.targets if t.type.removesuffix("_reference") == "schedule"
    ]


def assign_schedules(st: ImportState) -> None:
    """Each department's schedule: one of its team's (preferably one its policy targets),
    else a schedule of no team its policy targets; notes for every schedule left out."""
    claimed: set[str] = set()
    v1 = [s for s in st.snap.schedules if s.type == "schedule"]
    for d in st.depts:  # a schedule of the team, preferably one its policy targets
        targeted = targeted_schedules(st, d.ep)
        mine = [s for s in v1 if d.team.id in s.team_ids and s.id not in claimed]
        mine.sort(
            key=lambda s: (
                not st.mine(s, d.key),
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
    for d in st.depts:  # else a schedule of no team that its policy targets
        if d.schedule is not None:
            continue
        for sid in targeted_schedules(st, d.ep):
            found = st.snap.schedule_by_id(sid)
            if found and found.type == "schedule" and not found.team_ids and sid not in claimed:
                d.schedule = found
                claimed.add(sid)
                d.note(
                    "schedule",
                    f"schedule {found.name!r} belongs to no team; imported here "
                    "because this department's escalation policy targets it",
                )
                break
    for d in st.depts:
        for other in d.other_schedules:
            if other.id in claimed:
                continue  # shared with a team that imported it
            d.note(
                "schedule",
                f"schedule {other.name!r} ({other.id}) not imported: the department "
                f"has one, {d.schedule.name if d.schedule else '?'!r}",
                SECOND_SCHEDULE,
            )
            claimed.add(other.id)
    _note_unclaimed_schedules(st, claimed)


def _note_unclaimed_schedules(st: ImportState, claimed: set[str]) -> None:
    """A note at the top of the file for each v3 schedule and each schedule no one took."""
    for s in by_name(st.snap.schedules):
        if s.type != "schedule":
            st.top.append(
                Note(
                    ("departments",),
                    f"schedule {s.name!r} ({s.id}) is shift-based (v3), which pdorgsync "
                    "cannot manage: not imported",
                    V3_SCHEDULE,
                )
            )
        elif s.id not in claimed:
            teams = sorted(t.name for t in st.snap.teams if t.id in s.team_ids)
            text = f"schedule {s.name!r} ({s.id}) not imported: " + (
                "it belongs to no team and no imported policy claims it"
                if not teams
                else f"its teams ({', '.join(teams)}) were not imported"
            )
            st.top.append(Note(("departments",), text, TEAMLESS_SCHEDULE))


def assign_services(st: ImportState) -> None:
    for d in st.depts:
        if d.ep_seen is None:
            continue
        routed = sorted(
            by_name(s for s in st.snap.services if s.escalation_policy_id == d.ep_seen.id),
            key=lambda s: not st.mine(s, d.key),
        )
        for service in routed:
            why = None
            st.noted_services.add(service.id)
            if d.ep is None:
                why = "its escalation policy is not imported"
            elif service.id in st.clashing["service"]:
                why = f"another service is also named {service.name!r}"
            elif service.urgency not in ("high", "low", "severity_based"):
                why = "its urgency follows support hours, which the org file cannot say"
            else:
                why = st.owner_problem(service, "service", d.key)
            if why is None and d.service is None:
                try:
                    st.marked_elsewhere("service", "service", service, d.key)
                except Unfit as unfit:
                    why = str(unfit)
            if why is None and d.service is None:
                d.service = service
                st.service_owner[service.id] = d.key
                continue
            reason = why or f"the department has one, {d.service.name if d.service else ''!r}"
            d.note(
                "service",
                f"service {service.name!r} ({service.id}) not imported: {reason}; "
                "listed under service_labels",
                UNFIT_SERVICE if why else SECOND_SERVICE,
            )


def leftovers(st: ImportState) -> None:
    for ep in by_name(st.snap.escalation_policies):
        if ep.team_ids or ep.id in st.ep_owner:
            continue
        st.top.append(
            Note(
                ("departments",),
                f"escalation policy {ep.name!r} ({ep.id}) belongs to no team: not imported",
                TEAMLESS_EP,
            )
        )
    for service in by_name(st.snap.services):
        if service.id in st.service_owner:
            continue
        if service.id in st.noted_services:
            continue  # already explained in its department
        st.top.append(
            Note(
                ("service_labels",),
                f"service {service.name!r} ({service.id}) is routed to no department's "
                "escalation policy: not imported",
                TEAMLESS_SERVICE,
            )
        )
