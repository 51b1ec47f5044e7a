"""The per-object refresh baseline: what a refresh-everything tool reads (not pdorgsync).

A tool that keeps state per object (``terraform refresh`` with the PagerDuty
provider is the usual example) finds the objects of the account and then reads
each managed one by itself: one ``GET`` per team, schedule, escalation policy and
service, and the members pages of every team. For a coverage audit it also reads
every schedule's rendered final schedule over the horizon and, per person, the
contact methods and notification rules.

``refresh_everything`` does exactly that against a live API (the benchmarks run it
against the same sandbox, with the same latency, right after pdorgsync's own run),
so the baseline in ``docs/benchmarks.md`` is measured, not computed.

    .venv/bin/python benchmarks/baseline_refresh.py --url http://127.0.0.1:PORT --departments 100 [--audit]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pdorgsync.models.org import Org, parse_marker
from pdorgsync.pagerduty import PagerDutyClient

COLLECTIONS = (
    ("team", "/teams"),
    ("schedule", "/schedules"),
    ("escalation_policy", "/escalation_policies"),
    ("service", "/services"),
)


@dataclass(frozen=True)
class Refresh:
    calls: int
    seconds: float
    objects: int


def refresh_everything(
    client: PagerDutyClient, org: Org, *, audit: bool = False, horizon_days: int = 28
) -> Refresh:
    """Read every object ``org`` manages one by one; returns the requests it took."""
    before = client.total_calls
    started = time.perf_counter()
    users = client.list_all("/users")
    managed: dict[str, list[dict[str, Any]]] = {}
    for kind, path in COLLECTIONS:
        found = client.list_all(path)
        managed[kind] = [
            obj
            for obj in found
            if (owner := parse_marker(obj.get("description"))) is not None and owner[0] == org.org
        ]
    objects = 0
    for kind, path in COLLECTIONS:
        for obj in managed[kind]:
            client.get(f"{path}/{obj['id']}")
            objects += 1
    for team in managed["team"]:
        client.list_all(f"/teams/{team['id']}/members")
    if audit:
        since = datetime.now(UTC).replace(microsecond=0)
        until = since + timedelta(days=horizon_days)
        for schedule in managed["schedule"]:
            client.get(
                f"/schedules/{schedule['id']}",
                {"since": since.isoformat(), "until": until.isoformat()},
            )
        emails = {e.casefold() for d in org.departments for e in d.members}
        for user in users:
            if str(user.get("email", "")).casefold() in emails:
                client.list_all(f"/users/{user['id']}/contact_methods")
                client.list_all(f"/users/{user['id']}/notification_rules")
    return Refresh(client.total_calls - before, time.perf_counter() - started, objects)


def main(argv: list[str] | None = None) -> int:
    from common import org_file

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", required=True, help="API base URL (the sandbox)")
    parser.add_argument("--token", default="sandbox")
    parser.add_argument("--departments", type=int, required=True, help="benchmarks org size")
    parser.add_argument("--audit", action="store_true", help="also what an audit reads")
    args = parser.parse_args(argv)
    client = PagerDutyClient(args.token, args.url, sleep=lambda _s: None)
    result = refresh_everything(client, org_file(args.departments), audit=args.audit)
    print(f"{result.calls} requests, {result.objects} objects, {result.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
