"""Rules that span the org file (SPEC §1): unique keys and derived names, layer names,
escalation targets that exist; and the warnings for what is valid but worth saying.

Each problem is ``(path inside the file, message)``, so the loader can attach line and
column. Pure: no network, no disk."""

from __future__ import annotations

from pdorgsync.models.org import Department, Org

Path = tuple[str | int, ...]  # a path inside the file


def check_org(org: Org, *, unchecked_keys: frozenset[str] = frozenset()) -> list[tuple[Path, str]]:
    """Rules spanning the file; each problem is ``(path inside the file, message)``.

    - department keys are unique;
    - derived names (team, schedule, escalation policy, service) are unique per
      kind across departments, compared case-insensitively as PagerDuty does;
    - layer names are unique within a schedule;
    - an escalation target ``schedule`` needs the department's own schedule, and
      ``schedule:<key>`` must name a department that has one; a level names each
      target once;
    - ``service_labels`` names are not blank.

    Not a problem: ``business_hours`` given while ``coverage`` is not
    ``business_hours`` (kept for later), and ``coverage: business_hours`` without
    a ``business_hours`` block, which means Mon–Fri 09:00–17:00 in the
    department's zone (``Department.effective_business_hours``).

    ``unchecked_keys`` are departments known to exist but not validated (the
    loader's partial check of a file with errors): references to them are not judged.
    """
    problems: list[tuple[Path, str]] = []
    first_index: dict[str, int] = {}
    for index, dept in enumerate(org.departments):
        if dept.key in first_index:
            problems.append(
                (
                    ("departments", index, "key"),
                    f"department key {dept.key!r} is already used by "
                    f"departments[{first_index[dept.key]}]",
                )
            )
        else:
            first_index[dept.key] = index
    problems.extend(_name_clashes(org))
    for index, dept in enumerate(org.departments):
        base: Path = ("departments", index)
        if dept.schedule:
            seen_layers: dict[str, int] = {}
            for number, layer in enumerate(dept.schedule.layers):
                if layer.name in seen_layers:
                    problems.append(
                        (
                            (*base, "schedule", "layers", number, "name"),
                            f"layer name {layer.name!r} is already used by "
                            f"layers[{seen_layers[layer.name]}] of this schedule",
                        )
                    )
                else:
                    seen_layers[layer.name] = number
        if dept.escalation_policy:
            problems.extend(_target_problems(org, index, dept, unchecked_keys))
    for name in org.service_labels:
        if not name.strip():
            problems.append((("service_labels", name), "service name must not be empty"))
    return problems


def _name_clashes(org: Org) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    kinds: list[tuple[str, str]] = [
        ("team", "team"),
        ("schedule", "schedule"),
        ("escalation policy", "escalation_policy"),
        ("service", "service"),
    ]
    for label, block in kinds:
        owners: dict[str, int] = {}
        for index, dept in enumerate(org.departments):
            if block != "team" and getattr(dept, block) is None:
                continue  # the department has no such object, so nothing can clash
            name = {
                "team": dept.team_name,
                "schedule": dept.schedule_name,
                "escalation_policy": dept.escalation_policy_name,
                "service": dept.service_name,
            }[block]
            folded = name.casefold()
            if folded in owners:
                other = org.departments[owners[folded]]
                explicit = getattr(dept, block)
                path: Path = (
                    ("departments", index, block, "name")
                    if explicit is not None and explicit.name
                    else ("departments", index, "name")
                )
                problems.append(
                    (
                        path,
                        f"{label} name {name!r} is also the {label} name of "
                        f"department {other.key!r} (departments[{owners[folded]}]); "
                        f"set {block}.name to tell them apart",
                    )
                )
            else:
                owners[folded] = index
    return problems


def _target_problems(
    org: Org, index: int, dept: Department, unchecked_keys: frozenset[str]
) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    assert dept.escalation_policy is not None
    for number, level in enumerate(dept.escalation_policy.levels):
        seen: dict[str, int] = {}
        for position, target in enumerate(level.targets):
            path: Path = (
                "departments",
                index,
                "escalation_policy",
                "levels",
                number,
                "targets",
                position,
            )
            normal = "schedule" if target == f"schedule:{dept.key}" else target
            if normal in seen:
                problems.append((path, f"{target!r} is already a target of this level"))
                continue
            seen[normal] = position
            if normal == "schedule":
                if dept.schedule is None:
                    problems.append(
                        (
                            path,
                            f"target 'schedule' needs a schedule in department {dept.key!r}, "
                            "which has none",
                        )
                    )
            elif normal.startswith("schedule:"):
                key = normal.partition(":")[2]
                if key in unchecked_keys:
                    continue
                other = org.department(key)
                if other is None:
                    known = ", ".join(d.key for d in org.departments)
                    problems.append((path, f"no department with key {key!r} (known: {known})"))
                elif other.schedule is None:
                    problems.append((path, f"department {key!r} has no schedule to target"))
    return problems


def org_warnings(org: Org) -> list[tuple[Path, str]]:
    """Valid but worth saying (SPEC §1: a department without schedule/EP/service).

    A missing schedule is not mentioned for ``coverage: none`` (nobody needs to be
    on call), as in the audit.
    """
    warnings: list[tuple[Path, str]] = []
    managed_services = {
        dept.service_name.casefold(): dept.key for dept in org.departments if dept.service
    }
    for index, dept in enumerate(org.departments):
        base: Path = ("departments", index)
        if dept.schedule is None and dept.coverage != "none":
            warnings.append(
                (base, f"department {dept.key!r} has no schedule: nobody is on call (COV001)")
            )
        if dept.escalation_policy is None:
            warnings.append(
                (
                    base,
                    f"department {dept.key!r} has no escalation_policy: it cannot be paged "
                    "or added as a responder (COV001)",
                )
            )
        if dept.service is None:
            warnings.append(
                (
                    base,
                    f"department {dept.key!r} has no service: incidents cannot be raised "
                    "against it (COV001)",
                )
            )
        if dept.point_of_contact is None:
            warnings.append((base, f"department {dept.key!r} has no point_of_contact"))
        if not dept.members:
            warnings.append(((*base, "members"), f"department {dept.key!r} has no members"))
    for name in org.service_labels:
        owner = managed_services.get(name.casefold())
        if owner is not None:
            warnings.append(
                (
                    ("service_labels", name),
                    f"{name!r} is the service of department {owner!r}; its labels come from "
                    "that department's service.labels and this entry is ignored",
                )
            )
    return warnings
