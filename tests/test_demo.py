"""`pdorgsync demo`: the newcomer's tour runs end to end and shows every part."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_shows_plan_apply_audit_and_engagements(tmp_path: Path) -> None:
    """The demo plans, applies, re-plans clean, audits, and engages Support on the P1."""
    result = subprocess.run(
        [sys.executable, "-m", "pdorgsync", "demo", "--output", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "import: describe the seeded account as an org file (read-only)" in out
    assert "imported-org.yaml (9 API calls, 0 writes)" in out
    assert "plan of imported-org.yaml: No changes: PagerDuty matches the org file." in out
    assert "org: acme" in (tmp_path / "out" / "imported-org.yaml").read_text()
    assert out.index("import: describe") < out.index("plan: what would change")
    assert '+ create escalation_policy "Customer Support Escalation" (support)' in out
    assert "applied 37 changes, 0 failed" in out
    assert "No changes: PagerDuty matches the org file." in out
    assert "COV002 Finance has nobody on call" in out
    assert (
        "support    responder request to its escalation policy   policy support-customer-liaison"
        in out
    )
    assert (
        "hr         responder request to its escalation policy   policy hr-employee-data-security"
        in out
    )
    assert "Traceback" not in result.stderr
    report = (tmp_path / "out" / "audit.html").read_text()
    assert "<html" in report.lower()
    assert "Finance" in report
