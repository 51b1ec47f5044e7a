"""Incidents and their notes (CONTRACT §5 Incident write).

``From`` must name a real user on every write here, as PagerDuty requires; the
sandbox's extra ``POST /incidents`` (a real PagerDuty endpoint) creates incidents
for tests and the demo, assigned to whoever is on call at the service's first level.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pdorgsync.sandbox.oncall import on_call_users
from pdorgsync.sandbox.protocol import (
    Body,
    Call,
    invalid,
    paginate,
    read_route,
    route,
)
from pdorgsync.sandbox.state import State, iso, parse_time

MAX_NOTES = 2000
STATUSES = ("triggered", "acknowledged", "resolved")


def create_incident(
    state: State,
    title: str,
    service_id: str,
    *,
    urgency: str | None = None,
    priority_id: str | None = None,
    incident_key: str | None = None,
    status: str = "triggered",
) -> dict[str, Any]:
    """Create and store an incident (also used by the seed loader)."""
    service = state.get("service", service_id)
    rule = service.get("incident_urgency_rule") or {}
    urgency = urgency or ("low" if rule.get("urgency") == "low" else "high")
    state.incident_counter += 1
    now = state.now()
    incident = {
        "id": state.new_id(),
        "incident_number": state.incident_counter,
        "title": title,
        "status": status,
        "urgency": urgency,
        "service_id": service_id,
        "escalation_policy_id": service["escalation_policy_id"],
        "priority_id": priority_id,
        "incident_key": incident_key or state.new_id().lower(),
        "created_at": now,
        "updated_at": now,
        "assignees": on_call_users(state, service["escalation_policy_id"])
        if status != "resolved"
        else [],
        "responders": [],
        "responder_requests": [],
    }
    state.incidents[incident["id"]] = incident
    state.notes[incident["id"]] = []
    state.subscribers[incident["id"]] = []
    return incident


def incident_out(state: State, incident: dict[str, Any]) -> dict[str, Any]:
    ep = state.escalation_policies.get(incident["escalation_policy_id"])
    out: dict[str, Any] = {
        "id": incident["id"],
        "type": "incident",
        "incident_number": incident["incident_number"],
        "title": incident["title"],
        "created_at": iso(incident["created_at"]),
        "updated_at": iso(incident["updated_at"]),
        "last_status_change_at": iso(incident["updated_at"]),
        "status": incident["status"],
        "urgency": incident["urgency"],
        "incident_key": incident["incident_key"],
        "service": state.ref("service", incident["service_id"]),
        "assignments": [
            {"at": iso(incident["created_at"]), "assignee": state.ref("user", u)}
            for u in incident["assignees"]
        ],
        "assigned_via": "escalation_policy",
        "escalation_policy": state.ref("escalation_policy", incident["escalation_policy_id"]),
        "teams": [state.ref("team", t) for t in (ep["team_ids"] if ep else [])],
        "acknowledgements": [],
        "pending_actions": [],
        "is_mergeable": True,
        "incidents_responders": list(incident["responders"]),
        "responder_requests": list(incident["responder_requests"]),
    }
    if incident["priority_id"]:
        priority = state.priorities[incident["priority_id"]]
        out["priority"] = state.stamp("priority", {**priority, "type": "priority"})
    if incident["status"] == "resolved":
        out["resolved_at"] = iso(incident["updated_at"])
    stamped = state.stamp("incident", out)
    stamped["summary"] = f"[#{incident['incident_number']}] {incident['title']}"
    return stamped


@route("POST", "/incidents")
def post_incident(state: State, call: Call) -> tuple[int, Body]:
    state.requester(call.headers.get("from"))
    body = call.wrapped("incident")
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise invalid("title can't be blank")
    _, service_id = state.resolve_ref(body.get("service"), ("service",), "service")
    priority_id = None
    if body.get("priority") is not None:
        priority_id = state.resolve_ref(body["priority"], ("priority",), "priority")[1]
    incident = create_incident(
        state,
        title,
        service_id,
        urgency=body.get("urgency"),
        priority_id=priority_id,
        incident_key=body.get("incident_key"),
    )
    return 201, {"incident": incident_out(state, incident)}


@route("GET", "/incidents")
def list_incidents(state: State, call: Call) -> tuple[int, Body]:
    now = state.now()
    statuses = set(call.args("statuses"))
    service_ids, team_ids = set(call.args("service_ids")), set(call.args("team_ids"))
    user_ids, urgencies = set(call.args("user_ids")), set(call.args("urgencies"))
    key = call.arg("incident_key")
    window = None
    if call.arg("date_range") != "all":
        until = parse_time(call.arg("until"), "until") if call.arg("until") else now
        since = (
            parse_time(call.arg("since"), "since")
            if call.arg("since")
            else until - timedelta(days=30)
        )
        if until < since:
            raise invalid("until must not be before since")
        window = (since, until)
    found = []
    for incident in sorted(state.incidents.values(), key=lambda i: i["incident_number"]):
        ep = state.escalation_policies.get(incident["escalation_policy_id"])
        if (
            (not statuses or incident["status"] in statuses)
            and (not service_ids or incident["service_id"] in service_ids)
            and (not team_ids or team_ids & set(ep["team_ids"] if ep else []))
            and (not user_ids or user_ids & set(incident["assignees"]))
            and (not urgencies or incident["urgency"] in urgencies)
            and (key is None or incident["incident_key"] == key)
            and (window is None or window[0] <= incident["created_at"] < window[1])
        ):
            found.append(incident)
    return 200, paginate(call, found, "incidents", lambda i: incident_out(state, i))


get_incident = read_route("/incidents/{id}", "incident", incident_out)


@route("PUT", "/incidents/{id}")
def update_incident(state: State, call: Call) -> tuple[int, Body]:
    state.requester(call.headers.get("from"))
    incident = state.get("incident", call.params["id"])
    body = call.wrapped("incident")
    if "status" in body:
        if body["status"] not in STATUSES:
            raise invalid(f"status must be one of {', '.join(STATUSES)}")
        if incident["status"] == "resolved" and body["status"] != "resolved":
            raise invalid("Incident Already Resolved")
        incident["status"] = body["status"]
    if "priority" in body:
        priority = body["priority"]
        incident["priority_id"] = (
            None if priority is None else state.resolve_ref(priority, ("priority",), "priority")[1]
        )
    if "urgency" in body:
        if body["urgency"] not in ("high", "low"):
            raise invalid("urgency must be high or low")
        incident["urgency"] = body["urgency"]
    if "title" in body:
        incident["title"] = str(body["title"])
    if "escalation_policy" in body:
        incident["escalation_policy_id"] = state.resolve_ref(
            body["escalation_policy"], ("escalation_policy",), "escalation_policy"
        )[1]
    incident["updated_at"] = state.now()
    return 200, {"incident": incident_out(state, incident)}


def note_out(state: State, note: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": note["id"],
        "content": note["content"],
        "created_at": iso(note["created_at"]),
        "user": state.ref("user", note["user_id"]),
        "channel": {"summary": "The PagerDuty REST API"},
    }


@route("GET", "/incidents/{id}/notes")
def list_notes(state: State, call: Call) -> tuple[int, Body]:
    incident = state.get("incident", call.params["id"])
    return 200, {"notes": [note_out(state, n) for n in state.notes[incident["id"]]]}


@route("POST", "/incidents/{id}/notes")
def create_note(state: State, call: Call) -> tuple[int, Body]:
    user = state.requester(call.headers.get("from"))
    incident = state.get("incident", call.params["id"])
    content = call.wrapped("note").get("content")
    if not isinstance(content, str) or not content.strip():
        raise invalid("Note content can't be blank")
    if len(state.notes[incident["id"]]) >= MAX_NOTES:
        raise invalid(f"An incident can have at most {MAX_NOTES} notes")
    note = {
        "id": state.new_id(),
        "content": content,
        "created_at": state.now(),
        "user_id": user["id"],
    }
    state.notes[incident["id"]].append(note)
    return 200, {"note": note_out(state, note)}


@route("GET", "/incidents/{id}/log_entries")
def incident_log_entries(state: State, call: Call) -> tuple[int, Body]:
    incident = state.get("incident", call.params["id"])
    entry = {
        "id": f"R{incident['id'][1:]}",
        "type": "trigger_log_entry",
        "summary": "Triggered through the API",
        "self": None,
        "html_url": None,
        "created_at": iso(incident["created_at"]),
        "incident": state.ref("incident", incident["id"]),
        "service": state.ref("service", incident["service_id"]),
    }
    return 200, paginate(call, [entry], "log_entries")
