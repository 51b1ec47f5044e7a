"""``pdorgsync doctor``: read-only checks of what a first connection to PagerDuty needs.

One ``Check`` per question an operator asks before the first ``apply`` or ``serve``:
does the token work and what kind of key is it, is ``FROM_EMAIL`` a user, does the
account have the plan-gated abilities the org file and policies need, is the webhook
subscription for ``serve`` there and enabled, and how much rate-limit headroom is
left. Each check is one line; ``fix`` means the operator has something to do.

How the key kind is told: ``GET /users/me`` works only for a user-level key; an
account-level key gets a 400 whose error says it has no user identity
(PagerDuty/python-pagerduty, ``RestApiV2Client.api_key_access``).

It never writes to PagerDuty. Network failures and bad settings are errors
(``PdOrgSyncError``, exit 1), not checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pdorgsync.abilities import RESPONDERS, TEAMS, WITHOUT, read_abilities
from pdorgsync.errors import PermanentPagerDutyError
from pdorgsync.models.org import Org
from pdorgsync.models.policy import Policy

if TYPE_CHECKING:
    from pdorgsync.pagerduty import PagerDutyApi

Status = Literal["ok", "fix", "info"]
LOW_HEADROOM = 0.1  # below this share of the limit left, another client shares the token


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{self.status.upper():4} {self.name}: {self.message}"


def check_token(client: PagerDutyApi) -> tuple[Check, bool]:
    """(the check, whether the other checks can run with this token)."""
    try:
        me = client.get("/users/me").get("user") or {}
    except PermanentPagerDutyError as exc:
        if exc.status == 401:
            return Check(
                "token", "fix", "PagerDuty rejects the token (401): check PDORGSYNC_API_TOKEN"
            ), False
        if exc.status == 400 and "account-level" in exc.message:
            return (
                Check(
                    "token",
                    "ok",
                    "works; an account-level key (acts for the whole account; writes that "
                    "need a user name PDORGSYNC_FROM_EMAIL)",
                ),
                True,
            )
        if exc.status == 403:
            return Check("token", "fix", f"the token may not read users (403): {exc.message}"), True
        return Check("token", "info", f"works, but its kind is unknown: {exc}"), True
    who = me.get("email") or me.get("id") or "?"
    role = me.get("role")
    text = f"works; a user-level key acting as {who}" + (f" (role {role})" if role else "")
    return Check("token", "ok", text + ": it can do only what that user may do"), True


def check_from_email(client: PagerDutyApi, from_email: str | None) -> Check:
    if not from_email:
        return Check(
            "from_email",
            "fix",
            "PDORGSYNC_FROM_EMAIL is not set: responder requests and incident notes need "
            "the email of a PagerDuty user as requester",
        )
    wanted = from_email.casefold()
    for user in client.list_all("/users", {"query": from_email}):
        if str(user.get("email", "")).casefold() == wanted:
            return Check(
                "from_email",
                "ok",
                f"{from_email} is PagerDuty user {user.get('name')} ({user['id']})",
            )
    return Check(
        "from_email", "fix", f"no PagerDuty user has the email {from_email} (PDORGSYNC_FROM_EMAIL)"
    )


def needed_abilities(org: Org | None, policies: Sequence[Policy]) -> list[str]:
    """The plan-gated abilities the files need: teams (every department gets one) and
    coordinated_responding (a policy engaging a department as responder)."""
    needed = [TEAMS] if org is not None and org.departments else []
    if any(e.as_ == "responder" for p in policies for e in p.engage):
        needed.append(RESPONDERS)
    return needed


def check_abilities(
    client: PagerDutyApi, org: Org | None, policies: Sequence[Policy]
) -> list[Check]:
    abilities = read_abilities(client)
    if abilities.names is None:
        return [Check("abilities", "info", "could not read GET /abilities; not checked")]
    checks = [
        Check("abilities", "fix", WITHOUT[name])
        for name in needed_abilities(org, policies)
        if not abilities.has(name)
    ]
    if any(e.as_ == "subscriber" for p in policies for e in p.engage):
        checks.append(
            Check(
                "abilities",
                "info",
                "status-update subscriptions (subscriber engagements) are plan-gated but have "
                "no documented ability; the first subscribe will tell (402 = not on this plan)",
            )
        )
    if not any(c.status == "fix" for c in checks):
        have = ", ".join(needed_abilities(org, policies)) or "none needed"
        checks.insert(0, Check("abilities", "ok", f"the account has what the files need ({have})"))
    return checks


def check_webhook(client: PagerDutyApi, events: Sequence[str], description: str) -> Check:
    """Our subscription is the one ``webhook ensure`` made (named ``description``)."""
    subs = [
        s for s in client.list_all("/webhook_subscriptions") if s.get("description") == description
    ]
    ensure = "run `pdorgsync webhook ensure --url https://<host>/webhooks/pagerduty`"
    if not subs:
        return Check("webhook", "fix", f"no webhook subscription for `pdorgsync serve`: {ensure}")
    sub = subs[0]
    url = (sub.get("delivery_method") or {}).get("url")
    if not sub.get("active", True):
        return Check(
            "webhook",
            "fix",
            f"subscription {sub['id']} ({url}) is disabled — PagerDuty disables one after "
            f"3 dropped deliveries: check that serve answers there, then {ensure}",
        )
    missing = sorted(set(events) - set(sub.get("events") or []))
    if missing:
        return Check(
            "webhook",
            "fix",
            f"subscription {sub['id']} ({url}) lacks {', '.join(missing)}: {ensure}",
        )
    return Check(
        "webhook",
        "ok",
        f"subscription {sub['id']} is enabled, {len(sub.get('events') or [])} event types to {url}",
    )


def check_rate(client: PagerDutyApi, budget_per_minute: int) -> Check:
    seen = client.rate_limit
    if seen is None:
        budget = f"{budget_per_minute}/min" if budget_per_minute else "off"
        return Check(
            "rate_limit",
            "info",
            f"PagerDuty sent no rate-limit headers; pdorgsync keeps to its own budget ({budget})",
        )
    limit, remaining, reset = seen
    when = f", resets in {reset:g} s" if reset is not None else ""
    text = f"{remaining} of {limit} requests left in this window{when}"
    if limit and remaining < limit * LOW_HEADROOM:
        return Check(
            "rate_limit",
            "fix",
            text + ": little headroom — another client is using this token's budget",
        )
    return Check("rate_limit", "ok", text)


def run_checks(
    client: PagerDutyApi,
    *,
    from_email: str | None,
    org: Org | None,
    policies: Sequence[Policy],
    events: Sequence[str],
    webhook_description: str,
    budget_per_minute: int,
) -> list[Check]:
    """Every check, in the order an operator fixes them; stops after a rejected token."""
    token, usable = check_token(client)
    if not usable:
        return [token]
    checks = [token, check_from_email(client, from_email)]
    checks += check_abilities(client, org, policies)
    checks.append(check_webhook(client, events, webhook_description))
    checks.append(check_rate(client, budget_per_minute))
    return checks


__all__ = ["Check", "needed_abilities", "run_checks"]
