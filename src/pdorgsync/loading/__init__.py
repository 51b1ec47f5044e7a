"""YAML files → models, with every problem located as ``file:line:column: path: message``.

Why this module exists: users edit ``org.yaml`` and the policy files by hand, so
every mistake must point at the exact spot in the file, and nothing a user can
type may ever surface as a traceback. All YAML is read here, as YAML 1.2 with
ruamel.yaml's round-trip loader (the only one that keeps line/column data), so
``on``, ``no`` and ``17:00`` stay strings and duplicate keys are errors.
Timestamps are never resolved by YAML: quoted or not, ``2026-01-05T09:00:00``
reaches the models as the same string, and pydantic parses it once.

What it must never do: talk to PagerDuty, log, or raise anything but
``FileValidationError`` for a bad file (every problem at once, sorted by line).

Public interface::

    load_yaml(path) -> (data, SourceMap)          plain dict/list/str/int/float/bool/None
    SourceMap.locate(path_tuple, *, at_key=False) -> (line, column), 1-based
    render_path(path_tuple) -> "departments[2].schedule.layers[0].rotation"
    locate_problem(file, source, path_tuple, message, severity="error") -> Problem
    validation_problems(file, exc, source) -> list[Problem]   (pydantic errors, humanised)
    validate_model(file, ModelCls, data, source) -> model
    load_model(path, ModelCls, data=None) -> (model, SourceMap)
    load_org(path) -> LoadedOrg(org, file, source, warnings); .location(path_tuple) -> "org.yaml:12:7"
    load_policies(directory, org) -> LoadedPolicies(directory, files, warnings); .policies

One module per step: ``reading`` (bytes -> plain data + ``SourceMap``, YAML errors),
``source`` (the ``SourceMap``), ``problems`` (paths, pydantic errors in words),
``org`` (model validation, the org file and its cross-checks), ``policies`` (the
policy directory and its cross-checks against the org).
"""

from pdorgsync.loading.org import LoadedOrg, load_model, load_org, validate_model
from pdorgsync.loading.policies import LoadedPolicies, LoadedPolicyFile, load_policies, policy_files
from pdorgsync.loading.problems import (
    locate_problem,
    render_path,
    sort_problems,
    validation_problems,
)
from pdorgsync.loading.reading import MAX_FILE_BYTES, load_yaml
from pdorgsync.loading.source import PathTuple, SourceMap, StrPath

__all__ = [
    "MAX_FILE_BYTES",
    "LoadedOrg",
    "LoadedPolicies",
    "LoadedPolicyFile",
    "PathTuple",
    "SourceMap",
    "StrPath",
    "load_model",
    "load_org",
    "load_policies",
    "load_yaml",
    "locate_problem",
    "policy_files",
    "render_path",
    "sort_problems",
    "validate_model",
    "validation_problems",
]
