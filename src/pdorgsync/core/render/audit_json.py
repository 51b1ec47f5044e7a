"""The audit report as JSON (SPEC §3 shape, extended with a summary, local times and the
heat map). Keys named in SPEC §3 are public interface: add keys, never rename them.

Pure: a report in, a string out.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pdorgsync.core.coverage_gaps import gap_details
from pdorgsync.models.audit import AuditReport, DepartmentCoverage


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def department_dict(dept: DepartmentCoverage) -> dict[str, Any]:
    zone = ZoneInfo(dept.time_zone)
    longest = dept.longest_gap
    return {
        "key": dept.key,
        "name": dept.name,
        "coverage": dept.coverage,
        "time_zone": dept.time_zone,
        "schedule_id": dept.schedule_id,
        "schedule_name": dept.schedule_name,
        "coverage_ratio": None if dept.coverage_ratio is None else round(dept.coverage_ratio, 4),
        "required_hours": round(dept.required_seconds / 3600, 2),
        "covered_hours": round(dept.covered_seconds / 3600, 2),
        "gap_hours": round(dept.gap_hours, 2),
        "longest_gap": gap_details(longest, zone) if longest else None,
        "gaps": [gap_details(g, zone) for g in dept.gaps],
        "heatmap": None
        if dept.heatmap is None
        else [[None if v is None else round(v, 3) for v in row] for row in dept.heatmap],
        "required": dept.required,
    }


def audit_dict(report: AuditReport) -> dict[str, Any]:
    """The report as plain JSON-ready data."""
    return {
        "org": report.org,
        "generated_at": _iso(report.generated_at),
        "horizon": {
            "since": _iso(report.since),
            "until": _iso(report.until),
            "days": report.horizon_days,
        },
        "summary": report.counts(),
        "findings": [
            {
                "rule": f.rule,
                "severity": f.severity,
                "department": f.department,
                "message": f.message,
                "details": f.details,
            }
            for f in report.findings
        ],
        "departments": [department_dict(d) for d in report.departments],
        "api_calls": report.api_calls,
    }


def render_audit_json(report: AuditReport) -> str:
    return json.dumps(audit_dict(report), indent=2, ensure_ascii=False, default=str) + "\n"
