"""PagerDuty V3 webhook envelopes: ``{"event": {id, event_type, resource_type, ...}}``.

The receiver validates every verified delivery against these models before it is
stored, so the worker never meets a payload without an event id and type. The
models are deliberately lenient about *extra* keys (PagerDuty adds fields without
notice; a receiver that rejected them would make PagerDuty drop deliveries) and
strict about the few keys pdorgsync depends on.

Pure: no I/O. ``data`` stays a plain dict; policies read it through
``core.policies.IncidentFacts``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "HANDLED_EVENT_TYPES",
    "EnvelopeError",
    "EventAgent",
    "WebhookEnvelope",
    "WebhookEvent",
    "parse_envelope",
]

# Incident event types PagerDuty documents (CONTRACT §8). Anything else (service.*,
# pagey.ping, early-access types that appear later) is acknowledged and stored as
# ignored: answering 4xx would make PagerDuty drop the delivery and, after three,
# disable the subscription.
HANDLED_EVENT_TYPES = frozenset(
    {
        "incident.acknowledged",
        "incident.annotated",
        "incident.delegated",
        "incident.escalated",
        # Its ``data`` is the incident (PagerDuty developer docs, webhooks "Event
        # Types"); policies accept it in ``on`` (models/policy.py), so it must reach
        # the worker rather than be stored as ignored (issue 10 item 10).
        "incident.incident_type.changed",
        "incident.priority_updated",
        "incident.reassigned",
        "incident.reopened",
        "incident.resolved",
        "incident.responder.added",
        "incident.responder.replied",
        "incident.service_updated",
        "incident.triggered",
        "incident.unacknowledged",
    }
)


class EnvelopeError(ValueError):
    """The body is not JSON or not a V3 webhook envelope; the message says why."""


class _Lenient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


NotBlank = Annotated[str, AfterValidator(_not_blank)]


class _NotFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN, Infinity and -Infinity, which are not JSON (RFC 8259 §6).
    raise _NotFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise _NotFinite(f"number {text[:20]} is out of range")
    return value


class EventAgent(_Lenient):
    """Who caused the event: a user or service reference (``None`` for automation)."""

    id: str
    type: str
    summary: str | None = None


class WebhookEvent(_Lenient):
    id: NotBlank = Field(min_length=1, max_length=200)
    event_type: NotBlank = Field(min_length=1, max_length=200)
    resource_type: str = Field(default="", max_length=200)
    occurred_at: datetime | None = None
    agent: EventAgent | None = None
    client: dict[str, Any] | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def incident_id(self) -> str | None:
        """The incident this event is about, whatever the shape of ``data``."""
        if self.data.get("type") == "incident":
            value = self.data.get("id")
            return value if isinstance(value, str) and value else None
        incident = self.data.get("incident")
        if isinstance(incident, dict):
            value = incident.get("id")
            return value if isinstance(value, str) and value else None
        return None

    @property
    def is_handled_type(self) -> bool:
        return self.event_type in HANDLED_EVENT_TYPES


class WebhookEnvelope(_Lenient):
    event: WebhookEvent


def parse_envelope(raw: bytes | str | dict[str, Any]) -> WebhookEnvelope:
    """Parse a raw body (or an already decoded dict) into an envelope.

    Raises EnvelopeError with a one-line reason; never anything else.
    """
    data: Any = raw
    if isinstance(raw, bytes):
        # PagerDuty sends UTF-8 (CONTRACT §8). json.loads(bytes) would also accept
        # UTF-16/32 by sniffing a BOM, and the inbox stores the body as UTF-8 text:
        # decode strictly here so anything else is a clean 400, never a crash later.
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError("body is not UTF-8") from None
    if isinstance(raw, str):
        try:
            data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
        except _NotFinite as exc:
            raise EnvelopeError(f"body is not JSON: {exc}") from None
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise EnvelopeError(f"body is not JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise EnvelopeError("body is not a JSON object")
    try:
        return WebhookEnvelope.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise EnvelopeError(f"not a V3 webhook envelope: {where}: {first['msg']}") from None
    except RecursionError:
        raise EnvelopeError("body is nested too deeply") from None


def webhook_data(incident: dict[str, Any]) -> dict[str, Any]:
    """The V3 webhook ``data`` PagerDuty sends for a REST API incident object."""
    priority = incident.get("priority")
    return {
        "id": incident["id"],
        "type": "incident",
        "self": incident.get("self"),
        "html_url": incident.get("html_url"),
        "number": incident.get("incident_number"),
        "status": incident.get("status"),
        "incident_key": incident.get("incident_key"),
        "created_at": incident.get("created_at"),
        "title": incident.get("title"),
        "service": incident.get("service"),
        "assignees": [a.get("assignee") for a in incident.get("assignments", [])],
        "escalation_policy": incident.get("escalation_policy"),
        "teams": incident.get("teams", []),
        "priority": (
            {"id": priority["id"], "type": "priority_reference", "summary": priority.get("name")}
            if isinstance(priority, dict)
            else None
        ),
        "urgency": incident.get("urgency"),
        "conference_bridge": None,
        "resolve_reason": None,
    }
