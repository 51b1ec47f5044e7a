"""Probes against a real ``pdorgsync serve`` and the CLI: regexes, settings, secrets,
the state file and the files read (issue 15 items 1-4 and 9, issue 14 item 9)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from pdorgsync.cli import main
from pdorgsync.models.events import parse_envelope
from pdorgsync.state.sqlite import Inbox
from tests.support.daemon import Served, run_pdorgsync, serve_env
from tests.support.engagement import ORG_FILE, POLICY_DIR
from tests.support.serving import free_port, wait_for
from tests.support.webhooks import envelope

pytestmark = pytest.mark.slow

TOKEN = "u+Zk3PqL9vXw7TbYs2Nd"  # made-up, shaped like a PagerDuty REST key
REDOS = """\
policies:
  - name: redos-probe
    on: [incident.triggered]
    when:
      title_regex: "(a+)+$"
    engage:
      - department: support
        as: subscriber
"""


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A stand-in for an attacker's server or a proxy: answers 200, records headers."""

    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def attacker() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


# -- item 1: regexes -----------------------------------------------------------------------


def test_backtracking_regex_does_not_freeze_the_daemon(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """`(a+)+$` against a long title: /healthz and deliveries answer at once, the event is handled."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    (policies / "zz-redos.yaml").write_text(REDOS, encoding="utf-8")
    served = serve(PDORGSYNC_POLICY_DIR=str(policies))
    data = {**envelope()["event"]["data"], "title": "a" * 5000 + "!"}
    assert served.deliver(event_id="redos", incident=data).status_code == 202
    started = time.monotonic()
    for _ in range(5):
        assert httpx.get(f"{served.base}/healthz", timeout=2).status_code == 200
        assert served.deliver().status_code == 202
    assert time.monotonic() - started < 5

    def handled() -> bool:
        with Inbox(served.state) as inbox:
            event = inbox.get("redos")
            return event is not None and event.status != "pending"

    wait_for(handled, timeout=15, what="the event with the long title to be handled")
    started = time.monotonic()
    assert served.stop() == 0
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"(a)\\1", "position 3: invalid escape sequence"),
        ("(?<=down)time", "position 0: invalid perl operator: (?<="),
    ],
)
def test_validate_refuses_what_re2_cannot_compile(
    tmp_path: Path, pattern: str, expected: str
) -> None:
    """Backreferences and lookaround are refused at validate time, with the position."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(REDOS.replace("(a+)+$", pattern), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["validate", "--org", str(ORG_FILE), "--policies", str(policies)]
    )
    assert result.exit_code == 1
    assert "p.yaml:5:20: policies[0].when.title_regex" in result.output
    assert expected in result.output


def test_poison_event_is_dead_lettered_after_bounded_claims(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """An event whose handling killed the process eight times is dead-lettered, not claimed again."""
    state = tmp_path / "state.db"
    body = envelope(event_id="poison")
    with Inbox(state) as inbox:
        inbox.store(parse_envelope(body), json.dumps(body))
        for _ in range(8):  # claimed, then the process died (watchdog kill) each time
            assert inbox.claim() is not None
            inbox.release_claims()
    served = serve()

    def dead() -> bool:
        with Inbox(served.state) as inbox:
            event = inbox.get("poison")
            return event is not None and event.status == "dead"

    wait_for(dead, timeout=15, what="the poison event to be dead-lettered")
    with Inbox(served.state) as inbox:
        event = inbox.get("poison")
        assert event is not None
        assert "claimed 9 times without finishing" in (event.last_error or "")


# -- item 2 and issue 14 item 9: where the token goes -------------------------------------


def test_api_url_from_dotenv_never_gets_the_token(
    tmp_path: Path, attacker: tuple[str, list[dict[str, str]]]
) -> None:
    """A .env naming another host is refused by serve and plan; the host hears nothing."""
    url, seen = attacker
    (tmp_path / ".env").write_text(f"PDORGSYNC_API_URL={url}\n", encoding="utf-8")
    env = serve_env(url, tmp_path, free_port(), PDORGSYNC_API_TOKEN=TOKEN)
    del env["PDORGSYNC_API_URL"]  # CI exports only the token
    for args in (["serve"], ["plan", "--org", str(ORG_FILE)]):
        result = run_pdorgsync(args, env, tmp_path)
        assert result.returncode == 1, result.stderr
        assert "PDORGSYNC_API_URL from a .env file" in result.stderr
        assert "Traceback" not in result.stderr
        assert TOKEN not in result.stderr + result.stdout
    assert seen == []


def test_loopback_proxy_is_not_sandbox_mode(
    tmp_path: Path, attacker: tuple[str, list[dict[str, str]]]
) -> None:
    """A loopback API_URL that is not pdorgsync's sandbox still needs a token (asked without one)."""
    url, seen = attacker
    env = serve_env(url, tmp_path, free_port())
    result = run_pdorgsync(["serve"], env, tmp_path)
    assert result.returncode == 1
    assert "PDORGSYNC_API_TOKEN is not set" in result.stderr
    assert all("Authorization" not in headers for headers in seen)


def test_sandbox_identifies_itself_and_every_command_names_its_api(
    sandbox_base: str, tmp_path: Path
) -> None:
    """Against the sandbox no token is needed, and stderr says which API is used."""
    url = sandbox_base
    env = serve_env(url, tmp_path, free_port())
    result = run_pdorgsync(["plan", "--org", str(ORG_FILE)], env, tmp_path)
    assert result.returncode in (0, 2), result.stderr
    assert f"pdorgsync: API {url} (pdorgsync sandbox)" in result.stderr


# -- item 3: secrets in errors and tracebacks ---------------------------------------------


def test_two_line_token_file_is_one_clear_error(tmp_path: Path) -> None:
    """A token file with two lines: one line naming the file, never the token, even with --debug."""
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\nsecond-line-{TOKEN[::-1]}\n", encoding="utf-8")
    token_file.chmod(0o600)
    env = serve_env("https://api.pagerduty.com", tmp_path, free_port())
    env["PDORGSYNC_API_TOKEN_FILE"] = str(token_file)
    result = run_pdorgsync(["--debug", "plan", "--org", str(ORG_FILE)], env, tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "PDORGSYNC_API_TOKEN_FILE" in errors[0]
    assert "line break" in errors[0]
    assert TOKEN not in result.stderr
    assert TOKEN[::-1] not in result.stderr


def test_debug_traceback_is_redacted(tmp_path: Path) -> None:
    """--debug prints the traceback, scrubbed of the token even when the settings did not load."""
    env = serve_env("https://api.pagerduty.com", tmp_path, free_port())
    env["PDORGSYNC_API_TOKEN"] = TOKEN
    env["PDORGSYNC_LISTEN"] = TOKEN  # a value echoed in the error and its traceback
    result = run_pdorgsync(["--debug", "serve"], env, tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "PDORGSYNC_LISTEN" in result.stderr
    assert TOKEN not in result.stderr


def test_world_readable_token_file_is_warned_about(sandbox_base: str, tmp_path: Path) -> None:
    """A token file other users can read gets a warning on stderr."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    token_file.chmod(0o644)
    env = serve_env(sandbox_base, tmp_path, free_port())
    env["PDORGSYNC_API_TOKEN_FILE"] = str(token_file)
    env["PDORGSYNC_RATE_LIMIT_PER_MINUTE"] = "0"
    result = run_pdorgsync(["plan", "--org", str(ORG_FILE)], env, tmp_path)
    assert f"PDORGSYNC_API_TOKEN_FILE {token_file} is readable by other users" in result.stderr
    assert TOKEN not in result.stderr


# -- item 4: the state file --------------------------------------------------------------


def test_deleted_state_file_fails_deliveries_and_readiness(serve: Callable[..., Served]) -> None:
    """After rm state.db* under the daemon, deliveries get 503 (PagerDuty retries), /readyz 503."""
    served = serve()
    assert served.deliver().status_code == 202
    assert httpx.get(f"{served.base}/readyz", timeout=5).status_code == 200
    for path in served.state.parent.glob(served.state.name + "*"):
        path.unlink()
    assert served.deliver().status_code == 503
    ready = httpx.get(f"{served.base}/readyz", timeout=5)
    assert ready.status_code == 503
    assert any("deleted" in problem for problem in ready.json()["problems"])


def test_damaged_state_file_is_refused_at_start(tmp_path: Path) -> None:
    """A state file that is not a database: serve exits 1 with one line, nothing listens."""
    (tmp_path / "state.db").write_bytes(b"\x00garbage" * 4096)
    env = serve_env("http://127.0.0.1:9", tmp_path, free_port(), PDORGSYNC_API_TOKEN=TOKEN)
    result = run_pdorgsync(["serve"], env, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "state.db" in result.stderr


# -- item 9: unbounded file reads --------------------------------------------------------


def test_org_file_must_be_a_small_regular_file(tmp_path: Path) -> None:
    """/dev/zero, a FIFO and a 3 MB file are each refused at once with a located line."""
    fifo = tmp_path / "org.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * 300_000)
    for org, expected in (
        ("/dev/zero", "is not a regular file"),
        (str(fifo), "is not a regular file"),
        (str(big), "the file is too large"),
    ):
        started = time.monotonic()
        result = CliRunner().invoke(main, ["validate", "--org", org, "--policies", str(POLICY_DIR)])
        assert result.exit_code == 1
        assert expected in result.output, result.output
        assert time.monotonic() - started < 5


def test_sighup_with_a_fifo_org_keeps_the_watchdog_fed(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """SIGHUP after the org file became a FIFO: reload refused, WATCHDOG=1 keeps coming."""
    org = tmp_path / "org.yaml"
    shutil.copy(ORG_FILE, org)
    sock_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(sock_path)
        served = serve(
            PDORGSYNC_ORG_FILE=str(org), NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="1000000"
        )
        org.unlink()
        os.mkfifo(org)
        served.proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: "reload.refused" in served.log(), timeout=10, what="the reload to be refused"
        )
        assert "is not a regular file" in served.log()
        sock.settimeout(5)
        deadline = time.monotonic() + 5
        pings = 0
        while time.monotonic() < deadline and pings < 2:
            if b"WATCHDOG=1" in sock.recv(4096):
                pings += 1
        assert pings == 2
        assert httpx.get(f"{served.base}/healthz", timeout=2).status_code == 200
