"""A small account for the audit tests: Finance, covered Monday to Thursday only.

``SMALL_SEED`` is the sandbox seed (Fridays are a gap, George is low-urgency only) and
``SMALL_ORG`` the org file that describes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pdorgsync.models.org import Org

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 02:00 in Chicago
MARK = "Managed by pdorgsync (org=acme, department={})"


def _user(name: str, email: str, urgencies: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "email": email,
        "contact_methods": [{"type": "email_contact_method", "address": email, "label": "Work"}],
        "notification_rules": [{"contact_method": "work", "urgency": u} for u in urgencies],
    }


def weekdays(days: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "type": "weekly_restriction",
            "start_day_of_week": d,
            "start_time_of_day": "09:00:00",
            "duration_seconds": 8 * 3600,
        }
        for d in days
    ]


SMALL_SEED: dict[str, Any] = {
    "users": [
        _user("Fiona Grant", "fiona.grant@acme.test", ["high"]),
        _user("George Adams", "george.adams@acme.test", ["low"]),
        _user("Ivan Petrov", "ivan.petrov@acme.test", ["high"]),
    ],
    "teams": [{"name": "Finance", "description": "Finance\n\n" + MARK.format("finance")}],
    "schedules": [
        {
            "name": "Finance On-Call",
            "description": "Finance\n\n" + MARK.format("finance"),
            "time_zone": "America/Chicago",
            "layers": [
                {
                    "name": "Primary",
                    "start": "2026-01-05T09:00:00-06:00",
                    "rotation_turn_length_seconds": 604800,
                    "users": ["fiona.grant@acme.test", "george.adams@acme.test"],
                    "restrictions": weekdays([1, 2, 3, 4]),  # Mon-Thu: Fridays are a gap
                }
            ],
        }
    ],
    "escalation_policies": [
        {
            "name": "Finance Escalation",
            "description": "Finance\n\n" + MARK.format("finance"),
            "team": "Finance",
            "rules": [
                {"delay_minutes": 30, "targets": ["schedule:Finance On-Call"]},
                {"targets": ["user:fiona.grant@acme.test"]},
            ],
        }
    ],
    "services": [
        {
            "name": "Finance Operations",
            "description": "Billing\n\n" + MARK.format("finance"),
            "escalation_policy": "Finance Escalation",
        }
    ],
}

SMALL_ORG = Org.model_validate(
    {
        "version": 1,
        "org": "acme",
        "departments": [
            {
                "key": "finance",
                "name": "Finance",
                "function": "finance",
                "point_of_contact": "fiona.grant@acme.test",
                "members": ["fiona.grant@acme.test", "george.adams@acme.test"],
                "coverage": "business_hours",
                "time_zone": "America/Chicago",
                "service": {"name": "Finance Operations"},
            }
        ],
    }
)
