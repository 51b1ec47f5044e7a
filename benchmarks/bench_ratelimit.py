"""Benchmark: an apply of 2,000 departments under PagerDuty's 960 requests/minute limit.

The sandbox (its own process) enforces 960 requests per minute per token with its
token bucket; pdorgsync's shared client-side limiter (``pdorgsync.ratelimit``,
900/min, burst 30) paces the apply at ``reconcile`` priority while the daemon's
worker (``WORKER_CONCURRENCY=4`` threads, ``engagement`` priority, the same
limiter) engages a new P1 incident every 5 (simulated) seconds: each one a stored
webhook event, engaged with the worker's real requests (the example account's
Support responder request, three team subscriptions and the note), so "engagement
requests during the apply" are exactly those.

Time is accelerated ``--scale`` times (default 6) so the ~16 simulated minutes
run in under three real minutes: the sandbox's clock, the limiter's clock and sleep,
and the client's retry sleeps all use ``common.scaled_clocks``, so "per minute"
means the same thing on both sides. HTTP round trips are not accelerated, so the
reported engagement latency (measured in simulated time) overstates the network
part by the scale factor; the limiter wait is reported separately.

    .venv/bin/python benchmarks/bench_ratelimit.py [--departments 2000] [--scale 6]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_webhooks import ROOT
from common import RemoteSandbox, org_file, percentile, scaled_clocks, users_only

sys.path.insert(0, str(ROOT))

from tests.support.engagement import BOT_EMAIL, applied_seed, org_and_policies, webhook_data

from pdorgsync.core.planning import plan
from pdorgsync.logs import configure_logging
from pdorgsync.models.events import parse_envelope
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.ratelimit import PAGERDUTY_PER_MINUTE, TokenBucketLimiter
from pdorgsync.reconcile import apply
from pdorgsync.state.sqlite import Inbox
from pdorgsync.worker import Worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--departments", type=int, default=2000)
    parser.add_argument(
        "--scale", type=float, default=6.0, help="simulated seconds per real second"
    )
    parser.add_argument("--budget", type=int, default=900, help="client-side requests per minute")
    parser.add_argument(
        "--minutes-cap", type=float, default=25.0, help="simulated minutes of incidents to seed"
    )
    args = parser.parse_args(argv)
    configure_logging(level="error", fmt="console")
    monotonic, sleep, _now = scaled_clocks(args.scale)
    limiter = TokenBucketLimiter(args.budget, clock=monotonic, sleep=sleep)
    org = org_file(args.departments)
    pack_org, policies = org_and_policies()
    # The people of the benchmark org plus the example account (already applied, with
    # incidents to engage): the apply creates the benchmark departments meanwhile.
    seed = applied_seed()
    seed["users"] = seed["users"] + users_only(args.departments)["users"]
    expected = int(args.minutes_cap * 60 / 5) + 10
    seed["incidents"] = [
        {
            "title": f"Checkout API down {n}",
            "service": "Checkout API",
            "priority": "P1",
            "status": "triggered",
            "urgency": "high",
        }
        for n in range(expected)
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        Inbox(Path(tmp) / "state.db") as inbox,
        RemoteSandbox(
            seed, scale=args.scale, rate_limit_per_minute=PAGERDUTY_PER_MINUTE
        ) as sandbox,
    ):

        def client(priority: str, **kwargs: object) -> PagerDutyClient:
            return PagerDutyClient(
                "sandbox",
                sandbox.base_url,
                BOT_EMAIL,
                sleep=sleep,
                limiter=limiter,
                priority=priority,
                **kwargs,  # type: ignore[arg-type]
            )

        reconciler = client("reconcile")
        engager = client("engagement", max_attempts=2)  # as the daemon's worker client
        incidents = [
            i
            for i in engager.list_all("/incidents", {"statuses[]": ["triggered"]})
            if str(i.get("title", "")).startswith("Checkout API down")
        ]
        worker = Worker(
            inbox,
            engager,
            pack_org,
            policies,
            from_email=BOT_EMAIL,
            poll_interval=None,
            concurrency=4,
        )
        worker.engager.directory.refresh()  # warm caches like a running daemon
        worker.engager.bot_user_id()
        engager.reset_counts()
        done = threading.Event()
        stop = threading.Event()
        stored_at: dict[str, float] = {}  # incident -> wall-clock time its event was stored

        def deliver() -> None:
            for incident in incidents:
                if done.is_set():
                    return
                body = {
                    "event": {
                        "id": f"ratelimit-{incident['id']}",
                        "event_type": "incident.triggered",
                        "resource_type": "incident",
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "agent": None,
                        "client": None,
                        "data": webhook_data(incident),
                    }
                }
                raw = json.dumps(body)
                stored_at[incident["id"]] = time.time()
                inbox.store(parse_envelope(raw), raw)
                worker.wake()
                done.wait(5 / args.scale)

        delivering = threading.Thread(target=deliver, daemon=True)
        working = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        started_real, started_sim = time.perf_counter(), monotonic()
        working.start()
        delivering.start()
        now = datetime.now(UTC).replace(microsecond=0)
        result = plan(org, observe(reconciler, org, now=now), now=now, impact=False)
        report = apply(reconciler, result)
        real = time.perf_counter() - started_real
        simulated = monotonic() - started_sim
        done.set()
        delivering.join(timeout=30)
        deadline = time.monotonic() + 120
        while inbox.stats().pending and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        worker.stop()
        working.join(timeout=30)
        statuses = sandbox.statuses()
        engaged = {i: inbox.engagements(i) for i in stored_at}
        full = [i for i, rows in engaged.items() if len(rows) >= 4]
        # Ledger times are wall-clock: the wait times the scale is simulated seconds.
        latencies = [
            (max(r.engaged_at.timestamp() for r in engaged[i]) - stored_at[i]) * args.scale
            for i in full
        ]
        engagement_requests = engager.total_calls
    failed = sum(1 for r in report.results if r.outcome != "applied")
    requests = sum(statuses.values())
    stats = limiter.stats()
    rate = requests / (simulated / 60)
    print("### Rate limit: apply under 960 requests/minute\n")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| departments | {args.departments:,} ({len(result.changes):,} changes) |")
    print(f"| failed changes | {failed} |")
    print(f"| requests answered by the sandbox | {requests:,} |")
    print(f"| 429 responses | {statuses.get(429, 0)} |")
    print(f"| duration (simulated) | {simulated / 60:.1f} min |")
    print(f"| duration (real, time x{args.scale:g}) | {real:.0f} s |")
    print(
        f"| mean rate | {rate:.0f} requests/min (limit {PAGERDUTY_PER_MINUTE}, budget {args.budget}) |"
    )
    print(
        f"| incidents engaged during the apply | {len(full)} of {len(stored_at)} delivered"
        f" (one every 5 s simulated; 4 engagements each) |"
    )
    print(
        f"| engagement requests during the apply | {engagement_requests:,} (the worker's own,"
        f" {engagement_requests / max(1, len(stored_at)):.2f} per incident) |"
    )
    print(
        f"| event stored → fully engaged | p50 {percentile(latencies, 0.5):.2f} s,"
        f" p99 {percentile(latencies, 0.99):.2f} s, max {max(latencies, default=0):.2f} s simulated |"
    )
    print(
        f"| limiter wait, engagement | max {stats.max_wait_seconds.get('engagement', 0):.2f} s"
        f" (reconcile: mean {stats.waited_seconds.get('reconcile', 0) / max(1, stats.granted.get('reconcile', 1)):.2f} s,"
        f" max {stats.max_wait_seconds.get('reconcile', 0):.2f} s) |"
    )
    print(
        f"\nTime ran {args.scale:g}x faster than the wall clock for the sandbox's limiter, the client"
        " limiter and retry sleeps alike (benchmarks/common.py `scaled_clocks`); engagement"
        " latencies include real HTTP round trips multiplied by that factor."
    )
    return 0 if failed == 0 and len(full) == len(stored_at) else 1


if __name__ == "__main__":
    sys.exit(main())
