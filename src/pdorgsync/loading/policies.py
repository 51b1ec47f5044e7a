"""The policy directory: each file validated as a ``PolicyFile``, then cross-checked
against the org (``models.policy.check_policies``); every problem located."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pdorgsync.errors import FileValidationError, Problem
from pdorgsync.loading.org import load_model
from pdorgsync.loading.problems import (
    locate_problem,
    sort_problems,
)
from pdorgsync.loading.source import PathTuple, SourceMap, StrPath
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy, PolicyFile, check_policies, policy_warnings


@dataclass(frozen=True)
class LoadedPolicyFile:
    """One valid policy file and what is needed to point back into it."""

    file: str
    policies: PolicyFile
    source: SourceMap

    def location(self, path: Sequence[str | int]) -> str:
        line, column = self.source.locate(path)
        return f"{self.file}:{line}:{column}"


@dataclass(frozen=True)
class LoadedPolicies:
    """Every ``*.yaml`` of the policy folder, in file-name order, all valid."""

    directory: str
    files: list[LoadedPolicyFile] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def policies(self) -> list[Policy]:
        """All policies in evaluation order: files sorted by name, then file order."""
        return [p for f in self.files for p in f.policies.policies]

    def file_of(self, policy_name: str) -> str | None:
        for loaded in self.files:
            if any(p.name == policy_name for p in loaded.policies.policies):
                return loaded.file
        return None


def policy_files(directory: StrPath) -> list[Path]:
    """The ``*.yaml`` files of a policy folder, sorted by name (the evaluation order)."""
    # Anything but a folder counts, so a FIFO or device named *.yaml is a clear error
    # (not a regular file) rather than silently skipped.
    return sorted(p for p in Path(directory).glob("*.yaml") if not p.is_dir())


def load_policies(directory: StrPath, org: Org | None) -> LoadedPolicies:
    """Load every ``*.yaml`` in ``directory``; FileValidationError lists every problem
    of every file. Policy names must be unique across files. With ``org=None`` (the
    org file is itself invalid) the checks that need the org are skipped."""
    folder = str(directory)
    path = Path(directory)
    if not path.exists():
        raise FileValidationError([Problem(folder, None, None, "", "no such policy folder")])
    if not path.is_dir():
        raise FileValidationError(
            [Problem(folder, None, None, "", "is not a folder; expected the policy folder")]
        )
    problems: list[Problem] = []
    found_warnings: list[Problem] = []
    loaded: list[LoadedPolicyFile] = []
    for policy_path in policy_files(path):
        file = str(policy_path)
        try:
            model, source = load_model(policy_path, PolicyFile)
        except FileValidationError as exc:
            problems.extend(exc.problems)
            continue
        if org is not None:
            checks = check_policies(model, org)
            notes = policy_warnings(model, org)
        else:
            checks, notes = _check_policy_names(model), []
        problems.extend(sort_problems([locate_problem(file, source, p, m) for p, m in checks]))
        found_warnings.extend(
            sort_problems([locate_problem(file, source, p, m, "warning") for p, m in notes])
        )
        loaded.append(LoadedPolicyFile(file=file, policies=model, source=source))
    first: dict[str, str] = {}
    for loaded_file in loaded:
        for index, policy in enumerate(loaded_file.policies.policies):
            path_in_file = ("policies", index, "name")
            where = loaded_file.location(path_in_file)
            if policy.name in first and not first[policy.name].startswith(f"{loaded_file.file}:"):
                problems.append(
                    locate_problem(
                        loaded_file.file,
                        loaded_file.source,
                        path_in_file,
                        f"policy name {policy.name!r} is already used at {first[policy.name]}",
                    )
                )
            first.setdefault(policy.name, where)
    if problems:
        raise FileValidationError(problems)
    if not loaded:
        found_warnings.append(
            Problem(folder, None, None, "", "no *.yaml policy files: nothing will be engaged")
        )
    return LoadedPolicies(directory=folder, files=loaded, warnings=found_warnings)


def _check_policy_names(model: PolicyFile) -> list[tuple[PathTuple, str]]:
    """Without an org, ``check_policies`` minus the department checks."""
    empty = Org(version=1, org="unknown")
    return [
        (path, message)
        for path, message in check_policies(model, empty)
        if not (path and path[-1] == "department")
    ]
