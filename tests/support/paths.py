"""Where the tests find the repository's files and PagerDuty's contract pack.

The contract pack (``shared/pagerduty/``: PagerDuty's OpenAPI descriptions, time
zones, webhook examples) is not part of this repository; it is checked out next to
it, as ``../shared`` (CI runs a clean clone with a copy of ``shared/`` beside it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ORG_FILE = EXAMPLES / "org.yaml"
POLICY_DIR = ROOT / "policies"
SEED_FILE = EXAMPLES / "sandbox-account.json"
TEST_DATA = ROOT / "tests" / "data"
SHARED_PAGERDUTY = ROOT.parent / "shared" / "pagerduty"
BOT_EMAIL = "pdorgsync-bot@acme.test"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def shared_pagerduty(*names: str) -> Path:
    """``../shared/pagerduty``, holding every file in ``names``; skips the test when the
    contract pack is not next to the checkout, except under ``CI=true``, where it fails
    (CI always has it: a test that needs it must not silently stop running there)."""
    missing = [n for n in names if not (SHARED_PAGERDUTY / n).exists()]
    if missing:
        reason = f"PagerDuty's contract pack is not at {SHARED_PAGERDUTY} (missing {missing})"
        if in_ci():
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return SHARED_PAGERDUTY
