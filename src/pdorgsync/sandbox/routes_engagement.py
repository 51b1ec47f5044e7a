"""How pdorgsync engages people on an incident: responder requests and status-update subscribers.

The responder-request endpoint is where PagerDuty's description and its live API
part ways most (CONTRACT §5, §9.7, §9.9): targets must be wrapped in
``responder_request_target`` (flat ones get a 404-style 2100), and the response
nests ``incidents_responders``. Subscribing answers 200 with a ``result`` per item.
"""

from __future__ import annotations

from typing import Any

from pdorgsync.sandbox.oncall import on_call_users
from pdorgsync.sandbox.protocol import (
    MISSING_ABILITY,
    NOT_FOUND,
    REQUESTER_MISSING,
    REQUESTER_NOT_FOUND,
    ApiError,
    Body,
    Call,
    invalid,
    not_found,
    route,
)
from pdorgsync.sandbox.state import State, iso


def _responders_for(
    state: State, target: dict[str, Any], incident: dict[str, Any], requester_id: str, message: str
) -> list[dict[str, Any]]:
    if target["type"] in ("user", "user_reference"):
        users = [target["id"]]
    else:
        users = on_call_users(state, target["id"])
    now = iso(state.now())
    responders = []
    for user_id in users:
        responder: dict[str, Any] = {
            "state": "pending",
            "user": state.ref("user", user_id),
            "incident": state.ref("incident", incident["id"]),
            "updated_at": now,
            "message": message,
            "requester": state.ref("user", requester_id),
            "requested_at": now,
        }
        if target["type"] not in ("user", "user_reference"):
            # PagerDuty's OpenAPI description, IncidentsRespondersReference: "Names of
            # escalation policies that this responder was requested through" — names,
            # not ids (issue 10 item 11).
            responder["escalation_policy_requests"] = [
                state.summary("escalation_policy", target["id"])
            ]
        responders.append(responder)
    return responders


@route("POST", "/incidents/{id}/responder_requests")
def request_responders(state: State, call: Call) -> tuple[int, Body]:
    incident = state.get("incident", call.params["id"])
    if "coordinated_responding" not in state.abilities:
        raise ApiError(
            402, MISSING_ABILITY, "Account does not have the ability", ["coordinated_responding"]
        )
    body = call.body if isinstance(call.body, dict) else {}
    requester_id = body.get("requester_id")
    if not requester_id:
        raise ApiError(400, REQUESTER_MISSING, "Requester ID is required")
    if requester_id not in state.users:
        raise ApiError(400, REQUESTER_NOT_FOUND, "Requester User Not Found")
    # This handler also sees requests the description refuses (see app.HANDLER_DECIDES),
    # so it enforces the description's other requirements itself.
    if not isinstance(body.get("message"), str):
        raise invalid("message is required")
    message = body["message"]
    raw_targets = body.get("responder_request_targets")
    if not isinstance(raw_targets, list) or not raw_targets:
        raise invalid("responder_request_targets must list at least one target")
    targets_out = []
    for raw in raw_targets:
        target = raw.get("responder_request_target") if isinstance(raw, dict) else None
        if not isinstance(target, dict):
            # CONTRACT §5: flat targets are refused with a 404-style "Not Found".
            raise ApiError(404, NOT_FOUND, "Not Found")
        kind = str(target.get("type", "")).removesuffix("_reference")
        if kind not in ("user", "escalation_policy") or target.get("id") not in state.table(kind):
            raise not_found(f"Responder request target {target.get('id')}")
        responders = _responders_for(state, target, incident, requester_id, message)
        incident["responders"].extend(responders)
        targets_out.append(
            {
                "responder_request_target": {
                    "type": kind,
                    "id": target["id"],
                    "summary": state.summary(kind, target["id"]),
                    "incidents_responders": responders,
                }
            }
        )
    request = {
        "id": state.new_id(),
        "incident": state.ref("incident", incident["id"]),
        "requester": state.ref("user", requester_id),
        "requested_at": iso(state.now()),
        "message": message,
        "responder_request_targets": targets_out,
    }
    incident["responder_requests"].append(request)
    return 200, {"responder_request": request}


@route("PUT", "/incidents/{id}/responder_requests/cancel")
def cancel_responders(state: State, call: Call) -> tuple[int, Body]:
    incident = state.get("incident", call.params["id"])
    body = call.body if isinstance(call.body, dict) else {}
    if body.get("requester_id") not in state.users:
        raise ApiError(400, REQUESTER_NOT_FOUND, "Requester User Not Found")
    results = []
    for target in body.get("responder_request_targets") or []:
        matching = [
            r
            for r in incident["responders"]
            if (target.get("type") == "user_reference" and r["user"]["id"] == target.get("id"))
            or (
                target.get("type") == "escalation_policy_reference"
                and state.summary("escalation_policy", str(target.get("id")))
                in r.get("escalation_policy_requests", [])
            )
        ]
        result = "not_found"
        for responder in matching:
            if responder["state"] == "pending":
                responder["state"] = "user_cancelled"
                result = "cancelled"
            elif result == "not_found":
                result = responder["state"]
        results.append({"type": target.get("type"), "id": target.get("id"), "result": result})
    return 200, {"responder_request_targets": results}


def _subscriber_items(state: State, call: Call) -> list[tuple[str, str]]:
    raw = call.body.get("subscribers") if isinstance(call.body, dict) else None
    if not isinstance(raw, list) or not raw:
        raise invalid("subscribers must list at least one subscriber")
    items = []
    for i, item in enumerate(raw):
        kind = item.get("subscriber_type") if isinstance(item, dict) else None
        if kind not in ("user", "team") or item.get("subscriber_id") not in state.table(kind):
            raise invalid(f"subscribers[{i}] is not a known user or team")
        items.append((item["subscriber_id"], kind))
    return items


@route("POST", "/incidents/{id}/status_updates/subscribers")
def subscribe(state: State, call: Call) -> tuple[int, Body]:
    """200 whatever happens: each subscription says ``success`` or ``duplicate``."""
    incident = state.get("incident", call.params["id"])
    current = state.subscribers[incident["id"]]
    out = []
    for subscriber_id, kind in _subscriber_items(state, call):
        duplicate = any(s["subscriber_id"] == subscriber_id for s in current)
        if not duplicate:
            current.append({"subscriber_id": subscriber_id, "subscriber_type": kind})
        out.append(
            {
                "subscriber_id": subscriber_id,
                "subscriber_type": kind,
                "subscribable_id": incident["id"],
                "subscribable_type": "incident",
                "account_id": "PSANDBX",
                "result": "duplicate" if duplicate else "success",
            }
        )
    return 200, {"subscriptions": out}


@route("GET", "/incidents/{id}/status_updates/subscribers")
def list_subscribers(state: State, call: Call) -> tuple[int, Body]:
    incident = state.get("incident", call.params["id"])
    subscribers = [
        {**s, "has_indirect_subscription": False, "subscribed_via": None}
        for s in state.subscribers[incident["id"]]
    ]
    return 200, {
        "subscribers": subscribers,
        "account_id": "PSANDBX",
        "limit": len(subscribers),
        "offset": 0,
        "more": False,
        "total": len(subscribers),
    }


@route("POST", "/incidents/{id}/status_updates/unsubscribe")
def unsubscribe(state: State, call: Call) -> tuple[int, Body]:
    incident = state.get("incident", call.params["id"])
    current = state.subscribers[incident["id"]]
    deleted = missing = 0
    for subscriber_id, _ in _subscriber_items(state, call):
        before = len(current)
        current[:] = [s for s in current if s["subscriber_id"] != subscriber_id]
        deleted += before - len(current)
        missing += before == len(current)
    return 200, {"deleted_count": deleted, "unauthorized_count": 0, "non_existent_count": missing}
