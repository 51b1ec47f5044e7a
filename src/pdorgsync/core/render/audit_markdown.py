"""The audit report as Markdown (for a pull request, an issue or a wiki page): a summary,
then per department, worst first, its coverage, findings and gaps as tables.

Pure: a report in, a string out. Text from PagerDuty or the org file is escaped so a
name cannot break a table or inject markup.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from pdorgsync.core.coverage_gaps import format_hours
from pdorgsync.core.render.audit_text import (
    MAX_GAP_ROWS,
    coverage_label,
    gap_row,
    horizon_line,
    nobody_line,
    ratio_text,
    summary_line,
)
from pdorgsync.models.audit import AuditReport, DepartmentCoverage, Finding

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_ICON = {"critical": "🔴 critical", "warning": "🟠 warning", "info": "🔵 info"}


def md(text: str) -> str:
    """Escape Markdown and table syntax; newlines become spaces."""
    return _SPECIAL.sub(r"\\\1", text.replace("\r", " ").replace("\n", " "))


def _findings_table(findings: list[Finding]) -> list[str]:
    lines = ["| Severity | Rule | Finding |", "| --- | --- | --- |"]
    lines.extend(f"| {_ICON[f.severity]} | {f.rule} | {md(f.message)} |" for f in findings)
    return lines


def _department(report: AuditReport, dept: DepartmentCoverage) -> list[str]:
    zone = ZoneInfo(dept.time_zone)
    longest = dept.longest_gap
    facts = [
        f"coverage **{coverage_label(dept)}**",
        f"zone {md(dept.time_zone)}",
        f"covered **{ratio_text(dept)}**",
    ]
    if longest is not None:
        facts.append(f"longest gap **{format_hours(longest.duration.total_seconds())}**")
    lines = [f"## {md(dept.name)} (`{dept.key}`)", "", " · ".join(facts), ""]
    findings = report.findings_for(dept.key)
    lines.extend(_findings_table(findings) if findings else ["No findings."])
    if dept.gaps and dept.covered_seconds == 0:
        lines += ["", md(nobody_line(dept))]
    elif dept.gaps:
        lines += [
            "",
            "| Gap from (local) | To (local) | UTC | Length |",
            "| --- | --- | --- | --- |",
        ]
        for gap in dept.gaps[:MAX_GAP_ROWS]:
            lines.append("| " + " | ".join(md(c) for c in gap_row(gap, zone)) + " |")
        if len(dept.gaps) > MAX_GAP_ROWS:
            lines += ["", f"… and {len(dept.gaps) - MAX_GAP_ROWS} more gaps."]
    lines.append("")
    return lines


def render_audit_markdown(report: AuditReport) -> str:
    lines = [
        f"# Coverage audit of {md(report.org)}",
        "",
        f"Next {md(horizon_line(report).removeprefix('next '))}. {md(summary_line(report))}",
        "",
        "| Department | Coverage | Covered | Longest gap | Critical | Warning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for dept in report.departments_worst_first():
        findings = report.findings_for(dept.key)
        longest = dept.longest_gap
        lines.append(
            f"| {md(dept.name)} | {coverage_label(dept)} | {ratio_text(dept)} | "
            f"{format_hours(longest.duration.total_seconds()) if longest else '–'} | "
            f"{sum(f.severity == 'critical' for f in findings)} | "
            f"{sum(f.severity == 'warning' for f in findings)} |"
        )
    lines.append("")
    for dept in report.departments_worst_first():
        lines.extend(_department(report, dept))
    known = {d.key for d in report.departments}
    other = [f for f in report.findings if f.department not in known]
    if other:
        lines += ["## Other findings", "", *_findings_table(other), ""]
    if report.api_calls is not None:
        lines.append(f"_{report.api_calls} PagerDuty API calls._")
    return "\n".join(lines).rstrip() + "\n"
