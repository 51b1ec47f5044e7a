"""Where the tests find the repository's files and PagerDuty's contract pack.

The contract pack (``shared/pagerduty/``: PagerDuty's OpenAPI descriptions, time
zones, webhook examples) is not part of this repository: it sits next to the checkout
as ``../shared`` or at the workplace's ``/work/shared`` (see ``SHARED_CANDIDATES``).
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
#: Where the contract pack may be: next to the checkout (a developer's layout), or
#: the workplace's /work/shared (where CI's clean clone of this repository may not sit
#: next to it); PDORGSYNC_SHARED_DIR names another place.
SHARED_CANDIDATES = [
    Path(p) / "pagerduty"
    for p in (os.environ.get("PDORGSYNC_SHARED_DIR", ""), ROOT.parent / "shared", "/work/shared")
    if str(p)
]
SHARED_PAGERDUTY = next((c for c in SHARED_CANDIDATES if c.is_dir()), SHARED_CANDIDATES[0])
BOT_EMAIL = "pdorgsync-bot@acme.test"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def shared_pagerduty(*names: str) -> Path:
    """``../shared/pagerduty``, holding every file in ``names``; skips the test when the
    contract pack is not next to the checkout, except under ``CI=true``, where it fails
    (CI always has it: a test that needs it must not silently stop running there)."""
    missing = [n for n in names if not (SHARED_PAGERDUTY / n).exists()]
    if missing:
        places = ", ".join(str(c) for c in SHARED_CANDIDATES)
        reason = f"PagerDuty's contract pack is not in any of {places} (missing {missing})"
        if in_ci():
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return SHARED_PAGERDUTY
