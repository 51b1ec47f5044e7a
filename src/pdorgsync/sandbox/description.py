"""PagerDuty's OpenAPI description as the sandbox validates against it, ``$ref`` s inlined.

``openapi.json`` ships PagerDuty's description, prose stripped and corrected by
``openapi-overlay.json`` (``tools/strip_openapi.py``); ``inline_refs`` replaces its
local references by what they point at, once per process, so openapi-core and
jsonschema stop resolving references on every access. Split from ``validation.py``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any
from urllib.parse import unquote


@functools.cache
def description() -> dict[str, Any]:
    """The stripped, corrected OpenAPI description shipped with the package."""
    text = resources.files("pdorgsync.sandbox").joinpath("openapi.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# -- inlining local $refs ------------------------------------------------------------------


def _pointer_target(document: Any, ref: str) -> Any:
    """The node a local ``#/a/b~1c/0`` reference points at (RFC 6901 inside a URI fragment)."""
    node = document
    for raw in ref[2:].split("/"):
        key = unquote(raw).replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def inline_refs(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with every local ``$ref`` replaced by what it points at.

    Only a ``{"$ref": "#/..."}`` object is replaced (OpenAPI 3.0 ignores siblings of
    ``$ref``, so an object with siblings is left alone, as are remote references). A
    reference met again inside its own expansion (a recursive schema) stays a
    reference; it resolves within the returned document, which keeps ``components``.
    Each target is expanded once and shared, so the result costs little memory.
    Literal values (``enum``, ``default``) holding a ``$ref``-shaped object would be
    expanded too; the shipped description has none (a test checks).
    """
    expanded: dict[str, Any] = {}

    def walk(node: Any, active: frozenset[str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and len(node) == 1 and ref.startswith("#/"):
                if ref in active:
                    return node
                if ref not in expanded:
                    target = _pointer_target(document, ref)
                    expanded[ref] = walk(target, active | {ref})
                return expanded[ref]
            return {key: walk(value, active) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, active) for item in node]
        return node

    result: dict[str, Any] = walk(document, frozenset())
    return result
