"""Running the command line in a test: a working directory of its own, no settings leaking in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def isolated_cli(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    api_url: str | None = None,
    from_email: str | None = None,
) -> Path:
    """Make ``tmp_path`` the working directory with none of the environment's ``PDORGSYNC_*``
    settings, credentials or ``NO_COLOR``; then set the API URL and From address given.
    Returns ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    inherited = [name for name in os.environ if name.startswith("PDORGSYNC_")]
    for name in [*inherited, "CREDENTIALS_DIRECTORY", "NO_COLOR"]:
        monkeypatch.delenv(name, raising=False)
    if api_url is not None:
        monkeypatch.setenv("PDORGSYNC_API_URL", api_url)
    if from_email is not None:
        monkeypatch.setenv("PDORGSYNC_FROM_EMAIL", from_email)
    return tmp_path
