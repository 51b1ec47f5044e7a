"""Department → PagerDuty ids, for the engager: the department's escalation policy
and team, user ids by email, the labels of managed services.

Matched like the planner matches (ownership marker first, then exact name) from
cached list reads; split from ``engagements.py``, which writes with what it finds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pdorgsync.core.policies import managed_service_labels
from pdorgsync.errors import ConfigError, PermanentPagerDutyError
from pdorgsync.models.org import Department, Org, parse_marker

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi


class Directory:
    """Department → PagerDuty ids (escalation policy, team), the bot user, managed labels.

    Objects are matched like the planner does: ownership marker first, then exact
    name. Lists are cached; a miss refreshes at most every ``min_refresh`` seconds
    (a department applied a minute ago is found without a restart), and everything
    refreshes after ``ttl`` seconds.
    """

    def __init__(
        self,
        client: PagerDutyApi,
        org: Org,
        *,
        ttl: float = 300.0,
        min_refresh: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.org = org
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._monotonic = monotonic
        self._loaded_at: float | None = None
        self._eps: list[dict[str, Any]] = []
        self._teams: list[dict[str, Any]] = []
        self._services: list[dict[str, Any]] = []
        self._users: dict[str, str] = {}
        # Several worker threads share one directory: one of them refreshes at a time.
        self._lock = threading.RLock()

    def set_org(self, org: Org) -> None:
        self.org = org
        self._loaded_at = None

    def refresh(self) -> None:
        self._eps = self.client.list_all("/escalation_policies")
        try:
            self._teams = self.client.list_all("/teams")
        except PermanentPagerDutyError as exc:
            if exc.status != 402:
                raise
            self._teams = []  # no "teams" ability (plan-gated): there are none to find
        self._services = self.client.list_all("/services")
        self._loaded_at = self._monotonic()

    def _ensure(self, *, missed: bool = False) -> None:
        with self._lock:
            now = self._monotonic()
            if (
                self._loaded_at is None
                or now - self._loaded_at >= self.ttl
                or (missed and now - self._loaded_at >= self.min_refresh)
            ):
                self.refresh()

    def _find(self, items: Iterable[dict[str, Any]], dept: Department, name: str) -> str | None:
        by_name = None
        for item in items:
            marker = parse_marker(item.get("description"))
            if marker == (self.org.org, dept.key):
                return str(item["id"])
            if by_name is None and item.get("name") == name:
                by_name = str(item["id"])
        return by_name

    def _lookup(self, kind: str, dept: Department) -> str | None:
        self._ensure()
        for attempt in range(2):
            if kind == "escalation_policy":
                found = self._find(self._eps, dept, dept.escalation_policy_name)
            else:
                found = self._find(self._teams, dept, dept.team_name)
            if found is not None or attempt == 1:
                return found
            self._ensure(missed=True)
        return None  # pragma: no cover - loop always returns

    def escalation_policy_id(self, dept: Department) -> str | None:
        return self._lookup("escalation_policy", dept)

    def team_id(self, dept: Department) -> str | None:
        return self._lookup("team", dept)

    def managed_labels(self) -> dict[str, list[str]]:
        """``{service id: labels}`` of the services this org manages."""
        self._ensure()
        return managed_service_labels(
            self.org, ((str(s["id"]), s.get("description")) for s in self._services if s.get("id"))
        )

    def user_id(self, email: str) -> str:
        """The id of the user with this email (``GET /users?query=``), cached forever."""
        key = email.casefold()
        with self._lock:
            return self._user_id_locked(key, email)

    def _user_id_locked(self, key: str, email: str) -> str:
        if key not in self._users:
            for user in self.client.list_all("/users", {"query": email}):
                if str(user.get("email", "")).casefold() == key:
                    self._users[key] = str(user["id"])
                    break
            else:
                raise ConfigError(
                    f"PDORGSYNC_FROM_EMAIL: no PagerDuty user has the email {email}; "
                    "responder requests and notes need a real user as requester"
                )
        return self._users[key]
