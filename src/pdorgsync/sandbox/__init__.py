"""A local, stateful, PagerDuty-compatible REST API (tests, ``pdorgsync demo``, trials).

Every request and response is checked against PagerDuty's official OpenAPI
description (``openapi.json``, see NOTICE.md), so the sandbox refuses what
PagerDuty refuses. It never talks to the real PagerDuty.
"""

from __future__ import annotations

from pdorgsync.sandbox.seed import load_seed
from pdorgsync.sandbox.server import Sandbox

__all__ = ["Sandbox", "load_seed"]
