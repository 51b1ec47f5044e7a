"""Bad input end to end: generated files and deliveries never crash, never leak the token or secrets.

Cross-cutting on purpose: the loaders, policy checks and receiver have their own
fuzz tests; here the whole CLI runs (``validate``, ``engage --event --dry-run``)
and the receiver answers, with a token and webhook secrets configured, and ALL
of their output (stdout, stderr, log lines) is scanned for those values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdorgsync.cli import main
from pdorgsync.state.sqlite import Inbox
from pdorgsync.webhooks import WEBHOOK_PATH, create_app, sign
from tests.support.webhooks import TestClient, envelope

ROOT = Path(__file__).resolve().parent.parent
ORG_TEXT = (ROOT / "examples" / "org.yaml").read_text(encoding="utf-8")
POLICY_FILES = sorted((ROOT / "policies").glob("*.yaml"))
TOKEN = "u+BadInputTok3nNeverShown"
SECRETS = ("whsec-BadInputSecretOne", "whsec-BadInputSecretTwo")
NEVER = (TOKEN, *SECRETS)
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Fragments that tend to break YAML, our models or our messages; the token and a
# secret are among them, so a message that echoes file content would leak them.
FRAGMENTS = st.sampled_from(
    [
        ":", "- ", "{", "}", "[", "]", "&a", "*a", "!!python/object:os.system", "\t", "\n", "  ",
        "'", '"', "#", "%", "@", "?", "|", ">", "~", "null", "yes", "on", "17:00", "1e999",
        "-1", "0x10", "\u202e", "\ud7ff", "\x00", "\ufeff", "é", "🙂", "{incident.nope}",
        "version: 2", "key: Bad Key", "<<: *a", TOKEN, SECRETS[0], "x" * 300,
    ]
)  # fmt: skip


def _mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    for position, cut, fragment in edits:
        at = position % (len(text) + 1)
        text = text[:at] + fragment + text[at + cut :]
    return text


EDITS = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 40), FRAGMENTS | st.text(max_size=20)),
    min_size=1,
    max_size=6,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A configured environment: token and two webhook secrets, state in tmp."""
    values = {
        "PDORGSYNC_API_TOKEN": TOKEN,
        "PDORGSYNC_WEBHOOK_SECRETS": ",".join(SECRETS),
        "PDORGSYNC_STATE_PATH": str(tmp_path / "state.db"),
        "PDORGSYNC_LOG_FORMAT": "json",
        "PDORGSYNC_LOG_LEVEL": "debug",
        "PDORGSYNC_API_URL": "http://127.0.0.1:9",  # discard port: nothing may call out
    }
    return values


def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    runner = CliRunner()
    old = Path.cwd()
    os.chdir(cwd)  # .env lookup and relative defaults stay inside the test's folder
    try:
        result = runner.invoke(main, args, env=env, catch_exceptions=True)
    finally:
        os.chdir(old)
    output = result.stdout + (result.stderr if result.stderr_bytes is not None else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"crashed: {result.exception!r}\n{output}")
    return result.exit_code, output


def _assert_clean(output: str) -> None:
    assert "Traceback" not in output, output
    for value in NEVER:
        assert value not in output, f"{value!r} leaked into the output:\n{output}"


@SETTINGS
@given(edits=EDITS)
def test_validate_on_generated_org_files_never_crashes_or_leaks(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], edits: list[tuple[int, int, str]]
) -> None:
    """A mangled org file: `validate` exits 0 or 1 with messages, never a traceback or a secret."""
    folder = tmp_path_factory.mktemp("org")
    org = folder / "org.yaml"
    org.write_bytes(_mutate(ORG_TEXT, edits).encode("utf-8", "surrogatepass"))
    code, output = _run(
        ["validate", "--org", str(org), "--policies", str(ROOT / "policies")], env, folder
    )
    assert code in (0, 1), output
    _assert_clean(output)


@SETTINGS
@given(which=st.integers(0, max(0, len(POLICY_FILES) - 1)), edits=EDITS)
def test_validate_on_generated_policy_files_never_crashes_or_leaks(
    tmp_path_factory: pytest.TempPathFactory,
    env: dict[str, str],
    which: int,
    edits: list[tuple[int, int, str]],
) -> None:
    """A mangled policy file in the default pack: clear result, never a traceback or a secret."""
    folder = tmp_path_factory.mktemp("policies")
    for index, source in enumerate(POLICY_FILES):
        text = source.read_text(encoding="utf-8")
        (folder / source.name).write_bytes(
            (_mutate(text, edits) if index == which else text).encode("utf-8", "surrogatepass")
        )
    code, output = _run(
        ["validate", "--org", str(ROOT / "examples" / "org.yaml"), "--policies", str(folder)],
        env,
        folder,
    )
    assert code in (0, 1), output
    _assert_clean(output)


BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"",
            b"\xef\xbb\xbf{}",
            b"\xff\xfe{\x00}\x00",
            '{"event": {"data": "é"}}'.encode("latin-1"),
            json.dumps({"event": {"event_type": TOKEN}}).encode(),
            json.dumps(envelope()).encode("utf-16"),
            json.dumps({"event": None}).encode(),
            b"[" * 5000,
        ]
    ),
    st.builds(
        lambda e: json.dumps(e).encode(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.just(SECRETS[1]),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=10,
        ),
    ),
)


@SETTINGS
@given(body=BODIES)
def test_engage_dry_run_on_malformed_events_never_crashes_or_leaks(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], body: bytes
) -> None:
    """`engage --event F --dry-run` on garbage: exit 0 or 1 with one clear line, never a secret."""
    folder = tmp_path_factory.mktemp("event")
    event = folder / "event.json"
    event.write_bytes(body)
    args = [
        "engage",
        "--event",
        str(event),
        "--dry-run",
        "--org",
        str(ROOT / "examples" / "org.yaml"),
        "--policies",
        str(ROOT / "policies"),
    ]
    code, output = _run(args, env, folder)
    assert code in (0, 1), output
    _assert_clean(output)


class _Secrets:
    def secrets(self) -> list[str]:
        return list(SECRETS)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    inbox = Inbox(tmp_path_factory.mktemp("receiver") / "state.db")
    with TestClient(create_app(_Secrets(), inbox)) as client:
        yield client
    inbox.close()


HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(
            [
                "application/json",
                "text/plain; charset=utf-16",
                "application/json; charset=latin-1",
                "x/y",
            ]
        ),
        "Content-Encoding": st.sampled_from(["gzip", "br", "identity", "bogus"]),
        "X-Webhook-Id": st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40
        ),
    },
)


@SETTINGS
@given(
    body=BODIES, headers=HEADERS, signing=st.sampled_from(["good", "old", "none", "wrong", "token"])
)
def test_receiver_never_answers_5xx_nor_logs_secrets(
    receiver: TestClient,
    capfd: pytest.CaptureFixture[str],
    body: bytes,
    headers: dict[str, str],
    signing: str,
) -> None:
    """Malformed bodies, headers and encodings, signed or not: 2xx/4xx only, logs free of secrets."""
    signature = {
        "good": sign(body, SECRETS[0]),
        "old": sign(body, SECRETS[1]),
        "none": None,
        "wrong": "v1=" + "0" * 64,
        "token": f"v1={TOKEN}",
    }[signing]
    if signature is not None:
        headers = {**headers, "X-PagerDuty-Signature": signature}
    response = receiver.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code < 500, response.text
    captured = capfd.readouterr()
    _assert_clean(captured.out + captured.err + response.text)


def test_the_scan_sees_what_validate_prints(tmp_path: Path, env: dict[str, str]) -> None:
    """The scan is not vacuous: validate's located error reaches the captured output."""
    org = tmp_path / "org.yaml"
    org.write_text("version: 1\norg: Bad Org\ndepartments: []\n", encoding="utf-8")
    code, output = _run(
        ["validate", "--org", str(org), "--policies", str(ROOT / "policies")], env, tmp_path
    )
    assert code == 1
    assert "org.yaml:2" in output
