"""Check sandbox traffic against PagerDuty's official OpenAPI description.

The sandbox stands in for PagerDuty in tests, the demo and benchmarks; if it
accepted a request PagerDuty refuses, our code would pass here and fail there.
So every request is validated before a handler runs, and every response after,
against ``openapi.json`` (PagerDuty's description, prose stripped, corrected by
``openapi-overlay.json``). The parsed description is built once per process:
building it takes about a second, validating a request a few milliseconds.

This module never changes a request or response; it only reports problems.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.validators import V30RequestValidator
from openapi_core.validation.schemas import oas30_read_schema_validators_factory
from starlette.datastructures import Headers, QueryParams

# The description's servers entry; the sandbox pretends to be it so paths match.
SPEC_HOST = "https://api.pagerduty.com"


class _LenientWriteRequestValidator(V30RequestValidator):
    """Requests are checked without the readOnly rule (see openapi-overlay.json "notes").

    PagerDuty ignores read-only fields in writes, and its description marks
    ``type`` read-only in Reference while also requiring it in write bodies.
    """

    schema_validators_factory = oas30_read_schema_validators_factory


@functools.cache
def description() -> dict[str, Any]:
    """The stripped, corrected OpenAPI description shipped with the package."""
    text = resources.files("pdorgsync.sandbox").joinpath("openapi.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def openapi() -> Any:
    """The parsed description, built once per process and shared by every sandbox."""
    config = Config(request_validator_cls=_LenientWriteRequestValidator)
    return OpenAPI.from_dict(description(), config=config)


@dataclass
class WireRequest:
    """openapi-core's Request protocol over what the sandbox received."""

    method_name: str
    url_path: str
    query: QueryParams
    headers: Headers
    raw_body: bytes

    def __post_init__(self) -> None:
        self.parameters = RequestParameters(query=self.query, header=self.headers, cookie={})

    @property
    def host_url(self) -> str:
        return SPEC_HOST

    @property
    def path(self) -> str:
        return self.url_path

    @property
    def method(self) -> str:
        return self.method_name.lower()

    @property
    def body(self) -> bytes | None:
        return self.raw_body or None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json").lower()


@dataclass
class WireResponse:
    """openapi-core's Response protocol over what the sandbox sends."""

    status_code: int
    headers: Headers
    data: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").lower()


def _describe(exc: BaseException) -> str:
    """One readable line: the openapi-core error plus the schema errors behind it."""
    parts = [str(exc) or type(exc).__name__]
    cause = exc.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            for err in schema_errors:
                where = "/".join(str(p) for p in getattr(err, "absolute_path", [])) or "(body)"
                parts.append(f"{where}: {getattr(err, 'message', err)}")
        elif str(cause) and str(cause) not in parts:
            parts.append(str(cause))
        cause = cause.__cause__
    return "; ".join(parts)


def request_problem(request: WireRequest) -> str | None:
    """None if PagerDuty's description accepts the request, else why it does not."""
    try:
        openapi().validate_request(request)
    except Exception as exc:  # openapi-core raises many unrelated classes; all mean "invalid"
        return _describe(exc)
    return None


def response_problem(request: WireRequest, response: WireResponse) -> str | None:
    """None if the response matches the description for that request, else why not."""
    try:
        openapi().validate_response(request, response)
    except Exception as exc:  # see request_problem
        return _describe(exc)
    return None
