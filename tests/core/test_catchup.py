"""core.catchup: the event types a polled incident stands for (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from pdorgsync.core.catchup import missed_event_types
from pdorgsync.core.policies import IncidentFacts

BASELINE = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class _Handled:
    status: str
    priority: str | None
    service_id: str | None


def _facts(
    status: str = "triggered",
    priority: str | None = "P1",
    service: str | None = "S1",
    created: datetime = BASELINE + timedelta(minutes=5),
) -> IncidentFacts:
    return IncidentFacts(
        id="Q1",
        number=1,
        title="Checkout down",
        html_url=None,
        status=status,
        priority=priority,
        urgency="high",
        service_id=service,
        service_name="Checkout API",
        created_at=created,
    )


@pytest.mark.parametrize(
    ("facts", "handled", "expected"),
    [
        (_facts(), None, ("incident.triggered",)),
        (_facts(created=BASELINE - timedelta(hours=1)), None, ("incident.reopened",)),
        (_facts(), _Handled("triggered", "P1", "S1"), ()),
        (_facts(priority="P1"), _Handled("triggered", "P3", "S1"), ("incident.priority_updated",)),
        (_facts(priority=None), _Handled("triggered", "P3", "S1"), ("incident.priority_updated",)),
        (_facts(service="S2"), _Handled("triggered", "P1", "S1"), ("incident.service_updated",)),
        (_facts("acknowledged"), _Handled("triggered", "P1", "S1"), ("incident.acknowledged",)),
        (_facts("triggered"), _Handled("acknowledged", "P1", "S1"), ("incident.unacknowledged",)),
        (_facts(), _Handled("resolved", "P1", "S1"), ("incident.reopened",)),
        (
            _facts(priority="P1"),
            _Handled("resolved", "P2", "S1"),
            ("incident.reopened", "incident.priority_updated"),
        ),
        (
            _facts("acknowledged", priority="P1", service="S2"),
            _Handled("triggered", "P3", "S1"),
            ("incident.acknowledged", "incident.service_updated", "incident.priority_updated"),
        ),
        (_facts("resolved"), None, ()),
    ],
)
def test_missed_event_types(
    facts: IncidentFacts, handled: _Handled | None, expected: tuple[str, ...]
) -> None:
    """Each difference from the handled state is the event PagerDuty would have sent."""
    assert missed_event_types(facts, handled, baseline_at=BASELINE) == expected
