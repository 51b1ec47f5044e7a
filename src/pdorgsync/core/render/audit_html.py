"""The audit report as one self-contained HTML page for people who are not engineers.

Per department: a week-by-hour heat map of on-call coverage over the horizon (rows
Monday–Sunday, columns 00–23 in the department's own time zone; each cell is the share
of that weekday-hour with someone on call), its findings in plain words, and its gaps.

The page must open anywhere, offline and in a locked-down browser: CSS is inline, there
are no scripts, fonts, images or links to other hosts. Every piece of text that came
from PagerDuty or the org file is HTML-escaped.

Pure: a report in, a string out.
"""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from pdorgsync.core.coverage_gaps import format_hours
from pdorgsync.core.render.audit_text import (
    DAY,
    MAX_GAP_ROWS,
    coverage_label,
    gap_row,
    nobody_line,
    ratio_text,
    utc_time,
)
from pdorgsync.models.audit import AuditReport, DepartmentCoverage, Finding

CSS = """
/* pdorgsync audit report: inlined into the page, so the file needs no network at all. */
:root {
  --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --bg: #f5f7fa; --card: #ffffff;
  --critical: #c62828; --warning: #b26a00; --info: #1565c0; --ok: #2e7d32;
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 40px; }
header h1 { margin: 0 0 4px; font-size: 26px; letter-spacing: -0.01em; }
header p { margin: 0; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 20px 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.card .num { font-size: 28px; font-weight: 650; line-height: 1.1; }
.card .lbl { color: var(--muted); font-size: 13px; }
.card.critical .num { color: var(--critical); }
.card.warning .num { color: var(--warning); }
.card.ok .num { color: var(--ok); }
table.overview { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
table.overview th, table.overview td { padding: 8px 12px; text-align: left; border-bottom: 1px solid var(--line); font-size: 14px; }
table.overview th { background: #f0f3f7; color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
table.overview a { color: inherit; text-decoration: none; font-weight: 600; }
.bar { display: inline-block; width: 110px; height: 8px; border-radius: 4px; background: #eceff3; vertical-align: middle; margin-right: 8px; overflow: hidden; }
.bar span { display: block; height: 100%; border-radius: 4px; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.pill.critical { background: var(--critical); }
.pill.warning { background: var(--warning); }
.pill.info { background: var(--info); }
.pill.ok { background: var(--ok); }
.pill.muted { background: #9aa5b1; }
section.dept { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 18px 20px 16px; margin: 18px 0; }
section.dept.worst-critical { border-left: 5px solid var(--critical); }
section.dept.worst-warning { border-left: 5px solid var(--warning); }
section.dept.worst-none { border-left: 5px solid var(--ok); }
.dept-head { display: flex; justify-content: space-between; align-items: baseline; gap: 16px; flex-wrap: wrap; }
.dept-head h2 { margin: 0; font-size: 20px; }
.dept-head .meta { color: var(--muted); font-size: 13px; }
.dept-head .ratio { font-size: 26px; font-weight: 650; }
.heat { border-collapse: separate; border-spacing: 2px; margin: 14px 0 6px; }
.heat th { font-size: 11px; color: var(--muted); font-weight: 500; padding: 0 2px; }
.heat th.day { text-align: right; padding-right: 6px; }
.heat td { width: 34px; height: 22px; border-radius: 3px; }
.heat td.na { background: repeating-linear-gradient(45deg, #f5f7fa, #f5f7fa 3px, #e4e7eb 3px, #e4e7eb 5px); }
.legend { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; font-size: 12px; color: var(--muted); margin: 6px 0 0; }
.legend i { display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -2px; margin-right: 5px; }
.legend .scale { width: 120px; height: 12px; border-radius: 3px; display: inline-block; vertical-align: -2px; margin: 0 5px;
  background: linear-gradient(90deg, #d64545, #f2b134, #2e9d5b); }
ul.findings { list-style: none; padding: 0; margin: 12px 0 4px; }
ul.findings li { padding: 7px 0; border-top: 1px solid var(--line); display: flex; gap: 10px; align-items: baseline; }
ul.findings li .rule { color: var(--muted); font-size: 12px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
p.clean { color: var(--ok); margin: 10px 0 0; font-weight: 600; }
details { margin-top: 8px; font-size: 13px; }
details summary { cursor: pointer; color: var(--muted); }
table.gaps { border-collapse: collapse; margin-top: 6px; }
table.gaps th, table.gaps td { padding: 3px 12px 3px 0; text-align: left; font-size: 13px; }
table.gaps th { color: var(--muted); font-weight: 600; }
footer { color: var(--muted); font-size: 13px; margin-top: 28px; border-top: 1px solid var(--line); padding-top: 12px; }
@media (max-width: 760px) { .cards { grid-template-columns: repeat(2, 1fr); } .heat td { width: 18px; } }
@media print { body { background: #fff; } section.dept { break-inside: avoid; } }
"""

RED, AMBER, GREEN = (0xD6, 0x45, 0x45), (0xF2, 0xB1, 0x34), (0x2E, 0x9D, 0x5B)
OFF_HOURS, OFF_HOURS_COVERED = (0xEC, 0xEF, 0xF3), (0xC8, 0xE3, 0xD0)
DAY_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SEVERITY_WORDS = {"critical": "Critical", "warning": "Warning", "info": "Info"}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return r, g, bl


def cell_colour(fraction: float, required: bool) -> str:
    """Red (nobody) through amber to green (always someone), grey outside required hours."""
    fraction = min(1.0, max(0.0, fraction))
    if not required:
        rgb = _mix(OFF_HOURS, OFF_HOURS_COVERED, fraction)
    elif fraction < 0.5:
        rgb = _mix(RED, AMBER, fraction * 2)
    else:
        rgb = _mix(AMBER, GREEN, (fraction - 0.5) * 2)
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _ratio_colour(dept: DepartmentCoverage) -> str:
    if dept.coverage_ratio is None:
        return "#9aa5b1"
    return cell_colour(dept.coverage_ratio, True)


def heatmap_table(dept: DepartmentCoverage) -> str:
    """7 x 24 table; every cell says in its tooltip what it shows."""
    if dept.heatmap is None or dept.required is None:
        reason = (
            "Not on call by design: no coverage is required."
            if dept.coverage == "none"
            else "No heat map: this schedule's coverage could not be measured."
        )
        return f'<p class="meta">{_e(reason)}</p>'
    head = "".join(f"<th>{h:02d}</th>" for h in range(24))
    rows = []
    for day in range(7):
        cells = []
        for hour in range(24):
            value = dept.heatmap[day][hour]
            label = f"{DAY_LONG[day]} {hour:02d}:00–{(hour + 1) % 24:02d}:00"
            if value is None:
                cells.append(f'<td class="na" title="{_e(label)}: not in the audited period"></td>')
                continue
            need = dept.required[day][hour]
            words = f"{value * 100:.0f}% covered" + ("" if need else " (outside required hours)")
            cells.append(
                f'<td style="background:{cell_colour(value, need)}" '
                f'title="{_e(label)}: {_e(words)}"></td>'
            )
        rows.append(f'<tr><th class="day">{DAY[day]}</th>{"".join(cells)}</tr>')
    caption = f"On-call coverage by weekday and hour, {_e(dept.time_zone)} time"
    return (
        f'<table class="heat" aria-label="{caption}"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _findings_list(findings: list[Finding]) -> str:
    items = "".join(
        f'<li><span class="pill {f.severity}">{SEVERITY_WORDS[f.severity]}</span>'
        f"<span>{_e(f.message)}</span>"
        f'<span class="rule">{_e(f.rule)}</span></li>'
        for f in findings
    )
    return f'<ul class="findings">{items}</ul>'


def _gaps(dept: DepartmentCoverage) -> str:
    if not dept.gaps:
        return ""
    if dept.covered_seconds == 0:
        return f'<p class="meta">{_e(nobody_line(dept))}</p>'
    zone = ZoneInfo(dept.time_zone)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in gap_row(g, zone)) + "</tr>"
        for g in dept.gaps[:MAX_GAP_ROWS]
    )
    more = (
        f"<p>… and {len(dept.gaps) - MAX_GAP_ROWS} more.</p>"
        if len(dept.gaps) > MAX_GAP_ROWS
        else ""
    )
    count = len(dept.gaps)
    return (
        f"<details><summary>{count} gap{'s' if count != 1 else ''} in coverage "
        f"({_e(format_hours(sum(g.duration.total_seconds() for g in dept.gaps)))} in total)</summary>"
        '<table class="gaps"><thead><tr><th>From (local)</th><th>To (local)</th><th>UTC</th>'
        f"<th>Length</th></tr></thead><tbody>{rows}</tbody></table>{more}</details>"
    )


def department_section(report: AuditReport, dept: DepartmentCoverage) -> str:
    findings = report.findings_for(dept.key)
    worst = findings[0].severity if findings else "none"
    longest = dept.longest_gap
    meta = [coverage_label(dept), dept.time_zone]
    if dept.schedule_name:
        meta.append(f"schedule “{dept.schedule_name}”")
    if longest is not None:
        meta.append(f"longest gap {format_hours(longest.duration.total_seconds())}")
    body = (
        _findings_list(findings)
        if findings
        else '<p class="clean">No findings: this department can be reached when needed.</p>'
    )
    return (
        f'<section class="dept worst-{worst}" id="dept-{_e(dept.key)}">'
        '<div class="dept-head"><div>'
        f"<h2>{_e(dept.name)}</h2>"
        f'<div class="meta">{_e(" · ".join(meta))}</div></div>'
        f'<div class="ratio" style="color:{_ratio_colour(dept)}">{_e(ratio_text(dept))}'
        '<div class="meta">of required time covered</div></div></div>'
        f"{heatmap_table(dept)}{body}{_gaps(dept)}</section>"
    )


def _overview(report: AuditReport) -> str:
    rows = []
    for dept in report.departments_worst_first():
        findings = report.findings_for(dept.key)
        crit = sum(f.severity == "critical" for f in findings)
        warn = sum(f.severity == "warning" for f in findings)
        pills = (
            (f'<span class="pill critical">{crit} critical</span> ' if crit else "")
            + (
                f'<span class="pill warning">{warn} warning{"s" if warn != 1 else ""}</span>'
                if warn
                else ""
            )
        ) or '<span class="pill ok">OK</span>'
        width = 0 if dept.coverage_ratio is None else round(dept.coverage_ratio * 100)
        longest = dept.longest_gap
        rows.append(
            f'<tr><td><a href="#dept-{_e(dept.key)}">{_e(dept.name)}</a></td>'
            f"<td>{_e(coverage_label(dept))}</td>"
            f'<td><span class="bar"><span style="width:{width}%;background:{_ratio_colour(dept)}">'
            f"</span></span>{_e(ratio_text(dept))}</td>"
            f"<td>{_e(format_hours(longest.duration.total_seconds())) if longest else '–'}</td>"
            f"<td>{pills}</td></tr>"
        )
    return (
        '<table class="overview"><thead><tr><th>Department</th><th>Needs</th><th>Covered</th>'
        f"<th>Longest gap</th><th>Findings</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _cards(report: AuditReport) -> str:
    counts = report.counts()
    measured = [d for d in report.departments if d.coverage_ratio is not None]
    lowest = min(measured, key=lambda d: d.coverage_ratio or 0.0, default=None)
    cards = [
        ("", str(len(report.departments)), "departments audited"),
        ("critical" if counts["critical"] else "ok", str(counts["critical"]), "critical findings"),
        ("warning" if counts["warning"] else "ok", str(counts["warning"]), "warnings"),
        (
            "",
            ratio_text(lowest) if lowest else "–",
            f"lowest coverage ({lowest.name})" if lowest else "lowest coverage",
        ),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card {cls}"><div class="num">{_e(num)}</div><div class="lbl">{_e(lbl)}</div></div>'
            for cls, num, lbl in cards
        )
        + "</div>"
    )


LEGEND = (
    '<p class="legend"><span>Nobody on call<span class="scale"></span>always someone</span>'
    f'<span><i style="background:{cell_colour(0, False)}"></i>outside required hours</span>'
    '<span><i class="na" style="background:repeating-linear-gradient(45deg,#f5f7fa,#f5f7fa 3px,'
    '#e4e7eb 3px,#e4e7eb 5px)"></i>not in the audited period</span>'
    "<span>Each square is one hour of the week in the department's own time zone.</span></p>"
)


def render_audit_html(report: AuditReport) -> str:
    title = f"On-call coverage audit — {report.org}"
    known = {d.key for d in report.departments}
    other = [f for f in report.findings if f.department not in known]
    sections = "".join(department_section(report, d) for d in report.departments_worst_first())
    if other:
        sections += (
            '<section class="dept"><div class="dept-head"><h2>Other findings</h2></div>'
            f"{_findings_list(other)}</section>"
        )
    calls = f"{report.api_calls} PagerDuty API calls · " if report.api_calls is not None else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{_e(title)}</h1>"
        f"<p>Who can be reached when needed over the next {report.horizon_days} days: "
        f"{_e(utc_time(report.since))} – {_e(utc_time(report.until))} UTC.</p></header>"
        f"{_cards(report)}{_overview(report)}{LEGEND}{sections}"
        f"<footer>{_e(calls)}generated by pdorgsync at {_e(utc_time(report.generated_at))} UTC"
        "</footer></main></body></html>\n"
    )
