"""Reading YAML 1.2 with ruamel's round-trip loader: size-bounded, decoded, syntax and
duplicate-key errors located, reduced to plain data plus its ``SourceMap``."""

from __future__ import annotations

import os
import re
import stat
import warnings
from datetime import date, datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning
from ruamel.yaml.reader import ReaderError

from pdorgsync.errors import FileValidationError, Problem
from pdorgsync.loading.problems import (
    locate_problem,
    render_path,
    sort_problems,
)
from pdorgsync.loading.source import PathTuple, SourceMap, StrPath, _lc


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
