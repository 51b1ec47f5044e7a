"""CLI: ``pdorgsync validate`` — static checks of the org file and the policies.

Never needs an API token and never calls PagerDuty: it is what CI and a
pre-commit hook run. Problems go to stderr as ``file:line:column: path: message``;
the one-line summary goes to stdout.
"""

from __future__ import annotations

from pathlib import Path

import click

from pdorgsync import loading
from pdorgsync.cli import AppContext, org_option, pass_app, policies_option
from pdorgsync.errors import FileValidationError, Problem
from pdorgsync.logs import redact_text
from pdorgsync.models.org import Org


@click.command("validate")
@org_option
@policies_option()
@pass_app
def validate_cmd(app: AppContext, org_file: Path | None, policy_dir: Path | None) -> None:
    """Check the org file and the policies without calling PagerDuty.

    \b
    What is checked:
      - YAML 1.2 syntax; duplicate keys are errors
      - every key and value of org.yaml (SPEC §1): unknown keys, emails,
        time zones, rotations (daily, weekly, <N>h), times HH:MM, windows
      - across the file: unique department keys and layer names, no two
        departments deriving the same team/schedule/policy/service name,
        escalation targets that name an existing schedule
      - the policy files, when the policy directory exists
    Warnings (exit 0): a department without schedule, escalation policy,
    service, point of contact or members.

    \b
    Every problem is printed to stderr as
      FILE:LINE:COLUMN: PATH: MESSAGE
    and a summary line to stdout.

    \b
    Exit codes: 0 valid (warnings allowed), 1 invalid or unreadable,
    2 usage error.

    \b
    Example:
      pdorgsync validate --org examples/org.yaml --policies policies
    """
    if org_file is None or policy_dir is None:
        settings = app.settings()  # never asks for the API token
        org_file = org_file or settings.org_file
        policy_dir = policy_dir or settings.policy_dir

    errors: list[Problem] = []
    warnings: list[Problem] = []
    summary: str
    org: Org | None = None
    try:
        loaded = loading.load_org(org_file)
    except FileValidationError as exc:
        errors.extend(exc.problems)
        summary = f"{org_file}: invalid ({_count(len(exc.problems), 'problem')})"
    else:
        warnings.extend(loaded.warnings)
        org = loaded.org
        people = {email for dept in org.departments for email in dept.all_people()}
        summary = (
            f"{loaded.file}: valid ({_count(len(org.departments), 'department')}, "
            f"{_count(len(people), 'person', 'people')}, "
            f"{_count(len(loaded.warnings), 'warning')})"
        )
    summaries = [summary]
    policy_summary = _check_policies(policy_dir, errors, warnings, org)
    if policy_summary:
        summaries.append(policy_summary)

    for problem in [*errors, *warnings]:
        click.echo(redact_text(str(problem)), err=True)
    for line in summaries:
        click.echo(redact_text(line))
    if errors:
        raise click.exceptions.Exit(1)


def _check_policies(
    policy_dir: Path, errors: list[Problem], warnings: list[Problem], org: Org | None
) -> str | None:
    """The policy files: append problems, return a summary line (or None).

    A missing policy directory is not an error (no auto-engagement configured).
    With an invalid org file (``org=None``) the policies are still checked,
    except that their departments exist.
    """
    if not policy_dir.exists():
        return None
    try:
        policies = loading.load_policies(policy_dir, org)
    except FileValidationError as exc:
        errors.extend(exc.problems)
        return f"{policy_dir}: invalid ({_count(len(exc.problems), 'problem')})"
    warnings.extend(policies.warnings)
    checked = "" if org is not None else ", departments not checked: the org file is invalid"
    return (
        f"{policy_dir}: valid ({_count(len(policies.policies), 'policy', 'policies')} in "
        f"{_count(len(policies.files), 'file')}, "
        f"{_count(len(policies.warnings), 'warning')}{checked})"
    )


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


COMMANDS = [validate_cmd]
