"""systemd notify protocol (``sd_notify``): READY=1, WATCHDOG=1, STOPPING=1.

The protocol is one datagram to the AF_UNIX socket named by ``NOTIFY_SOCKET``
(an abstract socket when it starts with ``@``). It is a few lines, so it lives
here rather than pulling in a C binding; without ``NOTIFY_SOCKET`` every call is
a no-op, so the same code runs under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends sd_notify messages when running under systemd (``Type=notify``)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = environ if environ is not None else dict(os.environ)
        self._address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        owned = not pid or (pid.isdigit() and int(pid) == os.getpid())
        self.watchdog_interval: float | None = (
            int(usec) / 1_000_000 / 2 if usec.isdigit() and int(usec) > 0 and owned else None
        )

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> bool:
        """Send one message; False (never an exception) when not under systemd or on error."""
        if self._address is None:
            return False
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall(message.encode("utf-8"))
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def reloading(self) -> bool:
        return self.notify("RELOADING=1")
