"""Shared helpers of the benchmark scripts: generated org files and sandbox accounts.

``org_file(n)`` is an org of ``n`` departments (3 people each, a weekly schedule, an
escalation policy, a service); ``account(n)`` is a sandbox seed already in sync with
it; ``users_only(n)`` holds just its people (an apply from empty). Also: the API call
bounds the reports print next to the measured counts, a scaled clock for the rate
limit benchmark, and peak-memory measurement.

Moved here from bench_plan.py (helper F's) so every benchmark uses the same data.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from pdorgsync.models.org import Org  # noqa: E402

PEOPLE_PER_DEPT = 3
ORG = "bench"


def email(i: int) -> str:
    return f"user{i}@bench.test"


def people(n: int, i: int) -> list[str]:
    return [
        email((i * PEOPLE_PER_DEPT + k) % (n * PEOPLE_PER_DEPT)) for k in range(PEOPLE_PER_DEPT)
    ]


def org_file(n: int) -> Org:
    departments = []
    for i in range(n):
        crew = people(n, i)
        departments.append(
            {
                "key": f"d{i}",
                "name": f"Dept {i}",
                "point_of_contact": crew[0],
                "members": crew,
                "schedule": {
                    "layers": [
                        {
                            "name": "Primary",
                            "rotation": "weekly",
                            "start": "2026-01-05T09:00:00",
                            "users": crew,
                        }
                    ]
                },
                "escalation_policy": {"levels": [{"targets": ["schedule"]}]},
                "service": {"urgency": "high"},
            }
        )
    return Org.model_validate({"version": 1, "org": ORG, "departments": departments})


def account(n: int) -> dict[str, Any]:
    """A sandbox seed that already matches ``org_file(n)``."""
    seed: dict[str, Any] = {
        "users": [
            {"name": f"User {i}", "email": email(i), "role": "user"}
            for i in range(n * PEOPLE_PER_DEPT)
        ],
        "teams": [],
        "schedules": [],
        "escalation_policies": [],
        "services": [],
    }
    for i in range(n):
        crew = people(n, i)
        name = f"Dept {i}"
        description = f"{name}\n\nManaged by pdorgsync (org={ORG}, department=d{i})"
        seed["teams"].append(
            {
                "name": name,
                "description": description,
                "members": [
                    {"user": u, "role": "manager" if u == crew[0] else "responder"} for u in crew
                ],
            }
        )
        seed["schedules"].append(
            {
                "name": f"{name} On-Call",
                "description": description,
                "time_zone": "Etc/UTC",
                "layers": [
                    {
                        "name": "Primary",
                        "start": "2026-01-05T09:00:00Z",
                        "rotation_virtual_start": "2026-01-05T09:00:00Z",
                        "rotation_turn_length_seconds": 604800,
                        "users": crew,
                    }
                ],
            }
        )
        seed["escalation_policies"].append(
            {
                "name": f"{name} Escalation",
                "description": description,
                "num_loops": 0,
                "team": name,
                "rules": [{"delay_minutes": 30, "targets": [f"schedule:{name} On-Call"]}],
            }
        )
        seed["services"].append(
            {
                "name": name,
                "description": description,
                "escalation_policy": f"{name} Escalation",
                "urgency": "high",
            }
        )
    return seed


def pages(count: int) -> int:
    return max(1, math.ceil(count / 100))


def users_only(n: int) -> dict[str, Any]:
    """The people of ``org_file(n)`` and nothing else: an apply from empty."""
    return {"users": account(n)["users"]}


# -- API call bounds ----------------------------------------------------------------


def list_pages(n: int) -> int:
    """One walk of users, teams, schedules, escalation policies and services."""
    return pages(n * PEOPLE_PER_DEPT) + 4 * pages(n)


def plan_lower_bound(n: int) -> int:
    """Issue 7's lower bound: list pages + one detail or render request per schedule.

    (pdorgsync's no-change plan spends no request per schedule, since the layers come
    with the schedule list, but one ``GET /teams/{id}/members`` page per team, which no
    list returns; with one team per schedule both come to ``list_pages(n) + n``.)
    """
    return list_pages(n) + n


def per_object_reads(n: int) -> int:
    """Issue 7's refresh-everything tool: list pages + one GET per managed object (team,
    schedule, escalation policy, service) + one members page per team."""
    return list_pages(n) + 4 * n + n * pages(PEOPLE_PER_DEPT)


LIST_ROUTES = frozenset({"/users", "/teams", "/schedules", "/escalation_policies", "/services"})


def breakdown(calls: Mapping[tuple[str, str], int]) -> str:
    """A client's ``calls`` Counter as "L list pages + N GET /route + ... + W writes"."""
    lists = sum(
        n for (method, route), n in calls.items() if method == "GET" and route in LIST_ROUTES
    )
    reads = sorted(
        (route, n)
        for (method, route), n in calls.items()
        if method == "GET" and route not in LIST_ROUTES
    )
    writes = sum(n for (method, _route), n in calls.items() if method != "GET")
    parts = [f"{lists:,} list pages"] + [f"{n:,} GET {route}" for route, n in reads]
    if writes:
        parts.append(f"{writes:,} writes")
    return " + ".join(parts)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scaled_clocks(
    scale: float,
) -> tuple[Callable[[], float], Callable[[float], None], Callable[[], datetime]]:
    """(monotonic, sleep, utc now) where time runs ``scale`` times faster than the wall clock.

    Used to run minutes of rate-limited traffic in seconds: the sandbox's token bucket
    (its injected clock), the client-side limiter and the client's retry sleeps all see
    the same accelerated time, so "960 requests per minute" keeps its meaning.
    """
    t0 = time.monotonic()
    start = datetime.now(UTC)

    def monotonic() -> float:
        return t0 + (time.monotonic() - t0) * scale

    def sleep(seconds: float) -> None:
        time.sleep(max(0.0, seconds) / scale)

    def now() -> datetime:
        return start + timedelta(seconds=(time.monotonic() - t0) * scale)

    return monotonic, sleep, now


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- a sandbox in its own process ----------------------------------------------------
#
# The benchmarks measure pdorgsync, not the sandbox: running the sandbox in a child
# process keeps its CPU and memory out of the client's wall time and peak RSS.


def _serve(seed: dict[str, Any], options: dict[str, Any], scale: float, conn: Any) -> None:
    from pdorgsync.logs import configure_logging
    from pdorgsync.sandbox import Sandbox

    configure_logging(level="error", fmt="console")
    if scale != 1.0:
        options = {**options, "clock": scaled_clocks(scale)[2]}
    sandbox = Sandbox(seed, **options)
    conn.send(sandbox.start())
    while True:
        command = conn.recv()
        if command == "stats":
            statuses: dict[int, int] = {}
            for _method, _path, status in list(sandbox.requests):
                statuses[status] = statuses.get(status, 0) + 1
            conn.send(statuses)
        elif command == "requests":
            conn.send(list(sandbox.requests))
        else:
            sandbox.stop()
            conn.send("stopped")
            return


class RemoteSandbox:
    """``Sandbox(seed, **options)`` served by a child process; ``scale`` speeds up its clock."""

    def __init__(self, seed: dict[str, Any], *, scale: float = 1.0, **options: Any) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(seed, options, scale, child), daemon=True
        )
        self.base_url = ""

    def __enter__(self) -> RemoteSandbox:
        self._process.start()
        if not self._conn.poll(300):
            raise RuntimeError("the sandbox process did not start")
        self.base_url = self._conn.recv()
        return self

    def statuses(self) -> dict[int, int]:
        """How many responses the sandbox sent per HTTP status."""
        self._conn.send("stats")
        result: dict[int, int] = self._conn.recv()
        return result

    def requests(self) -> list[tuple[str, str, int]]:
        """The sandbox's request log: (method, path, status) in arrival order."""
        self._conn.send("requests")
        result: list[tuple[str, str, int]] = self._conn.recv()
        return result

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.send("stop")
            self._conn.poll(10)
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
