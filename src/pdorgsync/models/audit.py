"""The coverage audit's result (SPEC §3) as frozen data: findings and per-department coverage.

``core/coverage.py`` builds an :class:`AuditReport`; the renderers in ``core/render``
turn it into text, JSON, Markdown or HTML; the CLI decides the exit code from
:meth:`AuditReport.fails_on`. Nothing here computes coverage or touches I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "warning", "info"]
FailOn = Literal["critical", "warning", "never"]

SEVERITY_RANK: dict[str, int] = {"critical": 3, "warning": 2, "info": 1}

RULE_TITLES: dict[str, str] = {
    "COV001": "Missing service, schedule or escalation policy",
    "COV002": "Nobody on call inside the required coverage window",
    "COV003": "No real escalation path",
    "COV004": "Escalation level targets an empty schedule or a missing user",
    "COV005": "Service not routed to the department's escalation policy, or disabled",
    "COV006": "Point of contact missing or unreachable",
    "COV007": "On-call user without a high-urgency notification rule",
    "COV008": "A policy engages a department that lacks what it needs",
    "COV009": "Shift-based (v3) schedule: coverage not checked",
    "COV010": "An engagement the account's plan does not allow",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Finding(_Model):
    """One rule violation: who, how bad, what a manager reads, what a machine reads."""

    rule: str
    severity: Severity
    department: str | None
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]


class Gap(_Model):
    """A stretch of required coverage with nobody on call, clipped to the horizon."""

    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def hours(self) -> float:
        return self.duration.total_seconds() / 3600


class DepartmentCoverage(_Model):
    """How well one department is covered over the horizon.

    ``coverage_ratio`` is None for ``coverage: none`` and when it could not be
    measured (a shift-based v3 schedule). ``heatmap[weekday][hour]`` (Monday = 0,
    local time of the department) is the fraction of that weekday-hour that had
    someone on call over the horizon, None where the horizon holds no such hour;
    ``required[weekday][hour]`` says whether the hour lies inside the required window.
    """

    key: str
    name: str
    coverage: Literal["always", "business_hours", "none"]
    time_zone: str
    schedule_id: str | None = None
    schedule_name: str | None = None
    coverage_ratio: float | None = None
    required_seconds: float = 0.0
    covered_seconds: float = 0.0
    gaps: list[Gap] = Field(default_factory=list)
    heatmap: list[list[float | None]] | None = None
    required: list[list[bool]] | None = None

    @property
    def longest_gap(self) -> Gap | None:
        return max(self.gaps, key=lambda g: g.duration, default=None)

    @property
    def gap_hours(self) -> float:
        return sum(g.hours for g in self.gaps)


class AuditReport(_Model):
    """Everything one audit found; ``since`` is the time of the audit (SPEC §3)."""

    org: str
    generated_at: datetime
    since: datetime
    until: datetime
    horizon_days: int
    findings: list[Finding] = Field(default_factory=list)
    departments: list[DepartmentCoverage] = Field(default_factory=list)
    api_calls: int | None = None
    # Plain-words notes on what the audit could not look at (plan-gated features the
    # account lacks); shown once on stderr.
    notices: list[str] = Field(default_factory=list)

    def findings_for(self, department: str | None) -> list[Finding]:
        return [f for f in self.findings if f.department == department]

    def counts(self) -> dict[str, int]:
        counts = {"critical": 0, "warning": 0, "info": 0}
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts

    def worst_rank(self, department: str | None) -> int:
        return max((f.rank for f in self.findings_for(department)), default=0)

    def departments_worst_first(self) -> list[DepartmentCoverage]:
        """Most severe findings first, then least covered, then by key."""

        def order(dept: DepartmentCoverage) -> tuple[int, float, str]:
            ratio = dept.coverage_ratio if dept.coverage_ratio is not None else 2.0
            return (-self.worst_rank(dept.key), ratio, dept.key)

        return sorted(self.departments, key=order)

    def fails_on(self, fail_on: FailOn) -> bool:
        """True when a finding is at or above ``fail_on`` (exit code 3)."""
        if fail_on == "never":
            return False
        threshold = SEVERITY_RANK[fail_on]
        return any(f.rank >= threshold for f in self.findings)
