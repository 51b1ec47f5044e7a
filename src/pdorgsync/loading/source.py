"""Where a value sits in a YAML file: the ``SourceMap`` of the line/column data ruamel keeps."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any, TypeVar

from pydantic import BaseModel
from ruamel.yaml.comments import CommentedMap, CommentedSeq

PathTuple = tuple[str | int, ...]


M = TypeVar("M", bound=BaseModel)


StrPath = str | PathLike[str]


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
