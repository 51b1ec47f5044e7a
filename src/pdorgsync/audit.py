"""The coverage audit's shell: read what the rules need from PagerDuty, then run the pure
core (``core/coverage.py``) on it.

What it costs, and why it does not grow with the horizon:

* the base snapshot from ``observe`` (one paginated walk per collection; the user walk
  carries ``include[]=contact_methods&include[]=notification_rules``, so COV006/COV007
  need no per-user reads);
* one ``GET /schedules/{id}?since&until&time_zone`` per schedule that matters (each
  department's own and every schedule its escalation policy targets): PagerDuty renders
  the final schedule, layers and overrides included, for the whole horizon in one
  response (CONTRACT §6);
* ``GET /users/{id}/notification_rules`` (and ``/contact_methods``) only for a person
  who matters (point of contact or on call in the horizon) whose details the list did
  not carry in full.

It never writes to PagerDuty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pdorgsync.abilities import RESPONDERS, TEAMS, read_abilities
from pdorgsync.core import coverage, coverage_objects
from pdorgsync.core.coverage_objects import EngagementNeed
from pdorgsync.core.schedules import Shift
from pdorgsync.errors import NotFoundError, PermanentPagerDutyError
from pdorgsync.logs import get_logger
from pdorgsync.models import zones
from pdorgsync.models.audit import AuditReport
from pdorgsync.models.org import Org
from pdorgsync.models.snapshot import ContactMethod, NotificationRule, Snapshot, User
from pdorgsync.observe import observe

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

log = get_logger(__name__)

Progress = Callable[[str], None]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def parse_final_schedule(raw: Mapping[str, Any]) -> list[Shift]:
    """The ``final_schedule`` entries of a rendered schedule as shifts; entries without a
    user (nobody on call) are gaps, not shifts."""
    final = raw.get("final_schedule") or {}
    shifts: list[Shift] = []
    for entry in final.get("rendered_schedule_entries") or []:
        user = entry.get("user") or {}
        if not user.get("id") or not entry.get("start") or not entry.get("end"):
            continue
        start = datetime.fromisoformat(str(entry["start"]))
        end = datetime.fromisoformat(str(entry["end"]))
        if end > start:
            shifts.append(Shift(start, end, str(user["id"])))
    return shifts


def fetch_final_schedule(
    client: PagerDutyApi, schedule_id: str, time_zone: str, since: datetime, until: datetime
) -> list[Shift] | None:
    """One request: the schedule rendered over ``[since, until)``, clipped to it.

    None when the schedule vanished between the list and this read.
    """
    params: dict[str, Any] = {"since": _iso(since), "until": _iso(until), "overflow": False}
    # PagerDuty returns zones it refuses as input (`UTC`, terraform-provider-pagerduty
    # #1148): ask in the accepted name of the same zone, or let it render in its own.
    accepted = zones.accepted_equivalent(time_zone)
    if accepted is not None:
        params["time_zone"] = accepted
    try:
        body = client.get(f"/schedules/{schedule_id}", params)
    except NotFoundError:
        log.warning("audit.schedule_vanished", schedule_id=schedule_id)
        return None
    return parse_final_schedule(body.get("schedule") or {})


def parse_v3_final_schedule(raw: Mapping[str, Any]) -> list[Shift] | None:
    """The ``computed_shift_assignments`` of a v3 schedule's ``final_schedule`` as shifts;
    None when the answer has no final schedule (PagerDuty did not compute it)."""
    final = raw.get("final_schedule")
    if not isinstance(final, Mapping):
        return None
    shifts: list[Shift] = []
    for item in final.get("computed_shift_assignments") or []:
        member = item.get("member") or {}
        if member.get("type") != "user_member" or not member.get("user_id"):
            continue  # an empty slot is a gap
        start = datetime.fromisoformat(str(item["start_time"]))
        end = datetime.fromisoformat(str(item["end_time"]))
        if end > start:
            shifts.append(Shift(start, end, str(member["user_id"])))
    return shifts


def fetch_v3_final_schedule(
    client: PagerDutyApi, schedule_id: str, time_zone: str, since: datetime, until: datetime
) -> list[Shift] | None:
    """A shift-based schedule's computed on-call over ``[since, until)``
    (``GET /v3/schedules/{id}?include[]=final_schedule``, PagerDuty's OpenAPI
    description); None when PagerDuty does not give it (the audit reports COV009)."""
    params = {
        "since": _iso(since),
        "until": _iso(until),
        "time_zone": time_zone,
        "overflow": False,
        "include[]": ["final_schedule"],
    }
    try:
        body = client.get(f"/v3/schedules/{schedule_id}", params)
    except PermanentPagerDutyError as exc:
        log.warning("audit.v3_schedule_unreadable", schedule_id=schedule_id, error=str(exc))
        return None
    return parse_v3_final_schedule(body.get("schedule") or {})


def _notification_rules(client: PagerDutyApi, user_id: str) -> list[NotificationRule]:
    body = client.get(f"/users/{user_id}/notification_rules", {"urgency": "all"})
    return [
        NotificationRule(
            id=str(rule["id"]),
            urgency=str(rule.get("urgency") or "high"),
            start_delay_in_minutes=int(rule.get("start_delay_in_minutes") or 0),
            contact_method_id=(rule.get("contact_method") or {}).get("id"),
        )
        for rule in body.get("notification_rules") or []
    ]


def _contact_methods(client: PagerDutyApi, user_id: str) -> list[ContactMethod]:
    body = client.get(f"/users/{user_id}/contact_methods")
    return [
        ContactMethod(id=str(cm["id"]), type=str(cm["type"]), address=cm.get("address"))
        for cm in body.get("contact_methods") or []
    ]


def _complete_users(
    client: PagerDutyApi, snapshot: Snapshot, user_ids: Sequence[str], progress: Progress
) -> Snapshot:
    """Contact methods and notification rules of the people who matter, where the user
    list did not carry them in full (PagerDuty may answer ``include[]`` with references:
    a reference says a rule exists, not its urgency). One request per missing piece."""
    todo = [
        u
        for uid in user_ids
        if (u := snapshot.user_by_id(uid)) is not None
        and (u.contact_methods is None or u.notification_rules is None)
    ]
    if not todo:
        return snapshot
    progress(f"reading notification rules of {len(todo)} people on call or in charge")
    completed: dict[str, User] = {}
    for user in todo:
        update: dict[str, Any] = {}
        try:
            if user.notification_rules is None:
                update["notification_rules"] = _notification_rules(client, user.id)
            if user.contact_methods is None:
                update["contact_methods"] = _contact_methods(client, user.id)
        except NotFoundError:
            continue  # deleted since the list: the rules treat them as missing
        completed[user.id] = user.model_copy(update=update)
    users = [completed.get(u.id, u) for u in snapshot.users]
    return snapshot.model_copy(update={"users": users})


def run_audit(
    client: PagerDutyApi,
    org: Org,
    *,
    now: datetime,
    horizon_days: int = coverage.DEFAULT_HORIZON_DAYS,
    engagements: Iterable[EngagementNeed] = (),
    progress: Progress | None = None,
) -> AuditReport:
    """Observe what the audit needs and run every rule; ``now`` is injected."""
    say = progress or (lambda _msg: None)
    calls_before = client.total_calls
    abilities = read_abilities(client)
    snapshot = observe(
        client,
        None,
        user_details=True,
        now=now,
        progress=say,
        v3_for=org,
        with_teams=abilities.has(TEAMS),
    )
    since, until = coverage.horizon(now, horizon_days)
    wanted = coverage_objects.schedules_to_render(org, snapshot)
    if wanted:
        say(f"rendering {len(wanted)} schedules over {horizon_days} days")
    rendered: dict[str, list[Shift]] = {}
    for schedule_id, zone in wanted:
        found = snapshot.schedule_by_id(schedule_id)
        fetch = (
            fetch_v3_final_schedule
            if found is not None and found.type == "schedule_v3"
            else fetch_final_schedule
        )
        shifts = fetch(client, schedule_id, zone, since, until)
        if shifts is not None:
            rendered[schedule_id] = shifts
    people = coverage_objects.people_who_matter(org, snapshot, rendered)
    snapshot = _complete_users(client, snapshot, people, say)
    calls = client.total_calls - calls_before
    report = coverage.audit(
        org,
        snapshot,
        rendered,
        now=now,
        horizon_days=horizon_days,
        engagements=engagements,
        api_calls=calls,
        missing_abilities=abilities.missing((TEAMS, RESPONDERS)),
    )
    report = report.model_copy(update={"notices": abilities.notices()})
    log.info(
        "audit.done",
        departments=len(report.departments),
        findings=len(report.findings),
        api_calls=calls,
        **{f"findings_{k}": v for k, v in report.counts().items()},
    )
    return report
