"""A real ``pdorgsync serve`` process for tests: its environment, its start and its end.

Every process is bounded: it binds 127.0.0.1 on a free port, its output goes to a log
file in the test's folder, it is stopped with SIGTERM (then killed), and every client
call has a timeout. Used by the crash, fault, replica and security tests.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pdorgsync.settings import Settings, load_settings
from tests.support.paths import BOT_EMAIL, ORG_FILE, POLICY_DIR
from tests.support.serving import free_port, wait_for
from tests.support.webhooks import SECRET, envelope, signed

SERVE = [sys.executable, "-m", "pdorgsync", "serve"]
# Set by systemd (or by a test that plays it): never inherited from the test run.
_NOT_INHERITED = ("NOTIFY_SOCKET", "WATCHDOG_USEC")


def serve_env(api_url: str, tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of a daemon on ``127.0.0.1:port`` against ``api_url``: the example
    org and policies, the state in ``tmp_path/state.db``, JSON logs; ``extra`` overrides.
    Nothing ``PDORGSYNC_*`` leaks in from the environment the tests run in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PDORGSYNC_") and k not in _NOT_INHERITED
    }
    env.update(
        {
            "PDORGSYNC_API_URL": api_url,
            "PDORGSYNC_FROM_EMAIL": BOT_EMAIL,
            "PDORGSYNC_ORG_FILE": str(ORG_FILE),
            "PDORGSYNC_POLICY_DIR": str(POLICY_DIR),
            "PDORGSYNC_STATE_PATH": str(tmp_path / "state.db"),
            "PDORGSYNC_WEBHOOK_SECRETS": SECRET,
            "PDORGSYNC_LISTEN": f"127.0.0.1:{port}",
            "PDORGSYNC_RECONCILE_INTERVAL": "3600",
            "PDORGSYNC_LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


def run_pdorgsync(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m pdorgsync ARGS`` to its end (a command, or a serve that must refuse to
    start), output captured as text; never raises on the exit code."""
    return subprocess.run(
        [sys.executable, "-m", "pdorgsync", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn_serve(
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """``pdorgsync serve`` in the background, stdout and stderr to ``log_path``."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            SERVE,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            preexec_fn=preexec_fn,  # only setrlimit, where given
        )


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

    def answers(self, path: str = "/healthz") -> bool:
        """``path`` answers 200 (False while nothing listens yet)."""
        try:
            return httpx.get(f"{self.base}{path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

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


def start_serve(
    api_url: str,
    tmp_path: Path,
    *,
    ready: str = "/healthz",
    name: str | None = None,
    open_files: int | None = None,
    env: dict[str, str] | None = None,
    **extra: str,
) -> Served:
    """Start ``pdorgsync serve`` (environment: :func:`serve_env`, ``env``, ``extra``) and wait
    until ``ready`` answers 200; AssertionError with the log's end if it exits or stays
    silent for 30 s. The log is ``tmp_path/{name}.log`` (default ``serve-{port}``).

    ``open_files``: run it with that ``RLIMIT_NOFILE`` (soft and hard), as a small
    ``LimitNOFILE`` would.
    """
    port = free_port()
    env = serve_env(api_url, tmp_path, port, **{**(env or {}), **extra})
    log_path = tmp_path / f"{name or f'serve-{port}'}.log"

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    proc = spawn_serve(env, tmp_path, log_path, limit if open_files is not None else None)
    served = Served(
        proc,
        f"http://127.0.0.1:{port}",
        port,
        Path(env["PDORGSYNC_STATE_PATH"]),
        log_path,
        env,
    )

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}:\n{served.log()[-3000:]}")
        return served.answers(ready)

    try:
        wait_for(up, timeout=30, what=f"serve to answer {ready}")
    except AssertionError as error:
        served.stop()
        if proc.returncode is not None and "serve exited" in str(error):
            raise
        raise AssertionError(f"{error}:\n{served.log()[-3000:]}") from None
    return served


def serve_one_worker(
    state: Path, api_url: str, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``pdorgsync serve`` on ``state`` handling one incident at a time, so that a kill
    lands while later incidents still wait (with four workers they all finish together,
    before any kill); the process and its URL, once /healthz answers."""
    served = start_serve(
        api_url, tmp_path, PDORGSYNC_STATE_PATH=str(state), PDORGSYNC_WORKER_CONCURRENCY="1"
    )
    return served.proc, served.base


def daemon_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an in-process ``Daemon``: the example org and policies, the state in
    ``tmp_path``, any free port, an API nothing answers on; ``overrides`` win."""
    values: dict[str, Any] = {
        "api_url": "http://127.0.0.1:9",
        "from_email": BOT_EMAIL,
        "org_file": ORG_FILE,
        "policy_dir": POLICY_DIR,
        "state_path": tmp_path / "state.db",
        "webhook_secrets": SECRET,
        "listen": "127.0.0.1:0",
        **overrides,
    }
    return load_settings(**values)
