"""An evaluation in words (``pdorgsync engage``): the incident, each policy with MATCH or
the first condition that failed, what is engaged or skipped; the same as JSON; and
the per-policy summary of a replay. Pure: values in, lines or plain data out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pdorgsync.core.policies import Evaluation, IncidentFacts


def describe_incident(facts: IncidentFacts, labels: set[str]) -> str:
    number = f"#{facts.number}" if facts.number is not None else facts.id
    shown_labels = ", ".join(sorted(labels)) if labels else "none"
    return (
        f"incident {number} ({facts.id}) {facts.title!r}\n"
        f"  status {facts.status}, priority {facts.priority or 'none'}, "
        f"urgency {facts.urgency or 'unknown'}, service {facts.service_name or 'unknown'} "
        f"(labels: {shown_labels})"
    )


def render_evaluation(
    evaluation: Evaluation, sources: dict[str, str], *, done: str, indent: str = "  "
) -> list[str]:
    """Matched and unmatched policies with reasons, then the engagements and skips."""
    lines = [f"{indent}policies:"]
    for result in evaluation.results:
        where = f" [{sources[result.policy]}]" if result.policy in sources else ""
        if result.matched:
            lines.append(f"{indent}  MATCH    {result.policy}{where}")
        else:
            lines.append(f"{indent}  no match {result.policy}{where}: {result.reason}")
    if evaluation.engagements:
        lines.append(f"{indent}{done}:")
        for e in evaluation.engagements:
            lines.append(f"{indent}  {e.department} as {e.as_} (policy {e.policy})")
            if e.as_ == "responder":
                lines.append(f"{indent}    message: {e.message}")
    else:
        lines.append(f"{indent}{done}: nothing")
    if evaluation.skipped:
        lines.append(f"{indent}skipped:")
        for s in evaluation.skipped:
            lines.append(f"{indent}  {s.department} as {s.as_} (policy {s.policy}): {s.reason}")
    return lines


def evaluation_json(
    facts: IncidentFacts, labels: set[str], evaluation: Evaluation
) -> dict[str, Any]:
    return {
        "incident": {
            "id": facts.id,
            "number": facts.number,
            "title": facts.title,
            "status": facts.status,
            "priority": facts.priority,
            "urgency": facts.urgency,
            "service": facts.service_name,
            "labels": sorted(labels),
        },
        "results": [asdict(r) for r in evaluation.results],
        "engagements": [_rename_as(asdict(e)) for e in evaluation.engagements],
        "skipped": [_rename_as(asdict(s)) for s in evaluation.skipped],
    }


def _rename_as(item: dict[str, Any]) -> dict[str, Any]:
    item["as"] = item.pop("as_")
    return item


@dataclass
class PolicyTally:
    """How often one policy matched, engaged and skipped over a replay."""

    matched: int = 0
    engaged: int = 0
    skipped: int = 0


def summary_table(tallies: dict[str, PolicyTally], incidents: int) -> list[str]:
    headers = ("policy", "matched", "engagements", "skipped")
    rows = [(name, str(t.matched), str(t.engaged), str(t.skipped)) for name, t in tallies.items()]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    out = [f"summary over {incidents} incident{'s' if incidents != 1 else ''}:", fmt(headers)]
    out.append(fmt(["-" * w for w in widths]))
    out.extend(fmt(r) for r in rows)
    return out
