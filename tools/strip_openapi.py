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

It also writes ``src/pdorgsync/sandbox/openapi-examples.json``: for every operation the
sandbox serves, the success-response examples PagerDuty publishes in the full
description (``$ref``s to ``components/examples`` resolved), verbatim. The sandbox's
"examples" mode answers with them (issue 10 item 13: PagerDuty's own data as a test
fixture). These are PagerDuty's published sample payloads, kept only for that mode.

Usage: python tools/strip_openapi.py [--source-dir DIR] [--check]
``--check`` exits 1 if a committed file differs from what would be generated.
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
EXAMPLES_OUTPUT = SANDBOX / "openapi-examples.json"
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


def _example_values(full: dict[str, Any], content: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for name, example in (content.get("examples") or {}).items():
        if "$ref" in example:
            example = resolve(full, example["$ref"])
        if "value" in example:
            found.append({"name": name, "summary": example.get("summary"), "value": example["value"]})
    if not found and "example" in content:
        found.append({"name": "example", "summary": None, "value": content["example"]})
    return found


def build_examples(source_dir: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """The published success-response examples of every operation in ``doc``."""
    full = json.loads((source_dir / "openapi-rest-v2.json").read_text("utf-8"))
    operations: dict[str, Any] = {}
    for path, methods in sorted(doc["paths"].items()):
        for method in sorted(methods):
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            responses = full["paths"][path][method].get("responses", {})
            for status in sorted(responses):
                if not status.startswith("2"):
                    continue
                response = responses[status]
                if "$ref" in response:
                    response = resolve(full, response["$ref"])
                content = (response.get("content") or {}).get("application/json") or {}
                examples = _example_values(full, content)
                if examples or status == "204":
                    operations[f"{method.upper()} {path}"] = {"status": int(status), "examples": examples}
                    break
    return {
        "source": "PagerDuty/api-schema reference/REST/openapiv3.json @ "
        "91a06fb3c64b0ab2b2bd6c485d12b327dfb55c18: response examples, verbatim",
        "operations": operations,
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source-dir", type=Path, default=Path("/work/shared/pagerduty"))
    parser.add_argument("--check", action="store_true", help="fail if the committed file is stale")
    args = parser.parse_args()
    doc = build(args.source_dir)
    outputs = {OUTPUT: render(doc), EXAMPLES_OUTPUT: render(build_examples(args.source_dir, doc))}
    if args.check:
        stale = [path for path, text in outputs.items() if path.read_text("utf-8") != text]
        for path in stale:
            print(f"{path} is stale: run tools/strip_openapi.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text, "utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
