"""Property: a read-modify-write of a multi-layer schedule never changes which layer wins.

PagerDuty returns ``schedule_layers`` in the reverse of the order they were written (the
sandbox does too); ``observe`` normalises them to SPEC's order, lowest priority first,
and the planner writes in that order. For any stack of 2-3 overlapping layers, applied,
then read back and changed (one layer's users, or only the schedule's name) some days
later, with the write at a time that has seconds:

* the read side agrees with PagerDuty: rendering the observed layers gives the final
  schedule PagerDuty renders (so the observed order is the real priority order);
* the past is untouched: the final schedule before the change is what it was;
* from the change on, the final schedule is the file's layers in the file's order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdorgsync.core import schedules
from pdorgsync.core.planning import plan
from pdorgsync.core.planning_schedules import desired_layers, next_whole_minute
from pdorgsync.models.org import Org
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox
from tests.support.orgs import ops_org

PEOPLE = [
    "alex.rivera@acme.test",
    "blake.chen@acme.test",
    "casey.ng@acme.test",
    "sam.patel@acme.test",
]
APPLIED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # first apply
CHANGED = APPLIED + timedelta(days=3, hours=5, seconds=17)  # the read-modify-write
SCHEDULE = "Ops On-Call"

window = st.one_of(
    st.fixed_dictionaries(
        {"start": st.sampled_from(["00:00", "08:30", "18:00"]), "hours": st.integers(1, 20)}
    ),
    st.fixed_dictionaries(
        {
            "day": st.sampled_from(["mon", "wed", "sat"]),
            "start": st.sampled_from(["00:00", "09:00"]),
            "hours": st.integers(4, 100),
        }
    ),
)


@st.composite
def stacks(draw: st.DrawFn) -> list[dict[str, Any]]:
    layers = []
    for index in range(draw(st.integers(2, 3))):
        layers.append(
            {
                "name": f"Layer {index + 1}",
                "rotation": draw(st.sampled_from(["daily", "12h", "weekly", "8h"])),
                "start": draw(
                    st.sampled_from(
                        ["2026-02-23T09:00:00", "2026-03-01T00:00:00", "2026-03-03T17:30:00"]
                    )
                ),
                "users": draw(
                    st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=2, unique=True)
                ),
                # Layers above the first only cover part of the week, so lower ones show through.
                "restrictions": [] if index == 0 else [draw(window)],
            }
        )
    return layers


def org_of(layers: list[dict[str, Any]], zone: str, name: str = SCHEDULE) -> Org:
    return ops_org([PEOPLE[0]], layers, zone=zone, schedule_name=name)


def rendered(
    pd: PagerDutyClient, schedule_id: str, since: datetime, until: datetime
) -> list[tuple[datetime, datetime, str]]:
    """PagerDuty's final schedule over [since, until), as UTC (start, end, user id)."""
    body = pd.get(
        f"/schedules/{schedule_id}", {"since": since.isoformat(), "until": until.isoformat()}
    )
    return [
        (
            datetime.fromisoformat(e["start"]).astimezone(UTC),
            datetime.fromisoformat(e["end"]).astimezone(UTC),
            e["user"]["id"],
        )
        for e in body["schedule"]["final_schedule"]["rendered_schedule_entries"]
    ]


def ours(
    specs: list[schedules.LayerSpec], zone: str, since: datetime, until: datetime
) -> list[tuple[datetime, datetime, str]]:
    return [
        (s.start, s.end, s.user_id)
        for s in schedules.render_schedule(specs, [], ZoneInfo(zone), since, until)
    ]


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    layers=stacks(),
    zone=st.sampled_from(["Etc/UTC", "America/New_York", "Europe/Berlin"]),
    change=st.one_of(st.none(), st.tuples(st.integers(0, 2), st.sampled_from(PEOPLE))),
)
def test_read_modify_write_never_changes_which_layer_wins(
    layers: list[dict[str, Any]],
    zone: str,
    change: tuple[int, str] | None,
    empty_sandbox: Sandbox,
    empty_pd: PagerDutyClient,
    account_seed: dict[str, Any],
) -> None:
    """Past on-call is kept; the observed order is PagerDuty's priority; the file's order wins after a change."""
    empty_sandbox.reset({"users": json.loads(json.dumps(account_seed["users"]))})
    clock = [APPLIED]
    empty_sandbox.set_clock(lambda: clock[0])
    pd = empty_pd
    first = org_of(layers, zone)
    assert apply(pd, plan(first, observe(pd, first), now=APPLIED, impact=False)).ok
    clock[0] = CHANGED
    schedule_id = next(s["id"] for s in pd.list_all("/schedules") if s["name"] == SCHEDULE)
    future = next_whole_minute(CHANGED)
    past = rendered(pd, schedule_id, APPLIED, CHANGED.replace(second=0))

    snapshot = observe(pd, first, now=CHANGED)
    observed = next(s for s in snapshot.schedules if s.id == schedule_id)
    assert observed.layers is not None
    assert [la.name for la in observed.layers] == [la["name"] for la in layers]
    specs = [schedules.LayerSpec.from_snapshot(la) for la in observed.layers]
    until = future + timedelta(days=4)
    assert ours(specs, zone, future, until) == rendered(pd, schedule_id, future, until)

    if change is None:  # only the name: every open layer is read, then written back
        second = org_of(layers, zone, name=f"{SCHEDULE} (renamed)")
    else:
        index, person = change
        edited = [dict(la) for la in layers]
        target = edited[index % len(edited)]
        target["users"] = [person] if target["users"] != [person] else [PEOPLE[-1], person]
        second = org_of(edited, zone)
    report = apply(pd, plan(second, snapshot, now=CHANGED, impact=False))
    assert report.ok, [r.error for r in report.results if r.error]

    assert rendered(pd, schedule_id, APPLIED, CHANGED.replace(second=0)) == past
    dept = second.departments[0]
    user_ids = {u.email: u.id for u in snapshot.users}
    wanted = [schedules.LayerSpec.from_snapshot(la) for la in desired_layers(dept, zone, user_ids)]
    assert rendered(pd, schedule_id, future, until) == ours(wanted, zone, future, until)
