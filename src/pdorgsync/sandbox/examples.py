"""The sandbox's "examples" mode: answer each request with PagerDuty's own published example.

Why this mode exists: the stateful sandbox was written from the same notes as the
product, so the two share blind spots. PagerDuty's official OpenAPI description holds a
response example for most operations (``openapi-examples.json``, extracted verbatim by
``tools/strip_openapi.py``); served as they are, they are data PagerDuty itself says its
API returns, quirks included (the "With Schedule Layers" example of ``GET /schedules``
has layers without ids). Every pdorgsync command must survive them without a crash.

Rules: requests are still authenticated and validated against the description; the
answer is the example of the request's operation (the one whose name matches the
request's ``include[]`` best, else the first) with its documented success status. An
operation without a published example is answered by the ordinary stateful handler. A
list example that says ``more: true`` is served on the first page only: a later
``offset`` gets an empty page with ``more: false``, so a client's paging ends.

Never changes an example's content beyond that paging rule.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from pdorgsync.sandbox.protocol import Body, Call


@cache
def published() -> dict[str, Any]:
    """``{"METHOD /template": {"status": int, "examples": [{name, summary, value}]}}``."""
    text = resources.files("pdorgsync.sandbox").joinpath("openapi-examples.json").read_text("utf-8")
    operations: dict[str, Any] = json.loads(text)["operations"]
    return operations


def has_example(method: str, template: str) -> bool:
    return f"{method} {template}" in published()


def answer(method: str, template: str, call: Call) -> tuple[int, Body]:
    """The published answer to ``call`` (``has_example`` must hold)."""
    operation = published()[f"{method} {template}"]
    status = int(operation["status"])
    examples = operation["examples"]
    if not examples:
        return status, None
    wanted = [value.replace("_", " ").lower() for value in call.args("include")]

    def score(example: dict[str, Any]) -> int:
        label = f"{example['name']} {example.get('summary') or ''}".lower()
        return sum(1 for value in wanted if value in label)

    best = max(examples, key=score)  # max keeps the first of equal scores
    body = copy.deepcopy(best["value"])
    return status, _paged(body, call)


def _paged(body: Any, call: Call) -> Any:
    offset = call.arg("offset")
    if not isinstance(body, dict) or "more" not in body or not offset or offset == "0":
        return body
    for key, value in body.items():
        if isinstance(value, list):
            body[key] = []
    body["more"] = False
    body["offset"] = int(offset) if offset.isdigit() else body.get("offset")
    return body
