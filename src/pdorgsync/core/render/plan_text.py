"""Plan and apply reports as text for a terminal, shaped like ``terraform plan``.

``+`` create, ``~`` update, ``-`` delete, ``=`` adopt, ``!`` conflict, ``?`` orphan, then a
summary line and the number of API calls. Pure: returns a string, imports no
terminal library. Each coloured part is passed through a ``Styler`` given by the
caller with a colour hint (``fg``, ``bold``); the default leaves text plain. The
shell (``cli/``) decides whether to colour (a TTY without ``NO_COLOR``) and passes
``click.style`` then; this module never looks at the environment.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pdorgsync.models.plan import ApplyReport, Change, OnCallImpact, OnCallShift, Plan

SYMBOL = {"create": "+", "update": "~", "delete": "-", "adopt": "=", "skip": "!"}
COLOUR = {
    "create": "green",
    "update": "yellow",
    "delete": "red",
    "adopt": "cyan",
    "skip": "magenta",
}
MAX_SHIFTS = 14


def value(v: Any) -> str:
    """A diff value on one line (JSON for structures, so types stay visible)."""
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


class Styler(Protocol):
    """Dresses a part of the report given a colour hint (``click.style`` fits)."""

    def __call__(self, text: str, *, fg: str | None = None, bold: bool | None = None) -> str: ...


def plain(text: str, *, fg: str | None = None, bold: bool | None = None) -> str:
    """The default ``Styler``: the text unchanged."""
    return text


def change_lines(change: Change, style: Styler = plain) -> list[str]:
    head = f"{SYMBOL[change.action]} {change.action} {change.kind} {value(change.name)} ({change.department})"
    if change.id:
        head += f" [{change.id}]"
    lines = ["  " + style(head, fg=COLOUR[change.action], bold=True)]
    if change.action == "delete":
        return lines
    if change.action == "skip":
        return [*lines, f"      reason: {change.reason}"]
    for field, diff in change.diff.items():
        if change.action == "create" or diff.before is None:
            lines.append(f"      {field}: {value(diff.after)}")
        elif diff.after is None:
            lines.append(f"      {field}: {value(diff.before)} -> (ended)")
        else:
            lines.append(f"      {field}: {value(diff.before)}")
            lines.append(f"      {' ' * len(field)}  -> {value(diff.after)}")
    return lines


def _when(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")


def shift_lines(shifts: list[OnCallShift], zone: str, indent: str) -> list[str]:
    if not shifts:
        return [f"{indent}(nobody on call)"]
    lines = [
        f"{indent}{_when(s.start, zone)} - {_when(s.end, zone)}  {s.user}"
        for s in shifts[:MAX_SHIFTS]
    ]
    if len(shifts) > MAX_SHIFTS:
        lines.append(f"{indent}... and {len(shifts) - MAX_SHIFTS} more shifts")
    return lines


def impact_lines(impact: OnCallImpact) -> list[str]:
    lines = [f"  {impact.schedule} ({impact.department}, times in {impact.time_zone})"]
    if not impact.changed:
        lines.append("    unchanged over the next 7 days:")
        return lines + shift_lines(impact.after, impact.time_zone, "      ")
    lines.append("    before:")
    lines += shift_lines(impact.before, impact.time_zone, "      ")
    lines.append("    after:")
    lines += shift_lines(impact.after, impact.time_zone, "      ")
    return lines


def summary_line(plan: Plan) -> str:
    s = plan.summary
    text = (
        f"Plan: {s['create']} to create, {s['update']} to update, {s['delete']} to delete, "
        f"{s['adopt']} to adopt; {len(plan.conflicts)} conflicts, {len(plan.orphans)} orphans."
    )
    skipped = len(plan.changes) - len(plan.pending)
    if skipped:
        text += f" {skipped} left alone (see skip)."
    if not plan.has_changes:
        text = "No changes: PagerDuty matches the org file. " + text
    return text


def render_plan_text(plan: Plan, *, api_calls: int, style: Styler = plain) -> str:
    when = "at the next hand-off" if plan.at_next_handoff else "when applied"
    out = [f"pdorgsync plan for org {plan.org} ({plan.generated_at.isoformat()})", ""]
    if plan.changes:
        out.append(f"Changes (schedule changes take effect {when}):")
        for change in plan.changes:
            out += change_lines(change, style)
        out.append("")
    if plan.conflicts:
        out.append(style("Conflicts (the department is not changed until resolved):", fg="red"))
        for c in plan.conflicts:
            where = f" ({c.location})" if c.location else ""
            line = f"  ! {c.department}: {c.kind} {value(c.name)}: {c.reason}{where}"
            out.append(style(line, fg="red"))
        out.append("")
    if plan.orphans:
        note = "deleted by this plan" if plan.prune else "deleted only with --prune"
        out.append(f"Orphans (owned by pdorgsync, department gone from the file; {note}):")
        for o in plan.orphans:
            out.append(f"  ? {o.kind} {value(o.name)} ({o.department}) [{o.id}]")
        out.append("")
    if plan.impacts:
        out.append("On-call over the next 7 days, before and after:")
        for impact in plan.impacts:
            out += impact_lines(impact)
        out.append("")
    out.append(style(summary_line(plan), bold=True))
    out.append(f"API calls: {api_calls}")
    return "\n".join(out) + "\n"


def render_apply_text(report: ApplyReport, *, style: Styler = plain) -> str:
    out = [f"pdorgsync apply for org {report.org}", ""]
    for r in report.results:
        c = r.change
        mark = {"applied": "ok", "failed": "FAILED", "skipped": "skipped"}[r.outcome]
        fg = {"applied": "green", "failed": "red", "skipped": "yellow"}[r.outcome]
        ident = f" [{r.id}]" if r.id else ""
        line = f"  {SYMBOL[c.action]} {c.action} {c.kind} {value(c.name)} ({c.department}){ident}: {mark}"
        if r.error:
            line += f": {r.error}"
        out.append(style(line, fg=fg))
    for k in report.conflicts:
        where = f" ({k.location})" if k.location else ""
        out.append(
            style(
                f"  ! {k.department} not applied: {k.kind} {value(k.name)}: {k.reason}{where}",
                fg="red",
            )
        )
    if report.results or report.conflicts:
        out.append("")
    summary = (
        f"Apply: {report.count('applied')} applied, {report.count('failed')} failed, "
        f"{report.count('skipped')} skipped; {len(report.conflicts)} conflicts."
    )
    out.append(style(summary, bold=True, fg="green" if report.ok else "red"))
    out.append(f"API calls: {report.api_calls}")
    return "\n".join(out) + "\n"
