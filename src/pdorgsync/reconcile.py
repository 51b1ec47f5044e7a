"""Apply a Plan: send exactly the requests the plan value holds, in its order.

There is no separate dry-run path: ``pdorgsync plan`` renders the same value this
module executes, so what a reviewer approved is what is sent. The only things
decided here are the ones that cannot be known when planning:

* **ids of created objects**: a change's request may hold ``{{kind:department}}``
  placeholders; they are filled with the id PagerDuty returned for that change.
  A change whose placeholder has no id (its creator failed) is skipped.
* **failure isolation**: once a change of a department fails, that department's
  remaining changes are skipped (they depend on each other); other departments go on.
* **unknown outcomes**: a POST that timed out may have created the object.
  Before sending it again the account is looked up (by marker and name), so
  nothing is created twice (CONTRACT §9; errors.OutcomeUnknownError). PagerDuty's
  lists lag behind a create for a short while (terraform-provider-pagerduty #273,
  #1069), so the look-up is repeated with backoff (bounded, logged) before the
  object is taken to be missing.
* **refused deletes**: PagerDuty refuses to delete a schedule or policy that an open
  incident still references (CONTRACT §9.3); the report names those incidents.

Never builds requests of its own beyond those lookups: everything that changes
PagerDuty is in the plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import tenacity

from pdorgsync.abilities import TEAMS, read_abilities
from pdorgsync.core.planning import plan as build_plan
from pdorgsync.errors import (
    NotFoundError,
    OutcomeUnknownError,
    PagerDutyError,
    PermanentPagerDutyError,
)
from pdorgsync.loading import LoadedOrg
from pdorgsync.logs import get_logger
from pdorgsync.models.plan import (
    PLACEHOLDER_RE,
    ApplyReport,
    Change,
    ChangeResult,
    Plan,
    Request,
)
from pdorgsync.observe import find_existing, observe

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

log = get_logger(__name__)

Progress = Callable[[str], None]

# How often the look-up after an unknown outcome is tried before the object counts
# as not created, and the cap of the exponential wait between tries (1, 2, 4, 8 s:
# about 15 s in all, longer than the list lag PagerDuty users report).
SETTLE_ATTEMPTS = 5
SETTLE_MAX_WAIT = 8.0


class _Unresolved(Exception):
    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


def _fill(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with every ``{{kind:department}}`` replaced by the id apply learned."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref not in ids:
                raise _Unresolved(ref)
            return ids[ref]

        return PLACEHOLDER_RE.sub(one, value)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def plan_account(
    client: PagerDutyApi,
    loaded: LoadedOrg,
    *,
    now: datetime,
    prune: bool = False,
    at_next_handoff: bool = False,
    impact: bool = True,
    progress: Progress | None = None,
) -> Plan:
    """Observe the account in bulk and plan: the one way every caller builds a plan
    (``plan``/``apply`` commands, the daemon's reconcile loop, the demo).

    Reads ``GET /abilities`` first (once per plan): an account without the plan-gated
    "teams" ability gets a plan without teams, and the plan's ``notices`` say so.
    """
    abilities = read_abilities(client)
    teams = abilities.has(TEAMS)
    snapshot = observe(client, loaded.org, now=now, progress=progress, with_teams=teams)
    result = build_plan(
        loaded.org,
        snapshot,
        now=now,
        prune=prune,
        at_next_handoff=at_next_handoff,
        locate=loaded.location,
        impact=impact,
        teams=teams,
    )
    return result.model_copy(update={"notices": abilities.notices((TEAMS,))})


def apply(client: PagerDutyApi, plan: Plan, *, progress: Progress | None = None) -> ApplyReport:
    """Execute ``plan`` against PagerDuty and report every change's outcome."""
    say = progress or (lambda _msg: None)
    ids: dict[str, str] = {
        c.ref: c.id for c in plan.changes if c.id and c.kind != "team_membership"
    }
    failed_departments: dict[str, str] = {}
    results: list[ChangeResult] = []
    total = len(plan.changes)
    for number, change in enumerate(plan.changes, 1):
        say(
            f"[{number}/{total}] {change.action} {change.kind} {change.name!r} ({change.department})"
        )
        if change.action == "skip":  # nothing to send: the plan says why
            results.append(ChangeResult(change=change, outcome="skipped", error=change.reason))
            continue
        if change.department in failed_departments:
            reason = f"skipped: {failed_departments[change.department]} failed earlier"
            results.append(ChangeResult(change=change, outcome="skipped", error=reason))
            continue
        try:
            requests = [
                Request(method=r.method, path=_fill(r.path, ids), body=_fill(r.body, ids))
                for r in change.requests
            ]
        except _Unresolved as exc:
            reason = f"skipped: it needs {exc.ref.replace(':', ' of ')}, which was not created"
            results.append(ChangeResult(change=change, outcome="skipped", error=reason))
            failed_departments.setdefault(change.department, f"{change.kind} {change.name!r}")
            continue
        try:
            object_id = _execute(client, change, requests)
        except PagerDutyError as exc:
            error = _explain(client, change, exc)
            log.warning("reconcile.change_failed", **_log_fields(change), error=error)
            results.append(ChangeResult(change=change, outcome="failed", error=error))
            failed_departments.setdefault(change.department, f"{change.kind} {change.name!r}")
            continue
        if object_id and change.kind != "team_membership":
            ids[change.ref] = object_id
        log.info("reconcile.change_applied", **_log_fields(change), id=object_id)
        results.append(ChangeResult(change=change, outcome="applied", id=object_id))
    return ApplyReport(
        org=plan.org, results=results, conflicts=plan.conflicts, api_calls=client.total_calls
    )


def _log_fields(change: Change) -> dict[str, str]:
    """What every ``reconcile.change_*`` event says about its change."""
    return {
        "action": change.action,
        "kind": change.kind,
        "department": change.department,
        "name": change.name,
    }


def _execute(client: PagerDutyApi, change: Change, requests: list[Request]) -> str | None:
    object_id = change.id
    for request in requests:
        body = request.body if isinstance(request.body, dict) else None
        if request.method == "POST":
            response = _post_once(client, change, request.path, body or {})
        elif request.method == "PUT":
            response = client.put(request.path, body)
        else:
            try:
                response = client.delete(request.path)
            except NotFoundError:
                response = {}  # already gone: the goal of a delete is met
        found = response.get(change.kind) if isinstance(response, dict) else None
        if isinstance(found, dict) and found.get("id"):
            object_id = str(found["id"])
    return object_id


def _post_once(
    client: PagerDutyApi, change: Change, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST, and after an unknown outcome look before sending again: never create twice."""
    try:
        return client.post(path, body)
    except OutcomeUnknownError as exc:
        log.warning("reconcile.outcome_unknown", kind=change.kind, name=change.name, error=str(exc))
        existing = _settled_lookup(client, change)
        if existing is not None:
            log.info("reconcile.outcome_found", kind=change.kind, name=change.name, id=existing)
            return {change.kind: {"id": existing}}
        return client.post(path, body)


def _settled_lookup(client: PagerDutyApi, change: Change) -> str | None:
    """``find_existing``, repeated with backoff while lists may still lag behind a create."""

    def waiting(state: tenacity.RetryCallState) -> None:
        log.warning(
            "reconcile.lookup_waiting",
            kind=change.kind,
            name=change.name,
            attempt=state.attempt_number,
            max_attempts=SETTLE_ATTEMPTS,
            wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(SETTLE_ATTEMPTS),
        wait=tenacity.wait_exponential(multiplier=1, max=SETTLE_MAX_WAIT),
        retry=tenacity.retry_if_result(lambda found: found is None),
        sleep=client.sleep,
        before_sleep=waiting,
        retry_error_callback=lambda _state: None,
    )
    found: str | None = retrying(find_existing, client, change.kind, change.name, change.marker)
    return found


def _explain(client: PagerDutyApi, change: Change, exc: PagerDutyError) -> str:
    """The error as a user should read it; names open incidents that block a delete."""
    text = str(exc)
    if (
        change.action != "delete"
        or not change.blocked_by_incidents_of
        or not isinstance(exc, PermanentPagerDutyError)
    ):
        return text
    try:
        # Without date_range=all PagerDuty lists only incidents created in the last
        # 30 days (its since/until defaults), so an older open incident that blocks
        # the delete would go unnamed (OpenAPI ``listIncidents``, parameter date_range).
        incidents = client.list_all(
            "/incidents",
            {"statuses[]": ["triggered", "acknowledged"], "date_range": "all", "limit": 100},
        )
    except PagerDutyError:
        return text
    blocking = [
        i
        for i in incidents
        if (i.get("escalation_policy") or {}).get("id") in change.blocked_by_incidents_of
    ]
    if not blocking:
        return text
    named = ", ".join(
        f"#{i.get('incident_number', '?')} {i.get('title') or i.get('summary') or ''} ({i['id']})".replace(
            " ()", ""
        )
        for i in blocking
    )
    return f"{text}; blocked by open incident(s) {named}: resolve them, then run apply again"
