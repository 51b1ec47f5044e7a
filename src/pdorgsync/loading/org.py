"""The org file: validated as ``models.org.Org``, cross-checked by ``models.org.check_org``.

``validate_model``/``load_model`` validate any model class the same way (the policy
files use them too); every pydantic error becomes a located ``Problem``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pdorgsync.errors import FileValidationError, Problem
from pdorgsync.loading.problems import (
    locate_problem,
    sort_problems,
    validation_problems,
)
from pdorgsync.loading.reading import load_yaml
from pdorgsync.loading.source import M, SourceMap, StrPath
from pdorgsync.models.org import Department, Org
from pdorgsync.models.org_checks import check_org, org_warnings


def validate_model(file: str, model_cls: type[M], data: Any, source: SourceMap) -> M:
    """``model_cls`` from plain data; every pydantic error becomes a located Problem."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise FileValidationError(sort_problems(validation_problems(file, exc, source))) from None


def load_model(
    path: StrPath, model_cls: type[M], data: tuple[Any, SourceMap] | None = None
) -> tuple[M, SourceMap]:
    """Load ``path`` (or use ``data``, a ``load_yaml(path)`` result) and validate as ``model_cls``."""
    plain, source = data if data is not None else load_yaml(path)
    return validate_model(str(path), model_cls, plain, source), source


@dataclass(frozen=True)
class LoadedOrg:
    """A valid org file with what is needed to point back into it."""

    org: Org
    file: str
    source: SourceMap
    warnings: list[Problem] = field(default_factory=list)

    def location(self, path: Sequence[str | int]) -> str:
        """``"org.yaml:12:7"`` for a path inside the file (nearest existing parent)."""
        line, column = self.source.locate(path)
        return f"{self.file}:{line}:{column}"

    def problem(self, path: Sequence[str | int], message: str, severity: str = "error") -> Problem:
        return locate_problem(self.file, self.source, path, message, severity)


def load_org(path: StrPath) -> LoadedOrg:
    """Load, validate and cross-check an org file; FileValidationError lists every problem."""
    file = str(path)
    data, source = load_yaml(path)
    try:
        org = Org.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(file, exc, source)
        problems.extend(_partial_cross_checks(file, data, source))
        raise FileValidationError(sort_problems(_dedupe(problems))) from None
    problems = [locate_problem(file, source, p, m) for p, m in check_org(org)]
    if problems:
        raise FileValidationError(sort_problems(problems))
    found = [locate_problem(file, source, p, m, "warning") for p, m in org_warnings(org)]
    return LoadedOrg(org=org, file=file, source=source, warnings=sort_problems(found))


def _partial_cross_checks(file: str, data: Any, source: SourceMap) -> list[Problem]:
    """Cross-file rules over the departments that are valid on their own.

    So one run reports a duplicate key next to a typo elsewhere. References to
    departments that could not be validated are not judged (no false alarms).
    """
    if not isinstance(data, dict) or not isinstance(data.get("departments"), list):
        return []
    valid: list[Any] = []
    index_of: list[int] = []
    unchecked: set[str] = set()
    problems = []
    first_index: dict[str, tuple[int, bool]] = {}
    for index, raw in enumerate(data["departments"]):
        try:
            Department.model_validate(raw)
            ok = True
        except ValidationError:
            ok = False
        key = raw.get("key") if isinstance(raw, dict) else None
        if isinstance(key, str):
            if not ok:
                unchecked.add(key)
            if key not in first_index:
                first_index[key] = (index, ok)
            elif not (ok and first_index[key][1]):  # both valid: check_org reports it
                message = (
                    f"department key {key!r} is already used by departments[{first_index[key][0]}]"
                )
                problems.append(
                    locate_problem(file, source, ("departments", index, "key"), message)
                )
        if ok:
            valid.append(raw)
            index_of.append(index)
    try:
        org = Org.model_validate({"version": 1, "org": "partial", "departments": valid})
    except ValidationError:
        return problems
    for path, message in check_org(org, unchecked_keys=frozenset(unchecked)):
        if len(path) >= 2 and path[0] == "departments" and isinstance(path[1], int):
            path = ("departments", index_of[path[1]], *path[2:])
        problems.append(locate_problem(file, source, path, message))
    return problems


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
