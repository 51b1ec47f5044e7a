"""A minimal receiver + worker process for the crash test (killed with SIGKILL on purpose).

Usage: python tests/crash_runner.py STATE_DB API_URL PORT_FILE SECRET

Serves POST /webhooks/pagerduty with uvicorn on a free loopback port (written to
PORT_FILE once listening) and runs the worker in a thread, wired exactly as the
daemon wires them: ``create_app(..., ReceiverHooks(on_stored=worker.wake))``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdorgsync.inbox import Inbox  # noqa: E402 - after sys.path setup
from pdorgsync.loading import load_org, load_policies  # noqa: E402
from pdorgsync.pagerduty import PagerDutyClient  # noqa: E402
from pdorgsync.webhooks import ReceiverHooks, create_app  # noqa: E402
from pdorgsync.worker import Worker  # noqa: E402


class _Secrets:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def secrets(self) -> list[str]:
        return [self.secret]


def main() -> None:
    state, api_url, port_file, secret = sys.argv[1:5]
    org = load_org(ROOT / "examples" / "org.yaml").org
    policies = load_policies(ROOT / "policies", org).policies
    inbox = Inbox(state)
    client = PagerDutyClient("sandbox", api_url, "pdorgsync-bot@acme.test", max_attempts=2)
    worker = Worker(
        inbox,
        client,
        org,
        policies,
        from_email="pdorgsync-bot@acme.test",
        idle_wait=0.1,
        poll_interval=300,
    )
    app = create_app(_Secrets(secret), inbox, ReceiverHooks(on_stored=worker.wake))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )

    def announce() -> None:
        while not server.started:
            threading.Event().wait(0.01)
        tmp = Path(port_file + ".tmp")
        tmp.write_text(str(sock.getsockname()[1]))
        os.replace(tmp, port_file)

    threading.Thread(target=announce, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run(sockets=[sock])
    stop.set()
    worker.stop()
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
