"""Benchmark: an incident storm under PagerDuty's rate limit, 4 workers against 1 (not a test).

N distinct P1 incidents on "Checkout API" (the example account, the default policy
pack: Support as responder; Executive, Finance and Sales teams subscribed; notes
on) are delivered as signed webhooks within a few seconds by an out-of-process load
generator to the receiver, which stores them; the worker (``WORKER_CONCURRENCY``
threads) engages them against a sandbox in its own process that injects
``--latency`` per request and enforces PagerDuty's 960 requests/minute (its token
bucket holds a minute's worth, as PagerDuty's per-minute limit allows).

Each storm runs twice in the same run, with 4 workers and with 1, on a fresh
sandbox and inbox. Reported per run: time from the first delivery until the last
incident is fully engaged, per-incident delivery → fully engaged (p50, p99), API
requests per incident (the worker client's count, reads included), 429 answers,
and incidents missing an engagement or with a doubled write (each incident's
successful writes in the sandbox's request log must equal exactly one responder
request, one subscribe call and one note).

The client-side budget is pdorgsync's (``RATE_LIMIT_PER_MINUTE``): ``--budget``
per minute (default 900, the default against PagerDuty) for the storms listed in
``--budget-sizes``; the other storms run as ``pdorgsync serve`` runs against the
sandbox (no client budget: the sandbox's own limit is the only one). The floor of a
run is its requests ÷ the budget in force (900/min, or the sandbox's 960/min).
No time is scaled here: every figure is wall-clock time.

    .venv/bin/python benchmarks/bench_storm.py [--sizes 60 500] [--budget-sizes 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_webhooks import ROOT, Served, _Secrets, delivery, run_generator, wait_until
from common import RemoteSandbox, percentile

sys.path.insert(0, str(ROOT))

from tests.support.engagement import (
    BOT_EMAIL,
    applied_seed,
    org_and_policies,
    webhook_data,
)

from pdorgsync.logs import configure_logging
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.ratelimit import PAGERDUTY_PER_MINUTE, TokenBucketLimiter
from pdorgsync.state.sqlite import Inbox
from pdorgsync.webhooks import ReceiverHooks, create_app
from pdorgsync.worker import Worker

EXPECTED_WRITES = Counter(
    {
        "POST /responder_requests": 1,
        "POST /status_updates/subscribers": 1,
        "POST /notes": 1,
    }
)


@dataclass
class StormRow:
    incidents: int
    workers: int
    budget: int | None  # client-side requests/minute; None: no client budget
    total_s: float  # first delivery due -> last incident fully engaged
    p50_s: float
    p99_s: float
    requests: int  # the worker's, reads included
    status_429: int
    missing: int
    doubled: int
    delivery_s: float  # first due -> last 202

    @property
    def per_incident(self) -> float:
        return self.requests / self.incidents

    @property
    def floor_s(self) -> float:
        per_minute = self.budget or PAGERDUTY_PER_MINUTE
        return self.requests / (per_minute / 60)


def storm_seed(count: int) -> dict[str, Any]:
    seed = applied_seed()
    seed["incidents"] = [
        {
            "title": f"Checkout API storm {n}",
            "service": "Checkout API",
            "priority": "P1",
            "status": "triggered",
            "urgency": "high",
        }
        for n in range(count)
    ]
    return seed


def run_storm(count: int, workers: int, budget: int | None, latency: float) -> StormRow:
    org, policies = org_and_policies()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Inbox(Path(tmp) / "state.db") as inbox,
        RemoteSandbox(
            storm_seed(count), latency=latency, rate_limit_per_minute=PAGERDUTY_PER_MINUTE
        ) as sandbox,
    ):
        harness = PagerDutyClient("sandbox", sandbox.base_url, BOT_EMAIL, sleep=lambda _s: None)
        incidents = [
            i
            for i in harness.list_all("/incidents", {"statuses[]": ["triggered"]})
            if str(i.get("title", "")).startswith("Checkout API storm")
        ]
        if len(incidents) != count:
            raise RuntimeError(f"seeded {count} incidents, listed {len(incidents)}")
        limiter = TokenBucketLimiter(budget) if budget else None
        client = PagerDutyClient(
            "sandbox",
            sandbox.base_url,
            BOT_EMAIL,
            max_attempts=2,  # as the daemon's worker client
            limiter=limiter,
            priority="engagement",
        )
        worker = Worker(
            inbox,
            client,
            org,
            policies,
            from_email=BOT_EMAIL,
            poll_interval=None,
            concurrency=workers,
        )
        worker.engager.directory.refresh()  # warm caches like a running daemon
        worker.engager.bot_user_id()
        client.reset_counts()
        before = len(sandbox.requests())
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        deliveries = [delivery(n, "storm", webhook_data(i)) for n, i in enumerate(incidents)]
        rate = max(100.0, count / 3)  # everything delivered within about three seconds
        with Served(create_app(_Secrets(), inbox, ReceiverHooks(on_stored=worker.wake))) as url:
            started, samples = run_generator(
                {
                    "url": url,
                    "mode": "open",
                    "rate": rate,
                    "count": len(deliveries),
                    "deliveries": deliveries,
                }
            )
            if {s.status for s in samples} != {202}:
                raise RuntimeError(f"deliveries answered {Counter(s.status for s in samples)}")
            ids = [i["id"] for i in incidents]

            def engaged() -> bool:
                return inbox.stats().pending == 0 and all(
                    len(inbox.engagements(i)) >= 4 for i in ids
                )

            wait_until(engaged, 1800, "the storm to be engaged")
        stop.set()
        worker.stop()
        thread.join(timeout=30)
        log = sandbox.requests()[before:]
        writes: dict[str, Counter[str]] = {}
        for method, path, status in log:
            parts = path.split("?")[0].strip("/").split("/")
            if method != "GET" and status < 300 and len(parts) >= 3 and parts[0] == "incidents":
                writes.setdefault(parts[1], Counter())[f"{method} /{'/'.join(parts[2:])}"] += 1
        due = {
            incidents[s.index]["id"]: s.scheduled for s in sorted(samples, key=lambda s: s.index)
        }
        done_at = {i: max(r.engaged_at.timestamp() for r in inbox.engagements(i)) for i in ids}
        per_incident = [done_at[i] - due[i] for i in ids]
        ledger = {i: len(inbox.engagements(i)) for i in ids}
    return StormRow(
        incidents=count,
        workers=workers,
        budget=budget,
        total_s=max(done_at.values()) - min(due.values()),
        p50_s=percentile(per_incident, 0.5),
        p99_s=percentile(per_incident, 0.99),
        requests=client.total_calls,
        status_429=sum(1 for _m, _p, status in log if status == 429),
        missing=sum(1 for i in ids if ledger[i] < 4),
        doubled=sum(1 for i in ids if ledger[i] > 4 or writes.get(i) != EXPECTED_WRITES),
        delivery_s=max(s.answered for s in samples) - started,
    )


def render(rows: list[StormRow], latency: float) -> str:
    ms = int(latency * 1000)
    lines = [
        f"### Incident storm ({ms} ms per API call, sandbox enforcing {PAGERDUTY_PER_MINUTE}/min)\n",
        "| incidents | workers | client budget | delivered in | last fully engaged after "
        "| per incident p50 / p99 | requests / incident | floor (requests ÷ budget) "
        "| vs floor | 429s | missing | doubled |",
        "|" + " --- |" * 12,
    ]
    for r in rows:
        budget = f"{r.budget}/min" if r.budget else "none (sandbox mode)"
        lines.append(
            f"| {r.incidents} | {r.workers} | {budget} | {r.delivery_s:.1f} s | {r.total_s:.1f} s "
            f"| {r.p50_s:.2f} s / {r.p99_s:.2f} s | {r.per_incident:.2f} | {r.floor_s:.1f} s "
            f"| {r.total_s / r.floor_s:.2f}x | {r.status_429} | {r.missing} | {r.doubled} |"
        )
    lines.append("")
    groups: dict[tuple[int, int | None], dict[int, StormRow]] = {}
    for r in rows:
        groups.setdefault((r.incidents, r.budget), {})[r.workers] = r
    for (count, budget), by_workers in groups.items():
        if 1 in by_workers and len(by_workers) > 1:
            many = max(by_workers)
            speedup = by_workers[1].total_s / by_workers[many].total_s
            budget_text = f"{budget}/min budget" if budget else "no client budget"
            lines.append(
                f"- {count} incidents, {budget_text}: {many} workers are {speedup:.1f}x faster"
                f" than 1 ({by_workers[many].total_s:.1f} s against {by_workers[1].total_s:.1f} s)."
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 500])
    parser.add_argument(
        "--budget-sizes",
        type=int,
        nargs="*",
        default=[500],
        help="storms run under the client budget (the others without one, as in sandbox mode)",
    )
    parser.add_argument("--budget", type=int, default=900, help="client requests per minute")
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 1])
    parser.add_argument(
        "--budget-workers",
        type=int,
        nargs="+",
        default=None,
        help="worker counts for the budget storms (default: --workers); the budget, not"
        " latency, bounds those, so comparing worker counts there shows little",
    )
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args(argv)
    configure_logging(level="error", fmt="json", stream=sys.stderr)
    rows: list[StormRow] = []
    for count in args.sizes:
        budget = args.budget if count in args.budget_sizes else None
        counts = args.workers if budget is None else (args.budget_workers or args.workers)
        for workers in counts:
            row = run_storm(count, workers, budget, args.latency)
            print(
                f"  storm {count} x {workers} workers: {row.total_s:.1f} s,"
                f" {row.per_incident:.2f} requests/incident",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
    print(render(rows, args.latency))
    print(
        "\nDelivered in: first delivery due → last 202 (the receiver stores each event"
        " before answering). Last fully engaged after: first delivery due → the last"
        " ledger row of the last incident. Per incident: its delivery due → its last"
        " ledger row. Requests / incident: the worker client's HTTP attempts (reads and"
        " retries included) ÷ incidents, after the directory caches are warm. Doubled: an"
        " incident whose successful writes in the sandbox's request log are not exactly"
        " one responder request, one subscribe call and one note. Mean over all rows of"
        f" requests per incident: {statistics.fmean(r.per_incident for r in rows):.2f}."
    )
    ok = all(r.missing == 0 and r.doubled == 0 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
