"""The systemd notify protocol against a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdorgsync.notify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    try:
        yield sock, path
    finally:
        sock.close()


def test_ready_reaches_the_socket(notify_socket: tuple[socket.socket, str]) -> None:
    """READY=1 arrives as one datagram on NOTIFY_SOCKET, with the status line."""
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("listening on 127.0.0.1:8080")
    assert sock.recv(4096) == b"READY=1\nSTATUS=listening on 127.0.0.1:8080"


def test_watchdog_interval_is_half_of_watchdog_usec(
    notify_socket: tuple[socket.socket, str],
) -> None:
    """WATCHDOG_USEC=60s means a ping every 30 s, and the ping is WATCHDOG=1."""
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000"})
    assert notifier.watchdog_interval == 30.0
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_watchdog_for_another_pid_is_ignored() -> None:
    """A WATCHDOG_PID naming another process disables our pings (systemd semantics)."""
    notifier = Notifier({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog_interval is None


def test_without_systemd_every_call_is_a_quiet_no_op() -> None:
    """Outside systemd nothing is sent and nothing fails."""
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval is None


def test_a_vanished_socket_never_raises(tmp_path: Path) -> None:
    """If systemd's socket is gone the daemon keeps running: notify returns False."""
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    assert notifier.ready() is False
