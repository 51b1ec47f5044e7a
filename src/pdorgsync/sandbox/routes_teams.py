"""Teams, team membership and attaching escalation policies to teams."""

from __future__ import annotations

from typing import Any

from pdorgsync.sandbox.protocol import (
    ApiError,
    Body,
    Call,
    invalid,
    matches_query,
    paginate,
    read_route,
    route,
    update_route,
)
from pdorgsync.sandbox.state import State, team_role_of

TEAM_ROLES = ("observer", "responder", "manager")
TEAM_HAS_ASSOCIATIONS = 6006


def team_out(state: State, team: dict[str, Any]) -> dict[str, Any]:
    # An unset description is left out: the description types it as a non-nullable string.
    return state.stamp("team", {k: v for k, v in team.items() if v is not None})


def _team_fields(
    state: State, body: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    name = body.get("name", current["name"] if current else None)
    if not isinstance(name, str) or not name.strip():
        raise invalid("Name can't be blank")
    if len(name) > 100:
        raise invalid("Name is too long (maximum is 100 characters)")
    clash = next(
        (t for t in state.teams.values() if t["name"].lower() == name.lower()),
        None,
    )
    if clash is not None and (current is None or clash["id"] != current["id"]):
        raise invalid("Name has already been taken")
    description = body.get("description", current.get("description") if current else None)
    if description is not None and (not isinstance(description, str) or len(description) > 1024):
        raise invalid("Description is too long (maximum is 1024 characters)")
    out = {"name": name, "description": description}
    default_role = body.get("default_role", current.get("default_role") if current else "manager")
    if default_role not in ("manager", "none"):
        raise invalid("default_role must be manager or none")
    out["default_role"] = default_role
    return out


@route("GET", "/teams")
def list_teams(state: State, call: Call) -> tuple[int, Body]:
    teams = [
        t
        for t in sorted(state.teams.values(), key=lambda t: t["name"].lower())
        if matches_query(call, t["name"])
    ]
    return 200, paginate(call, teams, "teams", lambda t: team_out(state, t))


@route("POST", "/teams")
def create_team(state: State, call: Call) -> tuple[int, Body]:
    fields = _team_fields(state, call.wrapped("team"), None)
    team = {"id": state.new_id(), "type": "team", **fields}
    state.teams[team["id"]] = team
    state.members[team["id"]] = {}
    return 201, {"team": team_out(state, team)}


get_team = read_route("/teams/{id}", "team", team_out)
update_team = update_route("/teams/{id}", "team", team_out, _team_fields)


@route("DELETE", "/teams/{id}")
def delete_team(state: State, call: Call) -> tuple[int, Body]:
    """PagerDuty deletes a team only once no escalation policy (hence service) belongs to it."""
    team = state.get("team", call.params["id"])
    owned = [
        ep["name"] for ep in state.escalation_policies.values() if team["id"] in ep["team_ids"]
    ]
    if owned:
        raise ApiError(
            400,
            TEAM_HAS_ASSOCIATIONS,
            "Team has associations",
            [f"Escalation policies: {', '.join(owned)}"],
        )
    del state.teams[team["id"]]
    state.members.pop(team["id"], None)
    return 204, None


@route("GET", "/teams/{id}/members")
def list_members(state: State, call: Call) -> tuple[int, Body]:
    team = state.get("team", call.params["id"])
    members = [
        {"user": state.ref("user", user_id), "role": role}
        for user_id, role in state.members[team["id"]].items()
    ]
    return 200, paginate(call, members, "members")


@route("PUT", "/teams/{id}/users/{user_id}")
def put_member(state: State, call: Call) -> tuple[int, Body]:
    team = state.get("team", call.params["id"])
    user = state.get("user", call.params["user_id"])
    body = call.body if isinstance(call.body, dict) else {}
    role = body.get("role", "manager" if team.get("default_role") == "manager" else "responder")
    if role not in TEAM_ROLES:
        raise invalid(f"role must be one of {', '.join(TEAM_ROLES)}")
    # CONTRACT §5 reads a 400 for read-only users; the support docs (and SPEC §1) say
    # the role is fixed instead. pdorgsync never sends a role other than the fixed one
    # (and refuses stakeholder seats in the file), so it works under either reading.
    state.members[team["id"]][user["id"]] = team_role_of(user, role)
    return 204, None


@route("DELETE", "/teams/{id}/users/{user_id}")
def delete_member(state: State, call: Call) -> tuple[int, Body]:
    """CONTRACT §9.6: refused while the user is a target of one of the team's EPs."""
    team = state.get("team", call.params["id"])
    user = state.get("user", call.params["user_id"])
    if user["id"] not in state.members[team["id"]]:
        raise invalid("User is not a member of the team")
    blocking = [
        ep_id
        for ep_id in state.escalation_policies_targeting("user", user["id"])
        if team["id"] in state.escalation_policies[ep_id]["team_ids"]
    ]
    if blocking:
        names = ", ".join(state.summary("escalation_policy", ep_id) for ep_id in blocking)
        raise invalid(
            f"User cannot be removed from the team: they are a target of its escalation policies ({names})"
        )
    del state.members[team["id"]][user["id"]]
    return 204, None


@route("PUT", "/teams/{id}/escalation_policies/{escalation_policy_id}")
def attach_policy(state: State, call: Call) -> tuple[int, Body]:
    team = state.get("team", call.params["id"])
    ep = state.get("escalation_policy", call.params["escalation_policy_id"])
    if ep["team_ids"] and team["id"] not in ep["team_ids"]:
        raise invalid("Escalation Policy has already been taken")
    ep["team_ids"] = [team["id"]]
    return 204, None


@route("DELETE", "/teams/{id}/escalation_policies/{escalation_policy_id}")
def detach_policy(state: State, call: Call) -> tuple[int, Body]:
    team = state.get("team", call.params["id"])
    ep = state.get("escalation_policy", call.params["escalation_policy_id"])
    if team["id"] in ep["team_ids"]:
        ep["team_ids"].remove(team["id"])
    return 204, None
