"""Check sandbox traffic against PagerDuty's official OpenAPI description.

The sandbox stands in for PagerDuty in tests, the demo and benchmarks; if it
accepted a request PagerDuty refuses, our code would pass here and fail there.
So every request is validated before a handler runs, and every response after,
against ``openapi.json`` (PagerDuty's description, prose stripped, corrected by
``openapi-overlay.json``), by openapi-core. This module never changes a request
or response; it only reports problems.

Validation is a pure function of the bytes that matter, and the sandbox sends
thousands of requests per benchmark, so it is made cheap without changing what
is checked (on the test suite's traffic: about 8.6 ms to 0.9 ms per request
and 5.0 ms to 1.0 ms per response, start-up from 0.7 s to 0.1 s):

* the description is built once per process, with its local ``$ref`` s inlined
  (``description.py``; recursive ones stay references), so openapi-core and
  jsonschema stop resolving references on every access; the JSON is unchanged;
* openapi-core's documented hooks are used to keep what it rebuilds per request:
  a resolved-path cache on the ``SchemaPath`` and one schema validator per
  schema (openapi-core deep-copies a format checker for each one otherwise);
* the description itself is checked by openapi-spec-validator in the tests, not
  at every start-up (that check took most of a second);
* verdicts are memoised in a bounded LRU keyed by a digest of everything
  openapi-core reads: method, path, query, the headers the description declares
  (plus the security header and Content-Type) and the body; for responses, the
  request's method and path, status, Content-Type, declared headers and body;
* the path in a request's key is its ``route_key``: ids the description accepts as
  any string are left out, so 2,000 ``GET /teams/{id}/members`` are validated once;
  a response's operation is found once per route;
* every schema openapi-core validates with is also compiled by jsonschema-rs into a
  validator that is never laxer (``schema_precheck.py``): a body it accepts is
  accepted, only a body it refuses is walked by jsonschema, whose errors are the
  ones reported (no-change plan at 2,000 departments: sandbox CPU 9 s to 3 s).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from jsonschema_path import SchemaPath
from openapi_core import OpenAPI
from openapi_core.casting.schemas import oas30_types_caster
from openapi_core.casting.schemas.factories import SchemaCastersFactory
from openapi_core.configurations import Config
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.validators import V30RequestValidator
from openapi_core.validation.response.validators import V30ResponseValidator
from openapi_core.validation.schemas import (
    oas30_read_schema_validators_factory,
    oas30_write_schema_validators_factory,
)
from openapi_core.validation.schemas.datatypes import FormatValidatorsDict
from openapi_core.validation.schemas.factories import SchemaValidatorsFactory
from openapi_core.validation.schemas.validators import SchemaValidator
from starlette.datastructures import Headers, QueryParams

from pdorgsync.sandbox.description import description, inline_refs
from pdorgsync.sandbox.schema_precheck import PrecheckedSchemaValidator, compile_precheck

# The description's servers entry; the sandbox pretends to be it so paths match.
SPEC_HOST = "https://api.pagerduty.com"
# Resolved paths kept by jsonschema-path: the description has about 20,000 nodes.
RESOLVED_PATHS_CACHED = 1 << 16
# Verdicts remembered (each a 32-byte digest and None or a message).
VERDICTS_CACHED = 8192

# -- openapi-core, with what it rebuilds per request kept ---------------------------------


class _OneValidatorPerSchema(SchemaValidatorsFactory):
    """openapi-core's schema validator factory, building each schema's validator once.

    A ``SchemaValidator`` is a jsonschema validator for one schema of the (never
    changing) description; openapi-core would build a new one, with a deep copy of
    the format checker, for every parameter and body of every request.
    """

    def __init__(self, base: SchemaValidatorsFactory, *, reading: bool) -> None:
        super().__init__(base.schema_validator_cls, base.format_checker)
        self._reading = reading
        # Values keep their accessor alive, so its id() in the key is never reused.
        self._built: dict[tuple[Any, ...], tuple[object, SchemaValidator]] = {}
        self._lock = threading.Lock()

    def create(
        self,
        spec: SchemaPath,
        schema: SchemaPath,
        format_validators: FormatValidatorsDict | None = None,
        extra_format_validators: FormatValidatorsDict | None = None,
        forbid_unspecified_additional_properties: bool = False,
        enforce_properties_required: bool = False,
    ) -> SchemaValidator:
        build = functools.partial(
            super().create,
            spec,
            schema,
            format_validators,
            extra_format_validators,
            forbid_unspecified_additional_properties,
            enforce_properties_required,
        )
        if (
            schema.accessor is not spec.accessor
            or format_validators is not None
            or extra_format_validators is not None
        ):
            return build()
        key = (
            id(spec.accessor),
            schema.parts,
            forbid_unspecified_additional_properties,
            enforce_properties_required,
        )
        known = self._built.get(key)
        if known is not None:
            return known[1]
        validator = build()
        if not forbid_unspecified_additional_properties and not enforce_properties_required:
            validator = PrecheckedSchemaValidator(
                validator.schema,
                validator.validator,
                compile_precheck(
                    validator.validator.schema,
                    validator.validator.format_checker,
                    reading=self._reading,
                ),
            )
        with self._lock:
            return self._built.setdefault(key, (spec.accessor, validator))[1]


_READ_SCHEMAS = _OneValidatorPerSchema(oas30_read_schema_validators_factory, reading=True)
_WRITE_SCHEMAS = _OneValidatorPerSchema(oas30_write_schema_validators_factory, reading=False)


class _RequestValidator(V30RequestValidator):
    """Requests are checked without the readOnly rule (see openapi-overlay.json "notes").

    PagerDuty ignores read-only fields in writes, and its description marks
    ``type`` read-only in Reference while also requiring it in write bodies.
    Parameters are cast as openapi-core casts them for requests (write schemas).
    """

    schema_validators_factory = _READ_SCHEMAS
    schema_casters_factory = SchemaCastersFactory(_WRITE_SCHEMAS, oas30_types_caster)


class _ResponseValidator(V30ResponseValidator):
    """openapi-core's OpenAPI 3.0 response validator, sharing the per-schema validators.

    A response is judged by its operation alone (openapi-core reads no path variable
    for it), so the operation found for a request's ``route`` is kept for every later
    request of the same route: finding it scans every path of the description.
    """

    schema_validators_factory = _READ_SCHEMAS
    schema_casters_factory = SchemaCastersFactory(_READ_SCHEMAS, oas30_types_caster)
    _found: ClassVar[dict[tuple[str, str], Any]] = {}

    def _find_path(self, request: Any) -> Any:
        route = getattr(request, "route", None)
        if route is None:
            return super()._find_path(request)
        key = (request.method, route)
        found = self._found.get(key)
        if found is None:
            found = self._found.setdefault(key, super()._find_path(request))
        return found


@functools.cache
def openapi() -> Any:
    """The parsed description, built once per process and shared by every sandbox.

    The description is not re-validated here (``spec_validator_cls=None``):
    tests/test_sandbox_validation.py checks the shipped file with
    openapi-spec-validator, which is what openapi-core would run at every start-up.
    """
    config = Config(
        spec_validator_cls=None,
        request_validator_cls=_RequestValidator,
        response_validator_cls=_ResponseValidator,
    )
    spec = SchemaPath.from_dict(
        inline_refs(description()), resolved_cache_maxsize=RESOLVED_PATHS_CACHED
    )
    return OpenAPI(spec, config=config)


# -- what the sandbox received and sends --------------------------------------------------


@dataclass
class WireRequest:
    """openapi-core's Request protocol over what the sandbox received."""

    method_name: str
    url_path: str
    query: QueryParams
    headers: Headers
    raw_body: bytes
    # The path verdicts are remembered under (``route_key``); None: ``url_path``.
    route: str | None = None

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


# -- memoised verdicts --------------------------------------------------------------------


@functools.cache
def _declared_headers() -> tuple[frozenset[str], frozenset[str]]:
    """Lower-cased header names openapi-core may read: (request, response).

    Requests: every header parameter, every apiKey-in-header security scheme, and
    Authorization and Content-Type (read for http schemes and for the body's media
    type). Responses: every response header, and Content-Type.
    """
    request = {"authorization", "content-type"}
    response = {"content-type"}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("in") == "header" and isinstance(node.get("name"), str):
                request.add(node["name"].lower())
            headers = node.get("headers")
            if isinstance(headers, dict):
                response.update(str(name).lower() for name in headers)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(description())
    return frozenset(request), frozenset(response)


@functools.cache
def _fixed_path_parts() -> tuple[frozenset[str], frozenset[str]]:
    """(every literal segment of the description's paths, the path parameters it constrains).

    A path parameter is unconstrained when its schema is ``{"type": "string"}``: then
    openapi-core's verdict cannot depend on its value.
    """
    literal: set[str] = set()
    constrained: set[str] = set()
    for path, item in description()["paths"].items():
        literal.update(part for part in path.split("/") if not part.startswith("{"))
        operations = [op for op in item.values() if isinstance(op, dict)]
        for param in [p for op in operations for p in op.get("parameters", [])] + item.get(
            "parameters", []
        ):
            if param.get("in") == "path" and param.get("schema") != {"type": "string"}:
                constrained.add(str(param.get("name")))
    return frozenset(literal), frozenset(constrained)


def route_key(template: str, params: dict[str, str]) -> str:
    """The request's path with interchangeable path parameter values left as ``{name}``.

    ``template`` is the sandbox route the request matched and ``params`` the values
    it bound. Two requests whose values differ only where the description accepts
    any string, and never a literal segment of one of its paths (``/users/me``
    against ``/users/{id}``: openapi-core would pick another operation), get the same
    verdict, so it is remembered once for all of them (``GET /teams/{id}/members``
    for 2,000 teams is validated once, not 2,000 times). Other values are kept.
    """
    literal, constrained = _fixed_path_parts()
    route = template
    for name, value in params.items():
        if name in constrained or value in literal or not value or "/" in value:
            route = route.replace("{" + name + "}", value)
    return route


def _digest(parts: Iterable[str | bytes]) -> bytes:
    """An unambiguous digest of a sequence of strings and byte strings."""
    digest = hashlib.blake2b(digest_size=32)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


def _headers_part(headers: Headers, names: frozenset[str]) -> list[str]:
    kept = sorted((k.lower(), v) for k, v in headers.items() if k.lower() in names)
    return [str(len(kept)), *(item for pair in kept for item in pair)]


def _request_key(request: WireRequest) -> bytes:
    # Stable sort by name: the order of different names does not matter to
    # openapi-core, the order of one name's values (an array) does.
    query = sorted(request.query.multi_items(), key=lambda item: item[0])
    return _digest(
        [
            "request",
            request.method_name.upper(),
            request.route or request.url_path,
            str(len(query)),
            *(item for pair in query for item in pair),
            *_headers_part(request.headers, _declared_headers()[0]),
            request.raw_body,
        ]
    )


def _response_key(request: WireRequest, response: WireResponse) -> bytes:
    return _digest(
        [
            "response",
            request.method_name.upper(),
            request.url_path,
            str(response.status_code),
            *_headers_part(response.headers, _declared_headers()[1]),
            response.data,
        ]
    )


class _Verdicts:
    """A thread-safe bounded LRU from digest to verdict (None = valid, else why not)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, str | None] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> tuple[bool, str | None]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return True, self._items[key]
            self.misses += 1
            return False, None

    def put(self, key: bytes, verdict: str | None) -> None:
        with self._lock:
            self._items[key] = verdict
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


_VERDICTS = _Verdicts(VERDICTS_CACHED)


def clear_verdicts() -> None:
    """Forget memoised verdicts (tests and timing; verdicts never go stale on their own)."""
    _VERDICTS.clear()


def verdict_stats() -> tuple[int, int]:
    """(hits, misses) of the verdict memo since start or the last ``clear_verdicts``."""
    return _VERDICTS.hits, _VERDICTS.misses


def request_problem(request: WireRequest) -> str | None:
    """None if PagerDuty's description accepts the request, else why it does not."""
    key = _request_key(request)
    known, verdict = _VERDICTS.get(key)
    if known:
        return verdict
    try:
        openapi().validate_request(request)
    except Exception as exc:  # openapi-core raises many unrelated classes; all mean "invalid"
        verdict = _describe(exc)
    _VERDICTS.put(key, verdict)
    return verdict


def response_problem(request: WireRequest, response: WireResponse) -> str | None:
    """None if the response matches the description for that request, else why not."""
    key = _response_key(request, response)
    known, verdict = _VERDICTS.get(key)
    if known:
        return verdict
    try:
        openapi().validate_response(request, response)
    except Exception as exc:  # see request_problem
        verdict = _describe(exc)
    _VERDICTS.put(key, verdict)
    return verdict
