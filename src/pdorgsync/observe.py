"""Bulk reads of a PagerDuty account into a ``Snapshot`` (the planner's and audit's input).

Why this module exists: the naive way to read an account (one GET per object, one
per team membership) costs tens of thousands of calls for a mid-sized company; the
Terraform provider spends 22,500 calls on 1,500 memberships. Here each collection is
one paginated list walk (limit 100), and the only per-object reads are the ones no
list can answer:

* none for schedule layers, normally: the schedule list walk asks for them with
  ``include[]=schedule_layers`` (documented in PagerDuty's OpenAPI description of
  ``GET /schedules``, with a "With Schedule Layers" example). Only a list entry that
  still comes back without layers falls back to ``GET /schedules/{id}``, and only for
  *candidate* schedules: those carrying this org's marker for a department in the
  file, or named like a schedule the file wants (plus ``with_layers_for``);
* ``GET /teams/{id}/members`` (one request per page of 100 members), only for the
  candidate teams (owned or same-named as a desired team, plus ``with_members_for``).

It never writes, and it never decides anything: matching and diffing are the pure
planner's job (``core/planning.py``). Other commands (the audit) call ``observe``
for their base snapshot with ``org=None`` and their own ``with_*`` selections.

Schedule layers are normalised to SPEC's order, lowest priority first (PagerDuty
appends a new layer on top), which ``core.schedules.render_schedule`` and the planner
use. PagerDuty *returns* them the other way round, highest priority first: the reverse
of the order they were written (PagerDuty/public-support-scripts
``schedule_layer_reorganizer``; terraform-provider-pagerduty reverses them on read in
``flattenScheduleLayers``), so ``parse_schedule`` reverses the list.

A list response may carry layers without an ``id`` (the "With Schedule Layers" example
of ``GET /schedules`` in PagerDuty's OpenAPI description does): such a schedule counts
as "layers not fetched" and falls back to ``GET /schedules/{id}``, because a layer is
only editable by its id.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pdorgsync.api_parsing import (
    parse_escalation_policy,
    parse_schedule,
    parse_service,
    parse_team,
    parse_user,
    ref_ids,
)
from pdorgsync.core.planning_objects import COLLECTION
from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.logs import get_logger
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import Org, parse_marker

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

log = get_logger(__name__)

PAGE = {"limit": 100}
Selector = Callable[[Any], bool] | Collection[str] | None
Progress = Callable[[str], None]


PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "team": parse_team,
    "schedule": parse_schedule,
    "escalation_policy": parse_escalation_policy,
    "service": parse_service,
}


# -- candidates -----------------------------------------------------------------------------


def _selected(selector: Selector, item: Any) -> bool:
    if selector is None:
        return False
    if callable(selector):
        return bool(selector(item))
    return str(item.id) in selector


def desired_names(org: Org, kind: str) -> set[str]:
    """Names the file wants for ``kind`` (team/schedule/escalation_policy/service)."""
    names: set[str] = set()
    for dept in org.departments:
        if kind == "team":
            names.add(dept.team_name)
        elif kind == "schedule" and dept.schedule:
            names.add(dept.schedule_name)
        elif kind == "escalation_policy" and dept.escalation_policy:
            names.add(dept.escalation_policy_name)
        elif kind == "service" and dept.service:
            names.add(dept.service_name)
    return names


def is_candidate(org: Org | None, kind: str, item: Any, names: set[str] | None = None) -> bool:
    """Owned by a department of the file, or named like an object the file wants.

    ``names``: ``desired_names(org, kind)`` computed once by a caller that asks for
    many items (linear, not one rebuild per item).
    """
    if org is None:
        return False
    owner = parse_marker(item.description)
    if owner is not None and owner[0] == org.org and org.department(owner[1]) is not None:
        return True
    return item.name in (desired_names(org, kind) if names is None else names)


# -- the walk -------------------------------------------------------------------------------


def observe(
    client: PagerDutyApi,
    org: Org | None = None,
    *,
    with_layers_for: Selector = None,
    with_members_for: Selector = None,
    user_details: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
    v3_for: Org | None = None,
    with_teams: bool = True,
) -> snap.Snapshot:
    """Read the account in bulk (see the module docstring for what costs a request).

    ``org``: the file whose candidate teams/schedules get members/layers (None: none).
    ``with_layers_for`` / ``with_members_for``: extra schedules / teams to detail, as a
    collection of ids or a predicate on the parsed ``snapshot.Schedule`` / ``Team``.
    ``user_details``: include contact methods and notification rules in the user list
    (same single walk, ``include[]``), as the audit needs.
    ``v3_for``: the org whose upgraded (v3) schedules to look for when ``org`` is None.
    ``with_teams=False``: the account lacks the "teams" ability; every ``/teams`` call would
    answer 402, so no team is read.
    """
    say = progress or (lambda _msg: None)
    user_params: dict[str, Any] = dict(PAGE)
    if user_details:
        user_params["include[]"] = ["contact_methods", "notification_rules"]
    say("reading users")
    users = [parse_user(u) for u in client.list_all("/users", user_params)]
    say("reading teams")
    teams = [parse_team(t) for t in client.list_all("/teams", PAGE)] if with_teams else []
    say("reading schedules")
    schedule_params: dict[str, Any] = dict(PAGE)
    if org is not None or with_layers_for is not None:
        # Layers ride along in the list walk: one request per 100 schedules instead
        # of one per schedule. Entries without them fall back to GET /schedules/{id}.
        schedule_params["include[]"] = ["schedule_layers"]
    schedules = [parse_schedule(s) for s in client.list_all("/schedules", schedule_params)]
    say("reading escalation policies")
    eps = [parse_escalation_policy(e) for e in client.list_all("/escalation_policies", PAGE)]
    say("reading services")
    services = [parse_service(s) for s in client.list_all("/services", PAGE)]
    v3_org = org if org is not None else v3_for
    if may_hold_v3_schedules(v3_org, teams, schedules, eps):
        say("reading shift-based schedules")
        schedules += read_v3_schedules(client, v3_org, eps)

    wanted = {k: desired_names(org, k) for k in ("schedule", "team")} if org is not None else {}
    detailed = [
        s
        for s in schedules
        if s.layers is None
        and s.type == "schedule"  # v3 schedules have no layers to read here (CONTRACT §9.11)
        and (
            is_candidate(org, "schedule", s, wanted.get("schedule"))
            or _selected(with_layers_for, s)
        )
    ]
    if detailed:
        say(f"reading layers of {len(detailed)} schedules")
    by_id = {s.id: s for s in schedules}
    for schedule in detailed:
        by_id[schedule.id] = fetch_schedule(client, schedule.id)
    member_teams = {
        t.id
        for t in teams
        if is_candidate(org, "team", t, wanted.get("team")) or _selected(with_members_for, t)
    }
    if member_teams:
        say(f"reading members of {len(member_teams)} teams")
    teams = [parse_team_with_members(client, t) if t.id in member_teams else t for t in teams]
    log.info(
        "observe.done",
        users=len(users),
        teams=len(teams),
        schedules=len(schedules),
        escalation_policies=len(eps),
        services=len(services),
        schedule_details=len(detailed),
        member_reads=len(member_teams),
    )
    return snap.Snapshot(
        users=users,
        teams=teams,
        schedules=[by_id[s.id] for s in schedules],
        escalation_policies=eps,
        services=services,
        observed_at=now,
    )


def may_hold_v3_schedules(
    org: Org | None,
    teams: Iterable[snap.Team],
    schedules: Iterable[snap.Schedule],
    eps: Iterable[snap.EscalationPolicy],
) -> bool:
    """Whether the account may hold an upgraded schedule that matters, so that the
    ``/v3/schedules`` walk is worth a request: an escalation policy targets one
    (``schedule_v3_reference``), or a department of the file that already exists in
    PagerDuty (its team carries the marker) has no layer-based schedule any more."""
    eps = list(eps)
    if any(t.type == "schedule_v3_reference" for ep in eps for r in ep.rules for t in r.targets):
        return True
    if org is None:
        return False
    owned_teams = {
        owner[1]
        for t in teams
        if (owner := parse_marker(t.description)) is not None and owner[0] == org.org
    }
    # Indexed once (a scan of every schedule per department was quadratic).
    schedule_names: set[str] = set()
    marked: set[tuple[str, str]] = set()
    for s in schedules:
        schedule_names.add(s.name)
        if (owner := parse_marker(s.description)) is not None:
            marked.add(owner)
    for dept in org.departments:
        if dept.schedule is None or dept.key not in owned_teams:
            continue
        if (org.org, dept.key) not in marked and dept.schedule_name not in schedule_names:
            return True
    return False


def read_v3_schedules(
    client: PagerDutyApi, org: Org | None, eps: Iterable[snap.EscalationPolicy]
) -> list[snap.Schedule]:
    """Shift-based (v3) schedules: one list walk of ``GET /v3/schedules``.

    An upgraded schedule leaves ``GET /schedules`` (PagerDuty developer docs,
    "Schedules v2 to v3 Upgrade"), so without this walk a managed schedule that was
    upgraded would look missing and be created again. The list holds references
    (id and name); ``GET /v3/schedules/{id}`` (description, so the ownership marker,
    and time zone) is read only for candidates: named like a schedule the file wants,
    or targeted by an escalation policy that carries this org's marker. An account
    that cannot list v3 schedules (a permanent error) has none.
    """
    try:
        refs = client.list_all("/v3/schedules", PAGE)
    except PermanentPagerDutyError as exc:
        log.info("observe.v3_schedules_unavailable", error=str(exc))
        return []
    wanted = desired_names(org, "schedule") if org is not None else set()
    targeted = {
        t.id
        for ep in eps
        if org is not None
        and (owner := parse_marker(ep.description)) is not None
        and owner[0] == org.org
        for rule in ep.rules
        for t in rule.targets
        if t.type == "schedule_v3_reference"
    }
    out: list[snap.Schedule] = []
    for ref in refs:
        schedule_id = str(ref["id"])
        name = str(ref.get("summary") or ref.get("name") or "")
        if name in wanted or schedule_id in targeted:
            raw = client.get(f"/v3/schedules/{schedule_id}")["schedule"]
            out.append(
                snap.Schedule(
                    id=schedule_id,
                    name=str(raw.get("name") or name),
                    type="schedule_v3",
                    description=raw.get("description"),
                    time_zone=raw.get("time_zone") or "Etc/UTC",
                    team_ids=ref_ids(raw.get("teams")),
                )
            )
        else:
            out.append(
                snap.Schedule(id=schedule_id, name=name, type="schedule_v3", time_zone="Etc/UTC")
            )
    return out


def fetch_schedule(client: PagerDutyApi, schedule_id: str) -> snap.Schedule:
    """One schedule with its layers (``GET /schedules/{id}``)."""
    return parse_schedule(client.get(f"/schedules/{schedule_id}")["schedule"], need_layer_ids=True)


def parse_team_with_members(client: PagerDutyApi, team: snap.Team) -> snap.Team:
    """The team with its members: one request per page of 100 members."""
    members = client.list_all(f"/teams/{team.id}/members", PAGE)
    return team.model_copy(
        update={
            "members": [
                snap.TeamMember(user_id=m["user"]["id"], role=m.get("role") or "") for m in members
            ]
        }
    )


def find_existing(client: PagerDutyApi, kind: str, name: str, marker: str | None) -> str | None:
    """The id of a ``kind`` object carrying ``marker`` or named ``name`` (after an unknown outcome).

    Uses the list's ``query`` filter (a handful of requests, not a full walk). Only an
    object with our marker counts when ``marker`` is given, so an unowned look-alike is
    never mistaken for the one we created.
    """
    found: Iterable[dict[str, Any]] = client.list_all(COLLECTION[kind], {**PAGE, "query": name})
    for raw in found:
        item = PARSERS[kind](raw)
        if item.name != name:
            continue
        if marker is None or (item.description and marker in item.description):
            return str(item.id)
    return None


__all__ = [
    "desired_names",
    "fetch_schedule",
    "find_existing",
    "is_candidate",
    "may_hold_v3_schedules",
    "observe",
    "read_v3_schedules",
]
