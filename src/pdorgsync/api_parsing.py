"""PagerDuty API JSON → snapshot models (``models.snapshot``), one parser per object kind.

Split from ``observe.py``, which walks the lists; here only shapes are read. Layers
are reversed into SPEC's order (lowest priority first): see ``observe``'s docstring
for the sources. A body we cannot use raises ``PermanentPagerDutyError``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.logs import get_logger
from pdorgsync.models import snapshot as snap

if TYPE_CHECKING:
    pass


log = get_logger("pdorgsync.observe")  # its events are observe's


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value))


def ref_ids(items: Any) -> list[str]:
    return [str(item["id"]) for item in items or [] if isinstance(item, dict) and "id" in item]


def parse_user(raw: dict[str, Any]) -> snap.User:
    methods = raw.get("contact_methods")
    rules = raw.get("notification_rules")
    return snap.User(
        id=raw["id"],
        name=raw.get("name") or raw.get("summary") or raw["id"],
        email=str(raw.get("email") or "").lower(),
        role=raw.get("role") or "user",
        time_zone=raw.get("time_zone"),
        contact_methods=None
        if methods is None or any("type" not in m or "id" not in m for m in methods)
        else [
            snap.ContactMethod(id=m["id"], type=m["type"], address=m.get("address"))
            for m in methods
        ],
        notification_rules=None
        if rules is None or any("urgency" not in r for r in rules)
        else [
            snap.NotificationRule(
                id=r["id"],
                urgency=r["urgency"],
                start_delay_in_minutes=r.get("start_delay_in_minutes") or 0,
                contact_method_id=(r.get("contact_method") or {}).get("id"),
            )
            for r in rules
        ],
    )


def parse_team(raw: dict[str, Any], members: list[dict[str, Any]] | None = None) -> snap.Team:
    return snap.Team(
        id=raw["id"],
        name=raw.get("name") or raw.get("summary") or "",
        description=raw.get("description"),
        members=None
        if members is None
        else [snap.TeamMember(user_id=m["user"]["id"], role=m.get("role") or "") for m in members],
    )


def parse_layer(raw: dict[str, Any]) -> snap.ScheduleLayer:
    start = _time(raw.get("start"))
    vstart = _time(raw.get("rotation_virtual_start")) or start
    if start is None or vstart is None:
        raise PermanentPagerDutyError(f"schedule layer {raw.get('id')} has no start")
    return snap.ScheduleLayer(
        id=raw["id"],
        name=raw.get("name") or "",
        start=start,
        end=_time(raw.get("end")),
        rotation_virtual_start=vstart,
        rotation_turn_length_seconds=int(raw["rotation_turn_length_seconds"]),
        user_ids=[u["user"]["id"] for u in raw.get("users") or []],
        restrictions=[
            snap.Restriction(
                type=r["type"],
                start_time_of_day=r["start_time_of_day"],
                duration_seconds=int(r["duration_seconds"]),
                start_day_of_week=r.get("start_day_of_week"),
            )
            for r in raw.get("restrictions") or []
        ],
    )


def parse_schedule(raw: dict[str, Any], *, need_layer_ids: bool = False) -> snap.Schedule:
    """``raw`` as a Schedule, layers lowest priority first (see the module docstring).

    Layers without an ``id`` are dropped as "not fetched" (``layers=None``), or with
    ``need_layer_ids`` (the schedule's own GET, the last resort) refused with a clear error.
    """
    layers = raw.get("schedule_layers")
    if layers is not None and any(not isinstance(la, dict) or not la.get("id") for la in layers):
        if need_layer_ids:
            raise PermanentPagerDutyError(
                f"PagerDuty returned schedule {raw.get('id')} ({raw.get('name')!r}) with layers "
                "that have no id; pdorgsync cannot edit them safely"
            )
        log.info("observe.layers_without_ids", schedule_id=raw.get("id"))
        layers = None
    return snap.Schedule(
        id=raw["id"],
        name=raw.get("name") or raw.get("summary") or "",
        type=raw.get("type") or "schedule",
        description=raw.get("description"),
        time_zone=raw.get("time_zone") or "Etc/UTC",
        user_ids=ref_ids(raw.get("users")),
        team_ids=ref_ids(raw.get("teams")),
        layers=None if layers is None else [parse_layer(la) for la in reversed(layers)],
    )


def parse_escalation_policy(raw: dict[str, Any]) -> snap.EscalationPolicy:
    return snap.EscalationPolicy(
        id=raw["id"],
        name=raw.get("name") or raw.get("summary") or "",
        description=raw.get("description"),
        num_loops=raw.get("num_loops") or 0,
        rules=[
            snap.EscalationRule(
                id=r.get("id"),
                escalation_delay_in_minutes=int(r.get("escalation_delay_in_minutes") or 0),
                targets=[snap.Ref(id=t["id"], type=t["type"]) for t in r.get("targets") or []],
            )
            for r in raw.get("escalation_rules") or []
        ],
        team_ids=ref_ids(raw.get("teams")),
        service_ids=ref_ids(raw.get("services")),
    )


def parse_service(raw: dict[str, Any]) -> snap.Service:
    rule = raw.get("incident_urgency_rule") or {}
    return snap.Service(
        id=raw["id"],
        name=raw.get("name") or raw.get("summary") or "",
        description=raw.get("description"),
        status=raw.get("status") or "active",
        escalation_policy_id=(raw.get("escalation_policy") or {}).get("id"),
        urgency=rule.get("urgency") if rule.get("type") == "constant" else None,
        team_ids=ref_ids(raw.get("teams")),
    )
