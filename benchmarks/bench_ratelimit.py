"""Benchmark: an apply of 2,000 departments under PagerDuty's 960 requests/minute limit.

The sandbox (its own process) enforces 960 requests per minute per token with its
token bucket; pdorgsync's shared client-side limiter (``pdorgsync.ratelimit``,
900/min, burst 30) paces the apply at ``reconcile`` priority while an engagement
thread sends a request every 5 (simulated) seconds at ``engagement`` priority
through the same limiter, as the daemon's worker does.

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
import sys
import threading
import time
from datetime import UTC, datetime

from common import RemoteSandbox, org_file, percentile, scaled_clocks, users_only

from pdorgsync.core.planning import plan
from pdorgsync.logs import configure_logging
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.ratelimit import PAGERDUTY_PER_MINUTE, TokenBucketLimiter
from pdorgsync.reconcile import apply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--departments", type=int, default=2000)
    parser.add_argument(
        "--scale", type=float, default=6.0, help="simulated seconds per real second"
    )
    parser.add_argument("--budget", type=int, default=900, help="client-side requests per minute")
    args = parser.parse_args(argv)
    configure_logging(level="error", fmt="console")
    monotonic, sleep, _now = scaled_clocks(args.scale)
    limiter = TokenBucketLimiter(args.budget, clock=monotonic, sleep=sleep)
    org = org_file(args.departments)
    with RemoteSandbox(
        users_only(args.departments), scale=args.scale, rate_limit_per_minute=PAGERDUTY_PER_MINUTE
    ) as sandbox:

        def client(priority: str) -> PagerDutyClient:
            return PagerDutyClient(
                "sandbox",
                sandbox.base_url,
                "user0@bench.test",
                sleep=sleep,
                limiter=limiter,
                priority=priority,
            )

        reconciler, engager = client("reconcile"), client("engagement")
        done = threading.Event()
        latencies: list[float] = []

        def engage() -> None:
            while not done.is_set():
                started = monotonic()
                engager.get("/priorities")
                latencies.append(monotonic() - started)
                done.wait(5 / args.scale)

        thread = threading.Thread(target=engage, daemon=True)
        started_real, started_sim = time.perf_counter(), monotonic()
        thread.start()
        now = datetime.now(UTC).replace(microsecond=0)
        result = plan(org, observe(reconciler, org, now=now), now=now, impact=False)
        report = apply(reconciler, result)
        done.set()
        thread.join(timeout=30)
        real = time.perf_counter() - started_real
        simulated = monotonic() - started_sim
        statuses = sandbox.statuses()
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
        f"| engagement requests during the apply | {len(latencies)} (p50 {percentile(latencies, 0.5):.2f} s,"
        f" p99 {percentile(latencies, 0.99):.2f} s, max {max(latencies, default=0):.2f} s simulated) |"
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
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
