"""The audit report as plain text for a terminal: a summary, then one table per department,
worst first, with its findings and its gaps in local time and UTC.

Pure: a report in, a string out. Shared wording helpers for the other audit renderers
live here too (``coverage_label``, ``gap_row``, ``ratio_text``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pdorgsync.core.coverage_gaps import format_hours
from pdorgsync.models.audit import AuditReport, DepartmentCoverage, Finding, Gap

MAX_GAP_ROWS = 12
DAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def coverage_label(dept: DepartmentCoverage) -> str:
    return {"always": "24x7", "business_hours": "business hours", "none": "not on call"}[
        dept.coverage
    ]


def ratio_text(dept: DepartmentCoverage) -> str:
    if dept.coverage_ratio is None:
        return "n/a"
    percent = dept.coverage_ratio * 100
    if 99.95 <= percent < 100:
        return "99.9%"
    return f"{percent:.1f}%" if percent % 1 else f"{percent:.0f}%"


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{DAY[local.weekday()]} {local.day} {local:%b %H:%M %Z}"


def utc_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}"


def gap_row(gap: Gap, zone: ZoneInfo) -> tuple[str, str, str, str]:
    """(local start, local end, UTC span, length) for one gap."""
    return (
        local_time(gap.start, zone),
        local_time(gap.end, zone),
        f"{utc_time(gap.start)} – {utc_time(gap.end)} UTC",
        format_hours(gap.duration.total_seconds()),
    )


def nobody_line(dept: DepartmentCoverage) -> str:
    """For a department nobody covers at all: one line instead of a table of every gap."""
    return (
        "Nobody is on call at any time of the required window "
        f"({format_hours(dept.required_seconds)} over the horizon)."
    )


def horizon_line(report: AuditReport) -> str:
    return (
        f"next {report.horizon_days} days: {utc_time(report.since)} – {utc_time(report.until)} UTC"
    )


def summary_line(report: AuditReport) -> str:
    counts = report.counts()
    if not report.findings:
        return "No findings: every department can be reached when it is needed."
    words = {"critical": "critical", "warning": "warnings", "info": "notes"}
    parts = [
        f"{counts[s]} {words[s] if counts[s] != 1 else s}"
        for s in ("critical", "warning", "info")
        if counts[s]
    ]
    return "Findings: " + ", ".join(parts)


def _table(headers: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    widths[-1] = len(headers[-1])  # the last column is free text: no padding

    def line(cells: list[str]) -> str:
        return indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return out


def _finding_rows(findings: list[Finding]) -> list[list[str]]:
    return [[f.severity.upper(), f.rule, f.message] for f in findings]


def department_block(report: AuditReport, dept: DepartmentCoverage) -> list[str]:
    zone = ZoneInfo(dept.time_zone)
    longest = dept.longest_gap
    head = (
        f"{dept.name} ({dept.key}) — {coverage_label(dept)}, {dept.time_zone} — "
        f"covered {ratio_text(dept)}"
    )
    if longest is not None:
        head += f" — longest gap {format_hours(longest.duration.total_seconds())}"
    lines = [head]
    findings = report.findings_for(dept.key)
    if findings:
        lines.extend(_table(["SEVERITY", "RULE", "FINDING"], _finding_rows(findings)))
    else:
        lines.append("  No findings.")
    if dept.gaps and dept.covered_seconds == 0:
        lines.append(f"  {nobody_line(dept)}")
    elif dept.gaps:
        rows = [list(gap_row(g, zone)) for g in dept.gaps[:MAX_GAP_ROWS]]
        lines.append("")
        lines.extend(_table(["GAP FROM (LOCAL)", "TO (LOCAL)", "UTC", "LENGTH"], rows))
        if len(dept.gaps) > MAX_GAP_ROWS:
            lines.append(
                f"  … and {len(dept.gaps) - MAX_GAP_ROWS} more gaps (--format json lists them all)"
            )
    return lines


def render_audit_text(report: AuditReport) -> str:
    lines = [
        f"Coverage audit of {report.org} — {horizon_line(report)}",
        summary_line(report),
        "",
    ]
    for dept in report.departments_worst_first():
        lines.extend(department_block(report, dept))
        lines.append("")
    known = {d.key for d in report.departments}
    other = [f for f in report.findings if f.department not in known]
    if other:
        lines.append("Other findings")
        lines.extend(_table(["SEVERITY", "RULE", "FINDING"], _finding_rows(other)))
        lines.append("")
    if report.api_calls is not None:
        lines.append(f"{report.api_calls} PagerDuty API calls.")
    return "\n".join(lines).rstrip() + "\n"
