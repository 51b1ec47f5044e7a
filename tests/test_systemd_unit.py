"""The shipped systemd unit: verified by systemd itself, and carries the promised settings."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "systemd" / "pdorgsync.service"


def _service_section() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("Restart", "on-failure"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "pdorgsync"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("LoadCredential", "api-token:/etc/pdorgsync/api-token"),
        ("SystemCallFilter", "@system-service"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("LimitNOFILE", "8192"),  # above HTTP_MAX_CONNECTIONS plus the reserve (issue 15)
    ],
)
def test_unit_has_the_promised_hardening(key: str, value: str) -> None:
    """The unit runs as Type=notify with the hardening the README promises."""
    assert value in _service_section().get(key, [])


def test_unit_has_a_watchdog_and_reload() -> None:
    """systemd restarts a hung daemon (WatchdogSec) and SIGHUP reloads the files."""
    service = _service_section()
    assert service["WatchdogSec"]
    assert "kill -HUP" in service["ExecReload"][0]


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit (with ExecStart pointing at a real file)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package 'systemd')")
    script = Path(sys.executable).parent / "pdorgsync"
    unit = tmp_path / "pdorgsync.service"
    unit.write_text(
        UNIT.read_text().replace("/opt/pdorgsync/venv/bin/pdorgsync", str(script)),
        encoding="utf-8",
    )
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [
        line for line in (result.stdout + result.stderr).splitlines() if "pdorgsync.service" in line
    ]
    assert result.returncode == 0, result.stderr
    assert problems == []


def test_environment_example_names_only_known_settings() -> None:
    """Every variable in the EnvironmentFile example is a real PDORGSYNC_ setting."""
    from pdorgsync.settings import Settings

    known = {f"PDORGSYNC_{name.upper()}" for name in Settings.model_fields}
    example = UNIT.with_name("pdorgsync.env.example").read_text()
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the case of names
    parser.read_string("[env]\n" + example)
    assert set(parser["env"]) <= known
