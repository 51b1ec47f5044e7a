"""Benchmark the webhook path (a script, not a timed test).

The receiver is served as the daemon serves it: ``create_app`` under uvicorn in a
thread of this process, storing to a SQLite inbox (WAL, ``synchronous=FULL``: the
commit is on disk before the 202), default busy timeout (1 s, then 503). The load
generator is a **separate process** (threads, one keep-alive ``http.client``
connection each, on 127.0.0.1) sending signed, distinct V3 ``incident.triggered``
deliveries.

1. **Receiver** (no worker, no PagerDuty): throughput and latency
   * at the saturation rate: *closed loop*, ``--saturation-clients`` connections each
     sending its next delivery as soon as the previous one is answered, for
     ``--saturation-seconds``; throughput = 202 answers / elapsed time (one row per
     connection count: the first is the saturation figure, more connections show
     how the receiver copes with more concurrency than it needs);
   * at offered rates of 100/s and 500/s: *open loop*, deliveries sent on a fixed
     schedule whatever the answers (queued for the next free connection when all
     ``MAX_CONNECTIONS`` are busy); latency is
     measured from each delivery's *scheduled* send time, so a generator or server
     that falls behind shows up in the latency (no coordinated omission).
2. **Event → engagement**: the daemon's pipeline (receiver + worker thread, woken by
   the receiver) against a sandbox in its own process with ``--api-latency`` (50 ms)
   injected into every API call. One P1 on "Checkout API" at a time, each sent after
   the previous one was engaged (no queueing): the time from sending the delivery
   until all engagements of the default policy pack are in the ledger.
3. **10x burst**: the same pipeline; the sustainable rate is the worker's measured
   rate in step 2 (1 / mean event → engagement time). The generator sends 10x that
   rate for ``--burst-seconds`` (every incident a new one), plus ``--duplicates`` of
   the deliveries again (PagerDuty delivers at least once). Reported: answers, peak
   inbox depth (pending events), time to drain after the last delivery, and from the
   sandbox's request log that every incident got exactly the engagements and writes
   of an incident handled alone (nothing lost, nothing done twice).

    .venv/bin/python benchmarks/bench_webhooks.py [--rates 100 500] [--events 25] [--burst-seconds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import queue
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import RemoteSandbox, percentile  # noqa: E402
from tests.support.engagement import (  # noqa: E402
    BOT_EMAIL,
    applied_seed,
    client_for,
    org_and_policies,
    webhook_data,
)

from pdorgsync.logs import configure_logging  # noqa: E402
from pdorgsync.state.sqlite import Inbox  # noqa: E402 - after sys.path setup
from pdorgsync.webhooks import WEBHOOK_PATH, ReceiverHooks, create_app, sign  # noqa: E402
from pdorgsync.worker import Worker  # noqa: E402

SECRET = "bench-secret"
EXAMPLE = json.loads((ROOT / "tests" / "data" / "webhooks" / "incident.triggered.json").read_text())
MAX_CONNECTIONS = 64  # the open-loop generator's connection (thread) cap
MAX_RATE = 2000  # closed loop: deliveries prepared per second of run

Delivery = tuple[bytes, dict[str, str]]


class Served:
    """The app under uvicorn in a thread, configured as ``pdorgsync serve`` configures it.

    uvicorn binds host and port itself, as in the daemon. (Handing it a pre-bound
    socket, as tests/support/serving.py does, leaves Nagle's algorithm on for the accepted
    connections: every keep-alive request then waits ~40 ms for a delayed ACK, which
    measures the harness instead of the receiver.)
    """

    def __init__(self, app: Any) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, 10, "the receiver to start")
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _Secrets:
    def secrets(self) -> list[str]:
        return [SECRET]


def delivery(n: int, prefix: str, data: dict[str, Any] | None = None) -> Delivery:
    """A signed delivery of a distinct event (``data``: the incident, default a fake one)."""
    event = json.loads(json.dumps(EXAMPLE))
    event["event"]["id"] = f"{prefix}-{n}-{uuid.uuid4().hex}"
    # Fresh: deliveries older than the dedupe window are stored as ignored (issue 15).
    event["event"]["occurred_at"] = datetime.now(UTC).isoformat()
    if data is None:
        event["event"]["data"]["id"] = f"QBENCH{n % 1000:08d}"
    else:
        event["event"]["data"] = data
    raw = json.dumps(event).encode()
    return raw, {"X-PagerDuty-Signature": sign(raw, SECRET), "X-Webhook-Id": uuid.uuid4().hex}


# -- the load generator (runs in its own process) -----------------------------------


@dataclass
class Sample:
    index: int  # position in the job's deliveries (closed loop: order sent)
    scheduled: float  # time.time() the delivery was due (closed loop: sent)
    sent: float
    answered: float
    status: int  # 0: no answer (connection error or timeout)


def _generate(job: dict[str, Any], out: Any) -> None:
    out.put(generate(job))


def generate(job: dict[str, Any]) -> dict[str, Any]:
    """Send the job's deliveries; threads with one keep-alive ``http.client`` connection each.

    The standard library's client costs ~0.2 ms of CPU per request here; an asyncio
    httpx client cost 5-10 ms and saturated before the receiver did.
    """
    host, port = job["url"].removeprefix("http://").rsplit(":", 1)
    given: list[Delivery] | None = job.get("deliveries")
    if given is None:
        count = job.get("count") or int(job["seconds"] * MAX_RATE)
        given = [delivery(n, job["prefix"]) for n in range(count)]
    deliveries = given
    samples: list[Sample] = []
    local = threading.local()

    def send(n: int, scheduled: float) -> None:
        raw, headers = deliveries[n] if n >= 0 else delivery(-n, "warmup")
        sent = time.time()
        try:
            if getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
            local.conn.request("POST", WEBHOOK_PATH, body=raw, headers=headers)
            response = local.conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            local.conn.close()
            local.conn = None
            status = 0
        if n >= 0:
            samples.append(Sample(n, scheduled, sent, time.time(), status))

    warmup = job.get("warmup", 0)
    if job["mode"] == "closed":
        counter = iter(range(len(deliveries)))
        lock = threading.Lock()
        clients = job["clients"]
        begin: list[float] = []
        ready = threading.Barrier(clients, action=lambda: begin.append(time.time()))

        def client(k: int) -> None:
            for w in range(k, warmup, clients):  # warm-up, not counted
                send(-w - 1, time.time())
            ready.wait()
            deadline = begin[0] + job["seconds"]
            while time.time() < deadline:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                send(n, time.time())

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        started = begin[0]
    else:
        todo: queue.Queue[tuple[int, float] | None] = queue.Queue()

        def worker() -> None:
            while (item := todo.get()) is not None:
                send(*item)

        threads = [threading.Thread(target=worker) for _ in range(MAX_CONNECTIONS)]
        for t in threads:
            t.start()
        for w in range(warmup):  # warm-up, not counted
            todo.put((-w - 1, time.time()))
        while not todo.empty():
            time.sleep(0.01)
        time.sleep(0.1)
        started = time.time()
        interval = 1.0 / job["rate"]
        for n in range(len(deliveries)):
            due = started + n * interval
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            todo.put((n, due))
        for _ in threads:
            todo.put(None)
        for t in threads:
            t.join()
    return {"started": started, "samples": [s.__dict__ for s in samples]}


def run_generator(job: dict[str, Any]) -> tuple[float, list[Sample]]:
    """Run the load generator in a separate (spawned) process; (start time, samples)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_generate, args=(job, queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join(timeout=30)
    return result["started"], [Sample(**s) for s in result["samples"]]


# -- 1. the receiver alone ----------------------------------------------------------


@dataclass
class ReceiverRow:
    label: str
    mode: str
    sent: int
    duration: float  # first due -> last answer
    send_rate: float  # deliveries started per second by the generator
    statuses: Counter[int]
    stored: int
    latencies_ms: list[float] = field(default_factory=list)
    max_send_lag_ms: float = 0.0

    @property
    def throughput(self) -> float:
        return self.statuses.get(202, 0) / self.duration


@contextmanager
def receiver(
    hooks: ReceiverHooks | None = None, inbox: Inbox | None = None
) -> Iterator[tuple[str, Inbox]]:
    with tempfile.TemporaryDirectory() as tmp:
        box = inbox or Inbox(Path(tmp) / "bench.db")
        try:
            with Served(create_app(_Secrets(), box, hooks)) as url:
                yield url, box
        finally:
            if inbox is None:
                box.close()


def receiver_phase(label: str, job: dict[str, Any]) -> ReceiverRow:
    with receiver() as (url, inbox):
        started, samples = run_generator({**job, "url": url, "prefix": label, "warmup": 50})
        stored = sum(1 for e in inbox.events() if not e.event_id.startswith("warmup-"))
    end = max(s.answered for s in samples)
    sends = [s.sent for s in samples]
    row = ReceiverRow(
        label=label,
        mode=job["mode"],
        sent=len(samples),
        duration=end - started,
        send_rate=len(samples) / max(1e-9, max(sends) - started),
        statuses=Counter(s.status for s in samples),
        stored=stored,
        latencies_ms=[(s.answered - s.scheduled) * 1000 for s in samples],
        max_send_lag_ms=max((s.sent - s.scheduled) * 1000 for s in samples),
    )
    print(
        f"  receiver {label}: {row.throughput:.0f}/s, p50 {percentile(row.latencies_ms, 0.5):.1f} ms,"
        f" p99 {percentile(row.latencies_ms, 0.99):.1f} ms, {dict(row.statuses)}",
        file=sys.stderr,
        flush=True,
    )
    return row


def bench_receiver(
    rates: list[int], seconds: float, clients: list[int], sat_seconds: float
) -> list[ReceiverRow]:
    rows = [
        receiver_phase(f"{c} connections", {"mode": "closed", "clients": c, "seconds": sat_seconds})
        for c in clients
    ]
    for rate in rates:
        rows.append(
            receiver_phase(
                f"{rate}/s", {"mode": "open", "rate": rate, "count": int(rate * seconds)}
            )
        )
    return rows


def render_receiver(rows: list[ReceiverRow]) -> str:
    lines = [
        "### Receiver (signed deliveries stored in the SQLite inbox, answered 202)\n",
        "| offered load | generator | deliveries | answers | stored | throughput | p50 | p99 | max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.mode == "closed":
            load = "saturation"
            how = f"closed loop, {r.label}"
        else:
            load = r.label
            how = f"open loop, sent at {r.send_rate:.0f}/s (max lag {r.max_send_lag_ms:.0f} ms)"
        answers = ", ".join(
            f"{k if k else 'no answer'}: {v}" for k, v in sorted(r.statuses.items())
        )
        lat = r.latencies_ms
        lines.append(
            f"| {load} | {how} | {r.sent:,} | {answers} | {r.stored:,} | {r.throughput:.0f}/s "
            f"| {percentile(lat, 0.5):.1f} ms | {percentile(lat, 0.99):.1f} ms | {max(lat):.1f} ms |"
        )
    return "\n".join(lines)


# -- 2 and 3. the pipeline: receiver + worker + sandbox ------------------------------


class Pipeline:
    """Receiver and worker in this process (as in ``pdorgsync serve``), sandbox in its own."""

    def __init__(self, sandbox: RemoteSandbox, inbox: Inbox) -> None:
        org, policies = org_and_policies()
        self.sandbox = sandbox
        self.inbox = inbox
        self.pd = client_for(sandbox.base_url)
        self.worker = Worker(
            inbox,
            client_for(sandbox.base_url, max_attempts=2),
            org,
            policies,
            from_email=BOT_EMAIL,
            poll_interval=None,
            concurrency=4,  # WORKER_CONCURRENCY's default
        )
        self.worker.engager.directory.refresh()  # warm caches like a running daemon
        self.worker.engager.bot_user_id()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.worker.run, args=(self._stop,), daemon=True)
        self._server = Served(
            create_app(_Secrets(), inbox, ReceiverHooks(on_stored=self.worker.wake))
        )
        self.url = ""

    def __enter__(self) -> Pipeline:
        self._thread.start()
        self.url = self._server.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.stop()
        self._stop.set()
        self.worker.wake()
        self._thread.join(timeout=30)

    def incidents(self, count: int, prefix: str) -> list[dict[str, Any]]:
        """Create ``count`` P1 incidents on "Checkout API" in the sandbox."""
        service = next(s for s in self.pd.list_all("/services") if s["name"] == "Checkout API")
        priority = next(p for p in self.pd.list_all("/priorities") if p["name"] == "P1")
        body = {
            "type": "incident",
            "service": {"id": service["id"], "type": "service_reference"},
            "priority": {"id": priority["id"], "type": "priority_reference"},
        }
        return [
            self.pd.post(
                "/incidents", {"incident": {**body, "title": f"Checkout API {prefix} {n}"}}
            )["incident"]
            for n in range(count)
        ]

    def engaged_at(self, incident_id: str) -> list[float]:
        return [r.engaged_at.timestamp() for r in self.inbox.engagements(incident_id)]

    def writes(self) -> dict[str, Counter[str]]:
        """Successful writes per incident from the sandbox's request log: {incident: {route: n}}."""
        found: dict[str, Counter[str]] = {}
        for method, path, status in self.sandbox.requests():
            parts = path.split("?")[0].strip("/").split("/")
            if method == "GET" or status >= 300 or len(parts) < 3 or parts[0] != "incidents":
                continue
            found.setdefault(parts[1], Counter())[f"{method} /{'/'.join(parts[2:])}"] += 1
        return found


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class EngagementResult:
    latencies_ms: list[float]
    engagements: int  # per incident
    writes: Counter[str]  # per incident
    calls: float  # API requests per event (sandbox log)


def bench_engagement(pipe: Pipeline, events: int) -> EngagementResult:
    incidents = pipe.incidents(events, "sequential")
    samples: list[float] = []
    counts: set[int] = set()
    before = len(pipe.sandbox.requests())
    with httpx.Client(timeout=30) as http:
        for n, incident in enumerate(incidents):
            raw, headers = delivery(n, "seq", webhook_data(incident))
            sent = time.time()
            status = http.post(pipe.url + WEBHOOK_PATH, content=raw, headers=headers).status_code
            if status != 202:
                raise RuntimeError(f"delivery answered {status}")
            # The pack engages 4 departments for a P1 on Checkout API; wait for the
            # worker to finish the event (done), then read the ledger.
            wait_until(lambda: pipe.inbox.stats().pending == 0, 60, "the worker")
            times = pipe.engaged_at(incident["id"])
            counts.add(len(times))
            samples.append((max(times) - sent) * 1000)
    calls = (len(pipe.sandbox.requests()) - before) / events
    writes = pipe.writes()
    reference = writes[incidents[0]["id"]]
    if len(counts) != 1 or any(writes[i["id"]] != reference for i in incidents):
        raise RuntimeError(f"incidents handled alone differ: {counts} engagements")
    return EngagementResult(samples, counts.pop(), reference, calls)


@dataclass
class BurstResult:
    rate: float
    seconds: float
    incidents: int
    duplicates: int
    statuses: Counter[int]
    stored: int
    peak_depth: int
    burst_duration: float  # first due -> last answer
    drain_after: float  # last answer -> every incident engaged, inbox empty
    lost: int  # incidents with fewer engagements than one handled alone
    extra: int  # incidents with more engagements or writes than one handled alone
    answer_p99_ms: float
    engage_p50_s: float
    engage_max_s: float


def bench_burst(
    pipe: Pipeline,
    reference: EngagementResult,
    sustainable: float,
    seconds: float,
    dup_share: float,
) -> BurstResult:
    rate = 10 * sustainable
    count = max(1, round(rate * seconds))
    incidents = pipe.incidents(count, "burst")
    originals = [delivery(n, "burst", webhook_data(i)) for n, i in enumerate(incidents)]
    # Redeliveries (same event id and X-Webhook-Id), each some time after its original.
    rng = random.Random(7)
    deliveries = list(originals)
    for index in rng.sample(range(count), round(count * dup_share)):
        deliveries.insert(min(len(deliveries), index + rng.randint(1, 10)), originals[index])
    depth = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            depth[0] = max(depth[0], pipe.inbox.stats().pending)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started, samples = run_generator(
        {
            "url": pipe.url,
            "mode": "open",
            "rate": rate * len(deliveries) / count,  # originals arrive at 10x sustainable
            "count": len(deliveries),
            "deliveries": deliveries,
        }
    )
    last_answer = max(s.answered for s in samples)
    expected = reference.engagements

    def all_engaged() -> bool:
        return pipe.inbox.stats().pending == 0 and all(
            len(pipe.engaged_at(i["id"])) >= expected for i in incidents
        )

    wait_until(all_engaged, 600, "the burst to drain")
    drained = time.time()
    done.set()
    watcher.join()
    ids = {i["id"] for i in incidents}
    stored = sum(1 for e in pipe.inbox.events(limit=100_000) if e.incident_id in ids)
    writes = pipe.writes()
    engaged = {i["id"]: pipe.engaged_at(i["id"]) for i in incidents}
    lost = sum(1 for times in engaged.values() if len(times) < expected)
    extra = sum(
        1 for i in ids if len(engaged[i]) > expected or writes.get(i, Counter()) != reference.writes
    )
    first_due: dict[str, float] = {}
    for sample in sorted(samples, key=lambda s: s.index):
        incident_id = json.loads(deliveries[sample.index][0])["event"]["data"]["id"]
        first_due.setdefault(incident_id, sample.scheduled)
    to_engage = [max(engaged[i]) - first_due[i] for i in ids]
    return BurstResult(
        rate=rate,
        seconds=seconds,
        incidents=count,
        duplicates=len(deliveries) - count,
        statuses=Counter(s.status for s in samples),
        stored=stored,
        peak_depth=depth[0],
        burst_duration=last_answer - started,
        drain_after=drained - last_answer,
        lost=lost,
        extra=extra,
        answer_p99_ms=percentile([(s.answered - s.scheduled) * 1000 for s in samples], 0.99),
        engage_p50_s=percentile(to_engage, 0.5),
        engage_max_s=max(to_engage),
    )


def render_pipeline(
    result: EngagementResult, burst: BurstResult, latency: float, sustainable: float
) -> str:
    ms = result.latencies_ms
    writes = ", ".join(f"{n} {route}" for route, n in sorted(result.writes.items()))
    answers = ", ".join(
        f"{k if k else 'no answer'}: {v}" for k, v in sorted(burst.statuses.items())
    )
    return "\n".join(
        [
            f"### Event to engagement ({latency * 1000:.0f} ms injected per API call)\n",
            "| measure | value |",
            "| --- | --- |",
            f"| events (P1 on Checkout API, one at a time) | {len(ms)} |",
            f"| engagements per incident | {result.engagements} ({writes}) |",
            f"| API requests per event (reads included) | {result.calls:.0f} |",
            f"| delivery sent → all engagements in the ledger | p50 {percentile(ms, 0.5):.0f} ms,"
            f" p99 {percentile(ms, 0.99):.0f} ms, max {max(ms):.0f} ms, mean {statistics.fmean(ms):.0f} ms |",
            f"| sustainable rate of one worker thread (1 / mean; WORKER_CONCURRENCY=4 runs four) | {sustainable:.2f} events/s |",
            "",
            f"### Inbox under a 10x burst ({latency * 1000:.0f} ms per API call)\n",
            "| measure | value |",
            "| --- | --- |",
            f"| burst | {burst.incidents} new P1 incidents at {burst.rate:.1f}/s (10x sustainable)"
            f" for {burst.seconds:g} s, plus {burst.duplicates} redeliveries of the same events |",
            f"| answers | {answers} (p99 {burst.answer_p99_ms:.0f} ms) |",
            f"| events stored | {burst.stored} (distinct events sent: {burst.incidents}) |",
            f"| peak inbox depth | {burst.peak_depth} pending events |",
            f"| time to drain after the last delivery | {burst.drain_after:.1f} s"
            f" (burst {burst.burst_duration:.1f} s) |",
            f"| delivery → engaged during the burst | p50 {burst.engage_p50_s:.1f} s,"
            f" max {burst.engage_max_s:.1f} s |",
            f"| incidents with an engagement missing | {burst.lost} |",
            f"| incidents with an extra engagement or write | {burst.extra}"
            " (compared with the sandbox's request log of an incident handled alone) |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--rate-seconds", type=float, default=6.0, help="per offered rate")
    parser.add_argument("--saturation-clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--saturation-seconds", type=float, default=6.0)
    parser.add_argument("--events", type=int, default=25, help="event -> engagement samples")
    parser.add_argument("--api-latency", type=float, default=0.05)
    parser.add_argument("--burst-seconds", type=float, default=3.0)
    parser.add_argument("--duplicates", type=float, default=0.2, help="share redelivered")
    args = parser.parse_args(argv)
    configure_logging(level="error", fmt="json", stream=sys.stderr)
    rows = bench_receiver(
        args.rates, args.rate_seconds, args.saturation_clients, args.saturation_seconds
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        Inbox(Path(tmp) / "state.db") as inbox,
        RemoteSandbox(applied_seed(), latency=args.api_latency) as sandbox,
        Pipeline(sandbox, inbox) as pipe,
    ):
        result = bench_engagement(pipe, args.events)
        sustainable = 1000 / statistics.fmean(result.latencies_ms)
        print(f"  engagement: {sustainable:.2f}/s sustainable", file=sys.stderr, flush=True)
        burst = bench_burst(pipe, result, sustainable, args.burst_seconds, args.duplicates)
    print(render_receiver(rows))
    print(
        "\nLatency = scheduled send time → answer (open loop) or send → answer (closed loop),"
        " measured by the generator process on loopback; throughput = 202 answers / (last"
        " answer − first send). Above the saturation rate an open-loop run queues, and its"
        " latency grows with the length of the run.\n"
    )
    print(render_pipeline(result, burst, args.api_latency, sustainable))
    ok = burst.lost == 0 and burst.extra == 0 and set(burst.statuses) == {202}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
