"""A reconciliation plan as a frozen value (what ``core/planning.py`` builds).

A plan is data, not behaviour: ``pdorgsync plan`` renders it, ``pdorgsync apply``
executes that very value (``reconcile.apply``), so the report a reviewer reads and
the requests that are sent cannot disagree. Each ``Change`` therefore carries the
exact requests it stands for. Objects that do not exist yet are referred to by a
placeholder ``{{<kind>:<department>}}`` inside paths and bodies; ``apply`` fills in
the id PagerDuty returned for the change whose ``ref`` matches.

``to_report()`` gives the JSON shape of SPEC §3; the request details stay internal.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

# ``skip``: an object pdorgsync matched but leaves alone, with the ``reason`` (a managed
# schedule PagerDuty upgraded to shift-based v3, SPEC §1). It sends no request and is
# not drift: a plan holding only skips exits 0.
Action = Literal["create", "update", "delete", "adopt", "skip"]
Kind = Literal["team", "team_membership", "schedule", "escalation_policy", "service"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "adopt")  # summary keys (SPEC §3)

PLACEHOLDER_RE = re.compile(r"\{\{([a-z_]+:[a-z0-9-]+)\}\}")


def placeholder(kind: str, department: str) -> str:
    """The stand-in for the id of ``kind`` of ``department`` until apply knows it."""
    return "{{" + f"{kind}:{department}" + "}}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldDiff(_Model):
    """One field's change; ``before`` is None for a create, ``after`` None for a delete."""

    before: JsonValue = None
    after: JsonValue = None


class Request(_Model):
    """One API request of a change: ``method``, ``path`` and JSON ``body`` (may hold placeholders)."""

    method: Literal["POST", "PUT", "DELETE"]
    path: str
    body: JsonValue = None


class Change(_Model):
    """One thing that will be made different in PagerDuty."""

    action: Action
    kind: Kind
    department: str
    name: str
    id: str | None = None  # existing object; None for a create
    diff: dict[str, FieldDiff] = Field(default_factory=dict)
    ref: str  # "<kind>:<department>" (membership: "team_membership:<department>:<email>")
    requests: list[Request] = Field(default_factory=list)
    # Facts apply needs to report a refused delete or recover from an unknown outcome.
    blocked_by_incidents_of: list[str] = Field(default_factory=list)  # EP ids
    marker: str | None = None  # ownership marker a created object carries
    reason: str | None = None  # why a ``skip`` leaves the object alone

    def to_report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "kind": self.kind,
            "department": self.department,
            "name": self.name,
            "id": self.id,
            "diff": {k: {"from": v.before, "to": v.after} for k, v in self.diff.items()},
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


class Conflict(_Model):
    """Something that keeps a department from being planned; the department is blocked."""

    kind: str  # user | team | schedule | escalation_policy | service | reference
    department: str
    name: str
    reason: str
    location: str | None = None  # "org.yaml:12:7"

    def to_report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "department": self.department,
            "name": self.name,
            "reason": self.reason,
        }
        if self.location:
            out["location"] = self.location
        return out


class Orphan(_Model):
    """An owned object whose department (or block) left the file."""

    kind: Kind
    department: str
    name: str
    id: str

    def to_report(self) -> dict[str, Any]:
        return {"kind": self.kind, "department": self.department, "name": self.name, "id": self.id}


class OnCallShift(_Model):
    start: datetime
    end: datetime
    user: str  # email (or user id when the user is unknown)


class OnCallImpact(_Model):
    """Who is on call in a schedule over a window, before and after the plan is applied."""

    department: str
    schedule: str
    time_zone: str
    since: datetime
    until: datetime
    before: list[OnCallShift]
    after: list[OnCallShift]

    @property
    def changed(self) -> bool:
        return self.before != self.after


class Plan(_Model):
    """Ordered changes (dependency order: apply runs them top to bottom) plus what blocks."""

    org: str
    generated_at: datetime
    effective_at: datetime  # when schedule changes take effect ("now", unless next hand-off)
    at_next_handoff: bool = False
    prune: bool = False
    changes: list[Change] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    orphans: list[Orphan] = Field(default_factory=list)
    impacts: list[OnCallImpact] = Field(default_factory=list)
    # Plain-words notes on what the plan leaves out (plan-gated features the account
    # lacks); shown once on stderr, not part of the SPEC §3 JSON shape.
    notices: list[str] = Field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for change in self.pending:
            counts[change.action] += 1
        return counts

    @property
    def blocked_departments(self) -> list[str]:
        return list(dict.fromkeys(c.department for c in self.conflicts))

    @property
    def pending(self) -> list[Change]:
        """The changes that would change something (every action but ``skip``)."""
        return [c for c in self.changes if c.action != "skip"]

    @property
    def has_changes(self) -> bool:
        """SPEC §3 exit 2: anything would change, or a conflict keeps the account off the file."""
        return bool(self.pending or self.conflicts)

    def to_report(self) -> dict[str, Any]:
        """The JSON shape of SPEC §3."""
        return {
            "changes": [c.to_report() for c in self.changes],
            "conflicts": [c.to_report() for c in self.conflicts],
            "orphans": [o.to_report() for o in self.orphans],
            "summary": self.summary,
        }


Outcome = Literal["applied", "failed", "skipped"]


class ChangeResult(_Model):
    """What happened to one change of the plan during apply."""

    change: Change
    outcome: Outcome
    id: str | None = None  # the object's id (created objects: the new id)
    error: str | None = None  # why it failed or was skipped

    def to_report(self) -> dict[str, Any]:
        return {
            **self.change.to_report(),
            "id": self.id or self.change.id,
            "outcome": self.outcome,
            "error": self.error,
        }


class ApplyReport(_Model):
    """The outcome of ``reconcile.apply``: every change's result plus what stayed blocked."""

    org: str
    results: list[ChangeResult] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)  # departments left untouched
    api_calls: int = 0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        """SPEC §3 apply exit 0: everything applied and nothing blocked by a conflict."""
        return not self.conflicts and all(
            r.outcome == "applied" or r.change.action == "skip" for r in self.results
        )

    def to_report(self) -> dict[str, Any]:
        return {
            "results": [r.to_report() for r in self.results],
            "conflicts": [c.to_report() for c in self.conflicts],
            "summary": {o: self.count(o) for o in ("applied", "failed", "skipped")},
            "api_calls": self.api_calls,
        }
