"""Account roles vs team roles (issue 10, item 8; SPEC §1 "Account roles").

PagerDuty fixes the team role of some base roles: owner and admins are always team
managers, stakeholder seats (``read_only_user``, ``read_only_limited_user``) always
observers. The sandbox keeps the fixed role whatever a PUT asks; the planner
never drifts on it and refuses stakeholder seats where someone must be paged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pdorgsync.core.planning import plan
from pdorgsync.loading import load_org
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply
from pdorgsync.sandbox import Sandbox

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

ORG = """\
version: 1
org: acme
departments:
  - key: ops
    name: Ops
    function: engineering
    point_of_contact: {contact}
    members: [{members}]
    coverage: always
    schedule:
      layers:
        - name: Primary
          rotation: weekly
          start: "2026-01-05T09:00:00"
          users: [{layer}]
    escalation_policy:
      levels:
        - targets: [schedule, "user:{target}"]
  - key: finance
    name: Finance
    function: finance
    point_of_contact: ann@acme.test
    members: [ann@acme.test]
    coverage: none
"""

USERS = [
    {"name": "Ann", "email": "ann@acme.test", "role": "user"},
    {"name": "Bob", "email": "bob@acme.test", "role": "user"},
    {"name": "Ada Admin", "email": "ada@acme.test", "role": "admin"},
    {"name": "Olga Owner", "email": "olga@acme.test", "role": "owner"},
    {"name": "Stan Stakeholder", "email": "stan@acme.test", "role": "read_only_user"},
    {"name": "Lia Limited", "email": "lia@acme.test", "role": "read_only_limited_user"},
]


@pytest.fixture
def box(sandbox: Sandbox) -> Sandbox:
    sandbox.reset(json.loads(json.dumps({"users": USERS})))
    return sandbox


def _org(tmp_path: Path, **fields: str) -> Any:
    values = {
        "contact": "ann@acme.test",
        "members": "ann@acme.test, bob@acme.test",
        "layer": "ann@acme.test, bob@acme.test",
        "target": "bob@acme.test",
        **fields,
    }
    path = tmp_path / "org.yaml"
    path.write_text(ORG.format(**values))
    return load_org(path)


def _user(pd: PagerDutyClient, email: str) -> str:
    return str(next(u["id"] for u in pd.list_all("/users") if u["email"] == email))


@pytest.mark.parametrize(
    ("email", "fixed"),
    [
        ("ada@acme.test", "manager"),
        ("olga@acme.test", "manager"),
        ("stan@acme.test", "observer"),
        ("lia@acme.test", "observer"),
    ],
)
def test_sandbox_keeps_the_fixed_team_role(
    box: Sandbox, pd: PagerDutyClient, email: str, fixed: str
) -> None:
    """A PUT asking for another role leaves the role PagerDuty fixes for the base role."""
    team = pd.post("/teams", {"team": {"type": "team", "name": "T"}})["team"]
    pd.put(f"/teams/{team['id']}/users/{_user(pd, email)}", {"role": "responder"})
    [member] = pd.list_all(f"/teams/{team['id']}/members")
    assert member["role"] == fixed


def test_admins_and_owner_as_members_cause_no_permanent_drift(
    box: Sandbox, pd: PagerDutyClient, tmp_path: Path
) -> None:
    """Admin and owner listed as members: apply once, then the plan is clean."""
    loaded = _org(
        tmp_path,
        members="ann@acme.test, ada@acme.test, olga@acme.test",
        layer="ann@acme.test, ada@acme.test",
        target="olga@acme.test",
    )
    first = plan(loaded.org, observe(pd, loaded.org), now=NOW, locate=loaded.location)
    assert first.conflicts == []
    assert apply(pd, first).ok
    again = plan(loaded.org, observe(pd, loaded.org), now=NOW, locate=loaded.location)
    assert [(c.kind, c.name, c.diff) for c in again.changes] == []


@pytest.mark.parametrize(
    ("field", "value", "email", "line"),
    [
        ("members", "ann@acme.test, stan@acme.test", "stan@acme.test", 8),
        ("contact", "lia@acme.test", "lia@acme.test", 7),
        ("layer", "ann@acme.test, stan@acme.test", "stan@acme.test", 15),
        ("target", "lia@acme.test", "lia@acme.test", 18),
    ],
)
def test_stakeholder_seat_in_a_paged_position_is_a_located_conflict(
    box: Sandbox, pd: PagerDutyClient, tmp_path: Path, field: str, value: str, email: str, line: int
) -> None:
    """A stakeholder seat as member, contact, layer user or target blocks only its department."""
    loaded = _org(tmp_path, **{field: value})
    result = plan(loaded.org, observe(pd, loaded.org), now=NOW, locate=loaded.location)
    [conflict] = result.conflicts
    assert (conflict.kind, conflict.department, conflict.name) == ("user", "ops", email)
    assert "stakeholder seat" in conflict.reason
    assert conflict.location is not None
    assert conflict.location.split(":")[1] == str(line)
    assert {c.department for c in result.changes} == {"finance"}
