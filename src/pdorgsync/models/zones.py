"""The time zones PagerDuty accepts, and which accepted identifier names the same zone.

Why this module exists: PagerDuty's REST API takes only the identifiers it documents
(``pagerduty_time_zones.json``, a copy of ``shared/pagerduty/time_zones.json`` from
PagerDuty/developer-docs ``docs/REST-API/06-Types.md``, section "Time Zone"). Other
IANA names are refused, even valid ones: terraform-provider-pagerduty #796
(``US/Mountain``) and #1148 (``UTC``). Yet PagerDuty itself *returns* ``UTC`` for some
schedules, so a returned ``UTC`` must compare equal to the ``Etc/UTC`` a file asks for.

"Same zone" is decided by tzdata, never by a hand-written list: two names are the same
zone when tzdata links one to the other (``L`` lines of the ``tzdata`` package's
``tzdata.zi``) or when their compiled zoneinfo files are byte-for-byte identical.

It reads only package data (this file's JSON and the ``tzdata`` package), once, at
import, as ``zoneinfo`` itself does; it never touches the network or logs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

_DATA = json.loads(
    resources.files("pdorgsync.models").joinpath("pagerduty_time_zones.json").read_text("utf-8")
)
# PagerDuty's list names some identifiers twice (one per display name): keep each once.
ACCEPTED: tuple[str, ...] = tuple(dict.fromkeys(str(z["id"]) for z in _DATA["time_zones"]))
_ACCEPTED = frozenset(ACCEPTED)
SOURCE = str(_DATA["source"])
DOCS_URL = "https://developer.pagerduty.com/docs/1afe25e9c94cb-types#time-zone"


def _links() -> dict[str, str]:
    """tzdata's links: alias name -> the zone it links to."""
    try:
        text = resources.files("tzdata").joinpath("zoneinfo", "tzdata.zi").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - tzdata is a dependency
        return {}
    links = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            links[parts[2]] = parts[1]
    return links


_LINKS = _links()


@cache
def _compiled(name: str) -> bytes | None:
    """The compiled zoneinfo file of ``name`` from the tzdata package, if it has one."""
    if not name or name.startswith("/") or ".." in name.split("/"):
        return None
    try:
        node = resources.files("tzdata").joinpath("zoneinfo", *name.split("/"))
        return node.read_bytes() if node.is_file() else None
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def is_accepted(name: str) -> bool:
    """Whether PagerDuty's documented list holds ``name`` exactly."""
    return name in _ACCEPTED


def canonical(name: str) -> str:
    """The zone tzdata links ``name`` to (``name`` itself when it is no link)."""
    seen = {name}
    while name in _LINKS and _LINKS[name] not in seen:
        name = _LINKS[name]
        seen.add(name)
    return name


def same_zone(a: str, b: str) -> bool:
    """Whether tzdata says ``a`` and ``b`` name one zone (``UTC`` and ``Etc/UTC``: yes)."""
    if a == b:
        return True
    if canonical(a) == canonical(b):
        return True
    data = _compiled(a)
    return data is not None and data == _compiled(b)


@cache
def accepted_equivalent(name: str) -> str | None:
    """The identifier PagerDuty accepts for the zone ``name`` (``Europe/Kyiv`` -> ``Europe/Kiev``).

    ``name`` itself when accepted; None when tzdata knows no accepted identifier for it.
    Several accepted names can share one zone's rules (``Europe/Oslo`` is linked to
    ``Europe/Berlin``, as are Copenhagen and Stockholm): the one tzdata links ``name``
    to wins, then a canonical zone, then the first in alphabetical order.
    """
    if name in _ACCEPTED:
        return name
    target = canonical(name)
    if target in _ACCEPTED:
        return target
    matches = [z for z in ACCEPTED if same_zone(name, z)]
    if not matches:
        return None
    return sorted(matches, key=lambda z: (canonical(z) != z, z))[0]


def zone_problem(name: str) -> str | None:
    """None if PagerDuty accepts ``name``; else a message saying what to write instead."""
    if name in _ACCEPTED:
        return None
    instead = accepted_equivalent(name)
    if instead is not None:
        return (
            f"PagerDuty does not accept the time zone {name!r}; write {instead!r}, "
            "which tzdata says is the same zone"
        )
    if _compiled(name) is not None or name in _LINKS:
        alike = same_offsets(name)
        names = " or ".join(repr(z) for z in alike[:3])
        hint = (
            f"{names} {'keeps' if len(alike) == 1 else 'keep'} the same UTC offsets "
            f"(daylight saving included) in {SAMPLED_YEARS[-1]}"
            if alike
            else f"choose one of its time zones ({DOCS_URL})"
        )
        return (
            f"PagerDuty does not accept the time zone {name!r} and lists no identifier for the "
            f"same zone; {hint}"
        )
    return f"expected a time zone PagerDuty accepts, such as Europe/Berlin or Etc/UTC, got {name!r} ({DOCS_URL})"


def matches(observed: str | None, wanted: str) -> bool:
    """Whether a zone PagerDuty returned is the zone the file asks for (no drift).

    PagerDuty returns names it would refuse as input (``UTC``, terraform-provider-
    pagerduty #1148); such a name matches the accepted identifier of the same zone.
    Two accepted identifiers are compared as written: someone chose that name.
    """
    if observed is None:
        return False
    if observed == wanted:
        return True
    return not is_accepted(observed) and same_zone(observed, wanted)


SAMPLED_YEARS = (2026,)


@cache
def _offsets(name: str) -> tuple[timedelta | None, ...]:
    zone = ZoneInfo(name)
    start = datetime(SAMPLED_YEARS[0], 1, 1, tzinfo=UTC)
    days = (datetime(SAMPLED_YEARS[-1] + 1, 1, 1, tzinfo=UTC) - start).days
    return tuple(
        (start + timedelta(hours=12 * step)).astimezone(zone).utcoffset()
        for step in range(days * 2)
    )


def same_offsets(name: str) -> list[str]:
    """Accepted identifiers whose UTC offset matches ``name``'s, sampled every 12 hours over
    ``SAMPLED_YEARS`` (a suggestion when tzdata names no equivalent, e.g. America/Toronto)."""
    try:
        wanted = _offsets(name)
    except (KeyError, ValueError, OSError):
        return []
    return [zone for zone in ACCEPTED if _offsets(zone) == wanted]
