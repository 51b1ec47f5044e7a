"""Property: any observed account -> imported org model -> plan has no change but adoption.

Accounts are generated at the model level (``Snapshot``), with the mess real
accounts have: schedules, escalation policies and services of no team, second
schedules of a team, ended and ending layers, targets into other teams'
schedules, support-hours urgencies, names YAML would misread. Whatever of it
the import leaves out, what it keeps must plan as ``adopt`` only, with nobody's
on-call time changing; and the YAML text must load back to the very same model.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdorgsync.core.importing import import_account
from pdorgsync.core.intervals import local_to_utc
from pdorgsync.core.planning import plan
from pdorgsync.importer import render_yaml
from pdorgsync.loading import load_org
from pdorgsync.models import snapshot as snap
from pdorgsync.models.org import managed_description, parse_marker
from pdorgsync.models.org_checks import check_org

ZONES = ["Etc/UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide"]
USERS = [snap.User(id=f"PU{i}", name=f"User {i}", email=f"user{i}@acme.test") for i in range(6)]
TEAM_NAMES = ["Platform", "Customer Support", "Finance", "R&D", "Sales: EMEA", "yes", "Ops  Team"]
TURNS = [3600, 8 * 3600, 12 * 3600, 86400, 2 * 86400, 604800, 2 * 604800]


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n:05d}"


restrictions = st.lists(
    st.one_of(
        st.builds(
            lambda h, m, q: snap.Restriction(
                type="daily_restriction",
                start_time_of_day=f"{h:02d}:{m:02d}:00",
                duration_seconds=q * 900,
            ),
            st.integers(0, 23),
            st.sampled_from([0, 30]),
            st.integers(1, 95),
        ),
        st.builds(
            lambda d, h, q: snap.Restriction(
                type="weekly_restriction",
                start_time_of_day=f"{h:02d}:00:00",
                duration_seconds=q * 3600,
                start_day_of_week=d,
            ),
            st.integers(1, 7),
            st.integers(0, 23),
            st.integers(1, 167),
        ),
    ),
    max_size=3,
)


@st.composite
def layers(draw: st.DrawFn, zone: str, now: datetime, ids: _Ids) -> list[snap.ScheduleLayer]:
    names = draw(
        st.lists(
            st.sampled_from(["Primary", "Secondary", "Weekend", "Layer 1"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    out = []
    for name in names:
        wall = draw(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1)))
        tz = ZoneInfo(zone)
        anchor = local_to_utc(wall.replace(second=0, microsecond=0), tz).astimezone(tz)
        end_kind = draw(st.sampled_from(["open", "open", "open", "ended", "ending"]))
        end = None
        if end_kind == "ended":
            end = now - timedelta(days=draw(st.integers(1, 60)))
        elif end_kind == "ending":
            end = now + timedelta(days=draw(st.integers(1, 60)))
        start = min(anchor, end - timedelta(days=1)) if end is not None else anchor
        out.append(
            snap.ScheduleLayer(
                id=ids("PL"),
                name=name,
                start=start,
                end=end,
                rotation_virtual_start=anchor,
                rotation_turn_length_seconds=draw(st.sampled_from(TURNS)),
                user_ids=draw(
                    st.lists(
                        st.sampled_from([u.id for u in USERS]), min_size=1, max_size=3, unique=True
                    )
                ),
                restrictions=draw(restrictions),
            )
        )
    return out


# None, or already managed: by this org for department a or r-d, or by another org
descriptions = st.sampled_from(
    [
        None,
        None,
        None,
        "Alerts\n\nManaged by pdorgsync (org=acme, department=a)",
        "Managed by pdorgsync (org=acme, department=r-d)",
        "x\n\nManaged by pdorgsync (org=beta, department=a)",
    ]
)


@st.composite
def accounts(draw: st.DrawFn) -> tuple[snap.Snapshot, datetime]:
    ids = _Ids()
    now = draw(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31))
    ).replace(second=0, microsecond=0, tzinfo=UTC)
    team_names = draw(st.lists(st.sampled_from(TEAM_NAMES), min_size=1, max_size=4, unique=True))
    teams: list[snap.Team] = []
    for name in team_names:
        members = draw(st.lists(st.sampled_from(USERS), max_size=4, unique=True))
        manager = draw(st.integers(-1, len(members) - 1)) if members else -1
        teams.append(
            snap.Team(
                id=ids("PT"),
                name=name,
                description=draw(
                    st.sampled_from(
                        [
                            None,
                            "",
                            "The team",
                            # already managed by this org (as pdorgsync writes it), or by another
                            managed_description(
                                name, "Managed by pdorgsync (org=acme, department=a)"
                            ),
                            managed_description(
                                name, "Managed by pdorgsync (org=acme, department=r-d)"
                            ),
                            managed_description(
                                name, "Managed by pdorgsync (org=beta, department=a)"
                            ),
                        ]
                    )
                ),
                members=[
                    snap.TeamMember(user_id=u.id, role="manager" if i == manager else "responder")
                    for i, u in enumerate(members)
                ],
            )
        )
    schedules: list[snap.Schedule] = []
    # [] = an object of no team; a schedule may also belong to two teams (a policy may not)
    owners: list[list[str]] = [[t.id] for t in teams] + [[]]
    schedule_owners = [*owners, [t.id for t in teams[:2]]]
    for n in range(draw(st.integers(0, 5))):
        zone = draw(st.sampled_from(ZONES))
        schedules.append(
            snap.Schedule(
                id=ids("PS"),
                name=draw(st.sampled_from(["{} On-Call", "Rota {}", "Shared"])).format(n),
                description=draw(descriptions),
                time_zone=zone,
                team_ids=draw(st.sampled_from(schedule_owners)),
                layers=draw(layers(zone, now, ids)),
            )
        )
    targets = st.one_of(
        st.sampled_from([snap.Ref(id=u.id, type="user_reference") for u in USERS]),
        *(
            [st.sampled_from([snap.Ref(id=s.id, type="schedule_reference") for s in schedules])]
            if schedules
            else []
        ),
    )
    eps: list[snap.EscalationPolicy] = []
    for n in range(draw(st.integers(0, 4))):
        rules = [
            snap.EscalationRule(
                escalation_delay_in_minutes=draw(st.integers(0, 60)),
                targets=draw(st.lists(targets, min_size=1, max_size=3, unique=True)),
            )
            for _ in range(draw(st.integers(1, 3)))
        ]
        eps.append(
            snap.EscalationPolicy(
                id=ids("PE"),
                name=f"Policy {n}",
                description=draw(descriptions),
                num_loops=draw(st.integers(0, 3)),
                rules=rules,
                team_ids=draw(st.sampled_from(owners)),
            )
        )
    services = [
        snap.Service(
            id=ids("PV"),
            name=draw(st.sampled_from(["Checkout", "Payroll", "API", "yes", "R&D"])) + f" {n}",
            description=draw(
                st.one_of(st.sampled_from(["Takes payments", "two\nlines"]), descriptions)
            ),
            escalation_policy_id=draw(st.sampled_from([e.id for e in eps])),
            urgency=draw(st.sampled_from(["high", "low", "severity_based", None])),
        )
        for n in range(draw(st.integers(0, 4)) if eps else 0)
    ]
    snapshot = snap.Snapshot(
        users=USERS, teams=teams, schedules=schedules, escalation_policies=eps, services=services
    )
    return snapshot, now


def _fields(diff: dict[str, Any]) -> set[str]:
    return set(diff)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accounts())
def test_import_then_plan_only_adopts(account: tuple[snap.Snapshot, datetime]) -> None:
    """Whatever the account, the imported file is valid and plans as adoption only."""
    snapshot, now = account
    imported = import_account(snapshot, org_id="acme", now=now)
    org = imported.org()
    assert check_org(org) == []
    result = plan(org, snapshot, now=now)
    assert result.conflicts == []
    for change in result.changes:
        # Adoption, or the description of an object pdorgsync already manages (the file
        # says no more than the department's name for it): never anything else.
        assert change.action == "adopt" or (change.action == "update" and change.id), change
        assert _fields(change.diff) <= {"description"}, change
    for impact in result.impacts:
        assert impact.before == impact.after, impact.department
    adopts = {(c.kind, c.department) for c in result.changes if c.action == "adopt"}
    objects: dict[
        str,
        list[snap.Team] | list[snap.Schedule] | list[snap.EscalationPolicy] | list[snap.Service],
    ] = {
        "team": snapshot.teams,
        "schedule": snapshot.schedules,
        "escalation_policy": snapshot.escalation_policies,
        "service": snapshot.services,
    }
    defaults = {"schedule": "{} On-Call", "escalation_policy": "{} Escalation", "service": "{}"}
    for d in imported.data["departments"]:  # each object of the file: managed, or adopted
        names = {"team": d["name"]}
        for block, default in defaults.items():
            if block in d:
                names[block] = d[block].get("name") or default.format(d["name"])
        for kind, name in names.items():
            (obj,) = [o for o in objects[kind] if o.name == name]
            managed = parse_marker(obj.description) == ("acme", d["key"])
            assert managed != ((kind, d["key"]) in adopts), (kind, name)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(accounts())
def test_yaml_loads_back_to_the_same_model(
    tmp_path: Path, account: tuple[snap.Snapshot, datetime]
) -> None:
    """The YAML (comments, quoting, odd names) loads as the same model; list order never matters."""
    snapshot, now = account
    imported = import_account(snapshot, org_id="acme", now=now)
    text = render_yaml(imported)
    shuffled = snapshot.model_copy(
        update={
            kind: list(reversed(getattr(snapshot, kind)))
            for kind in ("users", "teams", "schedules", "escalation_policies", "services")
        }
    )
    assert render_yaml(import_account(shuffled, org_id="acme", now=now)) == text
    path = tmp_path / "org.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_org(path).org == imported.org()
