"""A plan as Markdown, for a pull-request comment or a CI job summary.

A summary line, a table of changes with each field diff in a collapsed block, the
conflicts and orphans, on-call before/after per changed schedule, and the number
of API calls. Pure: returns a string.
"""

from __future__ import annotations

from pdorgsync.core.render.plan_text import SYMBOL, shift_lines, summary_line, value
from pdorgsync.models.plan import Plan


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_plan_markdown(plan: Plan, *, api_calls: int) -> str:
    out = [f"### pdorgsync plan for `{plan.org}`", "", f"**{summary_line(plan)}**", ""]
    out += _changes(plan)
    out += _conflicts(plan)
    out += _orphans(plan)
    out += _impacts(plan)
    out.append(f"_API calls: {api_calls}_")
    return "\n".join(out) + "\n"


def _changes(plan: Plan) -> list[str]:
    """The table of changes, then the field diffs of updates and adoptions, collapsed."""
    if not plan.changes:
        return []
    out = ["| | action | kind | name | department | fields |", "|---|---|---|---|---|---|"]
    for c in plan.changes:
        fields = ", ".join(f"`{f}`" for f in c.diff) if c.action != "delete" else ""
        if c.action == "skip":
            fields = _cell(c.reason or "")
        out.append(
            f"| `{SYMBOL[c.action]}` | {c.action} | {c.kind} | {_cell(c.name)} | "
            f"{c.department} | {fields} |"
        )
    out.append("")
    detailed = [c for c in plan.changes if c.action in ("update", "adopt")]
    if detailed:
        out += ["<details><summary>Field changes</summary>", ""]
        for c in detailed:
            out += [f"**{c.action} {c.kind} {_cell(c.name)}** (`{c.id}`)", "", "```diff"]
            for field, diff in c.diff.items():
                out.append(f"- {field}: {value(diff.before)}")
                out.append(f"+ {field}: {value(diff.after)}")
            out += ["```", ""]
        out += ["</details>", ""]
    return out


def _conflicts(plan: Plan) -> list[str]:
    if not plan.conflicts:
        return []
    out = [
        "#### Conflicts (department blocked)",
        "",
        "| department | kind | name | reason | where |",
        "|---|---|---|---|---|",
    ]
    for k in plan.conflicts:
        out.append(
            f"| {k.department} | {k.kind} | {_cell(k.name)} | {_cell(k.reason)} | "
            f"{k.location or ''} |"
        )
    out.append("")
    return out


def _orphans(plan: Plan) -> list[str]:
    if not plan.orphans:
        return []
    note = "deleted by this plan" if plan.prune else "deleted only with `--prune`"
    out = [
        f"#### Orphans ({note})",
        "",
        "| kind | name | department | id |",
        "|---|---|---|---|",
    ]
    for o in plan.orphans:
        out.append(f"| {o.kind} | {_cell(o.name)} | {o.department} | `{o.id}` |")
    out.append("")
    return out


def _impacts(plan: Plan) -> list[str]:
    if not plan.impacts:
        return []
    out = ["#### On-call over the next 7 days", ""]
    for impact in plan.impacts:
        state = "changes" if impact.changed else "unchanged"
        out += [
            f"<details><summary>{_cell(impact.schedule)} ({state}, {impact.time_zone})</summary>",
            "",
            "```",
            "before:",
            *shift_lines(impact.before, impact.time_zone, "  "),
            "after:",
            *shift_lines(impact.after, impact.time_zone, "  "),
            "```",
            "",
            "</details>",
            "",
        ]
    return out
