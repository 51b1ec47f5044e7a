"""The policy files (``policies/*.yaml``, SPEC §2) as frozen pydantic models.

A policy says *when* (conditions on the incident) and *whom* to engage (a
department, as responder or as subscriber). Everything that can be checked
without PagerDuty is checked here, at load: unknown keys, empty "any of" lists,
regular expressions (compiled once, here), message placeholders. Rules that
need the org file (departments exist) live in ``check_policies``, which returns
``(path, message)`` pairs that the loader locates in the file.

Nothing here evaluates a policy: that is ``core/policies.py``, which is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import re2
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from pdorgsync.models.org import Key, Label, Org

Path = tuple[str | int, ...]

#: SPEC §2: ``on`` when a policy does not say.
DEFAULT_ON: tuple[str, ...] = (
    "incident.triggered",
    "incident.priority_updated",
    "incident.escalated",
    "incident.reopened",
)

#: V3 event types whose ``data`` is the full incident, so policies can evaluate them.
#: Other types (notes, responders, status updates, ...) carry something else and are
#: acknowledged and ignored (SPEC §2), so a policy naming one would never run: an error.
INCIDENT_EVENT_TYPES: tuple[str, ...] = (
    "incident.triggered",
    "incident.acknowledged",
    "incident.unacknowledged",
    "incident.escalated",
    "incident.priority_updated",
    "incident.reopened",
    "incident.resolved",
    "incident.delegated",
    "incident.reassigned",
    "incident.service_updated",
    "incident.incident_type.changed",
)

#: SPEC §1 "Message placeholders".
PLACEHOLDERS: tuple[str, ...] = (
    "incident.id",
    "incident.number",
    "incident.title",
    "incident.html_url",
    "incident.priority",
    "incident.urgency",
    "incident.service",
    "policy.name",
    "department.name",
)

PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")

#: The message of a responder request when the policy gives none.
DEFAULT_MESSAGE = "{department.name} needed on incident #{incident.number}: {incident.title} (policy {policy.name})"


def _event_type(value: str) -> str:
    if value not in INCIDENT_EVENT_TYPES:
        raise ValueError(
            f"unknown or non-incident event type {value!r}; expected one of "
            + ", ".join(INCIDENT_EVENT_TYPES)
        )
    return value


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.append(value)
    return values


#: The longest title a policy regex is matched against (PagerDuty caps incident
#: titles at 1024 characters; anything longer is cut there, never scanned whole).
MAX_MATCHED_TEXT = 1024

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would print parse errors to stderr; we report them


@dataclass(frozen=True)
class TitleRegex:
    """A policy's ``title_regex``, compiled with RE2: matched in linear time.

    Python's ``re`` backtracks: ``(a+)+$`` against a 30-character title takes
    minutes and holds the interpreter lock, freezing the webhook receiver with
    the worker (issue 15). RE2 has no backreferences or lookaround, and refuses
    them at load instead.
    """

    pattern: str
    _compiled: Any = field(compare=False, repr=False)

    def search(self, text: str) -> bool:
        """True if the pattern matches anywhere in (the first MAX_MATCHED_TEXT of) ``text``."""
        return self._compiled.search(text[:MAX_MATCHED_TEXT]) is not None


def compile_title_regex(pattern: str) -> TitleRegex:
    """Compile with RE2; ValueError names the construct RE2 refuses and where it is."""
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        what, _, fragment = reason.partition(": ")
        where = pattern.find(fragment) if fragment else -1
        at = f" at position {where}" if where >= 0 else ""
        raise ValueError(
            f"invalid regular expression {pattern!r}{at}: {reason} (RE2 syntax: no "
            "backreferences or lookaround)"
            if what
            else f"invalid regular expression {pattern!r}"
        ) from None
    return TitleRegex(pattern, compiled)


def _regex(value: object) -> object:
    """Compile at load so a bad pattern is a located error, never a runtime surprise."""
    if isinstance(value, str):
        return compile_title_regex(value)
    if isinstance(value, TitleRegex):
        return value
    raise ValueError(f"expected a regular expression as a string, got {type(value).__name__}")


def placeholders_in(template: str) -> list[str]:
    """The ``{...}`` placeholders a message uses, in order."""
    return PLACEHOLDER_RE.findall(template)


def _message(value: str) -> str:
    unknown = [name for name in placeholders_in(value) if name not in PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}; known: "
            + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        )
    return value


EventType = Annotated[str, AfterValidator(_event_type)]
Regex = Annotated[TitleRegex, BeforeValidator(_regex)]
Message = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_message)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class When(_Model):
    """Conditions; every key given must hold, and a list means "any of"."""

    priorities: Annotated[list[NonEmpty], AfterValidator(_unique)] | None = Field(
        default=None, min_length=1
    )
    urgencies: Annotated[list[Literal["high", "low"]], AfterValidator(_unique)] | None = Field(
        default=None, min_length=1
    )
    labels: Annotated[list[Label], AfterValidator(_unique)] | None = Field(
        default=None, min_length=1
    )
    services: Annotated[list[NonEmpty], AfterValidator(_unique)] | None = Field(
        default=None, min_length=1
    )
    title_regex: Regex | None = None
    min_impacted_services: int | None = Field(default=None, ge=1, le=10_000)


class EngageSpec(_Model):
    """One department to pull in: ``as: responder`` (EP) or ``as: subscriber`` (team)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    department: Key
    as_: Literal["responder", "subscriber"] = Field(alias="as")
    message: Message | None = None

    @property
    def template(self) -> str:
        return self.message or DEFAULT_MESSAGE


class Policy(_Model):
    name: Key
    description: str = ""
    on: Annotated[list[EventType], AfterValidator(_unique)] = Field(
        default_factory=lambda: list(DEFAULT_ON), min_length=1
    )
    when: When = Field(default_factory=When)
    engage: list[EngageSpec] = Field(min_length=1)


class PolicyFile(_Model):
    policies: list[Policy] = Field(default_factory=list)


def check_policies(policy_file: PolicyFile, org: Org) -> list[tuple[Path, str]]:
    """Rules that need the org: departments exist, names unique within the file,
    one department engaged at most once per ``as`` within a policy.

    Policy names across files are checked by the loader, which sees every file.
    """
    problems: list[tuple[Path, str]] = []
    keys = [d.key for d in org.departments]
    names: dict[str, int] = {}
    for i, policy in enumerate(policy_file.policies):
        if policy.name in names:
            problems.append(
                (
                    ("policies", i, "name"),
                    f"policy name {policy.name!r} is already used by policies[{names[policy.name]}]",
                )
            )
        else:
            names[policy.name] = i
        seen: set[tuple[str, str]] = set()
        for j, spec in enumerate(policy.engage):
            if spec.department not in keys:
                problems.append(
                    (
                        ("policies", i, "engage", j, "department"),
                        f"unknown department {spec.department!r}; the org defines "
                        + (", ".join(keys) if keys else "no departments"),
                    )
                )
            if (spec.department, spec.as_) in seen:
                problems.append(
                    (
                        ("policies", i, "engage", j),
                        f"department {spec.department!r} is already engaged as {spec.as_} "
                        "by this policy",
                    )
                )
            seen.add((spec.department, spec.as_))
    return problems


def policy_warnings(policy_file: PolicyFile, org: Org) -> list[tuple[Path, str]]:
    """Valid but worth saying: an engagement that will always be skipped (audit COV008)."""
    warnings: list[tuple[Path, str]] = []
    for i, policy in enumerate(policy_file.policies):
        for j, spec in enumerate(policy.engage):
            dept = org.department(spec.department)
            if dept is None:
                continue
            if spec.as_ == "responder" and dept.escalation_policy is None:
                warnings.append(
                    (
                        ("policies", i, "engage", j, "department"),
                        f"department {spec.department!r} has no escalation_policy, so this "
                        "responder request will always be skipped (audit COV008)",
                    )
                )
    return warnings
