"""The HTML audit report: self-contained, escaped, and clean in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pdorgsync.core.coverage import audit
from pdorgsync.core.render.audit_html import cell_colour, render_audit_html
from pdorgsync.models.audit import AuditReport
from tests.support.coverage import NOW, daily_shifts, make_org, make_snapshot, ref

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def sample_report(name: str = "Finance") -> AuditReport:
    """Friday gap, single-level EP, a business-hours department in Chicago."""
    org = make_org(name=name, coverage="business_hours", time_zone="America/Chicago")
    snapshot = make_snapshot(rules=[[ref("schedule", "PS00001")]])
    return audit(org, snapshot, {"PS00001": daily_shifts(skip=[4])}, now=NOW, api_calls=8)


def test_page_is_self_contained() -> None:
    """No scripts, no external stylesheets, fonts or images: nothing to fetch."""
    page = render_audit_html(sample_report())
    assert page.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "<link", "<img", "@import", "url(", "http://", "https://"):
        assert forbidden not in page
    assert "Content-Security-Policy" in page


def test_heat_map_has_seven_rows_of_twenty_four_hours() -> None:
    """One row per weekday, one cell per hour; Friday business hours are red."""
    page = render_audit_html(sample_report())
    table = re.search(r'<table class="heat".*?</table>', page, re.S)
    assert table is not None
    rows = re.findall(r'<tr><th class="day">(\w+)</th>(.*?)</tr>', table.group(0))
    assert [day for day, _ in rows] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert all(cells.count("<td") == 24 for _, cells in rows)
    friday = dict(rows)["Fri"]
    assert f"background:{cell_colour(0.0, True)}" in friday
    assert 'title="Friday 12:00–13:00: 0% covered"' in friday


def test_all_text_is_escaped() -> None:
    """A department name with markup shows as text, never as HTML."""
    page = render_audit_html(sample_report(name='R&D <script>alert("x")</script>'))
    assert "<script>" not in page
    assert "R&amp;D &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_footer_names_the_api_calls_and_findings_are_listed() -> None:
    """A non-engineer sees the findings in words and how much the audit cost."""
    page = render_audit_html(sample_report())
    assert "8 PagerDuty API calls" in page
    assert "Finance has nobody on call Fri 09:00 – Fri 17:00 (8 h) 4 times" in page
    assert "Critical</span>" in page


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)"
)
def test_opens_in_headless_chromium_without_console_errors(tmp_path: Path) -> None:
    """Chromium loads the page offline, logs nothing to the console, renders the heat map."""
    assert CHROMIUM is not None
    page = tmp_path / "audit.html"
    page.write_text(render_audit_html(sample_report()), encoding="utf-8")
    shot = tmp_path / "audit.png"
    common = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert dom.stdout.count('<th class="day">') == 7
    subprocess.run(
        [
            *common,
            "--hide-scrollbars",
            "--window-size=1200,900",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=90,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
