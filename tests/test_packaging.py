"""What `pip install pdorgsync` (no extras) brings must be enough for every command."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "pdorgsync"


def _imported_top_level_modules() -> dict[str, str]:
    """Top-level module → first file importing it, over every module of the package."""
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(SRC.parent)))
    return found


def _declared_runtime_distributions() -> set[str]:
    declared = set()
    for requirement in metadata.requires("pdorgsync") or []:
        if "extra ==" in requirement:
            continue  # test-only extras are not there after a plain install
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        declared.add(_normal(name))
    return declared


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_runtime_import_is_a_runtime_dependency() -> None:
    """Each third-party module the package imports comes from a `dependencies` entry, not an extra."""
    owners = metadata.packages_distributions()
    declared = _declared_runtime_distributions()
    missing = []
    for module, where in _imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module in ("pdorgsync", "__future__"):
            continue
        distributions = {_normal(d) for d in owners.get(module, [])}
        if not distributions & declared:
            missing.append(f"{module} (imported by {where}; from {sorted(distributions)})")
    assert missing == [], "imported at run time but not in [project] dependencies: " + ", ".join(
        missing
    )
