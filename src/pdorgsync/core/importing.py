"""The mapping of ``pdorgsync import`` (SPEC §6): observed account -> org document + notes.

Why this module exists: onboarding must be exact. A file that ``plan`` then reads
back has to describe the account so precisely that the first ``apply`` only adopts
(adds the ownership marker) and changes nobody's on-call time. So the rules here
are the planner's rules read backwards: layer ``start`` is the rotation anchor
(``rotation_virtual_start``, compared as an instant), layers keep the snapshot's
order (lowest priority first), an escalation target is the department's own
schedule, another department's schedule or a user, and a service must be routed
to its department's escalation policy.

Whatever the org model cannot hold is left out and becomes a ``Note`` with a
category (counted in the summary on stderr) and a path: the key of the document
the YAML comment goes before. Guesses (function, point of contact, coverage)
become notes without a category.

Pure: no network, disk, clock or logging; ``now`` is a parameter. The output is a
plain ``dict`` in SPEC §1 key order, deterministic for a given snapshot and ``now``
(departments sorted by key; every choice between objects ordered by name then id).

The steps live in their own modules: ``import_context`` (the working state, notes,
categories), ``import_assign`` (which objects each department takes),
``import_blocks`` (the schedule, escalation policy, people and coverage blocks),
``import_values`` (single values); this module runs them and lays out the document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pdorgsync.core.import_assign import (
    assign_eps,
    assign_schedules,
    assign_services,
    leftovers,
    make_departments,
)
from pdorgsync.core.import_blocks import department_block, ep_block, schedule_block
from pdorgsync.core.import_context import (  # the categories, re-exported with the notes
    CATEGORIES,
    EMPTY_LAYER,
    ENDED_LAYER,
    ENDING_LAYER,
    EXTRA_MANAGER,
    OBSERVER,
    OVERRIDE,
    SECOND_EP,
    SECOND_SCHEDULE,
    SECOND_SERVICE,
    TEAMLESS_EP,
    TEAMLESS_SCHEDULE,
    TEAMLESS_SERVICE,
    UNFIT_EP,
    UNFIT_SCHEDULE,
    UNFIT_SERVICE,
    UNFIT_TEAM,
    V3_SCHEDULE,
    ImportState,
    Note,
    Override,
    Path,
)
from pdorgsync.core.import_values import (
    FUNCTION_WORDS,
    slug,
)
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import Org, parse_marker

_O = TypeVar("_O", snap.Schedule, snap.EscalationPolicy)


@dataclass(frozen=True)
class Imported:
    """The org document (plain data, SPEC §1 key order) and its notes.

    ``schedules``: ids of the schedules written into the document (whose overrides
    the shell reads, to list them).
    """

    data: dict[str, Any]
    notes: list[Note]
    schedules: tuple[str, ...] = ()

    def org(self) -> Org:
        return Org.model_validate(self.data)

    def counts(self) -> dict[str, int]:
        """How many things did not fit, per category, in ``CATEGORIES`` order."""
        found = Counter(n.category for n in self.notes if n.category)
        return {c: found[c] for c in CATEGORIES if found[c]}


# -- the mapping ----------------------------------------------------------------------


def _run(st: ImportState) -> Imported:
    make_departments(st)
    assign_eps(st)
    assign_schedules(st)
    fitted = {d.key: schedule_block(st, d) for d in st.depts}
    for d in st.depts:  # a schedule that does not fit is not the department's
        d.schedule = _settle(d.schedule, fitted[d.key], d.key, st.schedule_owner)
    eps = {d.key: ep_block(st, d) for d in st.depts}
    for d in st.depts:
        d.ep = _settle(d.ep, eps[d.key], d.key, st.ep_owner)
    assign_services(st)
    leftovers(st)
    for d in st.depts:
        d.data = department_block(st, d, fitted[d.key], eps[d.key])
    return _document(st)


def _settle(
    obj: _O | None, block: dict[str, Any] | None, key: str, owners: dict[str, str]
) -> _O | None:
    """``obj`` if its block was written (recorded in ``owners`` as department ``key``'s),
    else None."""
    if block is None or obj is None:
        return None
    owners[obj.id] = key
    return obj


def _document(st: ImportState) -> Imported:
    zones = Counter(d.data["time_zone"] for d in st.depts if "time_zone" in d.data)
    default_zone = min(zones, key=lambda z: (-zones[z], z)) if zones else "Etc/UTC"
    departments: list[dict[str, Any]] = []
    notes: list[Note] = []
    for index, d in enumerate(st.depts):
        data = d.data
        if data.get("time_zone") == default_zone:
            del data["time_zone"]
        departments.append(data)
        for note in d.notes:
            notes.append(
                Note(
                    _anchor(data, index, str(note.path[-1])),
                    note.text,
                    note.category,
                    note.inline,
                )
            )
    labels: dict[str, list[str]] = {
        s.name: []
        for s in sorted(st.snap.services, key=lambda s: (s.name, s.id))
        if s.id not in st.service_owner and s.name.strip()
    }
    document: dict[str, Any] = {
        "version": 1,
        "org": st.org_id,
        "defaults": {"time_zone": default_zone, "adopt_existing": True},
    }
    if labels:
        document["service_labels"] = labels
        notes.insert(
            0,
            Note(
                ("service_labels",),
                "services pdorgsync does not manage: give them labels so policies can match them",
            ),
        )
    document["departments"] = departments
    for note in st.top:
        path = note.path if note.path[0] in document else ("departments",)
        notes.append(Note(path, note.text, note.category, note.inline))
    imported = tuple(sorted(d.schedule.id for d in st.depts if d.schedule is not None))
    return Imported(document, notes, imported)


# Where a note about a block goes when the block itself is missing: before the next key.
_ORDER = (
    "key",
    "name",
    "function",
    "point_of_contact",
    "members",
    "coverage",
    "business_hours",
    "time_zone",
    "schedule",
    "escalation_policy",
    "service",
)


def _anchor(data: dict[str, Any], index: int, block: str) -> Path:
    if block in data:
        return ("departments", index, block)
    later = _ORDER[_ORDER.index(block) + 1 :] if block in _ORDER else ()
    for key in later:
        if key in data:
            return ("departments", index, key)
    return ("departments", index, "key") if block == "key" else ("departments", index)


def import_account(
    snapshot: snap.Snapshot,
    *,
    org_id: str,
    now: datetime,
    overrides: Mapping[str, Sequence[Override]] | None = None,
) -> Imported:
    """The org document describing ``snapshot`` (see the module docstring).

    ``overrides``: per schedule id, the overrides to list as comments (not read by default).
    """
    return _run(ImportState(snapshot, org_id, now.replace(microsecond=0), overrides or {}))


def guess_org_id(snapshot: snap.Snapshot) -> str:
    """The org id for the file: the org of the markers found, else the users' mail domain."""
    orgs = Counter(
        owner[0]
        for objs in (
            snapshot.teams,
            snapshot.schedules,
            snapshot.escalation_policies,
            snapshot.services,
        )
        for o in objs
        if (owner := parse_marker(o.description)) is not None
    )
    if orgs:
        return min(orgs, key=lambda o: (-orgs[o], o))
    domains = Counter(
        u.email.partition("@")[2].split(".")[0] for u in snapshot.users if "@" in u.email
    )
    if domains:
        return slug(min(domains, key=lambda d: (-domains[d], d)))
    return "imported"


__all__ = [
    "CATEGORIES",
    "EMPTY_LAYER",
    "ENDED_LAYER",
    "ENDING_LAYER",
    "EXTRA_MANAGER",
    "FUNCTION_WORDS",
    "OBSERVER",
    "OVERRIDE",
    "SECOND_EP",
    "SECOND_SCHEDULE",
    "SECOND_SERVICE",
    "TEAMLESS_EP",
    "TEAMLESS_SCHEDULE",
    "TEAMLESS_SERVICE",
    "UNFIT_EP",
    "UNFIT_SCHEDULE",
    "UNFIT_SERVICE",
    "UNFIT_TEAM",
    "V3_SCHEDULE",
    "Imported",
    "guess_org_id",
    "import_account",
]
