"""Settings from the environment (prefix ``PDORGSYNC_``), a ``.env`` file, or systemd credentials.

Every variable of SPEC §4. The API token comes from ``PDORGSYNC_API_TOKEN``,
the file named by ``PDORGSYNC_API_TOKEN_FILE``, or ``$CREDENTIALS_DIRECTORY/api-token``
(systemd ``LoadCredential=``), in that order. Against a loopback ``API_URL`` (the
sandbox) a token is not required and defaults to ``sandbox``.

This module never logs and never puts the token into an error message.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pdorgsync.errors import ConfigError

SANDBOX_TOKEN = "sandbox"  # the sandbox's default token; not a secret


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
    api_url: str = "https://api.pagerduty.com"
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
    # Incidents engaged in parallel; the events of one incident stay in order (SPEC §4).
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    log_format: Literal["console", "json"] = Field(default_factory=_default_log_format)  # type: ignore[arg-type]  # factory returns one of the literals
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

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
    def is_sandbox(self) -> bool:
        """True when ``API_URL`` points at a loopback address (the local sandbox)."""
        host = urlsplit(self.api_url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def effective_rate_limit(self) -> int | None:
        """Requests per minute the shared limiter allows, or None for no limiter."""
        if self.rate_limit_per_minute is not None:
            return self.rate_limit_per_minute or None
        return None if self.is_sandbox else 900

    def token(self) -> str:
        """The API token, from env, file or systemd credential; ConfigError if none."""
        if self.api_token is not None and self.api_token.get_secret_value().strip():
            return self.api_token.get_secret_value().strip()
        if self.api_token_file is not None:
            return _read_secret_file(self.api_token_file, "PDORGSYNC_API_TOKEN_FILE")
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if cred_dir and (Path(cred_dir) / "api-token").is_file():
            return _read_secret_file(Path(cred_dir) / "api-token", "systemd credential api-token")
        if self.is_sandbox:
            return SANDBOX_TOKEN
        raise ConfigError(
            "PDORGSYNC_API_TOKEN is not set (nor PDORGSYNC_API_TOKEN_FILE, nor a systemd "
            "credential 'api-token'): create a REST API key in PagerDuty and set one of them"
        )

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
            token = self.token()
        except ConfigError:
            token = ""
        if token and token != SANDBOX_TOKEN:
            values.append(token)
        return values


def _read_secret_file(path: Path, what: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{what}: {path} is empty")
    return value


def load_settings(**overrides: object) -> Settings:
    """Build Settings; any invalid variable becomes a one-line ConfigError naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic-settings accepts field kwargs
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "PDORGSYNC_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']}") from None
