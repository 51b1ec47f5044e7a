"""``Sandbox``: a stateful PagerDuty-compatible API on loopback, in a background thread.

Used by tests (fixtures in tests/conftest.py), ``pdorgsync sandbox`` and the demo.
It binds its socket before returning from ``start`` so callers never race the
server, and ``stop`` returns within about a second.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any

import uvicorn

from pdorgsync.errors import PdOrgSyncError
from pdorgsync.sandbox.app import Runtime, build_app
from pdorgsync.sandbox.faults import FAULT_KINDS, RANDOM_FAULT_KINDS
from pdorgsync.sandbox.seed import apply_seed
from pdorgsync.sandbox.state import State, utc_now
from pdorgsync.sandbox.validation import openapi
from pdorgsync.settings import SANDBOX_TOKEN


def random_seed_of(options: dict[str, Any]) -> int:
    value = options["random_seed"]
    return int(value) if isinstance(value, int) else 0


class Sandbox:
    """A PagerDuty account you can start, seed, break on purpose and inspect."""

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        *,
        token: str = SANDBOX_TOKEN,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        rate_limit_per_minute: int | None = None,
        random_seed: int = 0,
        clock: Callable[[], datetime] = utc_now,
        examples: bool = False,
        user_tokens: dict[str, str] | None = None,
    ) -> None:
        """``examples``: answer every request with PagerDuty's published response example
        for its operation (``sandbox/examples.py``) instead of the seeded account.
        ``user_tokens``: user-level API keys the sandbox accepts besides ``token``
        (an account-level key), each acting as the user with that email."""
        if not 0.0 <= failure_rate <= 1.0:
            raise PdOrgSyncError(f"failure rate must be between 0 and 1, got {failure_rate}")
        if latency < 0:
            raise PdOrgSyncError(f"latency must not be negative, got {latency}")
        openapi()  # parse the description now (once per process), not on the first request
        self._options = {
            "token": token,
            "latency": latency,
            "failure_rate": failure_rate,
            "rate_limit_per_minute": rate_limit_per_minute,
            "random_seed": random_seed,
            "examples": examples,
        }
        self._clock = clock
        self._seed = seed
        self._user_tokens = dict(user_tokens or {})
        self.base_url: str | None = None
        self.runtime = self._fresh_runtime(seed)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def _fresh_runtime(self, seed: dict[str, Any] | None) -> Runtime:
        state = State(
            random_seed=random_seed_of(self._options),
            clock=self._clock,
            base_url=self.base_url or "https://api.pagerduty.com",
        )
        if seed:
            apply_seed(state, seed)
        runtime = Runtime(state, **self._options)  # type: ignore[arg-type]  # options typed by __init__
        runtime.user_tokens = dict(self._user_tokens)
        return runtime

    # -- inspection -------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.runtime.state

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """Every request answered: ``(method, path, status)``."""
        return self.runtime.requests

    @property
    def validation_errors(self) -> list[str]:
        """Requests and responses that PagerDuty's OpenAPI description refuses.

        Waits first for the responses already sent to be checked (they are
        validated right after sending)."""
        self.runtime.settle()
        return self.runtime.validation_errors

    @property
    def token(self) -> str:
        return self.runtime.token

    def fail_next(self, n: int = 1, status: int = 429, retry_after: float = 1) -> None:
        """Answer the next ``n`` authenticated requests with ``status`` (429 gets Retry-After)."""
        with self.runtime.lock:
            self.runtime.forced.extend([(status, retry_after)] * n)

    def inject_faults(
        self,
        rate: float,
        kinds: tuple[str, ...] = RANDOM_FAULT_KINDS,
        *,
        burst: int = 1,
        slow_seconds: float = 2.0,
        retry_after: float = 0.0,
        lag_seconds: float = 2.0,
    ) -> None:
        """Break a fraction ``rate`` of requests with faults drawn from ``kinds`` (see ``Faults``)."""
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not 0.0 <= rate <= 1.0 or burst < 1:
            raise PdOrgSyncError(
                f"bad fault injection: rate={rate}, kinds={sorted(unknown)}, burst={burst}"
            )
        with self.runtime.lock:
            faults = self.runtime.faults
            faults.rate, faults.kinds, faults.burst = rate, tuple(kinds), burst
            faults.slow_seconds, faults.retry_after = slow_seconds, retry_after
            faults.lag_seconds = lag_seconds

    def fault_next(self, kind: str, n: int = 1, *, method: str | None = None) -> None:
        """Inject ``kind`` (one of ``FAULT_KINDS``, or ``"lag+<kind>"``) into the next ``n``
        requests (of ``method``)."""
        parts = kind.split("+")
        if (
            any(p not in FAULT_KINDS for p in parts)
            or len(parts) > 2
            or (len(parts) == 2 and "lag" not in parts)
        ):
            raise PdOrgSyncError(
                f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}"
            )
        with self.runtime.lock:
            self.runtime.faults.queued.extend([(kind, method)] * n)

    def set_clock(self, clock: Callable[[], datetime]) -> None:
        """Use ``clock`` for "now" until the next ``reset`` (tests that plan at a fixed time)."""
        with self.runtime.state.lock:
            self.runtime.state.clock = clock

    def upgrade_schedule(self, schedule_id: str) -> None:
        """Upgrade a schedule to shift-based (v3), as PagerDuty's upgrade tool does."""
        with self.state.lock:
            self.state.upgrade_schedule(schedule_id)

    def reset(self, seed: dict[str, Any] | None = None) -> None:
        """Forget everything and start over from ``seed`` (keeps the server running)."""
        runtime = self._fresh_runtime(seed)
        self.runtime.__dict__.update(runtime.__dict__)

    # -- lifecycle ----------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = a free port) and return the base URL once listening."""
        if self._server is not None:
            raise PdOrgSyncError("sandbox is already running")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this (Linux). Without it, every response after
        # the first on a keep-alive connection waits ~40 ms (Nagle vs delayed ACK):
        # uvicorn writes headers and body separately.
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise PdOrgSyncError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        bound_port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{bound_port}"
        self.state.base_url = self.base_url
        config = uvicorn.Config(
            build_app(self.runtime),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="pd-sandbox", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise PdOrgSyncError(f"sandbox failed to start on {self.base_url}")
            time.sleep(0.005)
        self._server, self._thread, self._socket = server, thread, sock
        return self.base_url

    def stop(self) -> None:
        """Stop listening; returns promptly even with open keep-alive connections."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=2)
        self._socket.close()
        self._server = self._thread = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        """Block until the server stops (foreground use by the CLI)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
