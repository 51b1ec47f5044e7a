"""Problems located in a file: rendered paths, sorting, and pydantic's errors in words."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from pdorgsync.errors import Problem
from pdorgsync.loading.source import PathTuple, SourceMap

_PLAIN_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def render_path(path: Sequence[str | int]) -> str:
    """``("departments", 2, "schedule", "layers", 0)`` → ``departments[2].schedule.layers[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY_RE.match(part):
            out += f".{part}" if out else part
        else:
            text = str(part).replace("\\", "\\\\").replace('"', '\\"')
            out += f'["{text}"]'
    return out


def locate_problem(
    file: str,
    source: SourceMap,
    path: Sequence[str | int],
    message: str,
    severity: str = "error",
    *,
    at_key: bool = False,
) -> Problem:
    """A Problem at ``path`` in ``file`` (the nearest existing parent if ``path`` is missing)."""
    line, column = source.locate(path, at_key=at_key)
    return Problem(file, line, column, render_path(path), message, severity)


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """By position in the file (unlocated first); stable for equal positions."""
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def validation_problems(file: str, exc: ValidationError, source: SourceMap) -> list[Problem]:
    """Every pydantic error as a located Problem with a human message."""
    problems = []
    for error in exc.errors(include_url=False):
        path: PathTuple = tuple(error["loc"])
        at_key = False
        if error["type"] == "extra_forbidden" and path:
            at_key = True
            message = f"unknown key {path[-1]!r}"
            problem = locate_problem(file, source, path, message, at_key=True)
            # Say where the key is, but name the mapping it does not belong to.
            problems.append(
                Problem(file, problem.line, problem.column, render_path(path[:-1]), message)
            )
            continue
        if path and path[-1] == "[key]":
            path = path[:-1]
            at_key = True
            message = f"key {_humanise(error)}"
        else:
            message = _humanise(error)
        problems.append(locate_problem(file, source, path, message, at_key=at_key))
    return problems


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected_choices(expected: str) -> list[str]:
    quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", expected)
    return quoted or [expected]


def _humanise(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error":
        choices = _expected_choices(str(ctx.get("expected", "")))
        if len(choices) == 1:
            return f"expected {choices[0]}, got {_got(value)}"
        return f"expected one of {', '.join(choices)}, got {_got(value)}"
    if kind in _SIMPLE:
        return f"{_SIMPLE[kind]}, got {_got(value)}"
    if kind in ("too_short", "too_long"):
        length = len(value) if isinstance(value, (list, dict, str)) else None
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        what = "expected at least" if kind == "too_short" else "expected at most"
        unit = "item" if bound == 1 else "items"
        got = f", got {length}" if length is not None else ""
        return f"{what} {bound} {unit}{got}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters, got {len(str(value))}"
    bounds = {
        "greater_than": "greater than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"expected a number {bounds[kind]} {limit}, got {_got(value)}"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


_SIMPLE: dict[str, str] = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "datetime_type": "expected a date-time such as 2026-01-05T09:00:00",
    "datetime_parsing": "expected a date-time such as 2026-01-05T09:00:00",
    "datetime_from_date_parsing": "expected a date-time such as 2026-01-05T09:00:00",
    "recursion_loop": "a YAML alias refers to itself",
}
