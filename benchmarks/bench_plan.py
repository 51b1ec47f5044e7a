"""Benchmark: API calls and wall time of a no-change ``pdorgsync plan`` (not a test).

For each size N it generates an org file with N departments (3 people, a weekly
schedule, an escalation policy, a service each) and a sandbox account already in
sync with it, then runs observe + plan once with no latency (to count calls) and
once with injected latency (default 50 ms per request) for the wall time.

It prints, per size, the calls made next to issue 7's definitions (shared with
bench_reconcile.py, in benchmarks/common.py):
* the lower bound: list pages of the five collections + one detail or render
  request per schedule;
* per-object reads: what a refresh-everything tool spends: list pages + one GET per
  managed object + one members page per team.

Then, for ``--cpu-sizes`` (default 500 and 2,000), the product CPU time of the pure
core on a snapshot observed once from the sandbox: ``core.planning.plan`` (no-change
plan) and ``core.coverage.audit`` (every rule, over the rendered final schedules),
best of three, and the ratio between the largest and the smallest size (linear:
4x the departments, about 4x the time).

Usage: python benchmarks/bench_plan.py [--sizes 10 100 500] [--latency 0.05] [--cpu-sizes 500 2000]
(500 departments take a few minutes with latency; leave it out for a quick run.)
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

# The generated org files and accounts live in benchmarks/common.py (shared with
# bench_reconcile.py and bench_ratelimit.py).
from common import account, org_file, per_object_reads, plan_lower_bound

from pdorgsync.audit import fetch_final_schedule
from pdorgsync.core import coverage, coverage_objects
from pdorgsync.core.coverage_gaps import _hour_cells
from pdorgsync.core.planning import plan
from pdorgsync.logs import configure_logging
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox


def run_once(n: int, latency: float) -> tuple[int, float, int]:
    org = org_file(n)
    with Sandbox(account(n), latency=latency) as sandbox:
        assert sandbox.base_url is not None
        client = PagerDutyClient(sandbox.token, sandbox.base_url, sleep=lambda _s: None)
        started = time.perf_counter()
        now = datetime.now(UTC).replace(microsecond=0)
        result = plan(org, observe(client, org, now=now), now=now, impact=False)
        elapsed = time.perf_counter() - started
        return client.total_calls, elapsed, len(result.changes) + len(result.conflicts)


def cpu_once(n: int) -> tuple[float, float, int, int]:
    """(plan CPU s, audit CPU s, plan changes + conflicts, audit findings), best of three."""
    org = org_file(n)
    now = datetime.now(UTC).replace(microsecond=0)
    with Sandbox(account(n)) as sandbox:
        assert sandbox.base_url is not None
        client = PagerDutyClient(sandbox.token, sandbox.base_url, sleep=lambda _s: None)
        snapshot = observe(client, org, now=now)
        audited = observe(client, None, user_details=True, now=now)
        since, until = coverage.horizon(now)
        rendered = {}
        for schedule_id, zone in coverage_objects.schedules_to_render(org, audited):
            shifts = fetch_final_schedule(client, schedule_id, zone, since, until)
            if shifts is not None:
                rendered[schedule_id] = shifts
    plan_cpu = audit_cpu = float("inf")
    drift = findings = 0
    for _ in range(3):
        started = time.process_time()
        result = plan(org, snapshot, now=now, impact=False)
        plan_cpu = min(plan_cpu, time.process_time() - started)
        _hour_cells.cache_clear()  # every audit computes its hour cells afresh
        started = time.process_time()
        report = coverage.audit(org, audited, rendered, now=now)
        audit_cpu = min(audit_cpu, time.process_time() - started)
        drift, findings = len(result.changes) + len(result.conflicts), len(report.findings)
    return plan_cpu, audit_cpu, drift, findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--cpu-sizes", type=int, nargs="*", default=[500, 2000])
    args = parser.parse_args(argv)
    configure_logging(level="warning", fmt="console")
    print(
        f"{'departments':>11} {'calls':>6} {'lower bound':>11} {'per-object':>10} "
        f"{'wall time @' + str(int(args.latency * 1000)) + 'ms':>18} {'diff':>5}"
    )
    for n in args.sizes:
        lower = plan_lower_bound(n)
        per_object = per_object_reads(n)
        calls, _, drift = run_once(n, 0.0)
        _, wall, _ = run_once(n, args.latency)
        print(f"{n:>11} {calls:>6} {lower:>11} {per_object:>10} {wall:>17.1f}s {drift:>5}")
        sys.stdout.flush()
    print("diff = changes + conflicts of the plan (0: the account matched the file)")
    if args.cpu_sizes:
        print("\nProduct CPU time of the pure core (best of 3, no I/O):\n")
        print(f"{'departments':>11} {'plan CPU':>9} {'audit CPU':>10} {'diff':>5} {'findings':>8}")
        cpu: dict[int, tuple[float, float]] = {}
        for n in args.cpu_sizes:
            plan_cpu, audit_cpu, drift, findings = cpu_once(n)
            cpu[n] = (plan_cpu, audit_cpu)
            print(f"{n:>11} {plan_cpu:>8.2f}s {audit_cpu:>9.2f}s {drift:>5} {findings:>8}")
            sys.stdout.flush()
        low, high = min(cpu), max(cpu)
        if high > low:
            print(
                f"{high:,} vs {low:,} departments ({high / low:g}x): plan"
                f" {cpu[high][0] / cpu[low][0]:.1f}x, audit {cpu[high][1] / cpu[low][1]:.1f}x"
                " the CPU time (linear: about the same factor)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
