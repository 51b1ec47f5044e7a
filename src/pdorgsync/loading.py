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
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning
from ruamel.yaml.reader import ReaderError

from pdorgsync.errors import FileValidationError, Problem
from pdorgsync.models.org import Department, Org, check_org, org_warnings
from pdorgsync.models.policy import Policy, PolicyFile, check_policies, policy_warnings

PathTuple = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
StrPath = str | PathLike[str]


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that leaves timestamps as the strings the user wrote.

    YAML 1.2's core schema has no timestamp type; ruamel still resolves them and
    turns offsets into naive UTC values. Keeping the text means a quoted and an
    unquoted ``start`` mean exactly the same thing.
    """


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


def _yaml(*, allow_duplicate_keys: bool = False) -> YAML:
    # A YAML instance is not thread-safe; one per load is cheap next to parsing.
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = allow_duplicate_keys
    return yaml


# --------------------------------------------------------------------------- source map


class SourceMap:
    """Finds the line and column of any path inside a loaded YAML document."""

    def __init__(self, root: Any) -> None:
        self._root = root

    def locate(self, path: Sequence[str | int], *, at_key: bool = False) -> tuple[int, int]:
        """``(line, column)``, 1-based, of ``path``; the nearest existing parent if it is missing.

        A scalar value is located at the value; a mapping or list at its key.
        ``at_key=True`` always points at the key (used for unknown keys).
        """
        node = self._root
        position = _start_of(node)
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if isinstance(node, CommentedMap) and _has_key(node, part):
                child = node[part]
                want_key = (
                    not last
                    or at_key
                    or child is None  # an empty value has no position of its own
                    or isinstance(child, (CommentedMap, CommentedSeq))
                )
                found = _lc(node, part, key=want_key)
            elif (
                isinstance(node, CommentedSeq)
                and isinstance(part, int)
                and not isinstance(part, bool)
                and 0 <= part < len(node)
            ):
                child = node[part]
                found = _lc_item(node, part)
            else:
                break
            if found is None:  # e.g. a key brought in by a merge (<<): no position of its own
                break
            position = found
            node = child
        return position


def _has_key(node: CommentedMap, part: str | int) -> bool:
    try:
        return part in node
    except TypeError:
        return False


def _start_of(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None and lc.col is not None:
        return (lc.line + 1, lc.col + 1)
    return (1, 1)


def _lc(node: CommentedMap, part: Any, *, key: bool) -> tuple[int, int] | None:
    try:
        line, col = node.lc.key(part) if key else node.lc.value(part)
    except (KeyError, TypeError, IndexError):
        return None
    return (int(line) + 1, int(col) + 1)


def _lc_item(node: CommentedSeq, index: int) -> tuple[int, int] | None:
    try:
        line, col = node.lc.item(index)
    except (KeyError, TypeError, IndexError):
        return None
    return (int(line) + 1, int(col) + 1)


# --------------------------------------------------------------------------- paths and problems

_PLAIN_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def render_path(path: Sequence[str | int]) -> str:
    """``("departments", 2, "schedule", "layers", 0)`` → ``departments[2].schedule.layers[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY_RE.match(part):
            out += f".{part}" if out else part
        else:
            text = str(part).replace("\\", "\\\\").replace('"', '\\"')
            out += f'["{text}"]'
    return out


def locate_problem(
    file: str,
    source: SourceMap,
    path: Sequence[str | int],
    message: str,
    severity: str = "error",
    *,
    at_key: bool = False,
) -> Problem:
    """A Problem at ``path`` in ``file`` (the nearest existing parent if ``path`` is missing)."""
    line, column = source.locate(path, at_key=at_key)
    return Problem(file, line, column, render_path(path), message, severity)


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """By position in the file (unlocated first); stable for equal positions."""
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def validation_problems(file: str, exc: ValidationError, source: SourceMap) -> list[Problem]:
    """Every pydantic error as a located Problem with a human message."""
    problems = []
    for error in exc.errors(include_url=False):
        path: PathTuple = tuple(error["loc"])
        at_key = False
        if error["type"] == "extra_forbidden" and path:
            at_key = True
            message = f"unknown key {path[-1]!r}"
            problem = locate_problem(file, source, path, message, at_key=True)
            # Say where the key is, but name the mapping it does not belong to.
            problems.append(
                Problem(file, problem.line, problem.column, render_path(path[:-1]), message)
            )
            continue
        if path and path[-1] == "[key]":
            path = path[:-1]
            at_key = True
            message = f"key {_humanise(error)}"
        else:
            message = _humanise(error)
        problems.append(locate_problem(file, source, path, message, at_key=at_key))
    return problems


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected_choices(expected: str) -> list[str]:
    quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", expected)
    return quoted or [expected]


_SIMPLE: dict[str, str] = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "datetime_type": "expected a date-time such as 2026-01-05T09:00:00",
    "datetime_parsing": "expected a date-time such as 2026-01-05T09:00:00",
    "datetime_from_date_parsing": "expected a date-time such as 2026-01-05T09:00:00",
    "recursion_loop": "a YAML alias refers to itself",
}


def _humanise(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error":
        choices = _expected_choices(str(ctx.get("expected", "")))
        if len(choices) == 1:
            return f"expected {choices[0]}, got {_got(value)}"
        return f"expected one of {', '.join(choices)}, got {_got(value)}"
    if kind in _SIMPLE:
        return f"{_SIMPLE[kind]}, got {_got(value)}"
    if kind in ("too_short", "too_long"):
        length = len(value) if isinstance(value, (list, dict, str)) else None
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        what = "expected at least" if kind == "too_short" else "expected at most"
        unit = "item" if bound == 1 else "items"
        got = f", got {length}" if length is not None else ""
        return f"{what} {bound} {unit}{got}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters, got {len(str(value))}"
    bounds = {
        "greater_than": "greater than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"expected a number {bounds[kind]} {limit}, got {_got(value)}"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


# --------------------------------------------------------------------------- YAML


def load_yaml(path: StrPath) -> tuple[Any, SourceMap]:
    """Read ``path`` as YAML 1.2: plain Python data plus a SourceMap.

    Raises FileValidationError (located where possible) when the file is missing,
    unreadable, not UTF-8, empty, not valid YAML, or has a duplicate key.
    """
    file = str(path)
    text = _read_text(file)
    if not text.strip():
        raise FileValidationError([Problem(file, None, None, "", "the file is empty")])
    try:
        with warnings.catch_warnings():
            # Re-using an anchor name is legal YAML; ruamel warns about it.
            warnings.simplefilter("ignore", YAMLWarning)
            document = _yaml().load(text)
    except DuplicateKeyError as exc:
        raise FileValidationError([_duplicate_key_problem(file, text, exc)]) from None
    except MarkedYAMLError as exc:
        raise FileValidationError([_syntax_problem(file, exc)]) from None
    except ReaderError as exc:
        line, column = _position(text, int(exc.position))
        char = exc.character if isinstance(exc.character, str) else chr(int(exc.character))
        message = f"unacceptable character U+{ord(char):04X} ({exc.reason})"
        raise FileValidationError([Problem(file, line, column, "", message)]) from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileValidationError(
            [Problem(file, None, None, "", f"invalid YAML: {first}")]
        ) from None
    except RecursionError:
        raise FileValidationError([Problem(file, None, None, "", "nested too deeply")]) from None
    if document is None:
        raise FileValidationError([Problem(file, None, None, "", "the file has no content")])
    source = SourceMap(document)
    problems: list[Problem] = []
    data = _plain(document, (), file, source, problems, {})
    if problems:
        raise FileValidationError(sort_problems(problems))
    return data, source


#: The largest org or policy file read. A real org of a few hundred departments
#: is well under 1 MiB; without a cap, ``--org /dev/zero`` read until MemoryError
#: and a 50 MB file took 44 s and 449 MB to refuse (issue 15).
MAX_FILE_BYTES = 2 * 1024 * 1024


def _read_bounded(file: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; OSError or ValueError else.

    Opened non-blocking, so a FIFO cannot hang the caller (nor the daemon's SIGHUP
    reload); checked with ``fstat`` on the opened descriptor, so the file that is
    read is the file that was checked.
    """
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(file)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file (a FIFO, device or socket)")
        if info.st_size > MAX_FILE_BYTES:
            raise ValueError(_too_large(info.st_size))
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1024 * 1024):
            size += len(chunk)
            if size > MAX_FILE_BYTES:  # grew while being read
                raise ValueError(_too_large(size))
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_large(size: int) -> str:
    return (
        f"the file is too large ({size / 1048576:.1f} MiB; at most "
        f"{MAX_FILE_BYTES // 1048576} MiB is read)"
    )


def _read_text(file: str) -> str:
    def fail(message: str, line: int | None = None, column: int | None = None) -> None:
        raise FileValidationError([Problem(file, line, column, "", message)])

    try:
        raw = _read_bounded(file)
    except FileNotFoundError:
        fail("no such file")
    except IsADirectoryError:
        fail("is a directory, expected a YAML file")
    except PermissionError:
        fail("cannot read the file: permission denied")
    except OSError as exc:
        fail(f"cannot read the file: {exc.strerror or exc}")
    except ValueError as exc:
        fail(str(exc))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        fail(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", line, column)
    raise AssertionError("unreachable")  # pragma: no cover


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _syntax_problem(file: str, exc: MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        where = ""
        if exc.context_mark is not None and exc.context_mark is not mark:
            where = f" (line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        message = f"{exc.context}{where}: {exc.problem}"
    if mark is None:
        return Problem(file, None, None, "", message)
    return Problem(file, mark.line + 1, mark.column + 1, "", message)


_DUPLICATE_RE = re.compile(r'found duplicate key "(.*)" with value', re.DOTALL)


def _duplicate_key_problem(file: str, text: str, exc: DuplicateKeyError) -> Problem:
    """Name the key, the mapping it is in, and where it was first given."""
    match = _DUPLICATE_RE.search(exc.problem or "")
    key = match.group(1) if match else "?"
    mark = exc.problem_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    path: PathTuple = ()
    first = ""
    start = exc.context_mark
    if start is not None:
        # Only on this error path: parse again, tolerating duplicates, to find the
        # mapping (by its start mark) and so its path and the first occurrence.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", YAMLWarning)
                document = _yaml(allow_duplicate_keys=True).load(text)
            found = _find_mapping(document, (start.line, start.column), (), set())
        except (YAMLError, RecursionError):
            found = None
        if found is not None:
            path, mapping = found
            first_key = next((k for k in mapping if str(k) == key), None)
            position = _lc(mapping, first_key, key=True) if first_key is not None else None
            if position is not None:
                first = f" (first given at line {position[0]})"
    return Problem(file, line, column, render_path(path), f"duplicate key {key!r}{first}")


def _find_mapping(
    node: Any, start: tuple[int, int], path: PathTuple, seen: set[int]
) -> tuple[PathTuple, CommentedMap] | None:
    if id(node) in seen:
        return None
    if isinstance(node, CommentedMap):
        seen.add(id(node))
        if (node.lc.line, node.lc.col) == start:
            return path, node
        for key, value in node.items():
            found = _find_mapping(value, start, (*path, key), seen)
            if found is not None:
                return found
    elif isinstance(node, CommentedSeq):
        seen.add(id(node))
        for index, value in enumerate(node):
            found = _find_mapping(value, start, (*path, index), seen)
            if found is not None:
                return found
    return None


def _plain(
    node: Any,
    path: PathTuple,
    file: str,
    source: SourceMap,
    problems: list[Problem],
    memo: dict[int, Any],
) -> Any:
    """ruamel's round-trip objects → plain dict/list/str/int/float/bool/None."""
    if node is None or type(node) in (str, int, float, bool):
        return node
    if id(node) in memo:  # an alias: share the converted value (also ends self-references)
        return memo[id(node)]
    if isinstance(node, dict):
        result: dict[Any, Any] = {}
        memo[id(node)] = result
        for key, value in node.items():
            plain_key = _plain_key(key)
            if plain_key is _UNSUPPORTED:
                problems.append(
                    locate_problem(
                        file, source, path, "a mapping key must be a plain value", at_key=True
                    )
                )
                continue
            result[plain_key] = _plain(value, (*path, plain_key), file, source, problems, memo)
        return result
    if isinstance(node, list):
        items: list[Any] = []
        memo[id(node)] = items
        items.extend(
            _plain(value, (*path, index), file, source, problems, memo)
            for index, value in enumerate(node)
        )
        return items
    scalar = _plain_scalar(node)
    if scalar is _UNSUPPORTED:
        tag = getattr(getattr(node, "tag", None), "value", None) or type(node).__name__
        problems.append(locate_problem(file, source, path, f"unsupported YAML value ({tag})"))
        return None
    return scalar


_UNSUPPORTED = object()


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (datetime, date)):  # only from an explicit !!timestamp tag
        return value.isoformat()
    return _UNSUPPORTED


def _plain_key(key: Any) -> Any:
    if key is None:
        return None
    return _plain_scalar(key)


# --------------------------------------------------------------------------- models


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


# --------------------------------------------------------------------------- policies


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
