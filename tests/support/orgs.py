"""Small org files built in code, for tests that need one department and nothing else."""

from __future__ import annotations

from typing import Any

from pdorgsync.models.org import Org


def ops_org(
    members: list[str],
    layers: list[dict[str, Any]],
    *,
    zone: str | None = None,
    schedule_name: str | None = None,
) -> Org:
    """Acme with one department, Ops (``ops``): these members and a schedule of these
    layers, in ``zone`` and named ``schedule_name`` where given (else the defaults)."""
    schedule: dict[str, Any] = {"layers": layers}
    if schedule_name is not None:
        schedule["name"] = schedule_name
    department: dict[str, Any] = {"key": "ops", "name": "Ops", "members": members}
    if zone is not None:
        department["time_zone"] = zone
    department["schedule"] = schedule
    return Org.model_validate({"version": 1, "org": "acme", "departments": [department]})
