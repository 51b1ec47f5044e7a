"""Request paths and query strings: route templates for call counting, the plural key
of a list response, and PagerDuty's ``key[]`` array parameters.

Pure string work; nothing here sends a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

__all__ = ["UNPAGINATED", "collection_key", "ids_in", "normalize_params", "route_of"]

# Route shapes we call (openapi-subset.json) plus a few neighbours. Ids are
# recognised by *position* against these shapes, never by length: PagerDuty ids
# are usually 7 characters, but incidents have 14-character ``Q…`` ids too.
_ROUTES = (
    "/abilities/{id}",
    "/escalation_policies/{id}",
    "/escalation_policies/{id}/audit/records",
    "/incidents/{id}",
    "/incidents/{id}/alerts",
    "/incidents/{id}/log_entries",
    "/incidents/{id}/merge",
    "/incidents/{id}/notes",
    "/incidents/{id}/responder_requests",
    "/incidents/{id}/responder_requests/cancel",
    "/incidents/{id}/snooze",
    "/incidents/{id}/status_updates",
    "/incidents/{id}/status_updates/subscribers",
    "/incidents/{id}/status_updates/unsubscribe",
    "/log_entries/{id}",
    "/maintenance_windows/{id}",
    "/schedules/preview",
    "/schedules/{id}",
    "/schedules/{id}/overrides",
    "/schedules/{id}/overrides/{override_id}",
    "/schedules/{id}/users",
    "/services/{id}",
    "/services/{id}/integrations/{integration_id}",
    "/tags/{id}",
    "/tags/{id}/{entity_type}",
    "/teams/{id}",
    "/teams/{id}/escalation_policies/{escalation_policy_id}",
    "/teams/{id}/members",
    "/teams/{id}/users/{user_id}",
    "/users/me",
    "/users/{id}",
    "/users/{id}/contact_methods",
    "/users/{id}/contact_methods/{contact_method_id}",
    "/users/{id}/notification_rules",
    "/users/{id}/notification_rules/{notification_rule_id}",
    "/v3/schedules/{id}",
    "/webhook_subscriptions/{id}",
    "/webhook_subscriptions/{id}/enable",
    "/webhook_subscriptions/{id}/ping",
    "/{entity_type}/{id}/change_tags",
    "/{entity_type}/{id}/tags",
)
_ROUTE_SEGMENTS = tuple(tuple(r.strip("/").split("/")) for r in _ROUTES)
_LOOKS_LIKE_ID = re.compile(r"^[A-Z0-9]{2,}$")


def _is_placeholder(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name.removesuffix("s")


def route_of(path: str) -> str:
    """The templated route of a request path: ``/teams/P1/users/P2`` → ``/teams/{id}/users/{user_id}``."""
    segments = [s for s in path.split("?", 1)[0].strip("/").split("/") if s]
    best: tuple[str, ...] | None = None
    best_literals = -1
    for shape in _ROUTE_SEGMENTS:
        if len(shape) != len(segments):
            continue
        literals = 0
        for want, got in zip(shape, segments, strict=True):
            if _is_placeholder(want):
                continue
            if want != got:
                break
            literals += 1
        else:
            if literals > best_literals:
                best, best_literals = shape, literals
    if best is not None:
        out = [
            got if want == "{entity_type}" or not _is_placeholder(want) else want
            for want, got in zip(best, segments, strict=True)
        ]
        return "/" + "/".join(out)
    # Unknown shape: REST collections alternate name/id, so an id can only sit
    # right after a collection name; it must also look like a PagerDuty id.
    out = []
    for index, segment in enumerate(segments):
        if index % 2 == 1 and _LOOKS_LIKE_ID.match(segment):
            out.append("{id}" if index == 1 else "{" + _singular(segments[index - 1]) + "_id}")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def collection_key(path: str) -> str:
    """The plural key of a list response: the last non-id segment of the route."""
    segments = [s for s in route_of(path).strip("/").split("/") if not _is_placeholder(s)]
    if not segments:
        raise ValueError(f"no collection in path {path!r}")
    return segments[-1]


# GET endpoints that take no limit/offset and return everything at once.
UNPAGINATED = frozenset(
    {
        "/schedules/{id}/users",
        "/schedules/{id}/overrides",
        "/incidents/{id}/notes",
        "/incidents/{id}/status_updates/subscribers",
    }
)


def ids_in(value: Any) -> set[str]:
    """Every ``"id"`` string in a JSON body (references at any depth)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "id" and isinstance(item, str):
                found.add(item)
            else:
                found |= ids_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= ids_in(item)
    return found


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"  # requests would send "True"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(_query_value(v) for v in value)
    if isinstance(value, list | tuple):
        return [_query_value(v) for v in value]
    return value


def normalize_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """PagerDuty array filters repeat ``key[]``; requests repeats list values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset) and not key.endswith("[]"):
            key += "[]"
        out[key] = _query_value(value)
    return out
