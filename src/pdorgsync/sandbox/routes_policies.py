"""Escalation policies and services (CONTRACT §5, §9.4, §9.5)."""

from __future__ import annotations

from typing import Any

from pdorgsync.sandbox.protocol import (
    MISSING_ABILITY,
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
from pdorgsync.sandbox.state import State, iso

TARGET_KINDS = {
    "user": "user",
    "user_reference": "user",
    "schedule": "schedule",
    "schedule_reference": "schedule",
    "schedule_v3_reference": "schedule",  # CONTRACT §5: a shift-based schedule target
}
HANDOFF = ("if_has_services", "always")


def _name_fields(
    state: State, kind: str, body: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    """``{"name": …}`` when the body sets it (or on create): unique in ``kind``."""
    if "name" not in body and current is not None:
        return {}
    return {"name": _unique_name(state, kind, body.get("name"), current["id"] if current else None)}


def _unique_name(state: State, kind: str, name: Any, current_id: str | None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid("Name can't be blank")
    for other in state.table(kind).values():
        if other["name"].lower() == name.lower() and other["id"] != current_id:
            raise invalid("Name has already been taken")
    return name


def _rule(state: State, raw: Any, where: str, old_ids: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise invalid(f"{where} must be an object")
    delay = raw.get("escalation_delay_in_minutes")
    if not isinstance(delay, int) or delay < 0:
        raise invalid(f"{where}.escalation_delay_in_minutes must be a non-negative integer")
    targets = raw.get("targets")
    if not isinstance(targets, list) or not 1 <= len(targets) <= 10:
        raise invalid(f"{where}.targets must hold 1 to 10 targets")
    out_targets = []
    for i, target in enumerate(targets):
        kind = TARGET_KINDS.get(str(target.get("type")) if isinstance(target, dict) else "")
        if kind is None or not isinstance(target.get("id"), str):
            raise invalid(f"{where}.targets[{i}] must be a user or schedule reference")
        if target["id"] not in state.table(kind):
            raise invalid(f"{where}.targets[{i}]: {kind} {target['id']} not found")
        if target["type"] == "schedule_v3_reference" and not state.is_v3_schedule(target["id"]):
            raise invalid(f"{where}.targets[{i}]: schedule {target['id']} is not shift-based (v3)")
        out_targets.append({"id": target["id"], "type": f"{kind}_reference"})
    rule_id = raw.get("id") if raw.get("id") in old_ids else state.new_id()
    rule: dict[str, Any] = {
        "id": rule_id,
        "escalation_delay_in_minutes": delay,
        "targets": out_targets,
    }
    if "escalation_rule_assignment_strategy" in raw:
        rule["escalation_rule_assignment_strategy"] = raw["escalation_rule_assignment_strategy"]
    return rule


def _policy_fields(
    state: State, body: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    fields = _name_fields(state, "escalation_policy", body, current)
    if "escalation_rules" in body or current is None:
        rules = body.get("escalation_rules")
        if not isinstance(rules, list) or not rules:
            message = (
                "Cannot Delete Only Rule For Escalation Policy"
                if current
                else ("Escalation policy must have at least one escalation rule")
            )
            raise invalid(message)
        old_ids = {r["id"] for r in current["escalation_rules"]} if current else set()
        fields["escalation_rules"] = [
            _rule(state, r, f"escalation_rules[{i}]", old_ids) for i, r in enumerate(rules)
        ]
    if "num_loops" in body:
        if not isinstance(body["num_loops"], int) or body["num_loops"] < 0:
            raise invalid("num_loops must be a non-negative integer")
        fields["num_loops"] = body["num_loops"]
    if "on_call_handoff_notifications" in body:
        if body["on_call_handoff_notifications"] not in HANDOFF:
            raise invalid("on_call_handoff_notifications must be if_has_services or always")
        fields["on_call_handoff_notifications"] = body["on_call_handoff_notifications"]
    if "description" in body:
        fields["description"] = body["description"]
    if "teams" in body:
        teams = body["teams"] or []
        if teams and "teams" not in state.abilities:
            # OpenAPI, EscalationPolicy.teams: setting it needs the account's "teams"
            # ability (402 otherwise, CONTRACT §4).
            raise ApiError(
                402,
                MISSING_ABILITY,
                "Required abilities are unavailable",
                ["The teams account ability is required"],
            )
        if not isinstance(teams, list) or len(teams) > 1:
            raise invalid("An escalation policy can belong to at most one team")
        fields["team_ids"] = [
            state.resolve_ref(t, ("team",), f"teams[{i}]")[1] for i, t in enumerate(teams)
        ]
    return fields


def _target_out(state: State, target: dict[str, Any]) -> dict[str, Any]:
    kind = target["type"].removesuffix("_reference")
    ref = state.ref(kind, target["id"])
    if kind == "schedule" and state.is_v3_schedule(target["id"]):
        # An upgraded schedule keeps its id; escalation policies reference it as
        # ``schedule_v3_reference`` (developer docs, "Schedules v2 to v3 Upgrade";
        # OpenAPI EscalationTargetReference).
        ref.update(type="schedule_v3_reference", self=f"{state.base_url}/v3/schedules/{ref['id']}")
    return ref


def policy_out(state: State, ep: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": ep["id"],
        "type": "escalation_policy",
        "name": ep["name"],
        "description": ep.get("description") or "",
        "num_loops": ep["num_loops"],
        "on_call_handoff_notifications": ep["on_call_handoff_notifications"],
        "escalation_rules": [
            {
                **rule,
                "targets": [_target_out(state, t) for t in rule["targets"]],
            }
            for rule in ep["escalation_rules"]
        ],
        "services": [state.ref("service", s) for s in state.services_using(ep["id"])],
        "teams": [state.ref("team", t) for t in ep["team_ids"]],
    }
    return state.stamp("escalation_policy", out)


@route("GET", "/escalation_policies")
def list_policies(state: State, call: Call) -> tuple[int, Body]:
    team_ids, user_ids = set(call.args("team_ids")), set(call.args("user_ids"))
    found = [
        ep
        for ep in sorted(state.escalation_policies.values(), key=lambda e: e["name"].lower())
        if matches_query(call, ep["name"])
        and (not team_ids or team_ids & set(ep["team_ids"]))
        and (
            not user_ids
            or any(ep["id"] in state.escalation_policies_targeting("user", u) for u in user_ids)
        )
    ]
    return 200, paginate(call, found, "escalation_policies", lambda ep: policy_out(state, ep))


@route("POST", "/escalation_policies")
def create_policy(state: State, call: Call) -> tuple[int, Body]:
    fields = _policy_fields(state, call.wrapped("escalation_policy"), None)
    ep = {
        "id": state.new_id(),
        "description": "",
        "num_loops": 0,
        "on_call_handoff_notifications": "if_has_services",
        "team_ids": [],
        **fields,
    }
    state.escalation_policies[ep["id"]] = ep
    return 201, {"escalation_policy": policy_out(state, ep)}


get_policy = read_route("/escalation_policies/{id}", "escalation_policy", policy_out)
update_policy = update_route(
    "/escalation_policies/{id}", "escalation_policy", policy_out, _policy_fields
)


@route("DELETE", "/escalation_policies/{id}")
def delete_policy(state: State, call: Call) -> tuple[int, Body]:
    ep = state.get("escalation_policy", call.params["id"])
    services = state.services_using(ep["id"])
    if services:
        names = ", ".join(state.summary("service", s) for s in services)
        raise invalid(f"Escalation policy can't be deleted: it is used by services ({names})")
    del state.escalation_policies[ep["id"]]
    return 204, None


def _urgency_rule(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type") not in ("constant", "use_support_hours"):
        raise invalid("incident_urgency_rule.type must be constant or use_support_hours")
    if raw["type"] == "constant" and raw.get("urgency") not in ("high", "low", "severity_based"):
        raise invalid("incident_urgency_rule.urgency must be high, low or severity_based")
    return dict(raw)


def _service_fields(
    state: State, body: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    fields = _name_fields(state, "service", body, current)
    if "escalation_policy" in body or current is None:
        fields["escalation_policy_id"] = state.resolve_ref(
            body.get("escalation_policy"), ("escalation_policy",), "escalation_policy"
        )[1]
    if "incident_urgency_rule" in body:
        fields["incident_urgency_rule"] = _urgency_rule(body["incident_urgency_rule"])
    if "status" in body:
        allowed = ("active",) if current is None else ("active", "disabled")
        if body["status"] not in allowed:
            raise invalid(f"status must be one of {', '.join(allowed)}")
        fields["status"] = body["status"]
    for key in (
        "description",
        "acknowledgement_timeout",
        "auto_resolve_timeout",
        "alert_creation",
        "support_hours",
        "scheduled_actions",
    ):
        if key in body:
            fields[key] = body[key]
    return fields


def service_out(state: State, service: dict[str, Any]) -> dict[str, Any]:
    ep = state.escalation_policies.get(service["escalation_policy_id"])
    # Unset timeouts are left out: the description types them as non-nullable integers.
    out = {k: v for k, v in service.items() if k != "escalation_policy_id" and v is not None}
    out.update(
        type="service",
        created_at=iso(service["created_at"]),
        escalation_policy=state.ref("escalation_policy", service["escalation_policy_id"]),
        teams=[state.ref("team", t) for t in (ep["team_ids"] if ep else [])],
        integrations=[],
    )
    return state.stamp("service", out)


@route("GET", "/services")
def list_services(state: State, call: Call) -> tuple[int, Body]:
    team_ids = set(call.args("team_ids"))
    name = call.arg("name")
    found = []
    for service in sorted(state.services.values(), key=lambda s: s["name"].lower()):
        ep = state.escalation_policies.get(service["escalation_policy_id"])
        teams = set(ep["team_ids"]) if ep else set()
        if (
            matches_query(call, service["name"])
            and (not team_ids or team_ids & teams)
            and (name is None or service["name"] == name)
        ):
            found.append(service)
    return 200, paginate(call, found, "services", lambda s: service_out(state, s))


@route("POST", "/services")
def create_service(state: State, call: Call) -> tuple[int, Body]:
    fields = _service_fields(state, call.wrapped("service"), None)
    service = {
        "id": state.new_id(),
        "description": "",
        "status": "active",
        "acknowledgement_timeout": None,
        "auto_resolve_timeout": None,
        "alert_creation": "create_alerts_and_incidents",
        "incident_urgency_rule": {"type": "constant", "urgency": "high"},
        "scheduled_actions": [],
        "created_at": state.now(),
        **fields,
    }
    state.services[service["id"]] = service
    return 201, {"service": service_out(state, service)}


get_service = read_route("/services/{id}", "service", service_out)
update_service = update_route("/services/{id}", "service", service_out, _service_fields)


@route("DELETE", "/services/{id}")
def delete_service(state: State, call: Call) -> tuple[int, Body]:
    service = state.get("service", call.params["id"])
    del state.services[service["id"]]
    return 204, None
