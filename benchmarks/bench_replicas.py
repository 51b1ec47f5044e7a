"""Benchmark: two replicas on one PostgreSQL share one API budget per token.

Two replica processes each run what a ``pdorgsync serve`` replica sends to
PagerDuty: two reconcile threads that read as fast as the budget lets them, and
an engagement thread that sends one request a second (incidents arriving). Every
request goes through ``state.postgres.SharedBudget`` on one throw-away
PostgreSQL cluster (``tests/support/pgcluster.py``, Debian's ``postgresql``), against a
sandbox in its own process that enforces PagerDuty's 960 requests/minute per
token (429 beyond). Real time: the budget refills by the database clock.

Printed: requests per replica and in total, the summed rate, the largest count
in any sliding window of ``--window`` seconds against the bound
(rate x window + burst), the sandbox's 429s, and how long engagement requests
waited for a token while reconcile saturated the budget.

    .venv/bin/python benchmarks/bench_replicas.py [--seconds 60] [--budget 900]
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import RemoteSandbox, percentile, users_only

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pdorgsync.logs import configure_logging  # noqa: E402
from pdorgsync.ratelimit import PAGERDUTY_PER_MINUTE  # noqa: E402


def replica(db_url: str, api_url: str, budget: int, seconds: float, out: Any) -> None:
    """One replica: 2 reconcile threads flat out, 1 engagement request per second."""
    from pdorgsync.pagerduty import PagerDutyClient
    from pdorgsync.state.postgres import PostgresState, SharedBudget

    configure_logging(level="error", fmt="console")
    store = PostgresState(db_url)
    shared = SharedBudget(store, "sandbox", budget)
    sent: list[tuple[float, str]] = []
    waits: list[float] = []
    lock = threading.Lock()
    stop_at = time.time() + seconds

    def client(priority: str) -> PagerDutyClient:
        def record(_method: str, _path: str, _status: int | None) -> None:
            with lock:
                sent.append((time.time(), priority))

        return PagerDutyClient(
            "sandbox",
            api_url,
            "user0@bench.test",
            limiter=shared,
            priority=priority,
            on_response=record,
            max_attempts=1,
        )

    def reconcile() -> None:
        pd = client("reconcile")
        while time.time() < stop_at:
            pd.get("/users", {"limit": 1})

    class Timed:
        def acquire(self, priority: str) -> None:
            started = time.perf_counter()
            shared.acquire(priority)
            with lock:
                waits.append(time.perf_counter() - started)

    def engagement() -> None:
        pd = client("engagement")
        pd.limiter = Timed()
        next_at = time.time()
        while time.time() < stop_at:
            pd.get("/users", {"limit": 1})
            next_at += 1.0
            time.sleep(max(0.0, next_at - time.time()))

    threads = [threading.Thread(target=reconcile) for _ in range(2)]
    threads.append(threading.Thread(target=engagement))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    out.send({"sent": sent, "waits": waits})


def max_in_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        best = max(best, bisect.bisect_left(ordered, start + window) - i)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--budget", type=int, default=900, help="shared requests per minute")
    parser.add_argument("--window", type=float, default=None, help="default: min(60, seconds)")
    args = parser.parse_args(argv)
    window = args.window or min(60.0, args.seconds)
    configure_logging(level="error", fmt="console")
    from tests.support.pgcluster import PgCluster, find_bin_dir

    if find_bin_dir() is None:
        print("skipped: PostgreSQL is not installed (apt-get install postgresql)")
        return 0
    cluster = PgCluster().init().start()
    try:
        db_url = cluster.new_database()
        from pdorgsync.state.postgres import PostgresState

        PostgresState(db_url).close()  # migrate once before the replicas start
        with RemoteSandbox(users_only(10), rate_limit_per_minute=PAGERDUTY_PER_MINUTE) as sandbox:
            context = multiprocessing.get_context("spawn")
            pipes, procs = [], []
            for _ in range(2):
                parent, child = context.Pipe()
                proc = context.Process(
                    target=replica,
                    args=(db_url, sandbox.base_url, args.budget, args.seconds, child),
                )
                proc.start()
                pipes.append(parent)
                procs.append(proc)
            results = [p.recv() for p in pipes]
            for proc in procs:
                proc.join(timeout=30)
            statuses = sandbox.statuses()
    finally:
        cluster.remove()

    everything = [t for r in results for t, _ in r["sent"]]
    start, end = min(everything), max(everything)
    elapsed = max(1e-9, end - start)
    burst = min(30.0, max(1.0, args.budget / 30))
    bound = args.budget / 60 * window + burst
    peak = max_in_window(everything, window)
    waits = [w for r in results for w in r["waits"]]
    print(f"Two replicas, shared budget {args.budget}/min (burst {burst:g}), {args.seconds:g} s\n")
    print("| replica | reconcile requests | engagement requests | total |")
    print("| --- | ---: | ---: | ---: |")
    for n, r in enumerate(results):
        kinds = [k for _, k in r["sent"]]
        print(f"| r{n} | {kinds.count('reconcile')} | {kinds.count('engagement')} | {len(kinds)} |")
    print(f"| **both** | | | **{len(everything)}** |\n")
    print("| measure | value |")
    print("| --- | ---: |")
    print(f"| summed rate | {len(everything) / elapsed * 60:.0f}/min over {elapsed:.1f} s |")
    print(f"| most requests in any {window:g} s window | {peak} (bound {bound:.0f}) |")
    print(f"| PagerDuty's limit for that window | {PAGERDUTY_PER_MINUTE / 60 * window:.0f} |")
    print(f"| 429 answers from the sandbox | {statuses.get(429, 0)} |")
    print(
        f"| engagement wait for a token p50 / p99 / max | {percentile(waits, 0.5) * 1000:.1f} / "
        f"{percentile(waits, 0.99) * 1000:.1f} / {max(waits) * 1000:.1f} ms |"
    )
    ok = peak <= bound + 1 and statuses.get(429, 0) == 0
    print(f"\nResult: {'under the budget' if ok else 'OVER THE BUDGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
