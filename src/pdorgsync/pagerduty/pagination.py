"""Classic offset pagination of PagerDuty list endpoints.

It must fail loudly rather than return a truncated list: a silently short list makes
the planner believe objects are missing (duplicates) or the audit report false gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.pagerduty.api import JSON
from pdorgsync.pagerduty.routes import UNPAGINATED, collection_key, route_of

__all__ = ["PAGE_SIZE", "PAGINATION_CEILING", "iter_pages"]

PAGE_SIZE = 100
# Classic pagination refuses (HTTP 400) any request whose offset + limit exceeds
# 10000. We stop before sending such a request.
PAGINATION_CEILING = 10_000


def iter_pages(
    get: Callable[[str, Mapping[str, Any]], JSON], path: str, params: Mapping[str, Any] | None
) -> Iterator[JSON]:
    """Every item of the list at ``path``, unwrapped from its plural key, one ``get``
    per page; an unpaginated endpoint (``UNPAGINATED``) is read once.

    Stops with a PermanentPagerDutyError rather than cross PagerDuty's
    offset + limit ≤ 10000 ceiling.
    """
    key = collection_key(path)
    base = dict(params or {})
    paginated = route_of(path) not in UNPAGINATED
    limit = int(base.pop("limit", PAGE_SIZE)) if paginated else 0
    offset = int(base.pop("offset", 0)) if paginated else 0
    while True:
        page_params = dict(base)
        if paginated:
            if offset + limit > PAGINATION_CEILING:
                raise PermanentPagerDutyError(
                    f"more than {offset} results; PagerDuty refuses to page past "
                    f"offset+limit={PAGINATION_CEILING}. Narrow the request with filters "
                    "(e.g. query, team_ids[], since/until)",
                    method="GET",
                    path=path,
                )
            page_params.update(limit=limit, offset=offset)
        body = get(path, page_params)
        items = body.get(key)
        if not isinstance(items, list):
            raise PermanentPagerDutyError(
                f"unexpected response: no {key!r} list in the body", method="GET", path=path
            )
        yield from items
        if not paginated or not body.get("more") or not items:
            return
        # Advance by what we received: the server may cap the page size.
        offset += len(items)
