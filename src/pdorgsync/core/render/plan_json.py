"""Plan and apply reports as JSON: the shape of SPEC §3 plus the API call count.

The plan keys are exactly SPEC §3's (``changes``, ``conflicts``, ``orphans``,
``summary``); ``api_calls`` is added last, as every report ends with it. Pure.
"""

from __future__ import annotations

import json

from pdorgsync.models.plan import ApplyReport, Plan


def render_plan_json(plan: Plan, *, api_calls: int) -> str:
    return json.dumps({**plan.to_report(), "api_calls": api_calls}, indent=2) + "\n"


def render_apply_json(report: ApplyReport) -> str:
    return json.dumps(report.to_report(), indent=2) + "\n"
