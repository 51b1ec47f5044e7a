"""``pdorgsync demo``: the whole product in a minute, on the embedded sandbox.

It starts the sandbox seeded from ``examples/``, imports the seeded account into
an org file (read-only) and plans it back, then runs plan → apply → plan →
audit with the same functions the commands use, then starts the daemon on a
free port, sends it two signed V3 webhooks, waits for the engagements and
explains them. Everything it starts, it stops; nothing outside the output
folder is written.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdorgsync.audit import run_audit
from pdorgsync.core.coverage import engagements_from_policies
from pdorgsync.core.render.audit_html import render_audit_html
from pdorgsync.core.render.audit_text import summary_line as audit_summary_line
from pdorgsync.core.render.plan_text import render_plan_text, summary_line
from pdorgsync.errors import PdOrgSyncError
from pdorgsync.importer import build, read_account, render_yaml
from pdorgsync.importer import summary as import_summary
from pdorgsync.loading import LoadedOrg, load_org, load_policies
from pdorgsync.models.events import webhook_data
from pdorgsync.models.plan import Plan
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.reconcile import apply as apply_plan
from pdorgsync.reconcile import plan_account
from pdorgsync.sandbox import Sandbox, load_seed
from pdorgsync.settings import load_settings
from pdorgsync.webhooks import sign

if TYPE_CHECKING:
    from pdorgsync.daemon import Daemon

BOT_EMAIL = "pdorgsync-bot@acme.test"

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoIncident:
    title: str
    service: str
    priority: str
    why: str


INCIDENTS = (
    DemoIncident(
        "Checkout API: card payments failing for EU customers",
        "Checkout API",
        "P1",
        "a customer-facing P1 with billing impact",
    ),
    DemoIncident(
        "Security: unauthorized access to payroll records",
        "Payroll Sync",
        "P2",
        "a security incident on a service holding employee data",
    ),
)


def _envelope(incident: dict[str, Any]) -> bytes:
    event = {
        "event": {
            "id": secrets.token_hex(13).upper(),
            "event_type": "incident.triggered",
            "resource_type": "incident",
            "occurred_at": datetime.now(UTC).isoformat(),
            "agent": incident.get("service"),
            "client": None,
            "data": webhook_data(incident),
        }
    }
    return json.dumps(event).encode("utf-8")


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST as PagerDuty would and return the HTTP status (the standard library's
    client: the demo must run after a plain ``pip install pdorgsync``, no extras)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError as exc:
        raise PdOrgSyncError(f"demo: cannot deliver the webhook to {url}: {exc}") from None


class Demo:
    def __init__(self, examples: Path, policies: Path, output: Path, echo: Echo) -> None:
        self.examples = examples
        self.policy_dir = policies
        self.output = output
        self.echo = echo
        self.step_number = 0

    def step(self, title: str) -> None:
        self.step_number += 1
        self.echo("")
        self.echo(f"== {self.step_number}. {title}")

    def run(self) -> int:
        org_file = self.examples / "org.yaml"
        seed_file = self.examples / "sandbox-account.json"
        for path in (org_file, seed_file, self.policy_dir):
            if not path.exists():
                raise PdOrgSyncError(
                    f"{path} not found: run the demo from the repository root (make demo)"
                )
        self.output.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        loaded = load_org(org_file)
        policies = load_policies(self.policy_dir, loaded.org)
        sandbox = Sandbox(load_seed(seed_file))
        url = sandbox.start()
        try:
            self.echo(f"Sandbox PagerDuty listening on {url} (seeded from {seed_file})")
            client = PagerDutyClient(sandbox.token, url, BOT_EMAIL, sleep=time.sleep)
            self._import(client)
            self._reconcile(client, loaded)
            self._audit(client, loaded, policies.policies)
            self._engage(url, sandbox.token, client, org_file)
        finally:
            sandbox.stop()
        self.echo("")
        self.echo(
            f"Demo finished in {time.monotonic() - started:.1f} s. Reports are in {self.output}/."
        )
        return 0

    # -- plan / apply / plan -----------------------------------------------------------

    def _plan(self, client: PagerDutyClient, loaded: LoadedOrg) -> Plan:
        return plan_account(client, loaded, now=datetime.now(UTC).replace(microsecond=0))

    def _import(self, client: PagerDutyClient) -> None:
        self.step("import: describe the seeded account as an org file (read-only)")
        client.reset_counts()
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        imported = build(read_account(client), org_id=None, now=now, client=client)
        written = self.output / "imported-org.yaml"
        written.write_text(render_yaml(imported), encoding="utf-8")
        writes = sum(n for (method, _route), n in client.calls.items() if method != "GET")
        for line in import_summary(imported):
            self.echo(line)
        self.echo(f"wrote {written} ({client.total_calls} API calls, {writes} writes)")
        plan = self._plan(client, load_org(written))
        moved = [i.department for i in plan.impacts if i.changed]
        self.echo(f"plan of {written.name}: {summary_line(plan)}")
        self.echo(
            "on-call changes: none" if not moved else f"on-call changes in: {', '.join(moved)}"
        )
        if writes or moved or any(c.action != "adopt" for c in plan.changes):
            raise PdOrgSyncError("the import did not round-trip: please report this bug")

    def _reconcile(self, client: PagerDutyClient, loaded: LoadedOrg) -> None:
        self.step("plan: what would change in PagerDuty to match examples/org.yaml")
        client.reset_counts()
        plan = self._plan(client, loaded)
        full = render_plan_text(plan, api_calls=client.total_calls)
        (self.output / "plan.txt").write_text(full + "\n", encoding="utf-8")
        for line in full.splitlines():
            if line.startswith(("  + ", "  ~ ", "  - ", "  ! ")):
                self.echo(line)
        self.echo(summary_line(plan))
        self.echo(f"(full plan with field diffs and on-call impact: {self.output}/plan.txt)")

        self.step("apply --yes: create and update exactly what the plan says")
        client.reset_counts()
        report = apply_plan(client, plan)
        self.echo(
            f"applied {report.count('applied')} changes, {report.count('failed')} failed, "
            f"{client.total_calls} API calls"
        )
        if not report.ok:
            raise PdOrgSyncError("apply did not complete; see the messages above")

        self.step("plan again: nothing left to do")
        client.reset_counts()
        again = self._plan(client, loaded)
        self.echo(summary_line(again))
        if again.has_changes:
            raise PdOrgSyncError("the second plan still has changes: please report this bug")

    # -- audit -------------------------------------------------------------------------

    def _audit(self, client: PagerDutyClient, loaded: LoadedOrg, policies: list[Any]) -> None:
        self.step("audit: who cannot be reached when needed (next 28 days)")
        client.reset_counts()
        report = run_audit(
            client,
            loaded.org,
            now=datetime.now(UTC).replace(microsecond=0),
            engagements=engagements_from_policies(policies),
        )
        by_rank = sorted(report.findings, key=lambda f: (-f.rank, f.department or ""))
        for finding in by_rank:
            self.echo(f"  [{finding.severity:8}] {finding.rule} {finding.message}")
        self.echo(audit_summary_line(report))
        html = self.output / "audit.html"
        html.write_text(render_audit_html(report), encoding="utf-8")
        self.echo(f"HTML report with a coverage heat map per department: {html}")

    # -- serve + webhooks ---------------------------------------------------------------

    def _engage(self, url: str, token: str, client: PagerDutyClient, org_file: Path) -> None:
        from pdorgsync.service import build_daemon

        self.step("serve: the daemon receives two signed PagerDuty webhooks")
        secret = secrets.token_hex(16)
        with tempfile.TemporaryDirectory(prefix="pdorgsync-demo-") as state:
            settings = load_settings(
                api_url=url,
                api_token=token,
                from_email=BOT_EMAIL,
                org_file=org_file,
                policy_dir=self.policy_dir,
                state_path=Path(state) / "pdorgsync.db",
                webhook_secrets=secret,
                listen="127.0.0.1:0",
                reconcile_interval=3600,
            )
            daemon = build_daemon(settings)
            daemon.start()
            try:
                address = daemon.bound_address
                assert address is not None
                endpoint = f"http://{address[0]}:{address[1]}/webhooks/pagerduty"
                self.echo(f"pdorgsync serve listening on {endpoint}")
                sent = []
                for demo in INCIDENTS:
                    incident = self._trigger(client, demo)
                    body = _envelope(incident)
                    status = _post(
                        endpoint,
                        body,
                        {
                            "Content-Type": "application/json",
                            "X-PagerDuty-Signature": sign(body, secret),
                            "X-Webhook-Id": secrets.token_hex(8),
                        },
                    )
                    self.echo(
                        f"  webhook incident.triggered #{incident['incident_number']} "
                        f"{demo.title!r} ({demo.why}) -> HTTP {status}"
                    )
                    sent.append((demo, incident))
                self._wait_and_explain(daemon, sent)
            finally:
                daemon.shutdown()

    def _trigger(self, client: PagerDutyClient, demo: DemoIncident) -> dict[str, Any]:
        services = [
            s
            for s in client.list_all("/services", {"query": demo.service})
            if s["name"] == demo.service
        ]
        priorities = [p for p in client.list_all("/priorities") if p["name"] == demo.priority]
        if not services or not priorities:
            raise PdOrgSyncError(
                f"the sandbox seed lacks service {demo.service!r} or {demo.priority}"
            )
        body = {
            "incident": {
                "type": "incident",
                "title": demo.title,
                "service": {"id": services[0]["id"], "type": "service_reference"},
                "priority": {"id": priorities[0]["id"], "type": "priority_reference"},
            }
        }
        incident: dict[str, Any] = client.post("/incidents", body)["incident"]
        return incident

    def _wait_and_explain(
        self, daemon: Daemon, sent: list[tuple[DemoIncident, dict[str, Any]]]
    ) -> None:
        deadline = time.monotonic() + 30
        waited = 0.0
        while time.monotonic() < deadline:
            stats = daemon.inbox.stats()
            if stats.pending == 0:
                break
            time.sleep(0.25)
            waited += 0.25
            if waited % 2 == 0:
                self.echo(f"  ... waiting for the worker ({stats.pending} events pending)")
        self.step("what was engaged, and why")
        for demo, incident in sent:
            self.echo(f"#{incident['incident_number']} {demo.title}")
            records = daemon.inbox.engagements(incident["id"])
            if not records:
                self.echo("  nobody engaged (no policy matched)")
            for record in records:
                verb = (
                    "responder request to its escalation policy"
                    if record.as_ == "responder"
                    else "team subscribed to status updates"
                )
                self.echo(f"  {record.department:<10} {verb:<44} policy {record.policy}")
        dead = daemon.inbox.stats().dead
        if dead:
            raise PdOrgSyncError(f"{dead} events failed; see `pdorgsync inbox list`")
