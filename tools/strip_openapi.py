#!/usr/bin/env python3
"""Regenerate ``src/pdorgsync/sandbox/openapi.json`` from PagerDuty's official description.

The sandbox validates every request and response against PagerDuty's own OpenAPI
description, so that it cannot drift into accepting what PagerDuty would refuse.
We ship only the facts of that description (paths, parameters, schemas): prose
(``description``, ``summary``, ``example``, ``examples``) is stripped because it is
not ours to redistribute and the validator does not need it.

Inputs (default: /work/shared/pagerduty/):
  openapi-subset.json   the pdorgsync slice of PagerDuty/api-schema reference/REST/openapiv3.json
  openapi-rest-v2.json  the full description; we add POST /incidents and DELETE /teams/{id}
Then ``src/pdorgsync/sandbox/openapi-overlay.json`` is applied: corrections where the
description contradicts the live API, each entry citing its source.

Usage: python tools/strip_openapi.py [--source-dir DIR] [--check]
``--check`` exits 1 if the committed file differs from what would be generated.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "src" / "pdorgsync" / "sandbox"
OUTPUT = SANDBOX / "openapi.json"
OVERLAY = SANDBOX / "openapi-overlay.json"
PROSE = {"description", "summary", "example", "examples", "x-examples"}
# Operations taken from the full description in addition to the subset: the sandbox
# creates incidents (demo, tests) and pdorgsync deletes orphaned teams under --prune;
# observe and audit read upgraded shift-based (v3) schedules (issue 10, item 7).
EXTRA_OPERATIONS = [
    ("/incidents", "post"),
    ("/teams/{id}", "delete"),
    ("/v3/schedules", "get"),
    ("/v3/schedules/{id}", "get"),
]


def strip_prose(node: Any, *, in_properties: bool = False) -> Any:
    """Drop prose keywords; keys of a ``properties`` map are property names and stay."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not in_properties and key in PROSE:
                continue
            out[key] = strip_prose(value, in_properties=(key == "properties" and not in_properties))
        return out
    if isinstance(node, list):
        return [strip_prose(item) for item in node]
    return node


def restore_required_descriptions(doc: dict[str, Any]) -> None:
    """OpenAPI 3.0 requires ``description`` on Response objects: keep the key, empty."""
    responses = [
        r
        for ops in doc["paths"].values()
        for op in ops.values()
        if isinstance(op, dict)
        for r in op.get("responses", {}).values()
    ]
    responses += list(doc.get("components", {}).get("responses", {}).values())
    for response in responses:
        if "$ref" not in response:
            response["description"] = ""


def refs_in(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                found |= refs_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs_in(item)
    return found


def resolve(doc: dict[str, Any], pointer: str) -> Any:
    node: Any = doc
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def copy_with_components(full: dict[str, Any], target: dict[str, Any], node: Any) -> None:
    """Copy every component ``node`` needs (transitively) from ``full`` into ``target``."""
    pending = list(refs_in(strip_prose(node)))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        section, name = ref.lstrip("#/").split("/")[1:3]
        component = full["components"][section][name]
        target_section = target["components"].setdefault(section, {})
        if name not in target_section:
            target_section[name] = copy.deepcopy(component)
        pending.extend(refs_in(strip_prose(component)))


def apply_overlay(doc: dict[str, Any], overlay: dict[str, Any]) -> None:
    """Each action sets the value at a JSON pointer (creating the last key)."""
    for action in overlay["actions"]:
        parts = action["target"].lstrip("#/").split("/")
        parent = resolve(doc, "#/" + "/".join(parts[:-1])) if len(parts) > 1 else doc
        key = parts[-1].replace("~1", "/").replace("~0", "~")
        if action.get("op", "set") == "set":
            parent[key] = copy.deepcopy(action["value"])
        elif action["op"] == "remove":
            parent.pop(key, None)
        else:
            raise SystemExit(f"unknown overlay op {action['op']!r}")


def build(source_dir: Path) -> dict[str, Any]:
    subset = json.loads((source_dir / "openapi-subset.json").read_text("utf-8"))
    full = json.loads((source_dir / "openapi-rest-v2.json").read_text("utf-8"))
    doc = copy.deepcopy(subset)
    for path, method in EXTRA_OPERATIONS:
        operation = full["paths"][path][method]
        doc["paths"].setdefault(path, {})[method] = copy.deepcopy(operation)
        copy_with_components(full, doc, operation)
    doc.get("components", {}).pop("examples", None)
    doc = strip_prose(doc)
    restore_required_descriptions(doc)
    doc["info"] = {
        "title": "PagerDuty REST API v2 (pdorgsync sandbox slice, prose stripped)",
        "version": subset["info"].get("version", "2"),
    }
    apply_overlay(doc, json.loads(OVERLAY.read_text("utf-8")))
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source-dir", type=Path, default=Path("/work/shared/pagerduty"))
    parser.add_argument("--check", action="store_true", help="fail if the committed file is stale")
    args = parser.parse_args()
    text = render(build(args.source_dir))
    if args.check:
        if OUTPUT.read_text("utf-8") != text:
            print(f"{OUTPUT} is stale: run tools/strip_openapi.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, "utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
