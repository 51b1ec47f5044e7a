"""The PagerDuty REST API v2 adapter: the ONLY package that imports pdpyras.

Everything else talks to PagerDuty through :class:`PagerDutyClient`, typed with the
one interface :class:`PagerDutyApi`. The client

* sends the headers PagerDuty insists on (``Authorization: Token token=…``,
  the v2 ``Accept`` header, ``Content-Type`` and, when configured, ``From``);
* turns every failure into a pdorgsync error (``raise … from exc``) — callers
  never see a pdpyras, requests or urllib3 exception;
* owns retrying through tenacity, with pdpyras's own retry loop switched off;
* counts every HTTP attempt per (method, route) so commands can report their
  API budget.

One module per concern:

``api``         the ``PagerDutyApi`` and ``RateLimiter`` protocols (no pdpyras)
``client``      the transport: pdpyras session, tenacity retries, the verbs
``failures``    error mapping and the one retry decision (``should_retry``)
``pagination``  classic offset pagination, refusing to truncate
``routes``      route templates for counting, list keys, ``key[]`` query parameters
``ledger``      what a client remembers: call counts, rate-limit headers, created ids
``target``      which API (URL, token, sandbox or not) a process talks to

It must never put the API token (or any request header) into an error message
or a log event, and it must never decide retry policy anywhere but ``failures``.
"""

from pdorgsync.pagerduty.api import JSON, PagerDutyApi, RateLimit, RateLimiter
from pdorgsync.pagerduty.client import PagerDutyClient
from pdorgsync.pagerduty.routes import route_of
from pdorgsync.pagerduty.target import (
    SANDBOX_HEADER,
    SANDBOX_IDENTITY_PATH,
    ApiTarget,
    identify_sandbox,
    resolve_target,
)

__all__ = [
    "JSON",
    "SANDBOX_HEADER",
    "SANDBOX_IDENTITY_PATH",
    "ApiTarget",
    "PagerDutyApi",
    "PagerDutyClient",
    "RateLimit",
    "RateLimiter",
    "identify_sandbox",
    "resolve_target",
    "route_of",
]
