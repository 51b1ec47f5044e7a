"""What ``/healthz``, ``/readyz`` and ``/metrics`` answer (SPEC §5), and the state-store
probes behind readiness.

The HTTP handlers only read ``Health`` (memory written by the loops and the daemon's
health thread), never the store: a scrape in a tight loop costs deliveries nothing.
Split from ``daemon.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pdorgsync.errors import PdOrgSyncError
from pdorgsync.metrics import CONTENT_TYPE_LATEST, Metrics
from pdorgsync.state import StateStore


@dataclass
class Health:
    """What /readyz reports; written by the loops and the health thread, read by HTTP
    handlers (which therefore never touch the store on the event loop)."""

    policies_loaded: bool = False
    last_reconcile_ok: bool | None = None  # None: no cycle finished yet
    last_reconcile_error: str | None = None
    last_reconcile_at: float | None = None
    store_problems: list[str] = field(default_factory=list)
    store_checked: bool = False
    stalled: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def problems(self) -> list[str]:
        with self.lock:
            problems = list(self.store_problems)
            if not self.store_checked:
                problems.append("state store not checked yet")
            if not self.policies_loaded:
                problems.append("policies not loaded")
            if self.last_reconcile_ok is False:
                problems.append(f"last reconcile failed: {self.last_reconcile_error}")
            problems.extend(f"{loop} made no progress" for loop in self.stalled)
        return problems


def file_problems(inbox: StateStore) -> list[str]:
    """A deleted or replaced state file, or a recent write failure (disk full,
    malformed database). Cheap enough for the event loop: one ``stat``, no query,
    no lock."""
    try:
        inbox.check_file()
    except PdOrgSyncError as exc:
        return [f"state store not usable: {exc}"]
    failure = inbox.write_failure()
    return [f"state store not writable: {failure}"] if failure is not None else []


def store_problems(inbox: StateStore) -> list[str]:
    """``file_problems`` and whether a write goes through. Run by the health thread,
    off the event loop: the write may wait for the lock held by a webhook store."""
    try:
        inbox.check_file()
        inbox.set_state("readyz.probe", str(time.time()))
    except PdOrgSyncError as exc:
        return [f"state store not writable: {exc}"]
    return file_problems(inbox)


def health_routes(
    health: Health, metrics: Metrics, live: Callable[[], list[str]] = list
) -> list[Route]:
    """``/healthz``, ``/readyz`` and ``/metrics`` (SPEC §5).

    They read what the loops and the health thread recorded, never the store: a
    scrape in a tight loop costs deliveries nothing. ``live`` adds checks cheap
    enough to run on every request (``file_problems``: a deleted state file
    shows at once, not at the health thread's next round).
    """

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_request: Request) -> Response:
        problems = health.problems()
        problems.extend(p for p in live() if p not in problems)
        status = 503 if problems else 200
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=status)

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
