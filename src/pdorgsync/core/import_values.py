"""How single PagerDuty values are written in the org file (the import's vocabulary).

Split from ``core/importing.py`` (the mapping of whole objects): a team name's
slug and function, a zone's accepted name, a layer start on the local wall clock,
rotations, restrictions, descriptions without the marker, and the
``business_hours`` block a rendered schedule amounts to. ``Unfit`` says why a
value cannot be written. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pdorgsync.core.intervals import (
    DAY_NAMES,
    Interval,
    as_zone,
    business_windows,
    local_to_utc,
    normalize,
    wall_clock,
)
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import parse_marker

# Department functions by team-name words, most specific first (a "Security
# Engineering" team is security). Words are compared whole, lower-cased.
FUNCTION_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("security", frozenset({"security", "secops", "infosec", "soc", "appsec", "trust"})),
    ("legal", frozenset({"legal", "compliance", "counsel", "privacy", "regulatory"})),
    (
        "finance",
        frozenset({"finance", "financial", "accounting", "billing", "payroll", "treasury"}),
    ),
    ("hr", frozenset({"hr", "people", "talent", "recruiting", "human", "personnel"})),
    ("sales", frozenset({"sales", "bizdev", "presales", "revenue", "account", "accounts"})),
    (
        "executive",
        frozenset(
            {"executive", "executives", "exec", "execs", "leadership", "ceo", "cto", "board"}
        ),
    ),
    ("product", frozenset({"product", "products", "pm", "design", "ux"})),
    (
        "marketing",
        frozenset({"marketing", "pr", "communications", "comms", "brand", "press", "social"}),
    ),
    (
        "support",
        frozenset(
            {"support", "customer", "customers", "success", "helpdesk", "cx", "care", "service"}
        ),
    ),
    (
        "engineering",
        frozenset(
            {
                "engineering",
                "engineers",
                "eng",
                "platform",
                "infrastructure",
                "infra",
                "sre",
                "devops",
                "ops",
                "operations",
                "backend",
                "frontend",
                "reliability",
                "database",
                "network",
                "mobile",
                "web",
                "api",
                "data",
                "dev",
                "development",
                "it",
            }
        ),
    ),
)


class Unfit(Exception):
    """Why an object cannot be written into the org file (its message says why)."""


def slug(text: str) -> str:
    """A department key from a team name: ``[a-z0-9]+(-[a-z0-9]+)*``, never empty."""
    key = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return key or "team"


def guess_function(name: str) -> tuple[str, list[str]]:
    """``(function, every function the name suggests)`` from the team name's words."""
    words = set(re.findall(r"[a-z0-9]+", name.lower()))
    found = [function for function, keys in FUNCTION_WORDS if words & keys]
    return (found[0] if found else "other"), found


def zone_name(value: str) -> str:
    """The zone as written in the org file: PagerDuty's ``UTC`` is ``Etc/UTC`` (SPEC §1)."""
    return "Etc/UTC" if value in ("UTC", "Etc/UTC") else value


def local_start(moment: datetime, zone: str) -> str:
    """An instant as the org file writes a layer ``start``: local time in ``zone``, whole minutes.

    Naive (local) when that reading names this very instant; with its offset when it
    does not (the repeated hour of an autumn clock change, where a naive time means
    its first occurrence).
    """
    tz = as_zone(zone)
    moment = moment.replace(second=0, microsecond=0)
    wall = wall_clock(moment, tz)
    if local_to_utc(wall, tz) == moment:
        return wall.isoformat(timespec="seconds")
    return moment.astimezone(tz).isoformat(timespec="seconds")


def rotation_name(seconds: int) -> str:
    if seconds == 86_400:
        return "daily"
    if seconds == 604_800:
        return "weekly"
    if seconds % 3600 == 0 and 1 <= seconds // 3600 <= 8760:
        return f"{seconds // 3600}h"
    raise Unfit(
        f"a layer rotates every {seconds} s; the org file knows daily, weekly and whole hours"
    )


def _hours(seconds: int) -> int | float:
    value = seconds / 3600
    return int(value) if value.is_integer() else value


def restriction_of(r: snap.Restriction) -> dict[str, Any] | None:
    """``{day, start, hours}`` / ``{start, hours}``; None for a full-period window (= none)."""
    hh, mm, *rest = r.start_time_of_day.split(":")
    if rest and int(rest[0]) != 0:
        raise Unfit(f"a restriction starts at {r.start_time_of_day}, not on a whole minute")
    weekly = r.type == "weekly_restriction"
    period = 604_800 if weekly else 86_400
    if r.duration_seconds >= period:
        return None
    if r.duration_seconds <= 0:
        raise Unfit(f"a restriction lasts {r.duration_seconds} s")
    out: dict[str, Any] = {}
    if weekly:
        if r.start_day_of_week not in range(1, 8):
            raise Unfit(f"a weekly restriction starts on day {r.start_day_of_week}")
        out["day"] = DAY_NAMES[(r.start_day_of_week or 1) - 1]
    out["start"] = f"{int(hh):02d}:{int(mm):02d}"
    out["hours"] = _hours(r.duration_seconds)
    return out


def description_text(text: str | None) -> str:
    """A description without a pdorgsync marker line, as the org file keeps it."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and parse_marker(lines[-1]) is not None:
        lines.pop()
    return "\n".join(line.rstrip() for line in lines).strip()


def business_hours_of(
    cover: Sequence[Interval], zone: str, since: datetime, until: datetime
) -> dict[str, Any] | None:
    """The ``business_hours`` block whose windows are exactly ``cover``, if one is.

    One window per day, the same local hours every day it occurs, not crossing
    midnight, whole minutes. The candidate comes from the windows that lie wholly
    inside the horizon and is checked against all of it.
    """
    tz = as_zone(zone)
    inside = [iv for iv in cover if since < iv.start and iv.end < until]
    if not inside:
        return None
    spans: set[tuple[str, str]] = set()
    days: set[int] = set()
    for iv in inside:
        start, end = wall_clock(iv.start, tz), wall_clock(iv.end, tz)
        if start.date() != end.date() or start.second or end.second:
            return None
        spans.add((start.strftime("%H:%M"), end.strftime("%H:%M")))
        days.add(start.weekday())
    if len(spans) != 1:
        return None
    (begin, finish) = spans.pop()
    names = [DAY_NAMES[i] for i in sorted(days)]
    expected = normalize(business_windows(names, begin, finish, tz, since, until))
    if normalize(cover) != expected:
        return None
    return {"days": names, "start": begin, "end": finish}
