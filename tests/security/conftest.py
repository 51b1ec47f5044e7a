"""A real ``pdorgsync serve`` process on a free loopback port, for the probes of issue 15.

Every process is bounded: it binds 127.0.0.1, is stopped with SIGTERM (then killed)
at teardown, and every client call has a timeout. The API is the session's sandbox.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdorgsync.sandbox import Sandbox
from tests.engagement_support import ORG_FILE, POLICY_DIR
from tests.webhook_fixtures import SECRET, envelope, signed

BOT_EMAIL = "pdorgsync-bot@acme.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """One running daemon: its URL, state file, log, and the process."""

    proc: subprocess.Popen[bytes]
    base: str
    port: int
    state: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        """Every log line, parsed: each must be one JSON object."""
        return [json.loads(line) for line in self.log().splitlines() if line.strip()]

    def post(self, body: bytes, headers: dict[str, str], timeout: float = 5) -> httpx.Response:
        return httpx.post(
            f"{self.base}/webhooks/pagerduty", content=body, headers=headers, timeout=timeout
        )

    def deliver(self, **kwargs: Any) -> httpx.Response:
        body, headers = signed(envelope(**kwargs))
        return self.post(body, headers)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def serve_env(sandbox_url: str, tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDORGSYNC_")}
    env.update(
        {
            "PDORGSYNC_API_URL": sandbox_url,
            "PDORGSYNC_FROM_EMAIL": BOT_EMAIL,
            "PDORGSYNC_ORG_FILE": str(ORG_FILE),
            "PDORGSYNC_POLICY_DIR": str(POLICY_DIR),
            "PDORGSYNC_STATE_PATH": str(tmp_path / "state.db"),
            "PDORGSYNC_WEBHOOK_SECRETS": SECRET,
            "PDORGSYNC_LISTEN": f"127.0.0.1:{port}",
            "PDORGSYNC_RECONCILE_INTERVAL": "3600",
            "PDORGSYNC_LOG_FORMAT": "json",
            "PDORGSYNC_POLL_INTERVAL": "0",
        }
    )
    env.update(extra)
    return env


def start_serve(
    sandbox_url: str, tmp_path: Path, *, open_files: int | None = None, **extra: str
) -> Served:
    """Start ``pdorgsync serve`` and wait until /healthz answers (AssertionError with the log).

    ``open_files``: run it with that ``RLIMIT_NOFILE`` (soft and hard), as a small
    ``LimitNOFILE`` would.
    """
    port = free_port()
    env = serve_env(sandbox_url, tmp_path, port, **extra)
    log_path = tmp_path / f"serve-{port}.log"

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pdorgsync", "serve"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            preexec_fn=limit if open_files is not None else None,  # only setrlimit
        )
    served = Served(proc, f"http://127.0.0.1:{port}", port, tmp_path / "state.db", log_path, env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}:\n{served.log()[-3000:]}")
        try:
            if httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    served.stop()
    raise AssertionError(f"serve did not answer /healthz within 30 s:\n{served.log()[-3000:]}")


@pytest.fixture
def serve(_sandbox_server: Sandbox, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(**env)`` starts a daemon on the session sandbox; all are stopped at teardown."""
    started: list[Served] = []

    def start(open_files: int | None = None, **extra: str) -> Served:
        assert _sandbox_server.base_url is not None
        served = start_serve(_sandbox_server.base_url, tmp_path, open_files=open_files, **extra)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture
def sandbox_base(_sandbox_server: Sandbox) -> str:
    """The session sandbox's URL (its state is whatever earlier tests left)."""
    assert _sandbox_server.base_url is not None
    return _sandbox_server.base_url


@pytest.fixture(scope="module")
def shared_serve(
    _sandbox_server: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One daemon for the probes of a module that do not disturb each other."""
    assert _sandbox_server.base_url is not None
    served = start_serve(_sandbox_server.base_url, tmp_path_factory.mktemp("serve"))
    yield served
    served.stop()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
