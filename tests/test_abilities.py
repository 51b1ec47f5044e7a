"""Plan-gated features (issue 10, item 12): read ``GET /abilities`` once, say so, degrade.

The sandbox answers 402 (code 2014) on gated calls when its seeded abilities lack
the feature, as PagerDuty does; plan, audit and the worker must not fail on it.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from pdorgsync.audit import run_audit
from pdorgsync.cli import main
from pdorgsync.core.policies import Engagement
from pdorgsync.engagements import Engager
from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.loading import LoadedOrg, load_org
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply, plan_account
from pdorgsync.sandbox import Sandbox
from pdorgsync.state.sqlite import Inbox
from tests.support.engagement import BOT_EMAIL, applied_seed, create_incident, org_and_policies
from tests.support.plans import request_body

ROOT = Path(__file__).resolve().parents[1]
NO_TEAMS = ["urgencies", "coordinated_responding", "status_update_subscribers"]


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def loaded() -> LoadedOrg:
    return load_org(ROOT / "examples" / "org.yaml")


@pytest.fixture
def no_teams(empty_sandbox: Sandbox) -> Sandbox:
    empty_sandbox.state.abilities = list(NO_TEAMS)
    return empty_sandbox


def test_sandbox_refuses_gated_calls_with_402(no_teams: Sandbox, empty_pd: PagerDutyClient) -> None:
    """Without 'teams': creating a team or giving a policy a team is a 402, code 2014."""
    assert set(empty_pd.get("/abilities")["abilities"]) == set(NO_TEAMS)
    with pytest.raises(PermanentPagerDutyError) as refused:
        empty_pd.post("/teams", {"team": {"type": "team", "name": "T"}})
    assert (refused.value.status, refused.value.code) == (402, 2014)
    with pytest.raises(PermanentPagerDutyError) as listing:
        empty_pd.list_all("/teams")
    assert listing.value.status == 402


def test_plan_without_teams_ability_applies_cleanly(
    no_teams: Sandbox, empty_pd: PagerDutyClient, loaded: LoadedOrg
) -> None:
    """No teams, no memberships, policies without a team; it says so; apply hits no 402."""
    result = plan_account(empty_pd, loaded, now=_now(), impact=False)
    assert {c.kind for c in result.changes} == {"schedule", "escalation_policy", "service"}
    eps = [c for c in result.changes if c.kind == "escalation_policy"]
    assert eps
    assert all("teams" not in request_body(c)["escalation_policy"] for c in eps)
    [notice] = result.notices
    assert "no 'teams' ability" in notice
    report = apply(empty_pd, result)
    assert report.ok, [r.error for r in report.results if r.error]
    assert 402 not in {status for _m, _p, status in no_teams.requests}
    again = plan_account(empty_pd, loaded, now=_now(), impact=False)
    assert not again.has_changes


def test_plan_cli_says_it_once_on_stderr(
    no_teams: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pdorgsync plan` names the missing ability once, in words, on stderr."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PDORGSYNC_API_TOKEN", raising=False)
    monkeypatch.setenv("PDORGSYNC_API_URL", str(no_teams.base_url))
    shutil.copy(ROOT / "examples" / "org.yaml", tmp_path / "org.yaml")
    result = CliRunner().invoke(main, ["plan"])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("no 'teams' ability") == 1
    assert "no 'teams' ability" not in result.stdout


def test_import_without_teams_ability_says_why_in_one_line(
    no_teams: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pdorgsync import` on an account without teams: one plain line, exit 1, no file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PDORGSYNC_API_TOKEN", raising=False)
    monkeypatch.setenv("PDORGSYNC_API_URL", str(no_teams.base_url))
    result = CliRunner().invoke(main, ["import", "--output", "org.yaml"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "no teams" in errors[0]
    assert "402" not in errors[0]
    assert not (tmp_path / "org.yaml").exists()
    assert ("GET", "/teams", 402) not in no_teams.requests


def test_audit_without_teams_ability_runs_and_says_so(
    no_teams: Sandbox, empty_pd: PagerDutyClient, loaded: LoadedOrg
) -> None:
    """No /teams read (402); subscriber engagements are COV010 info (skipped), not COV008."""
    from pdorgsync.core.coverage import engagements_from_policies

    _, policies = org_and_policies()
    needs = engagements_from_policies(policies)
    report = run_audit(empty_pd, loaded.org, now=_now(), engagements=needs)
    assert any("no 'teams' ability" in n for n in report.notices)
    assert ("GET", "/teams") not in empty_pd.calls
    skipped = [f for f in report.findings if f.rule == "COV010"]
    subscribers = {n.department for n in needs if n.as_ == "subscriber"}
    assert {f.department for f in skipped} == subscribers
    assert all(f.severity == "info" and "skipped" in f.message for f in skipped)
    assert not [
        f for f in report.findings if f.rule == "COV008" and f.details.get("problem") == "no_team"
    ]


def _engage(
    engager: Engager, incident_id: str, dept: str, as_: Literal["responder", "subscriber"]
) -> Any:
    return engager.engage(
        incident_id, Engagement(department=dept, as_=as_, policy="p", message="m"), event_id=None
    )


def test_worker_skips_what_the_plan_lacks_and_says_it_once(
    sandbox: Sandbox, pd: PagerDutyClient, inbox: Inbox
) -> None:
    """No coordinated_responding; subscribe answers 402: both skipped with the reason, said once."""
    seed = applied_seed()
    seed["abilities"] = ["teams", "urgencies"]
    sandbox.reset(json.loads(json.dumps(seed)))
    org, _ = org_and_policies()
    engager = Engager(inbox=inbox, client=pd, org=org, from_email=BOT_EMAIL, incident_notes=False)
    incident = create_incident(pd, "Checkout down")
    with capture_logs() as logs:
        first = _engage(engager, incident["id"], "support", "responder")
        second = _engage(engager, incident["id"], "engineering", "responder")
        sub1 = _engage(engager, incident["id"], "executive", "subscriber")
        posts = sum(
            1 for m, p, _s in sandbox.requests if m == "POST" and p.endswith("/subscribers")
        )
        sub2 = _engage(engager, incident["id"], "finance", "subscriber")
    assert (first.outcome, second.outcome, sub1.outcome, sub2.outcome) == ("skipped",) * 4
    assert "coordinated_responding" in first.detail
    assert "402" in sub1.detail
    assert posts == 1
    assert (
        sum(1 for m, p, _s in sandbox.requests if m == "POST" and p.endswith("/subscribers")) == 1
    )
    said = [e["notice"] for e in logs if e["event"] == "abilities.missing"]
    assert len(said) == 2  # once per missing feature, not once per engagement
    assert not inbox.has_engagement(incident["id"], "support", "responder")


def test_daemon_reconcile_cycle_says_it_once_not_every_cycle(
    no_teams: Sandbox, tmp_path: Path
) -> None:
    """Two reconcile cycles on an account without 'teams': no failure, one warning in all."""
    from pdorgsync.daemon import Daemon
    from pdorgsync.service import make_cycle
    from pdorgsync.settings import load_settings

    settings = load_settings(
        api_url=str(no_teams.base_url),
        from_email=BOT_EMAIL,
        org_file=ROOT / "examples" / "org.yaml",
        policy_dir=ROOT / "policies",
        state_path=tmp_path / "state.db",
        webhook_secrets="s3cret",
        listen="127.0.0.1:0",
    )
    daemon = Daemon(settings, make_worker=lambda _d: _Idle(), make_cycle=lambda _d: lambda _f: None)
    try:
        cycle = make_cycle(daemon)
        with capture_logs() as logs:
            cycle(daemon.files())
            cycle(daemon.files())
    finally:
        daemon.inbox.close()
    said = [e for e in logs if e["event"] == "abilities.missing"]
    assert len(said) == 1
    assert "no 'teams' ability" in said[0]["notice"]
    assert 402 not in {status for _m, _p, status in no_teams.requests}


class _Idle:
    def update_config(self, org: Any, policies: Any) -> None:
        pass

    def run(self, stop: Any) -> None:  # pragma: no cover - not started here
        stop.wait()
