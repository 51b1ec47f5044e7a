"""Benchmark the webhook path (a script, not a timed test).

1. Receiver: throughput and p50/p99 latency of signed deliveries on loopback.
   The receiver runs under uvicorn in this process (store to SQLite WAL, fsync on
   commit); the load generator is a separate process with N concurrent clients.
2. Event → engagement: the time from sending a signed ``incident.triggered`` for a
   P1 on "Checkout API" until all four engagements of the default pack are in the
   ledger, with 50 ms of latency injected into every sandbox API call.

    .venv/bin/python benchmarks/bench_webhooks.py [--requests 2000] [--concurrency 16] [--events 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engagement_support import (  # noqa: E402
    BOT_EMAIL,
    applied_seed,
    client_for,
    create_incident,
    org_and_policies,
    webhook_data,
)
from tests.serving import ThreadedServer  # noqa: E402

from pdorgsync.inbox import Inbox  # noqa: E402 - after sys.path setup
from pdorgsync.logs import configure_logging  # noqa: E402
from pdorgsync.sandbox import Sandbox  # noqa: E402
from pdorgsync.webhooks import WEBHOOK_PATH, ReceiverHooks, create_app, sign  # noqa: E402
from pdorgsync.worker import Worker  # noqa: E402

SECRET = "bench-secret"
EXAMPLE = json.loads((ROOT / "tests" / "data" / "webhooks" / "incident.triggered.json").read_text())


class _Secrets:
    def secrets(self) -> list[str]:
        return [SECRET]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _load(url: str, requests: int, concurrency: int, out: Any) -> None:
    """Load generator (separate process): signed, distinct deliveries from N threads."""
    bodies = []
    for n in range(requests):
        event = json.loads(json.dumps(EXAMPLE))
        event["event"]["id"] = f"bench-{n}-{uuid.uuid4().hex}"
        event["event"]["data"]["id"] = f"QBENCH{n % 50:08d}"
        raw = json.dumps(event).encode()
        bodies.append(
            (raw, {"X-PagerDuty-Signature": sign(raw, SECRET), "X-Webhook-Id": uuid.uuid4().hex})
        )
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(requests))

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                with lock:
                    n = next(cursor, None)
                if n is None:
                    return
                raw, headers = bodies[n]
                started = time.perf_counter()
                status = http.post(url + WEBHOOK_PATH, content=raw, headers=headers).status_code
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"latencies": latencies, "statuses": statuses, "wall": time.perf_counter() - started})


def bench_receiver(requests: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Inbox(Path(tmp) / "bench.db", busy_timeout=2.0)
        with ThreadedServer(create_app(_Secrets(), inbox)) as url:
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            proc = ctx.Process(target=_load, args=(url, requests, concurrency, queue))
            proc.start()
            result = queue.get(timeout=600)
            proc.join()
        stored = inbox.stats().pending
        inbox.close()
    lat = [x * 1000 for x in result["latencies"]]
    print("receiver (uvicorn, SQLite WAL, synchronous=FULL)")
    print(f"  requests     {requests} with {concurrency} concurrent clients (separate process)")
    print(f"  statuses     {result['statuses']}   stored {stored}")
    print(f"  throughput   {requests / result['wall']:.0f} deliveries/s")
    print(
        f"  latency ms   p50 {_percentile(lat, 0.50):.1f}   p99 {_percentile(lat, 0.99):.1f}   "
        f"max {max(lat):.1f}   mean {statistics.fmean(lat):.1f}"
    )


def bench_engagement(events: int, latency: float) -> None:
    sandbox = Sandbox(applied_seed(), latency=latency)
    base = sandbox.start()
    pd = client_for(base)
    org, policies = org_and_policies()
    incidents = [create_incident(pd, f"Checkout API outage {n}") for n in range(events)]
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Inbox(Path(tmp) / "state.db")
        worker = Worker(
            inbox,
            client_for(base, max_attempts=2),
            org,
            policies,
            from_email=BOT_EMAIL,
            poll_interval=None,
        )
        worker.engager.directory.refresh()  # warm caches like a running daemon
        worker.engager.bot_user_id()
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        app = create_app(_Secrets(), inbox, ReceiverHooks(on_stored=worker.wake))
        with ThreadedServer(app) as url, httpx.Client(timeout=30) as http:
            for incident in incidents:
                body = json.loads(json.dumps(EXAMPLE))
                body["event"]["id"] = uuid.uuid4().hex
                body["event"]["data"] = webhook_data(incident)
                raw = json.dumps(body).encode()
                started = time.perf_counter()
                http.post(
                    url + WEBHOOK_PATH,
                    content=raw,
                    headers={"X-PagerDuty-Signature": sign(raw, SECRET)},
                )
                while len(inbox.engagements(incident["id"])) < 4:
                    time.sleep(0.002)
                samples.append(time.perf_counter() - started)
        stop.set()
        worker.wake()
        thread.join(timeout=10)
        inbox.close()
    sandbox.stop()
    ms = [s * 1000 for s in samples]
    print(
        f"event -> 4 engagements (P1 on Checkout API), {latency * 1000:.0f} ms injected per API call"
    )
    print(f"  events       {events}")
    print(
        f"  latency ms   p50 {_percentile(ms, 0.50):.0f}   p99 {_percentile(ms, 0.99):.0f}   "
        f"max {max(ms):.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--api-latency", type=float, default=0.05)
    args = parser.parse_args()
    configure_logging(level="error", fmt="json", stream=sys.stderr)
    bench_receiver(args.requests, args.concurrency)
    bench_engagement(args.events, args.api_latency)


if __name__ == "__main__":
    main()
