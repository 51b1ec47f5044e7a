"""The sandbox's OpenAPI checks stay as strict while being made fast (sandbox/validation.py).

What is tested: the shipped description is valid OpenAPI 3.0 (checked here instead
of at every start-up), inlining ``$ref`` s follows JSON pointers exactly and keeps
recursive schemas working, and remembered verdicts never let through a request or
response that differs from an accepted one in anything openapi-core reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema_path import SchemaPath
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_spec_validator import OpenAPIV30SpecValidator, validate
from starlette.datastructures import Headers, QueryParams

from pdorgsync.sandbox.description import description, inline_refs
from pdorgsync.sandbox.validation import (
    WireRequest,
    WireResponse,
    clear_verdicts,
    request_problem,
    response_problem,
    verdict_stats,
)

GOOD_HEADERS = {
    "Accept": "application/vnd.pagerduty+json;version=2",
    "Content-Type": "application/json",
    "Authorization": "Token token=sandbox",
    "From": "pdorgsync-bot@acme.test",
}


@pytest.fixture(autouse=True)
def _fresh_verdicts() -> Iterator[None]:
    clear_verdicts()
    yield
    clear_verdicts()


def wire(
    method: str,
    path: str,
    query: str = "",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> WireRequest:
    raw = b"" if body is None else json.dumps(body).encode("utf-8")
    return WireRequest(method, path, QueryParams(query), Headers(headers or GOOD_HEADERS), raw)


def answer(status: int, body: Any) -> WireResponse:
    return WireResponse(
        status, Headers({"content-type": "application/json"}), json.dumps(body).encode("utf-8")
    )


def test_shipped_description_is_valid_openapi_30() -> None:
    """The description openapi-core no longer re-checks at start-up passes the spec validator."""
    validate(description(), cls=OpenAPIV30SpecValidator)


def test_inline_refs_follows_pointer_escapes_and_list_indexes() -> None:
    """``~1`` is ``/``, ``~0`` is ``~``, percent-escapes are decoded, numbers index lists."""
    doc: dict[str, Any] = {
        "a": {"x/y": {"v": 1}, "t~z": {"v": 2}, "list": [{"v": 3}, {"v": 4}], "sp ace": {"v": 5}},
        "uses": [
            {"$ref": "#/a/x~1y"},
            {"$ref": "#/a/t~0z"},
            {"$ref": "#/a/list/1"},
            {"$ref": "#/a/sp%20ace"},
            {"$ref": "#/a/x~1y", "description": "siblings: left alone"},
            {"$ref": "other.json#/a"},
        ],
    }
    out = inline_refs(doc)
    assert out["uses"][:4] == [{"v": 1}, {"v": 2}, {"v": 4}, {"v": 5}]
    assert out["uses"][4:] == doc["uses"][4:]
    assert doc["uses"][0] == {"$ref": "#/a/x~1y"}  # the input is not modified


def recursive_description() -> dict[str, Any]:
    node = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
        },
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://api.pagerduty.com"}],
        "paths": {
            "/trees": {"post": {"requestBody": body, "responses": {"204": {"description": ""}}}}
        },
        "components": {"schemas": {"Node": node}},
    }


def test_recursive_schemas_stay_references_and_still_validate_deeply() -> None:
    """A self-referencing schema is kept as a $ref, and a bad grandchild is still refused."""
    inlined = inline_refs(recursive_description())
    assert '"$ref": "#/components/schemas/Node"' in json.dumps(inlined)  # finite, acyclic
    app = OpenAPI(SchemaPath.from_dict(inlined), config=Config(spec_validator_cls=None))
    good = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    bad = {"name": "a", "children": [{"name": "b", "children": [{"name": 7}]}]}
    app.validate_request(wire("POST", "/trees", body=good))
    with pytest.raises(Exception, match="Request body validation error"):
        app.validate_request(wire("POST", "/trees", body=bad))


def test_shipped_description_inlines_fully_and_has_no_ref_shaped_literals() -> None:
    """Every local $ref of the shipped description is inlined; no literal could be altered."""
    literals: list[Any] = []

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("enum", "default", "example", "examples") and key != "properties":
                    literals.append(v)
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, None)

    walk(description(), None)
    assert not any('"$ref"' in json.dumps(value) for value in literals)
    assert '"$ref"' not in json.dumps(inline_refs(description()))


def test_bad_parameter_type_is_refused_first_and_every_later_time() -> None:
    """A non-integer limit is refused when validated and when the verdict is remembered."""
    bad = wire("GET", "/users", "limit=abc")
    first, again = request_problem(bad), request_problem(bad)
    assert first is not None
    assert "limit" in first
    assert again == first
    assert request_problem(wire("GET", "/users", "limit=100&offset=0&total=true")) is None


def test_bad_body_is_refused_first_and_every_later_time() -> None:
    """A team whose name is a number is refused, and a valid team is accepted."""
    bad = wire("POST", "/teams", body={"team": {"type": "team", "name": 5}})
    good = wire("POST", "/teams", body={"team": {"type": "team", "name": "Five"}})
    assert request_problem(good) is None
    first, again = request_problem(bad), request_problem(bad)
    assert first is not None
    assert "team/name: 5 is not of type 'string'" in first
    assert again == first
    assert request_problem(good) is None


def test_a_remembered_acceptance_does_not_cover_other_headers_or_query() -> None:
    """Changing a header openapi-core reads, or a query value, gets a fresh verdict."""
    assert request_problem(wire("GET", "/abilities")) is None
    assert request_problem(wire("GET", "/users", "limit=5")) is None
    no_token = {k: v for k, v in GOOD_HEADERS.items() if k != "Authorization"}
    wrong_type = {**GOOD_HEADERS, "Content-Type": "text/plain"}
    assert request_problem(wire("GET", "/abilities", headers=no_token)) is not None
    assert request_problem(wire("GET", "/abilities", headers=wrong_type)) is not None
    assert request_problem(wire("GET", "/users", "limit=five")) is not None
    assert request_problem(wire("GET", "/users", "include[]=nonsense")) is not None


def test_identical_requests_are_validated_once() -> None:
    """Byte-identical requests (headers openapi-core ignores aside) reuse the verdict."""
    request_problem(wire("GET", "/users", "offset=0&limit=100"))
    request_problem(wire("GET", "/users", "limit=100&offset=0"))
    request_problem(
        wire("GET", "/users", "offset=0&limit=100", headers={**GOOD_HEADERS, "User-Agent": "x"})
    )
    assert verdict_stats() == (2, 1)


def test_responses_are_judged_by_their_own_bytes() -> None:
    """A bad response to a request whose good response was accepted is still refused."""
    request = wire("GET", "/abilities")
    assert response_problem(request, answer(200, {"abilities": ["sso"]})) is None
    bad = response_problem(request, answer(200, {"abilities": [5]}))
    assert bad is not None
    assert "abilities/0: 5 is not of type 'string'" in bad
    assert response_problem(request, answer(200, {})) is not None
    assert response_problem(request, answer(200, {"abilities": [5]})) == bad
    assert response_problem(request, answer(200, {"abilities": ["sso"]})) is None


def test_a_response_the_description_refuses_is_recorded_once_the_client_has_it(
    sandbox: Any,
) -> None:
    """Responses are checked after sending: the record is there as soon as it is read."""
    import requests

    user_id = next(iter(sandbox.state.users))
    sandbox.state.users[user_id]["time_zone"] = 5  # the description types it as a string
    answer = requests.get(
        f"{sandbox.base_url}/users/{user_id}",
        headers={"Authorization": f"Token token={sandbox.token}"},
        timeout=10,
    )
    assert answer.status_code == 200
    recorded = [e for e in sandbox.validation_errors if e.startswith(f"GET /users/{user_id}: ")]
    assert len(recorded) == 1
    assert "response 200" in recorded[0]
    assert "time_zone" in recorded[0]
    sandbox.validation_errors.clear()


def _mutations(value: Any) -> Iterator[Any]:
    """``value`` with one leaf or member changed to something of another kind, each in turn."""
    wrong: list[Any] = [None, 5, "x", [], {}, True, 1.5]
    if isinstance(value, dict):
        for key, item in value.items():
            yield {k: v for k, v in value.items() if k != key}
            for changed in _mutations(item):
                yield {**value, key: changed}
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            for changed in _mutations(item):
                yield [*value[:index], changed, *value[index + 1 :]]
    for other in wrong:
        if type(other) is not type(value):
            yield other


def test_the_compiled_precheck_is_never_laxer_than_jsonschema() -> None:
    """Whatever the compiled validator accepts, openapi-core's jsonschema accepts too.

    Run over PagerDuty's published response examples and every single-point mutation
    of them (a member dropped, a value of another type) for each response schema.
    """
    from openapi_core.validation.schemas import oas30_read_schema_validators_factory
    from openapi_schema_validator import OAS30ReadValidator

    from pdorgsync.sandbox.examples import published
    from pdorgsync.sandbox.schema_precheck import compile_precheck

    checker = oas30_read_schema_validators_factory.format_checker
    paths = inline_refs(description())["paths"]
    compared = refused = 0
    for operation, entry in sorted(published().items()):
        method, template = operation.split(" ", 1)
        answer_ = paths[template][method.lower()]["responses"].get(str(entry["status"]), {})
        schema = answer_.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            continue
        exact = OAS30ReadValidator(schema, format_checker=checker)
        compiled = compile_precheck(schema, checker, reading=True)
        assert compiled is not None, operation
        for example in entry["examples"][:1]:
            for candidate in [example["value"], *list(_mutations(example["value"]))[:300]]:
                compared += 1
                if compiled.is_valid(candidate):
                    assert exact.is_valid(candidate), (operation, candidate)
                else:
                    refused += 1
    assert compared > 1000
    assert refused > compared // 4  # the mutations do reach the compiled checks


def test_oas_keywords_the_compiled_precheck_translates() -> None:
    """nullable admits null next to a type only; writeOnly is refused in a response."""
    from pdorgsync.sandbox.schema_precheck import compile_precheck

    nullable = compile_precheck(
        {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}},
        None,
        reading=True,
    )
    assert nullable is not None
    assert nullable.is_valid({"a": None})
    assert not nullable.is_valid({"a": 5})
    plain = compile_precheck({"properties": {"a": {"type": "string"}}}, None, reading=True)
    assert plain is not None
    assert not plain.is_valid({"a": None})
    hidden = compile_precheck(
        {"properties": {"secret": {"type": "string", "writeOnly": True}}}, None, reading=True
    )
    assert hidden is not None
    assert hidden.is_valid({})
    assert not hidden.is_valid({"secret": "s"})
    # A discriminator picking a branch of oneOf is left to jsonschema.
    picked = {"oneOf": [{"type": "object"}], "discriminator": {"propertyName": "type"}}
    assert compile_precheck(picked, None, reading=True) is None


def test_a_verdict_is_shared_by_ids_only_where_any_string_is_accepted() -> None:
    """Team ids are interchangeable; /users/me and a constrained parameter are not."""
    from pdorgsync.sandbox.validation import route_key

    assert route_key("/teams/{id}/members", {"id": "PABC123"}) == "/teams/{id}/members"
    assert route_key("/users/{id}", {"id": "me"}) == "/users/me"
    assert route_key("/tags/{id}/{entity_type}", {"id": "P1", "entity_type": "teams"}) == (
        "/tags/{id}/teams"
    )
    first = WireRequest(
        "GET", "/teams/PAAAAAA/members", QueryParams(""), Headers(GOOD_HEADERS), b""
    )
    first.route = route_key("/teams/{id}/members", {"id": "PAAAAAA"})
    other = WireRequest(
        "GET", "/teams/PBBBBBB/members", QueryParams(""), Headers(GOOD_HEADERS), b""
    )
    other.route = route_key("/teams/{id}/members", {"id": "PBBBBBB"})
    assert request_problem(first) is None
    assert request_problem(other) is None
    assert verdict_stats() == (1, 1)
    bad = WireRequest(
        "GET", "/teams/PCCCCCC/members", QueryParams("limit=x"), Headers(GOOD_HEADERS), b""
    )
    bad.route = route_key("/teams/{id}/members", {"id": "PCCCCCC"})
    assert request_problem(bad) is not None
