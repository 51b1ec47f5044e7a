"""Reading a planned change the way the tests check it."""

from __future__ import annotations

from typing import Any

from pdorgsync.models.plan import Change


def request_body(change: Change) -> Any:
    """The JSON body of the change's first request, for the tests to dig into (the model
    types it as any JSON value; these tests know it is the object PagerDuty gets)."""
    body = change.requests[0].body
    assert isinstance(body, dict)
    return body
