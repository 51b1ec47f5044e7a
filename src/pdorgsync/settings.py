"""Settings from the environment (prefix ``PDORGSYNC_``), a ``.env`` file, or systemd credentials.

Every variable of SPEC §4. The API token comes from ``PDORGSYNC_API_TOKEN``,
the file named by ``PDORGSYNC_API_TOKEN_FILE``, or ``$CREDENTIALS_DIRECTORY/api-token``
(systemd ``LoadCredential=``), in that order. Without one, only pdorgsync's own
sandbox (identified by its responses, never by a loopback address: SPEC §4) is
usable; the adapter asks it (``pagerduty.resolve_target``).

Where the token may go (SPEC §4, issue 15): PagerDuty's own API hosts over HTTPS,
the sandbox, or an ``API_URL`` given in the process environment or as an override
(the command line). An ``API_URL`` that came from a ``.env`` file in the working
directory and names any other host is refused: a checkout must not be able to
send a CI job's token elsewhere.

This module never logs and never puts the token into an error message.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pdorgsync.errors import ConfigError

#: The sandbox's default API token (``pdorgsync sandbox``, ``Sandbox()``); not a secret.
#: The one definition: the sandbox server, the CLI and the settings all use this name.
SANDBOX_TOKEN = "sandbox"
DEFAULT_API_URL = "https://api.pagerduty.com"
#: PagerDuty's REST API hosts (US and EU service regions), HTTPS only.
PAGERDUTY_API_HOSTS = frozenset({"api.pagerduty.com", "api.eu.pagerduty.com"})
#: A token is an opaque string of visible ASCII: a newline or a space in it (say, a
#: two-line token file) would only fail later, inside an HTTP header.
_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> timedelta:
    """``30m``, ``24h``, ``7d``, ``2w``, ``45s`` (a bare number is seconds) → timedelta."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"expected a duration such as 30m, 24h or 7d, got {value!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2) or "s"])


def _default_log_format() -> str:
    return "console" if sys.stderr.isatty() else "json"


class Settings(BaseSettings):
    """pdorgsync configuration (SPEC §4)."""

    model_config = SettingsConfigDict(
        env_prefix="PDORGSYNC_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    api_url: str = DEFAULT_API_URL
    from_email: str | None = None
    org_file: Path = Path("org.yaml")
    policy_dir: Path = Path("policies")
    state_path: Path = Path("pdorgsync.db")
    webhook_secrets: SecretStr | None = None
    listen: str = "127.0.0.1:8080"
    reconcile_interval: float = Field(default=300.0, gt=0)
    reconcile_mode: Literal["report", "apply"] = "report"
    incident_notes: bool = True
    # Client-side budget per API token (PagerDuty allows 960/min). None: 900 against
    # PagerDuty, unlimited against the sandbox (it has its own --rate-limit); 0: off.
    rate_limit_per_minute: int | None = Field(default=None, ge=0)
    # SPEC §5 catch-up poll: seconds between polls (0: off) and how far back it looks.
    poll_interval: float = Field(default=300.0, ge=0)
    poll_window: timedelta = timedelta(hours=24)
    # Handled events older than this are purged by the daemon (SPEC §4).
    inbox_retention: timedelta = timedelta(days=30)
    # The receiver's defences against slow or idle clients (issue 15): headers and
    # body each within HTTP_READ_TIMEOUT seconds; at most HTTP_MAX_CONNECTIONS open.
    http_read_timeout: float = Field(default=10.0, gt=0, le=300)
    http_max_connections: int = Field(default=256, ge=8, le=100_000)
    # Incidents engaged in parallel; the events of one incident stay in order (SPEC §4).
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    log_format: Literal["console", "json"] = Field(default_factory=_default_log_format)  # type: ignore[arg-type]  # factory returns one of the literals
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # None: SQLite at state_path. postgresql://…: every replica shares this database (§5).
    database_url: SecretStr | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("poll_window", "inbox_retention", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            duration = parse_duration(value)
            if duration <= timedelta(0):
                raise ValueError(f"must be longer than 0, got {value!r}")
            return duration
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().strip().startswith(("postgresql://", "postgres://")):
            raise ValueError("expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def is_pagerduty(self) -> bool:
        """True when ``API_URL`` is one of PagerDuty's own API hosts over HTTPS."""
        parts = urlsplit(self.api_url)
        return parts.scheme == "https" and (parts.hostname or "") in PAGERDUTY_API_HOSTS

    def effective_rate_limit(self, sandbox: bool = False) -> int | None:
        """Requests per minute the shared limiter allows, or None for no limiter.

        ``sandbox`` is True only when the server identified itself as pdorgsync's
        sandbox (it has its own ``--rate-limit``); a loopback address alone keeps
        the budget, since it may be a proxy to the real PagerDuty.
        """
        if self.rate_limit_per_minute is not None:
            return self.rate_limit_per_minute or None
        return None if sandbox else 900

    def configured_token(self) -> str | None:
        """The API token from env, file or systemd credential; None if none is set."""
        if self.api_token is not None and self.api_token.get_secret_value().strip():
            return _checked_token(self.api_token.get_secret_value(), "PDORGSYNC_API_TOKEN")
        if self.api_token_file is not None:
            return _read_secret_file(self.api_token_file, "PDORGSYNC_API_TOKEN_FILE")
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if cred_dir and (Path(cred_dir) / "api-token").is_file():
            return _read_secret_file(Path(cred_dir) / "api-token", "systemd credential api-token")
        return None

    def token(self, *, sandbox: bool = False) -> str:
        """The API token; the sandbox's default only when ``sandbox`` (identified by the
        server, see ``pagerduty.resolve_target``); ConfigError if none."""
        token = self.configured_token()
        if token is not None:
            return token
        if sandbox:
            return SANDBOX_TOKEN
        raise ConfigError(
            "PDORGSYNC_API_TOKEN is not set (nor PDORGSYNC_API_TOKEN_FILE, nor a systemd "
            "credential 'api-token'): create a REST API key in PagerDuty and set one of them"
        )

    def permission_warnings(self) -> list[str]:
        """Secret files that other users can read (the token file, ``.env``)."""
        candidates: list[tuple[str, Path]] = [
            ("PDORGSYNC_API_TOKEN_FILE", p) for p in [self.api_token_file] if p
        ]
        env_file = self.model_config.get("env_file")
        if isinstance(env_file, str | Path):
            candidates.append((".env file", Path(env_file)))
        warnings = []
        for what, path in candidates:
            try:
                mode = path.stat().st_mode
            except OSError:
                continue
            # Group bits count only for a group other than our own (Kubernetes mounts
            # Secrets 0440 with fsGroup: readable by this process's group, nobody else).
            own_group = path.stat().st_gid in {os.getgid(), *os.getgroups()}
            if stat.S_ISREG(mode) and mode & (0o007 if own_group else 0o077):
                warnings.append(
                    f"{what} {path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
                    f"run: chmod 600 {path}"
                )
        return warnings

    def secrets(self) -> list[str]:
        """Webhook signing secrets, several allowed for rotation."""
        if self.webhook_secrets is None:
            return []
        raw = self.webhook_secrets.get_secret_value()
        return [s.strip() for s in raw.split(",") if s.strip()]

    def require_from_email(self) -> str:
        if not self.from_email:
            raise ConfigError(
                "PDORGSYNC_FROM_EMAIL is not set: PagerDuty needs the email of a real user "
                "on the account as the requester of responder requests and notes"
            )
        return self.from_email

    def require_webhook_secrets(self) -> list[str]:
        secrets = self.secrets()
        if not secrets:
            raise ConfigError(
                "PDORGSYNC_WEBHOOK_SECRETS is not set: put the secret printed by "
                "'pdorgsync webhook ensure' there (comma-separated during rotation)"
            )
        return secrets

    def sensitive_values(self) -> list[str]:
        """Every secret value the log redactor must scrub."""
        values = list(self.secrets())
        try:
            token = self.configured_token() or ""
        except ConfigError:
            token = ""
        if token and token != SANDBOX_TOKEN:
            values.append(token)
        elif not token:
            values.extend(self._raw_token_words())
        if self.database_url is not None:
            password = urlsplit(self.database_url.get_secret_value()).password
            if password:
                values.append(password)
        return values

    def _raw_token_words(self) -> list[str]:
        """The pieces of a malformed token (refused at load), so they are scrubbed too."""
        raw = ""
        if self.api_token is not None:
            raw = self.api_token.get_secret_value()
        elif self.api_token_file is not None:
            with contextlib.suppress(OSError, ValueError):
                raw = _read_small(self.api_token_file).decode("utf-8", "replace")
        return [word for word in raw.split() if len(word) >= 8]


def _read_small(path: Path, limit: int = 4096) -> bytes:
    """A regular file of at most ``limit`` bytes, opened non-blocking (a FIFO never hangs)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("is not a regular file")
        raw = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise ValueError(f"is larger than {limit} bytes; it should hold one token")
    return raw


def _checked_token(value: str, what: str) -> str:
    """The stripped token; ConfigError naming where it came from (never the value)."""
    value = value.strip()
    bad = next((i for i, ch in enumerate(value) if ch not in _TOKEN_CHARS), None)
    if bad is not None:
        kind = "a line break" if value[bad] in "\r\n" else "a character that is not visible ASCII"
        raise ConfigError(
            f"{what}: the API token contains {kind} at position {bad + 1}; a PagerDuty "
            "API key is one line of letters, digits and punctuation"
        )
    return value


def _read_secret_file(path: Path, what: str) -> str:
    try:
        raw = _read_small(path)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{what}: {path} {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: {path} is not UTF-8 text") from None
    if not text.strip():
        raise ConfigError(f"{what}: {path} is empty")
    return _checked_token(text, f"{what} ({path})")


def raw_secrets_from_env() -> list[str]:
    """Secret-looking values straight from the environment, for the log redactor.

    Used before (and whether or not) the settings load: a settings error must not
    leave the token unregistered, or a ``--debug`` traceback would print it.
    """
    raw = [
        os.environ.get("PDORGSYNC_API_TOKEN", ""),
        *os.environ.get("PDORGSYNC_WEBHOOK_SECRETS", "").split(","),
    ]
    token_file = os.environ.get("PDORGSYNC_API_TOKEN_FILE")
    if token_file:
        with contextlib.suppress(OSError, ValueError):
            raw.append(_read_small(Path(token_file)).decode("utf-8", "replace"))
    return [word for value in raw for word in value.split() if len(word) >= 8]


def load_settings(**overrides: object) -> Settings:
    """Build Settings; any invalid variable becomes a one-line ConfigError naming it.

    Refuses an ``API_URL`` from a ``.env`` file that is not PagerDuty over HTTPS,
    and PagerDuty's hosts over plain HTTP from anywhere.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]  # pydantic-settings accepts field kwargs
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "PDORGSYNC_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']}") from None
    check_api_url(settings, trusted="api_url" in overrides or _env_names_api_url())
    return settings


def _env_names_api_url() -> bool:
    return any(key.upper() == "PDORGSYNC_API_URL" for key in os.environ)


def check_api_url(settings: Settings, *, trusted: bool) -> None:
    """ConfigError unless the token may be sent to ``settings.api_url`` (SPEC §4).

    ``trusted``: the URL came from the process environment or the command line.
    """
    parts = urlsplit(settings.api_url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(f"PDORGSYNC_API_URL: expected an http(s) URL, got {settings.api_url!r}")
    if host in PAGERDUTY_API_HOSTS and parts.scheme != "https":
        raise ConfigError(f"PDORGSYNC_API_URL: PagerDuty's API is HTTPS only; use https://{host}")
    if not trusted and settings.api_url != DEFAULT_API_URL and not settings.is_pagerduty:
        raise ConfigError(
            f"PDORGSYNC_API_URL from a .env file names {host}, which is not PagerDuty's API: "
            "the token is never sent to a host a .env file chose. Set PDORGSYNC_API_URL in "
            "the environment (or pass it on the command line) to use another API"
        )
