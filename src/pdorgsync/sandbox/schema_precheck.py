"""A compiled pre-check in front of jsonschema for the sandbox's OpenAPI validation.

jsonschema walks an object tree in Python, which was most of the sandbox's time
when thousands of objects are listed; jsonschema-rs compiles a schema once and
answers "valid" in a fraction of it. ``to_draft4`` translates an OAS 3.0 schema into
a draft 4 schema that is never laxer than openapi-schema-validator's OAS30 validator,
so a body the compiled validator accepts is one jsonschema accepts; any other body
is judged by jsonschema as before, with its own errors. Used by ``validation.py``.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema_rs
from jsonschema_path import SchemaPath
from openapi_core.validation.schemas.validators import SchemaValidator


class _Unsupported(Exception):
    """A schema the compiled pre-check does not translate (jsonschema alone judges it)."""


# OAS 3.0 schema keywords the translation keeps as they are: they mean the same in
# JSON Schema draft 4 (openapi-schema-validator's OAS30 validator takes them from
# jsonschema), or are annotations both ignore.
_SAME_IN_DRAFT4 = frozenset(
    {
        "required", "enum", "format", "uniqueItems", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "minLength",
        "maxLength", "minProperties", "maxProperties", "multipleOf",
        "title", "description", "default", "example", "deprecated", "externalDocs", "xml",
        "readOnly", "writeOnly", "nullable", "discriminator",
    }
)  # fmt: skip
_SUBSCHEMA_MAPS = frozenset({"properties"})
_SUBSCHEMA_LISTS = frozenset({"allOf", "oneOf", "anyOf"})
_SUBSCHEMAS = frozenset({"items", "not", "additionalProperties"})
_NEVER: dict[str, Any] = {"not": {}}  # draft 4 has no ``false`` schema


def to_draft4(schema: Any, *, reading: bool, formats: set[str]) -> Any:
    """``schema`` (OAS 3.0, ``$ref`` s inlined) as a JSON Schema draft 4 that is never laxer.

    What openapi-schema-validator's OAS30 read/write validators do differently from
    draft 4, translated: ``nullable: true`` next to a ``type`` also admits null; a
    ``writeOnly`` property in a response (``reading``), or a ``readOnly`` one in a
    write, is refused wherever present; every keyword of a schema holding a ``$ref``
    applies (OAS30 does not skip siblings of ``$ref``; draft 4 would). A schema that
    uses anything else (a remaining ``$ref``, ``pattern``, a ``discriminator`` next to
    ``allOf``/``oneOf``/``anyOf``: their OAS meaning or regex dialect differ; elsewhere
    a discriminator has no effect) raises ``_Unsupported``. ``formats`` collects
    the format names used, which the caller checks with jsonschema's own checker.
    Literals (``enum``, ``default``, ``example``) are kept as they are.
    """
    memo: dict[int, Any] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, bool) or not isinstance(node, dict):
            raise _Unsupported(f"schema {node!r}")
        known = memo.get(id(node))
        if known is not None:
            return known
        if "discriminator" in node and not _SUBSCHEMA_LISTS.isdisjoint(node):
            raise _Unsupported("discriminator")  # it picks one branch (see _keywords.py)
        if node.get("writeOnly" if reading else "readOnly") is True:
            memo[id(node)] = _NEVER
            return _NEVER
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _SUBSCHEMA_MAPS:
                out[key] = {name: walk(sub) for name, sub in value.items()}
            elif key in _SUBSCHEMA_LISTS:
                out[key] = [walk(sub) for sub in value]
            elif key in _SUBSCHEMAS and isinstance(value, dict):
                out[key] = walk(value)
            elif key == "additionalProperties" and isinstance(value, bool):
                out[key] = value
            elif key == "type" and isinstance(value, str):
                out[key] = [value, "null"] if node.get("nullable") is True else value
            elif key in _SAME_IN_DRAFT4 or key.startswith("x-"):
                out[key] = value
            else:
                raise _Unsupported(key)
        if isinstance(node.get("format"), str):
            formats.add(node["format"])
        memo[id(node)] = out
        return out

    return walk(schema)


def compile_precheck(schema: Any, format_checker: Any, *, reading: bool) -> Any | None:
    """A jsonschema-rs validator accepting only what jsonschema accepts for ``schema``, or None.

    ``format_checker`` is the jsonschema validator's own: formats are checked by it.
    None when ``to_draft4`` cannot translate the schema or jsonschema-rs refuses it.
    """
    formats: set[str] = set()
    try:
        translated = to_draft4(schema, reading=reading, formats=formats)
        return jsonschema_rs.Draft4Validator(
            translated,
            formats={name: functools.partial(_conforms, format_checker, name) for name in formats},
            validate_formats=True,
        )
    except (_Unsupported, ValueError, jsonschema_rs.ValidationError):
        return None


def _conforms(checker: Any, name: str, instance: str) -> bool:
    return bool(checker.conforms(instance, name))


class PrecheckedSchemaValidator(SchemaValidator):
    """openapi-core's schema validator, asking a compiled validator first.

    jsonschema walks an object tree in Python (most of the sandbox's time at thousands
    of objects per benchmark); jsonschema-rs answers "valid" in a fraction of it. The
    compiled schema is never laxer (``to_draft4``), so when it says valid jsonschema
    would too; when it does not, jsonschema judges as before and its errors are the
    ones reported. Sub-validators (``evolve``) go without the pre-check.
    """

    def __init__(self, schema: SchemaPath, validator: Any, compiled: Any | None = None) -> None:
        super().__init__(schema, validator)
        self.compiled = compiled

    def validate(self, value: Any) -> None:
        if self.compiled is not None and self.compiled.is_valid(value):
            return
        super().validate(value)
