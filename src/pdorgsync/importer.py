"""``pdorgsync import``: read the account, write the org file that describes it (SPEC §6).

The shell around ``core.importing``: it reads through ``observe`` (the same bulk
reads as ``plan``, with every schedule's layers and every team's members), turns
the pure mapping's document and notes into YAML 1.2 with comments (ruamel.yaml),
and writes it atomically.

What it must never do: send a write request to PagerDuty (it only calls
``observe``, which only lists and gets), or leave a half-written file behind (the
text goes to a temporary file in the target's folder, then replaces the target in
one rename).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from pdorgsync.abilities import TEAMS, read_abilities
from pdorgsync.core.import_context import Note, Override
from pdorgsync.core.importing import Imported, guess_org_id, import_account
from pdorgsync.errors import ConfigError
from pdorgsync.models import snapshot as snap
from pdorgsync.observe import observe

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

Progress = Callable[[str], None]

HEADER = (
    "Written by `pdorgsync import` from the PagerDuty account.\n"
    "Review the guesses marked in comments (function, point_of_contact, coverage),\n"
    "then run `pdorgsync validate` and `pdorgsync plan`: the first plan should only\n"
    "adopt (add the ownership marker) and change nobody's on-call time."
)

# Lists and small mappings written on one line, as in SPEC §1's example.
_FLOW_LISTS = {"members", "users", "targets"}
_FLOW_MAPS = {"business_hours"}
_FLOW_ITEMS = {"restrictions", "levels"}
_QUOTED = {"start", "end"}
_FLOW_WIDTH = 72  # longer lists are written one item a line (YAML never wraps a line here)


def read_account(client: PagerDutyApi, *, progress: Progress | None = None) -> snap.Snapshot:
    """Everything the mapping needs: every schedule's layers, every team's members.

    ConfigError when the account's plan has no teams (the ``teams`` ability): the org
    file is one department per team, so there is nothing to map.
    """
    if not read_abilities(client).has(TEAMS):
        raise ConfigError(
            "this PagerDuty account has no teams (its plan lacks the 'teams' ability): "
            "import writes one department per team, so there is nothing to import; "
            "write org.yaml by hand (every department then gets no team, see "
            "`pdorgsync doctor`)"
        )
    return observe(
        client,
        with_layers_for=lambda _schedule: True,
        with_members_for=lambda _team: True,
        progress=progress,
    )


OVERRIDE_DAYS = 28


def build(
    snapshot: snap.Snapshot,
    *,
    org_id: str | None,
    now: datetime,
    client: PagerDutyApi | None = None,
    progress: Progress | None = None,
) -> Imported:
    """The pure mapping, with the org id guessed when none is given.

    With a ``client``, the overrides of the next 28 days of every imported schedule
    are read (one request per schedule) and listed as comments.
    """
    org = org_id or guess_org_id(snapshot)
    imported = import_account(snapshot, org_id=org, now=now)
    if client is None or not imported.schedules:
        return imported
    if progress is not None:
        progress(f"reading overrides of {len(imported.schedules)} schedules")
    window = {
        "since": now.astimezone(UTC).isoformat(),
        "until": (now + timedelta(days=OVERRIDE_DAYS)).astimezone(UTC).isoformat(),
    }
    overrides = {
        schedule_id: [
            Override(
                start=datetime.fromisoformat(o["start"]),
                end=datetime.fromisoformat(o["end"]),
                user_id=str((o.get("user") or {}).get("id") or ""),
            )
            for o in client.list_all(f"/schedules/{schedule_id}/overrides", window)
        ]
        for schedule_id in imported.schedules
    }
    return import_account(snapshot, org_id=org, now=now, overrides=overrides)


# -- YAML ------------------------------------------------------------------------------------


def _node(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _node(v, k)
        if key in _FLOW_MAPS:
            out.fa.set_flow_style()
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_node(v) for v in value)
        short = sum(len(str(v)) + 2 for v in value) <= _FLOW_WIDTH
        if (key in _FLOW_LISTS and short) or (key is not None and not value):
            seq.fa.set_flow_style()
        if key in _FLOW_ITEMS:
            for item in seq:
                if isinstance(item, CommentedMap):
                    item.fa.set_flow_style()
        return seq
    if isinstance(value, str):
        if "\n" in value:
            return LiteralScalarString(value)
        if key in _QUOTED:
            return DoubleQuotedScalarString(value)
    return value


def _target(root: CommentedMap, path: tuple[str | int, ...]) -> tuple[CommentedMap, str, int]:
    """The mapping holding the key ``path`` points at, that key, and its indent."""
    if len(path) == 1:
        return root, str(path[0]), 0
    dept = root["departments"][path[1]]
    key = str(path[2]) if len(path) > 2 else "name"
    return dept, key, 4


def render_yaml(imported: Imported) -> str:
    """The org file text: YAML 1.2, SPEC key order, notes as comments; same input, same bytes."""
    root = _node(imported.data)
    before: dict[tuple[int, str], list[str]] = {}
    inline: dict[tuple[int, str], list[str]] = {}
    holders: dict[int, CommentedMap] = {}
    indents: dict[int, int] = {}
    for note in imported.notes:
        holder, key, indent = _target(root, note.path)
        holders[id(holder)] = holder
        indents[id(holder)] = indent
        table = inline if note.inline else before
        table.setdefault((id(holder), key), []).append(_one_line(note))
    for (hid, key), texts in before.items():
        holders[hid].yaml_set_comment_before_after_key(
            key, before="\n".join(texts), indent=indents[hid]
        )
    for (hid, key), texts in inline.items():
        holders[hid].yaml_add_eol_comment("# " + "; ".join(texts), key)
    root.yaml_set_start_comment(HEADER)
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    buffer = io.StringIO()
    yaml.dump(root, buffer)
    return buffer.getvalue()


def _one_line(note: Note) -> str:
    return " ".join(note.text.split())


def summary(imported: Imported) -> list[str]:
    """The stderr summary: what was written and what did not fit, with counts."""
    departments = imported.data["departments"]
    blocks = {
        kind: sum(1 for d in departments if kind in d)
        for kind in ("schedule", "escalation_policy", "service")
    }
    labels = len(imported.data.get("service_labels", {}))
    lines = [
        f"imported {_n(len(departments), 'department')} ({_n(blocks['schedule'], 'schedule')}, "
        f"{_n(blocks['escalation_policy'], 'escalation policy', 'escalation policies')}, "
        f"{_n(blocks['service'], 'service')}); "
        f"{_n(labels, 'unmanaged service')} under service_labels"
    ]
    counts = imported.counts()
    if counts:
        total = sum(counts.values())
        lines.append(
            f"{_n(total, 'thing')} did not fit the org file and stayed out "
            "(see the comments in it):"
        )
        lines.extend(f"  {count} x {category}" for category, count in counts.items())
    else:
        lines.append("everything fitted the org file")
    return lines


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


# -- writing ---------------------------------------------------------------------------------


def write_atomically(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename; never half a file.

    Refuses an existing ``path`` unless ``force`` (ConfigError, nothing written).
    """
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists: pass --force to overwrite it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"cannot write {path}: folder {folder} does not exist")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


__all__ = ["build", "read_account", "render_yaml", "summary", "write_atomically"]
