"""Webhook subscriptions (CONTRACT §7), tags and log entries (minimal)."""

from __future__ import annotations

from typing import Any

from pdorgsync.sandbox.protocol import (
    Body,
    Call,
    invalid,
    matches_query,
    not_found,
    paginate,
    read_route,
    route,
)
from pdorgsync.sandbox.state import State, iso

REDACTED = "-- redacted --"
FILTER_KINDS = {"account_reference": None, "service_reference": "service", "team_reference": "team"}


def _filter(state: State, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type") not in FILTER_KINDS:
        raise invalid("filter.type must be account_reference, service_reference or team_reference")
    kind = FILTER_KINDS[raw["type"]]
    if kind is None:
        return {"type": "account_reference"}
    if raw.get("id") not in state.table(kind):
        raise invalid(f"filter.id must be an existing {kind}")
    return {"type": raw["type"], "id": raw["id"]}


# The V3 event types PagerDuty documents (developer docs, webhooks "Overview" → "Event
# Types"; CONTRACT §8). A subscription naming another type is refused with 400, so a
# product that subscribes to a misspelt or invented type sees it in the tests.
EVENT_TYPES = frozenset(
    {
        *(
            f"incident.{name}"
            for name in (
                "acknowledged",
                "annotated",
                "conference_bridge.updated",
                "custom_field_values.updated",
                "delegated",
                "escalated",
                "incident_type.changed",
                "priority_updated",
                "reassigned",
                "reopened",
                "resolved",
                "responder.added",
                "responder.replied",
                "role.assigned",
                "service_updated",
                "status_update_published",
                "task.created",
                "task.updated",
                "task.completed",
                "triggered",
                "unacknowledged",
                "action_invocation.created",
                "action_invocation.updated",
                "action_invocation.terminated",
                "workflow.started",
                "workflow.completed",
            )
        ),
        "service.created",
        "service.updated",
        "service.deleted",
        "service.custom_field_values.updated",
    }
)


def _events(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or len(set(raw)) != len(raw):
        raise invalid("events must be a non-empty list of unique event types")
    unknown = sorted(str(e) for e in raw if e not in EVENT_TYPES)
    if unknown:
        raise invalid(f"events: unknown event type(s) {', '.join(unknown)}")
    return [str(e) for e in raw]


def subscription_out(sub: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
    """Custom header values and the secret are never shown again after creation."""
    delivery = dict(sub["delivery_method"])
    delivery["custom_headers"] = [
        {"name": h["name"], "value": h["value"] if with_secret else REDACTED}
        for h in delivery.get("custom_headers", [])
    ]
    delivery["secret"] = sub["secret"] if with_secret else None
    return {
        "id": sub["id"],
        "type": "webhook_subscription",
        "active": sub["active"],
        "description": sub["description"],
        "events": list(sub["events"]),
        "filter": dict(sub["filter"]),
        "delivery_method": delivery,
    }


@route("POST", "/webhook_subscriptions")
def create_subscription(state: State, call: Call) -> tuple[int, Body]:
    body = call.wrapped("webhook_subscription")
    delivery = body.get("delivery_method")
    if not isinstance(delivery, dict) or not isinstance(delivery.get("url"), str):
        raise invalid("delivery_method.url is required")
    headers = delivery.get("custom_headers") or []
    names = [h.get("name") for h in headers if isinstance(h, dict)]
    if len(names) != len(headers) or len(set(names)) != len(names):
        raise invalid("custom header names must be unique")
    sub: dict[str, Any] = {
        "id": state.new_id(),
        "active": bool(body.get("active", True)),
        "description": str(body.get("description") or ""),
        "events": _events(body.get("events")),
        "filter": _filter(state, body.get("filter")),
        "delivery_method": {
            "id": state.new_id(),
            "type": "http_delivery_method",
            "url": delivery["url"],
            "custom_headers": [
                {"name": h["name"], "value": str(h.get("value", ""))} for h in headers
            ],
            "temporarily_disabled": False,
        },
        # Deterministic like every sandbox id; it only signs deliveries to your own receiver.
        "secret": "".join(
            state.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40)
        ),
    }
    state.webhook_subscriptions[sub["id"]] = sub
    return 200, {"webhook_subscription": subscription_out(sub, with_secret=True)}


@route("GET", "/webhook_subscriptions")
def list_subscriptions(state: State, call: Call) -> tuple[int, Body]:
    kind, object_id = call.arg("filter_type"), call.arg("filter_id")
    found = [
        s
        for s in state.webhook_subscriptions.values()
        if (kind is None or s["filter"]["type"] == f"{kind}_reference")
        and (object_id is None or s["filter"].get("id") == object_id)
    ]
    return 200, paginate(call, found, "webhook_subscriptions", subscription_out)


@route("GET", "/webhook_subscriptions/{id}")
def get_subscription(state: State, call: Call) -> tuple[int, Body]:
    return 200, {
        "webhook_subscription": subscription_out(
            state.get("webhook_subscription", call.params["id"])
        )
    }


@route("PUT", "/webhook_subscriptions/{id}")
def update_subscription(state: State, call: Call) -> tuple[int, Body]:
    """The delivery method (URL, headers) cannot be changed: PagerDuty ignores it here."""
    sub = state.get("webhook_subscription", call.params["id"])
    body = call.wrapped("webhook_subscription")
    if "events" in body:
        sub["events"] = _events(body["events"])
    if "filter" in body:
        sub["filter"] = _filter(state, body["filter"])
    if "description" in body:
        sub["description"] = str(body["description"])
    if "active" in body:
        sub["active"] = bool(body["active"])
    return 200, {"webhook_subscription": subscription_out(sub)}


@route("DELETE", "/webhook_subscriptions/{id}")
def delete_subscription(state: State, call: Call) -> tuple[int, Body]:
    state.get("webhook_subscription", call.params["id"])
    del state.webhook_subscriptions[call.params["id"]]
    return 204, None


@route("POST", "/webhook_subscriptions/{id}/enable")
def enable_subscription(state: State, call: Call) -> tuple[int, Body]:
    sub = state.get("webhook_subscription", call.params["id"])
    sub["active"] = True
    sub["delivery_method"]["temporarily_disabled"] = False
    return 200, {"webhook_subscription": subscription_out(sub)}


@route("POST", "/webhook_subscriptions/{id}/ping")
def ping_subscription(state: State, call: Call) -> tuple[int, Body]:
    """Accepted; the sandbox records the ping instead of delivering it."""
    sub = state.get("webhook_subscription", call.params["id"])
    sub.setdefault("pings", []).append(iso(state.now()))
    return 202, None


def tag_out(state: State, tag: dict[str, Any]) -> dict[str, Any]:
    return {**state.stamp("tag", dict(tag)), "summary": tag["label"], "type": "tag"}


@route("GET", "/tags")
def list_tags(state: State, call: Call) -> tuple[int, Body]:
    found = [t for t in state.tags.values() if matches_query(call, t["label"])]
    return 200, paginate(call, found, "tags", lambda t: tag_out(state, t))


@route("POST", "/tags")
def create_tag(state: State, call: Call) -> tuple[int, Body]:
    label = call.wrapped("tag").get("label")
    if not isinstance(label, str) or not label.strip():
        raise invalid("label can't be blank")
    tag = {"id": state.new_id(), "label": label}
    state.tags[tag["id"]] = tag
    return 201, {"tag": tag_out(state, tag)}


get_tag = read_route("/tags/{id}", "tag", tag_out)


@route("DELETE", "/tags/{id}")
def delete_tag(state: State, call: Call) -> tuple[int, Body]:
    state.get("tag", call.params["id"])
    del state.tags[call.params["id"]]
    for tag_ids in state.entity_tags.values():
        if call.params["id"] in tag_ids:
            tag_ids.remove(call.params["id"])
    return 204, None


ENTITY_KINDS = {"users": "user", "teams": "team", "escalation_policies": "escalation_policy"}


def _entity_kind(call: Call) -> tuple[str, str]:
    """``{entity_type}`` of the path and the stored kind it names; 404 for any other."""
    entity_type = call.params["entity_type"]
    kind = ENTITY_KINDS.get(entity_type)
    if kind is None:
        raise not_found(entity_type)
    return entity_type, kind


@route("GET", "/tags/{id}/{entity_type}")
def tagged_entities(state: State, call: Call) -> tuple[int, Body]:
    state.get("tag", call.params["id"])
    entity_type, kind = _entity_kind(call)
    ids = [
        eid
        for (etype, eid), tags in state.entity_tags.items()
        if etype == entity_type and call.params["id"] in tags
    ]
    return 200, paginate(call, [state.ref(kind, i) for i in ids], entity_type)


@route("GET", "/{entity_type}/{id}/tags")
def entity_tags(state: State, call: Call) -> tuple[int, Body]:
    entity_type, kind = _entity_kind(call)
    state.get(kind, call.params["id"])
    ids = state.entity_tags.get((entity_type, call.params["id"]), [])
    return 200, paginate(call, [tag_out(state, state.tags[i]) for i in ids], "tags")


@route("POST", "/{entity_type}/{id}/change_tags")
def change_tags(state: State, call: Call) -> tuple[int, Body]:
    entity_type, kind = _entity_kind(call)
    state.get(kind, call.params["id"])
    body = call.body if isinstance(call.body, dict) else {}
    current = state.entity_tags.setdefault((entity_type, call.params["id"]), [])
    for item in body.get("add") or []:
        tag_id = item.get("id")
        if tag_id is None:
            existing = next(
                (t for t in state.tags.values() if t["label"] == item.get("label")), None
            )
            if existing is None:
                existing = {"id": state.new_id(), "label": str(item.get("label"))}
                state.tags[existing["id"]] = existing
            tag_id = existing["id"]
        state.get("tag", tag_id)
        if tag_id not in current:
            current.append(tag_id)
    for item in body.get("remove") or []:
        if item.get("id") in current:
            current.remove(item["id"])
    return 200, {}


@route("GET", "/log_entries")
def list_log_entries(state: State, call: Call) -> tuple[int, Body]:
    return 200, paginate(call, [], "log_entries")


@route("GET", "/log_entries/{id}")
def get_log_entry(state: State, call: Call) -> tuple[int, Body]:
    raise not_found(f"Log entry {call.params['id']}")
