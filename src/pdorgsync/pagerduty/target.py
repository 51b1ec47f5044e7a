"""Which API a process talks to: the URL, the token, and whether it is pdorgsync's
own sandbox (which may be used without a token).

The sandbox is recognised by a response header it sends to an unauthenticated probe,
never by the URL being a loopback address; PagerDuty's own hosts are never probed.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

from pdorgsync.settings import PAGERDUTY_API_HOSTS

if TYPE_CHECKING:
    from pdorgsync.settings import Settings

__all__ = [
    "SANDBOX_HEADER",
    "SANDBOX_IDENTITY_PATH",
    "ApiTarget",
    "announce",
    "identify_sandbox",
    "resolve_target",
]


@dataclass(frozen=True)
class ApiTarget:
    """Where requests go, with which token, and whether it is pdorgsync's sandbox."""

    url: str
    token: str
    sandbox: bool

    def describe(self) -> str:
        if self.sandbox:
            kind = "pdorgsync sandbox"
        elif urlsplit(self.url).hostname in PAGERDUTY_API_HOSTS:
            kind = "PagerDuty"
        else:
            kind = "not PagerDuty's own host: PDORGSYNC_API_URL from the environment"
        return f"{self.url} ({kind})"


SANDBOX_HEADER = "X-Pdorgsync-Sandbox"
SANDBOX_IDENTITY_PATH = "/_pdorgsync/sandbox"
_identified: dict[str, bool] = {}
_announced: set[str] = set()
_target_lock = threading.Lock()


def identify_sandbox(url: str, *, timeout: float = 5.0) -> bool:
    """True if ``url`` is pdorgsync's own sandbox: it says so in a response header.

    Asked without any credential, so nothing secret reaches whoever answers.
    PagerDuty's own hosts are never asked. Cached per URL for the process.
    """
    base = url.rstrip("/")
    if urlsplit(base).hostname in PAGERDUTY_API_HOSTS:
        return False
    with _target_lock:
        if base in _identified:
            return _identified[base]
    try:
        response = requests.get(
            base + SANDBOX_IDENTITY_PATH, timeout=timeout, allow_redirects=False
        )
        found = response.headers.get(SANDBOX_HEADER) == "1"
    except requests.RequestException:
        found = False  # unreachable: not known to be the sandbox; the real call will say why
    with _target_lock:
        _identified[base] = found
    return found


def resolve_target(settings: Settings) -> ApiTarget:
    """The API target of ``settings``: ConfigError when there is no token and the
    server is not pdorgsync's sandbox (a loopback address alone does not count)."""
    # Asked only when no token is configured: with a token, the budget stays on
    # (RATE_LIMIT_PER_MINUTE=0 turns it off) and nothing needs the answer.
    sandbox = settings.configured_token() is None and identify_sandbox(settings.api_url)
    return ApiTarget(settings.api_url.rstrip("/"), settings.token(sandbox=sandbox), sandbox)


def announce(target: ApiTarget) -> None:
    with _target_lock:
        if target.url in _announced:
            return
        _announced.add(target.url)
    print(f"pdorgsync: API {target.describe()}", file=sys.stderr)
