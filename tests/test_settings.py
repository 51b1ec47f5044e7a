"""Settings: where the token comes from and how bad variables are reported."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from pdorgsync.errors import ConfigError
from pdorgsync.settings import SANDBOX_TOKEN, Settings, load_settings

TOKEN = "u+abcdEFGH1234ijkl"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PDORGSYNC_* variables, no systemd credentials, and an empty working directory."""
    for name in list(os.environ):
        if name.startswith("PDORGSYNC_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_token_from_env_is_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    """PDORGSYNC_API_TOKEN is used, surrounding whitespace removed."""
    monkeypatch.setenv("PDORGSYNC_API_TOKEN", f"  {TOKEN}\n")
    assert load_settings().token() == TOKEN


def test_token_from_file_is_stripped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PDORGSYNC_API_TOKEN_FILE is read and its trailing newline dropped."""
    secret = tmp_path / "token"
    secret.write_text(f"\n{TOKEN}  \n", encoding="utf-8")
    monkeypatch.setenv("PDORGSYNC_API_TOKEN_FILE", str(secret))
    assert load_settings().token() == TOKEN


def test_token_from_systemd_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$CREDENTIALS_DIRECTORY/api-token (systemd LoadCredential=) supplies the token."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api-token").write_text(TOKEN + "\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_settings().token() == TOKEN


def test_token_precedence_env_over_file_over_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The variable wins over the file, which wins over the systemd credential."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api-token").write_text("from-credentials", encoding="utf-8")
    (tmp_path / "token").write_text("from-file", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("PDORGSYNC_API_TOKEN_FILE", str(tmp_path / "token"))
    assert load_settings().token() == "from-file"
    monkeypatch.setenv("PDORGSYNC_API_TOKEN", "from-env")
    assert load_settings().token() == "from-env"


def test_token_from_dotenv_file(clean_env: Path) -> None:
    """A .env file in the working directory is read."""
    (clean_env / ".env").write_text(f"PDORGSYNC_API_TOKEN={TOKEN}\n", encoding="utf-8")
    assert load_settings().token() == TOKEN


@pytest.mark.parametrize("content", ["", "  \n"])
def test_empty_token_file_is_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    """An empty token file is reported naming the variable, not used as an empty token."""
    (tmp_path / "token").write_text(content, encoding="utf-8")
    monkeypatch.setenv("PDORGSYNC_API_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(ConfigError, match=r"PDORGSYNC_API_TOKEN_FILE.*empty"):
        load_settings().token()


def test_missing_token_file_is_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A token file that cannot be read is a one-line ConfigError naming the variable."""
    monkeypatch.setenv("PDORGSYNC_API_TOKEN_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="PDORGSYNC_API_TOKEN_FILE: cannot read"):
        load_settings().token()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765", "http://localhost:8080/", "http://[::1]:9000"]
)
def test_loopback_url_alone_still_needs_a_token(url: str) -> None:
    """A loopback API URL may be a proxy to PagerDuty: no token is still an error (SPEC §4)."""
    settings = load_settings(api_url=url)
    with pytest.raises(ConfigError, match="PDORGSYNC_API_TOKEN"):
        settings.token()
    assert settings.effective_rate_limit() == 900
    assert settings.token(sandbox=True) == SANDBOX_TOKEN  # once the server said it is ours
    assert settings.effective_rate_limit(sandbox=True) is None
    assert settings.sensitive_values() == []


def test_missing_token_names_variable() -> None:
    """Against real PagerDuty a missing token is a ConfigError naming PDORGSYNC_API_TOKEN."""
    settings = load_settings()
    assert settings.is_pagerduty
    with pytest.raises(ConfigError, match="PDORGSYNC_API_TOKEN") as info:
        settings.token()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("listen", ["8080", "localhost:", ":8080", "host:http", "0.0.0.0:70000"])
def test_invalid_listen_names_variable(monkeypatch: pytest.MonkeyPatch, listen: str) -> None:
    """A LISTEN that is not HOST:PORT is a ConfigError naming PDORGSYNC_LISTEN."""
    monkeypatch.setenv("PDORGSYNC_LISTEN", listen)
    with pytest.raises(ConfigError, match=r"^PDORGSYNC_LISTEN: "):
        load_settings()


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("[::1]:9000", "::1", 9000),
        ("0.0.0.0:1", "0.0.0.0", 1),
    ],
)
def test_listen_parsed(listen: str, host: str, port: int) -> None:
    """LISTEN splits into the host and port the receiver binds."""
    settings = load_settings(listen=listen)
    assert (settings.listen_host, settings.listen_port) == (host, port)


def test_invalid_mode_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown RECONCILE_MODE is reported with the variable name."""
    monkeypatch.setenv("PDORGSYNC_RECONCILE_MODE", "yolo")
    with pytest.raises(ConfigError, match=r"^PDORGSYNC_RECONCILE_MODE: "):
        load_settings()


def test_log_level_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOG_LEVEL=DEBUG is accepted."""
    monkeypatch.setenv("PDORGSYNC_LOG_LEVEL", "DEBUG")
    assert load_settings().log_level == "debug"


def test_webhook_secrets_and_sensitive_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma-separated webhook secrets are split; token and secrets are all marked sensitive."""
    monkeypatch.setenv("PDORGSYNC_API_TOKEN", TOKEN)
    monkeypatch.setenv("PDORGSYNC_WEBHOOK_SECRETS", " old-secret-1 , new-secret-2 ,")
    settings = load_settings()
    assert settings.secrets() == ["old-secret-1", "new-secret-2"]
    assert sorted(settings.sensitive_values()) == sorted(["old-secret-1", "new-secret-2", TOKEN])


def test_secrets_hidden_from_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Printing the settings never shows the token or webhook secrets."""
    monkeypatch.setenv("PDORGSYNC_API_TOKEN", TOKEN)
    monkeypatch.setenv("PDORGSYNC_WEBHOOK_SECRETS", "whsec-abcdef")
    text = repr(Settings()) + str(Settings())
    assert TOKEN not in text
    assert "whsec-abcdef" not in text


def test_require_from_email_names_variable() -> None:
    """Commands needing a requester say PDORGSYNC_FROM_EMAIL is missing."""
    with pytest.raises(ConfigError, match="PDORGSYNC_FROM_EMAIL"):
        load_settings().require_from_email()


def test_poll_and_retention_defaults() -> None:
    """SPEC §4: poll every 300 s over 24 h; events kept 30 days."""
    settings = load_settings()
    assert settings.poll_interval == 300
    assert settings.poll_window == timedelta(hours=24)
    assert settings.inbox_retention == timedelta(days=30)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PDORGSYNC_POLL_WINDOW", "30m", timedelta(minutes=30)),
        ("PDORGSYNC_POLL_WINDOW", "7d", timedelta(days=7)),
        ("PDORGSYNC_INBOX_RETENTION", "2w", timedelta(weeks=2)),
        ("PDORGSYNC_INBOX_RETENTION", "3600", timedelta(hours=1)),
    ],
)
def test_durations_are_read(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: timedelta
) -> None:
    """Durations are written 30m, 24h, 7d, 2w (a bare number is seconds)."""
    monkeypatch.setenv(variable, value)
    name = variable.removeprefix("PDORGSYNC_").lower()
    assert getattr(load_settings(), name) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PDORGSYNC_POLL_WINDOW", "a day"),
        ("PDORGSYNC_POLL_WINDOW", "0h"),
        ("PDORGSYNC_INBOX_RETENTION", "30 days"),
        ("PDORGSYNC_POLL_INTERVAL", "-5"),
    ],
)
def test_bad_durations_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A bad duration is one clear error naming the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_poll_interval_zero_turns_polling_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """POLL_INTERVAL=0: the worker never polls."""
    from pdorgsync.state.sqlite import Inbox
    from pdorgsync.worker import Worker
    from tests.support.engagement import BOT_EMAIL, org_and_policies

    monkeypatch.setenv("PDORGSYNC_POLL_INTERVAL", "0")
    org, policies = org_and_policies()
    with Inbox("state.db") as inbox:
        worker = Worker(
            inbox, object(), org, policies, from_email=BOT_EMAIL,  # type: ignore[arg-type]  # never called
            poll_interval=load_settings().poll_interval,
        )  # fmt: skip
        assert worker.poll_due() is False


@pytest.mark.parametrize(
    ("dotenv_url", "accepted"),
    [
        ("https://api.eu.pagerduty.com", True),
        ("https://api.pagerduty.com", True),
        ("http://attacker.example", False),
        ("http://127.0.0.1:8081", False),  # even the loopback: it must come from the env
        ("https://api.pagerduty.com.attacker.example", False),
    ],
)
def test_api_url_from_dotenv_only_names_pagerduty(
    clean_env: Path, dotenv_url: str, accepted: bool
) -> None:
    """A .env may point the token at PagerDuty's own hosts only (SPEC §4)."""
    (clean_env / ".env").write_text(f"PDORGSYNC_API_URL={dotenv_url}\n", encoding="utf-8")
    if accepted:
        assert load_settings().api_url == dotenv_url
    else:
        with pytest.raises(ConfigError, match=r"from a \.env file names"):
            load_settings()


def test_api_url_from_env_or_command_line_is_trusted(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same URL is accepted from the process environment or as an override."""
    (clean_env / ".env").write_text("PDORGSYNC_API_URL=http://elsewhere.example\n")
    assert load_settings(api_url="http://proxy.internal:8080").api_url.startswith("http://proxy")
    monkeypatch.setenv("PDORGSYNC_API_URL", "http://proxy.internal:8080")
    assert load_settings().api_url == "http://proxy.internal:8080"


def test_pagerduty_over_plain_http_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """PagerDuty's API host over http:// would send the token in clear: refused from anywhere."""
    monkeypatch.setenv("PDORGSYNC_API_URL", "http://api.pagerduty.com")
    with pytest.raises(ConfigError, match="HTTPS only"):
        load_settings()


@pytest.mark.parametrize("bad", [f"{TOKEN}\nsecond", f"{TOKEN} x", f"{TOKEN}\u00e9"])
def test_malformed_token_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    """A token with a line break, a space or non-ASCII is one error naming the variable only."""
    monkeypatch.setenv("PDORGSYNC_API_TOKEN", bad)
    with pytest.raises(ConfigError, match="PDORGSYNC_API_TOKEN") as info:
        load_settings().token()
    assert TOKEN not in str(info.value)
