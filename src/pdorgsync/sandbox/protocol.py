"""What every sandbox handler shares: the call it gets, the errors it raises, paging.

Handlers are plain functions ``(state, call) -> (status, body)`` so they hold
PagerDuty's rules and nothing about Starlette; ``app.py`` does the HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdorgsync.sandbox.state import State

# PagerDuty error codes (CONTRACT §4).
INVALID_INPUT = 2001
NOT_FOUND = 2100
RATE_LIMITED = 2020
REQUESTER_NOT_FOUND = 1008
REQUESTER_MISSING = 2011
MISSING_ABILITY = 2014
PAGE_CEILING = 10000

Body = dict[str, Any] | list[Any] | None
Handler = Callable[["State", "Call"], tuple[int, Body]]


class ApiError(Exception):
    """A refusal in PagerDuty's error shape ``{"error": {code, message, errors}}``."""

    def __init__(
        self, status: int, code: int, message: str, errors: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "errors": self.errors}}


def invalid(*errors: str) -> ApiError:
    return ApiError(400, INVALID_INPUT, "Invalid Input Provided", list(errors))


def not_found(what: str = "") -> ApiError:
    return ApiError(404, NOT_FOUND, "Not Found", [f"{what} not found"] if what else [])


@dataclass
class Call:
    """One request as handlers see it: path parameters, query, headers, parsed body."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        """An array filter: ``ids[]=a&ids[]=b`` (the ``[]`` spelling PagerDuty uses)."""
        return self.query.get(f"{name}[]", []) + self.query.get(name, [])

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() == "true"

    def wrapped(self, key: str) -> dict[str, Any]:
        """The entity inside ``{"<key>": {...}}``; PagerDuty refuses an unwrapped body."""
        if not isinstance(self.body, dict) or not isinstance(self.body.get(key), dict):
            raise invalid(f'{key} must be an object wrapped as {{"{key}": {{...}}}}')
        value: dict[str, Any] = self.body[key]
        return value


def paginate(
    call: Call, items: list[Any], key: str, render: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """Classic pagination (CONTRACT §2): limit ≤ 100 (default 25), offset, more, total.

    ``render`` turns each stored object of the page into its API shape."""
    try:
        limit = int(call.arg("limit") or 25)
        offset = int(call.arg("offset") or 0)
    except ValueError as exc:
        raise invalid("limit and offset must be integers") from exc
    if limit < 1 or offset < 0:
        raise invalid("limit must be positive and offset not negative")
    limit = min(limit, 100)
    if offset + limit > PAGE_CEILING:
        raise invalid(
            f"Offset + limit must not exceed {PAGE_CEILING}; narrow the query with filters"
        )
    page = items[offset : offset + limit]
    return {
        key: page if render is None else [render(item) for item in page],
        "limit": limit,
        "offset": offset,
        "more": offset + limit < len(items),
        "total": len(items) if call.flag("total") else None,
    }


def matches_query(call: Call, *values: str | None) -> bool:
    """PagerDuty's ``query`` filter: case-insensitive substring of name or email."""
    needle = (call.arg("query") or "").lower()
    return not needle or any(needle in (v or "").lower() for v in values)


ROUTES: list[tuple[str, str, Handler]] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``METHOD /path/{param}``."""

    def register(handler: Handler) -> Handler:
        ROUTES.append((method, template, handler))
        return handler

    return register


Render = Callable[["State", dict[str, Any]], dict[str, Any]]
Fields = Callable[["State", dict[str, Any], dict[str, Any] | None], dict[str, Any]]


def read_route(path: str, kind: str, out: Render) -> Handler:
    """Register ``GET path``: the stored ``kind`` named by ``{id}``, shown by ``out``
    (or PagerDuty's 404)."""

    def read(state: State, call: Call) -> tuple[int, Body]:
        return 200, {kind: out(state, state.get(kind, call.params["id"]))}

    return route("GET", path)(read)


def update_route(path: str, kind: str, out: Render, fields: Fields) -> Handler:
    """Register ``PUT path``: ``fields`` checks the wrapped body against the stored
    ``kind`` (a 400 for what PagerDuty refuses), which then takes what it returns."""

    def update(state: State, call: Call) -> tuple[int, Body]:
        found = state.get(kind, call.params["id"])
        found.update(fields(state, call.wrapped(kind), found))
        return 200, {kind: out(state, found)}

    return route("PUT", path)(update)
