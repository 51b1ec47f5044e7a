"""A real ``pdorgsync serve`` process on a free loopback port, for the probes of issue 15.

The process itself is tests/support/daemon.py's; these fixtures run it against the
session's sandbox, with the catch-up poll off (the probes send their own events),
and stop every one at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pdorgsync.sandbox import Sandbox
from tests.support.daemon import Served, start_serve

NO_POLL = {"PDORGSYNC_POLL_INTERVAL": "0"}


@pytest.fixture
def serve(_sandbox_server: Sandbox, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(**env)`` starts a daemon on the session sandbox; all are stopped at teardown."""
    started: list[Served] = []

    def start(open_files: int | None = None, **extra: str) -> Served:
        assert _sandbox_server.base_url is not None
        served = start_serve(
            _sandbox_server.base_url, tmp_path, open_files=open_files, env={**NO_POLL, **extra}
        )
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
    served = start_serve(_sandbox_server.base_url, tmp_path_factory.mktemp("serve"), env=NO_POLL)
    yield served
    served.stop()
