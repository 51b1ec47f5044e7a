"""Users, their contact methods and notification rules, priorities, abilities.

The sandbox never creates users through the API (pdorgsync never does either);
they come from the seed file.
"""

from __future__ import annotations

from typing import Any

from pdorgsync.sandbox.protocol import (
    MISSING_ABILITY,
    ApiError,
    Body,
    Call,
    matches_query,
    paginate,
    read_route,
    route,
)
from pdorgsync.sandbox.state import State


def contact_method_ref(state: State, cm: dict[str, Any]) -> dict[str, Any]:
    ref = state.ref("contact_method", cm["id"])
    ref["type"] = f"{cm['type']}_reference"
    ref["summary"] = cm["label"]
    return ref


def contact_method_out(state: State, cm: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in cm.items() if k != "user_id"}
    out.update(summary=cm["label"], self=state.self_url("contact_method", cm["id"]), html_url=None)
    return out


def notification_rule_out(state: State, rule: dict[str, Any]) -> dict[str, Any]:
    cm = state.contact_methods[rule["contact_method_id"]]
    return {
        "id": rule["id"],
        "type": "assignment_notification_rule",
        "summary": f"{rule['start_delay_in_minutes']} minutes: channel {cm['id']}",
        "self": state.self_url("notification_rule", rule["id"]),
        "html_url": None,
        "start_delay_in_minutes": rule["start_delay_in_minutes"],
        "urgency": rule["urgency"],
        "contact_method": contact_method_ref(state, cm),
    }


def user_out(
    state: State, user: dict[str, Any], include: list[str] | None = None
) -> dict[str, Any]:
    """A full user; ``include[]`` is accepted but references stay references."""
    cms = state.owned_by("contact_methods", user["id"])
    rules = state.owned_by("notification_rules", user["id"])
    out = dict(user)
    out.update(
        contact_methods=[contact_method_ref(state, cm) for cm in cms],
        notification_rules=[
            {
                "id": r["id"],
                "type": "assignment_notification_rule_reference",
                "summary": f"{r['urgency']} urgency rule",
                "self": state.self_url("notification_rule", r["id"]),
                "html_url": None,
            }
            for r in rules
        ],
        teams=[state.ref("team", team_id) for team_id in state.teams_of_user(user["id"])],
        avatar_url=f"https://secure.gravatar.com/avatar/{user['id']}.png",
        invitation_sent=False,
    )
    return state.stamp("user", out)


@route("GET", "/users")
def list_users(state: State, call: Call) -> tuple[int, Body]:
    team_ids = set(call.args("team_ids"))
    users = [
        u
        for u in sorted(state.users.values(), key=lambda u: u["name"].lower())
        if matches_query(call, u["name"], u["email"])
        and (not team_ids or team_ids & set(state.teams_of_user(u["id"])))
    ]
    return 200, paginate(call, users, "users", lambda u: user_out(state, u))


@route("GET", "/users/me")
def current_user(state: State, call: Call) -> tuple[int, Body]:
    """The user a user-level key acts as. An account-level key has no user: PagerDuty
    answers 400 with a bare error string (PagerDuty/python-pagerduty,
    ``RestApiV2Client.api_key_access`` and its test, which tell key kinds apart so)."""
    user = state.user_by_email(call.headers.get("x-pdorgsync-sandbox-token-user"))
    if user is None:
        return 400, {
            "error": "Because this request was made using an account-level access token, "
            "we were unable to determine the user's identity. Please use a user-level token."
        }
    return 200, {"user": user_out(state, user)}


get_user = read_route("/users/{id}", "user", user_out)


@route("GET", "/users/{id}/contact_methods")
def list_contact_methods(state: State, call: Call) -> tuple[int, Body]:
    user = state.get("user", call.params["id"])
    cms = [cm for cm in state.contact_methods.values() if cm["user_id"] == user["id"]]
    return 200, {"contact_methods": [contact_method_out(state, cm) for cm in cms]}


@route("GET", "/users/{id}/notification_rules")
def list_notification_rules(state: State, call: Call) -> tuple[int, Body]:
    user = state.get("user", call.params["id"])
    urgency = call.arg("urgency") or "high"
    rules = [
        r
        for r in state.notification_rules.values()
        if r["user_id"] == user["id"] and (urgency == "all" or r["urgency"] == urgency)
    ]
    return 200, {"notification_rules": [notification_rule_out(state, r) for r in rules]}


@route("GET", "/priorities")
def list_priorities(state: State, call: Call) -> tuple[int, Body]:
    items = [state.stamp("priority", {**p, "type": "priority"}) for p in state.priorities.values()]
    return 200, paginate(call, items, "priorities")


@route("GET", "/abilities")
def list_abilities(state: State, call: Call) -> tuple[int, Body]:
    return 200, {"abilities": list(state.abilities)}


@route("GET", "/abilities/{id}")
def get_ability(state: State, call: Call) -> tuple[int, Body]:
    if call.params["id"] not in state.abilities:
        raise ApiError(
            402, MISSING_ABILITY, "Account does not have the ability", [call.params["id"]]
        )
    return 204, None
