"""Plan-gated PagerDuty features: what the account may use, read once per run.

PagerDuty gates features on the account's pricing plan and lists what it has as
"abilities" (``GET /abilities``, OpenAPI ``listAbilities``; 402 with code 2014 on
a gated call, CONTRACT §4). Without ``teams`` every ``/teams`` call and an
escalation policy's ``teams`` field answer 402; without ``coordinated_responding``
responder requests do. Rather than fail every cycle on a 402, ``plan``, ``audit``
and the daemon read the list once, say in plain words what they leave out, and
degrade: escalation policies without a team, engagements skipped with the reason.

Status-update subscriptions are plan-gated too (Business and higher), but PagerDuty
documents no ability name for them: pdorgsync does not guess one and takes the 402
of the subscribe call as the answer instead (``engagements``).

This module never writes and never raises for an unreadable list: an account whose
token may not read ``/abilities`` is treated as having every feature (the calls
themselves will then say what is missing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.logs import get_logger

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

log = get_logger(__name__)

TEAMS = "teams"
RESPONDERS = "coordinated_responding"

#: What pdorgsync leaves out without each ability, in the words a user reads.
WITHOUT = {
    TEAMS: (
        "this PagerDuty account has no 'teams' ability (a plan-gated feature): "
        "pdorgsync manages no teams or team memberships, creates escalation policies "
        "without a team, and skips subscriber engagements"
    ),
    RESPONDERS: (
        "this PagerDuty account has no 'coordinated_responding' ability (responder "
        "requests are a plan-gated feature): responder engagements are skipped"
    ),
}


@dataclass(frozen=True)
class Abilities:
    """The account's abilities; ``names`` None when they could not be read (assume all)."""

    names: frozenset[str] | None = None

    def has(self, ability: str) -> bool:
        return self.names is None or ability in self.names

    def missing(self, needed: Iterable[str]) -> list[str]:
        return [a for a in needed if not self.has(a)]

    def notices(self, needed: Iterable[str] = (TEAMS, RESPONDERS)) -> list[str]:
        """One plain sentence per needed ability the account lacks."""
        return [
            WITHOUT.get(a, f"this PagerDuty account lacks the {a!r} ability")
            for a in self.missing(needed)
        ]


ALL = Abilities()


def read_abilities(client: PagerDutyApi) -> Abilities:
    """``GET /abilities`` (one request). A permanent error (scope, 403) means unknown."""
    try:
        body = client.get("/abilities")
    except PermanentPagerDutyError as exc:
        log.warning("abilities.unreadable", error=str(exc))
        return ALL
    names = body.get("abilities")
    if not isinstance(names, list):
        return ALL
    return Abilities(frozenset(str(n) for n in names))


__all__ = ["ALL", "RESPONDERS", "TEAMS", "WITHOUT", "Abilities", "read_abilities"]
