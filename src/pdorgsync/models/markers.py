"""The ownership marker (SPEC §1): the last line of a managed object's description,
``Managed by pdorgsync (org=<org>, department=<key>)``; how the planner, the
importer and the audit recognise what pdorgsync manages."""

from __future__ import annotations

import re

MARKER_PREFIX = "Managed by pdorgsync"


MARKER_RE = re.compile(r"Managed by pdorgsync \(org=([a-z0-9-]+), department=([a-z0-9-]+)\)\s*$")


def parse_marker(description: str | None) -> tuple[str, str] | None:
    """``(org, department)`` from an object's description, or None if it has no marker."""
    if not description:
        return None
    match = MARKER_RE.search(description.rstrip())
    return (match.group(1), match.group(2)) if match else None


def managed_description(text: str, marker: str) -> str:
    """SPEC §1: the object's text, a blank line, then the marker as the last line."""
    return f"{text.strip()}\n\n{marker}"
