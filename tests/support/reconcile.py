"""Planning and applying against the sandbox, for the reconcile tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pdorgsync.core.planning import plan
from pdorgsync.models.org import Org
from pdorgsync.models.plan import Plan
from pdorgsync.observe import observe
from pdorgsync.pagerduty import PagerDutyClient
from pdorgsync.sandbox import Sandbox


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def plan_for(pd: PagerDutyClient, org: Org, **options: Any) -> Plan:
    return plan(org, observe(pd, org), now=now(), **options)


def edited(org: Org, edit: Any) -> Org:
    data = org.model_dump(mode="json", exclude_none=True)
    edit(data)
    return Org.model_validate(data)


class RefuseNth:
    """Makes the sandbox answer 400 to the n-th DELETE sent through this client."""

    def __init__(self, client: PagerDutyClient, sandbox: Sandbox, n: int) -> None:
        self.client, self.sandbox, self.n = client, sandbox, n
        self.deletes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def delete(self, path: str) -> dict[str, Any]:
        self.deletes += 1
        if self.deletes == self.n:
            self.sandbox.fail_next(1, status=400)
        return self.client.delete(path)
