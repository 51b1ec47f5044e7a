"""Seed files: a whole PagerDuty account as one JSON document (format: SEED.md).

References between objects may use ids (when the seed gives them) or names,
emails for users, so a seed can be written by hand. Every problem is raised as a
``ConfigError`` naming the seed path (e.g. ``schedules[1].layers[0].users[2]``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pdorgsync.errors import ConfigError
from pdorgsync.sandbox.protocol import ApiError
from pdorgsync.sandbox.state import State, check_zone, parse_time, team_role_of


def load_seed(path: str | Path) -> dict[str, Any]:
    """Read a seed file; a missing or malformed file is a one-line ConfigError."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read seed file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"seed file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"seed file {path} must hold a JSON object")
    return data


class _Seeder:
    def __init__(self, state: State) -> None:
        self.state = state

    def lookup(self, kind: str, ref: Any, where: str) -> str:
        table = self.state.table(kind)
        if isinstance(ref, str):
            if ref in table:
                return ref
            key = "email" if kind == "user" else "name"
            for obj in table.values():
                if str(obj.get(key, "")).lower() == ref.lower():
                    return str(obj["id"])
        raise ConfigError(f"seed: {where}: no {kind.replace('_', ' ')} {ref!r}")

    def new_id(self, raw: dict[str, Any]) -> str:
        given = raw.get("id")
        if given is None:
            return self.state.new_id()
        self.state._issued.add(str(given))
        return str(given)

    def users(self, items: list[dict[str, Any]]) -> None:
        for i, raw in enumerate(items):
            where = f"users[{i}]"
            if not raw.get("name") or not raw.get("email"):
                raise ConfigError(f"seed: {where}: name and email are required")
            user = {
                "id": self.new_id(raw),
                "type": "user",
                "name": raw["name"],
                "email": str(raw["email"]).lower(),
                "role": raw.get("role", "user"),
                "time_zone": check_zone(raw.get("time_zone", "Etc/UTC"), documented_only=False),
                "job_title": raw.get("job_title", ""),
                "description": raw.get("description"),
                "color": raw.get("color", "green"),
            }
            self.state.users[user["id"]] = user
            labels: dict[str, str] = {}
            for j, cm in enumerate(raw.get("contact_methods", [])):
                cm_id = self.new_id(cm)
                label = cm.get("label", cm["type"].split("_")[0].title())
                self.state.contact_methods[cm_id] = {
                    "id": cm_id,
                    "type": cm["type"],
                    "label": label,
                    "address": cm["address"],
                    "user_id": user["id"],
                    **(
                        {"country_code": cm.get("country_code", 1)}
                        if "phone" in cm["type"] or "sms" in cm["type"]
                        else {}
                    ),
                }
                labels[label.lower()] = labels[str(j)] = cm_id
            for j, rule in enumerate(raw.get("notification_rules", [])):
                ref = str(rule.get("contact_method", 0)).lower()
                if ref not in labels:
                    raise ConfigError(
                        f"seed: {where}.notification_rules[{j}]: no contact method {ref!r}"
                    )
                rule_id = self.new_id(rule)
                self.state.notification_rules[rule_id] = {
                    "id": rule_id,
                    "urgency": rule.get("urgency", "high"),
                    "start_delay_in_minutes": rule.get("start_delay_in_minutes", 0),
                    "contact_method_id": labels[ref],
                    "user_id": user["id"],
                }

    def teams(self, items: list[dict[str, Any]]) -> None:
        for i, raw in enumerate(items):
            team = {
                "id": self.new_id(raw),
                "type": "team",
                "name": raw["name"],
                "description": raw.get("description"),
                "default_role": raw.get("default_role", "manager"),
            }
            self.state.teams[team["id"]] = team
            members = self.state.members[team["id"]] = {}
            for j, member in enumerate(raw.get("members", [])):
                member = member if isinstance(member, dict) else {"user": member}
                user_id = self.lookup("user", member["user"], f"teams[{i}].members[{j}]")
                members[user_id] = team_role_of(
                    self.state.users[user_id], member.get("role", "responder")
                )

    def schedules(self, items: list[dict[str, Any]]) -> None:
        for i, raw in enumerate(items):
            where = f"schedules[{i}]"
            layers = []
            for j, layer in enumerate(raw.get("layers", [])):
                lw = f"{where}.layers[{j}]"
                start = parse_time(layer["start"], f"{lw}.start")
                layers.append(
                    {
                        "id": self.new_id(layer),
                        "name": layer.get("name", f"Layer {j + 1}"),
                        "start": start,
                        "end": parse_time(layer["end"], f"{lw}.end") if layer.get("end") else None,
                        "rotation_virtual_start": parse_time(
                            layer.get("rotation_virtual_start", layer["start"]), lw
                        ),
                        "rotation_turn_length_seconds": int(layer["rotation_turn_length_seconds"]),
                        "users": [
                            self.lookup("user", u, f"{lw}.users[{k}]")
                            for k, u in enumerate(layer["users"])
                        ],
                        "restrictions": list(layer.get("restrictions", [])),
                    }
                )
            overrides = [
                {
                    "id": self.new_id(o),
                    "start": parse_time(o["start"], where),
                    "end": parse_time(o["end"], where),
                    "user_id": self.lookup("user", o["user"], f"{where}.overrides[{k}]"),
                }
                for k, o in enumerate(raw.get("overrides", []))
            ]
            schedule = {
                "id": self.new_id(raw),
                "name": raw["name"],
                "description": raw.get("description"),
                "time_zone": check_zone(raw.get("time_zone", "Etc/UTC"), documented_only=False),
                "team_ids": [
                    self.lookup("team", t, f"{where}.teams") for t in raw.get("teams", [])
                ],
                "layers": layers,
                "overrides": overrides,
            }
            if raw.get("upgraded_to_v3"):  # shift-based (v3), see State.upgrade_schedule
                schedule["v3"] = True
            self.state.schedules[schedule["id"]] = schedule

    def escalation_policies(self, items: list[dict[str, Any]]) -> None:
        for i, raw in enumerate(items):
            where = f"escalation_policies[{i}]"
            rules = []
            for j, rule in enumerate(raw.get("rules", [])):
                targets = []
                for k, target in enumerate(rule["targets"]):
                    kind, _, ref = str(target).partition(":")
                    if kind not in ("user", "schedule") or not ref:
                        raise ConfigError(
                            f"seed: {where}.rules[{j}].targets[{k}]: use 'user:<email>' or 'schedule:<name>'"
                        )
                    targets.append(
                        {
                            "id": self.lookup(kind, ref, f"{where}.rules[{j}].targets[{k}]"),
                            "type": f"{kind}_reference",
                        }
                    )
                rules.append(
                    {
                        "id": self.state.new_id(),
                        "escalation_delay_in_minutes": int(rule.get("delay_minutes", 30)),
                        "targets": targets,
                    }
                )
            if not rules:
                raise ConfigError(f"seed: {where}: an escalation policy needs at least one rule")
            ep = {
                "id": self.new_id(raw),
                "name": raw["name"],
                "description": raw.get("description", ""),
                "num_loops": int(raw.get("num_loops", 0)),
                "on_call_handoff_notifications": "if_has_services",
                "escalation_rules": rules,
                "team_ids": [self.lookup("team", raw["team"], f"{where}.team")]
                if raw.get("team")
                else [],
            }
            self.state.escalation_policies[ep["id"]] = ep

    def services(self, items: list[dict[str, Any]]) -> None:
        for i, raw in enumerate(items):
            service = {
                "id": self.new_id(raw),
                "name": raw["name"],
                "description": raw.get("description", ""),
                "status": raw.get("status", "active"),
                "escalation_policy_id": self.lookup(
                    "escalation_policy", raw["escalation_policy"], f"services[{i}]"
                ),
                "incident_urgency_rule": {
                    "type": "constant",
                    "urgency": raw.get("urgency", "high"),
                },
                "acknowledgement_timeout": None,
                "auto_resolve_timeout": None,
                "alert_creation": "create_alerts_and_incidents",
                "scheduled_actions": [],
                "created_at": self.state.now(),
            }
            self.state.services[service["id"]] = service

    def priorities(self, items: list[dict[str, Any]]) -> None:
        for raw in items:
            priority = {
                "id": self.new_id(raw),
                "name": raw["name"],
                "description": raw.get("description", ""),
            }
            self.state.priorities[priority["id"]] = priority

    def incidents(self, items: list[dict[str, Any]]) -> None:
        from pdorgsync.sandbox.routes_incidents import create_incident

        for i, raw in enumerate(items):
            service_id = self.lookup("service", raw["service"], f"incidents[{i}].service")
            priority = (
                self.lookup("priority", raw["priority"], f"incidents[{i}]")
                if raw.get("priority")
                else None
            )
            create_incident(
                self.state,
                raw["title"],
                service_id,
                urgency=raw.get("urgency"),
                priority_id=priority,
                status=raw.get("status", "triggered"),
            )


ORDER = (
    "users",
    "teams",
    "schedules",
    "escalation_policies",
    "services",
    "priorities",
    "incidents",
)


def apply_seed(state: State, seed: dict[str, Any]) -> None:
    """Create everything ``seed`` describes in ``state`` (which should be empty)."""
    unknown = set(seed) - set(ORDER) - {"abilities", "$comment", "about"}
    if unknown:
        raise ConfigError(f"seed: unknown top-level keys: {', '.join(sorted(unknown))}")
    seeder = _Seeder(state)
    with state.lock:
        try:
            for key in ORDER:
                getattr(seeder, key)(list(seed.get(key, [])))
        except ApiError as exc:
            raise ConfigError(f"seed: {'; '.join(exc.errors) or exc.message}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"seed: malformed entry ({type(exc).__name__}: {exc})") from exc
        if "abilities" in seed:
            state.abilities = [str(a) for a in seed["abilities"]]
