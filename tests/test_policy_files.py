"""Policy files: loading with located errors, the default pack, and `validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from pdorgsync.cli import main
from pdorgsync.errors import FileValidationError
from pdorgsync.loading import load_org, load_policies
from pdorgsync.models.policy import DEFAULT_ON

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ORG = ROOT / "examples" / "org.yaml"
PACK = ROOT / "policies"


@pytest.fixture(scope="module")
def org() -> Any:
    return load_org(EXAMPLE_ORG).org


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(folder: Path, org: Any) -> list[str]:
    with pytest.raises(FileValidationError) as info:
        load_policies(folder, org)
    return [str(p) for p in info.value.problems]


def test_default_pack_validates_against_example_org(org: Any) -> None:
    """The shipped policies/ folder loads cleanly against examples/org.yaml, without warnings."""
    loaded = load_policies(PACK, org)
    assert loaded.warnings == []
    assert len(loaded.policies) >= 8


def test_default_pack_has_one_file_per_function_with_reasons(org: Any) -> None:
    """Each non-engineering function has its own file, and every policy says why."""
    loaded = load_policies(PACK, org)
    stems = {Path(f.file).stem for f in loaded.files}
    assert {"support", "executive", "marketing", "product", "sales", "hr", "finance"} <= stems
    for policy in loaded.policies:
        assert policy.description.strip(), policy.name
        assert policy.description.count(".") == 1, policy.name  # one sentence


def test_default_pack_engages_what_the_guidance_says(org: Any) -> None:
    """Support is a responder, executives/sales/finance subscribe, HR/marketing/product respond."""
    engaged = {
        (spec.department, spec.as_)
        for policy in load_policies(PACK, org).policies
        for spec in policy.engage
    }
    assert engaged == {
        ("support", "responder"),
        ("executive", "subscriber"),
        ("marketing", "responder"),
        ("product", "responder"),
        ("sales", "subscriber"),
        ("hr", "responder"),
        ("finance", "subscriber"),
    }


def test_files_load_in_name_order(tmp_path: Path, org: Any) -> None:
    """Policies are evaluated in file-name order, so the first policy of a.yaml wins."""
    body = "policies:\n  - name: {n}\n    engage: [{{department: support, as: responder}}]\n"
    write(tmp_path, "b.yaml", body.format(n="second"))
    write(tmp_path, "a.yaml", body.format(n="first"))
    write(tmp_path, "notes.txt", "ignored")
    assert [p.name for p in load_policies(tmp_path, org).policies] == ["first", "second"]


def test_on_is_a_string_key_and_defaults_per_spec(tmp_path: Path, org: Any) -> None:
    """YAML 1.2 keeps `on:` a string key; without it the SPEC §2 default applies."""
    write(
        tmp_path,
        "x.yaml",
        "policies:\n"
        "  - name: with-on\n"
        "    on: [incident.triggered]\n"
        "    engage: [{department: support, as: responder}]\n"
        "  - name: without-on\n"
        "    engage: [{department: support, as: responder}]\n",
    )
    first, second = load_policies(tmp_path, org).policies
    assert first.on == ["incident.triggered"]
    assert tuple(second.on) == DEFAULT_ON


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "policies:\n  - name: p\n    when:\n      priorities: P1\n"
            "    engage: [{department: support, as: responder}]\n",
            "exec.yaml:4:19: policies[0].when.priorities: expected a list",
        ),
        (
            "policies:\n  - name: p\n    when:\n      title_regex: '(unclosed'\n"
            "    engage: [{department: support, as: responder}]\n",
            "exec.yaml:4:20: policies[0].when.title_regex: invalid regular expression",
        ),
        (
            "policies:\n  - name: p\n    engage:\n      - department: nobody\n        as: responder\n",
            "exec.yaml:4:21: policies[0].engage[0].department: unknown department 'nobody'",
        ),
        (
            "policies:\n  - name: p\n    engage:\n      - department: support\n"
            "        as: responder\n        message: 'hi {incident.assignee}'\n",
            "exec.yaml:6:18: policies[0].engage[0].message: unknown placeholder {incident.assignee}",
        ),
        (
            "policies:\n  - name: p\n    engage:\n      - department: support\n        as: boss\n",
            "exec.yaml:5:13: policies[0].engage[0].as: expected one of responder, subscriber",
        ),
        (
            "policies:\n  - name: p\n    on: [incident.trigered]\n"
            "    engage: [{department: support, as: responder}]\n",
            "exec.yaml:3:10: policies[0].on[0]: unknown or non-incident event type 'incident.trigered'",
        ),
        (
            "policies:\n  - name: p\n    when: {colour: red}\n"
            "    engage: [{department: support, as: responder}]\n",
            "exec.yaml:3:12: policies[0].when: unknown key 'colour'",
        ),
        (
            "policies:\n  - name: p\n    when: {min_impacted_services: 0}\n"
            "    engage: [{department: support, as: responder}]\n",
            "exec.yaml:3:35: policies[0].when.min_impacted_services: expected a number at least 1",
        ),
        (
            "policies:\n  - name: p\n    engage: []\n",
            "exec.yaml:3:5: policies[0].engage: expected at least 1 item",
        ),
        (
            "policies:\n  - name: p\n    engage: [{department: support, as: responder}]\n"
            "  - name: p\n    engage: [{department: sales, as: subscriber}]\n",
            "exec.yaml:4:11: policies[1].name: policy name 'p' is already used by policies[0]",
        ),
        (
            "policies:\n  - name: p\n    on: [incident.triggered]\n    on: [incident.resolved]\n"
            "    engage: [{department: support, as: responder}]\n",
            "exec.yaml:4:5: policies[0]: duplicate key 'on'",
        ),
    ],
)
def test_invalid_policy_is_a_located_error(
    tmp_path: Path, org: Any, text: str, expected: str
) -> None:
    """Every mistake in a policy file names file, line, column and path."""
    write(tmp_path, "exec.yaml", text)
    found = problems_of(tmp_path, org)
    assert any(expected in p for p in found), found
    assert all(p.startswith(str(tmp_path / "exec.yaml")) for p in found)


def test_policy_names_unique_across_files(tmp_path: Path, org: Any) -> None:
    """The same policy name in two files is an error pointing at both."""
    body = "policies:\n  - name: same\n    engage: [{department: support, as: responder}]\n"
    write(tmp_path, "a.yaml", body)
    write(tmp_path, "b.yaml", body)
    (problem,) = problems_of(tmp_path, org)
    assert problem.startswith(f"{tmp_path / 'b.yaml'}:2:11: policies[0].name:")
    assert f"already used at {tmp_path / 'a.yaml'}:2:11" in problem


def test_problems_of_every_file_are_reported_at_once(tmp_path: Path, org: Any) -> None:
    """Two broken files give two errors in one run."""
    write(tmp_path, "a.yaml", "policies: 3\n")
    write(
        tmp_path,
        "b.yaml",
        "policies:\n  - name: Bad Name\n    engage: [{department: hr, as: responder}]\n",
    )
    found = problems_of(tmp_path, org)
    assert {Path(p.split(":")[0]).name for p in found} == {"a.yaml", "b.yaml"}


def test_responder_without_escalation_policy_is_a_warning(tmp_path: Path) -> None:
    """Engaging a department without an EP as responder loads, with a COV008 warning."""
    org_file = write(
        tmp_path,
        "org.yaml",
        "version: 1\norg: acme\ndepartments:\n  - key: legal\n    name: Legal\n",
    )
    folder = tmp_path / "policies"
    write(
        folder,
        "legal.yaml",
        "policies:\n  - name: l\n    engage: [{department: legal, as: responder}]\n",
    )
    loaded = load_policies(folder, load_org(org_file).org)
    (warning,) = loaded.warnings
    assert warning.severity == "warning"
    assert "COV008" in str(warning)


def test_missing_folder_is_an_error(tmp_path: Path, org: Any) -> None:
    """A policy folder that does not exist is a clear error."""
    assert problems_of(tmp_path / "nope", org) == [f"{tmp_path / 'nope'}: no such policy folder"]


def test_validate_reports_policy_errors_and_exits_1(tmp_path: Path) -> None:
    """`pdorgsync validate` prints located policy errors on stderr and exits 1."""
    write(
        tmp_path,
        "exec.yaml",
        "policies:\n  - name: p\n    engage: [{department: ceo, as: responder}]\n",
    )
    result = CliRunner().invoke(
        main, ["validate", "--org", str(EXAMPLE_ORG), "--policies", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert f"{tmp_path / 'exec.yaml'}:3:27: policies[0].engage[0].department" in result.stderr
    assert "Traceback" not in result.output


def test_validate_accepts_the_default_pack() -> None:
    """`pdorgsync validate` on the example org and the default pack exits 0."""
    result = CliRunner().invoke(
        main, ["validate", "--org", str(EXAMPLE_ORG), "--policies", str(PACK)]
    )
    assert result.exit_code == 0, result.output
    assert "policies: valid" in result.stdout.replace(str(PACK), "policies")


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=8),
    st.sampled_from(["support", "P1", "responder", "subscriber", "(", "{incident.id}", "{x}"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_policy = st.fixed_dictionaries(
    {},
    optional={
        "name": _values,
        "description": _values,
        "on": st.one_of(_values, st.lists(st.sampled_from([*DEFAULT_ON, "x.y"]), max_size=3)),
        "when": st.one_of(
            _values,
            st.fixed_dictionaries(
                {},
                optional={
                    "priorities": _values,
                    "urgencies": _values,
                    "labels": _values,
                    "services": _values,
                    "title_regex": _values,
                    "min_impacted_services": _values,
                },
            ),
        ),
        "engage": st.one_of(
            _values,
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={"department": _values, "as": _values, "message": _values},
                ),
                max_size=2,
            ),
        ),
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.one_of(_values, st.fixed_dictionaries({"policies": st.lists(_policy, max_size=3)})))
def test_random_policy_files_never_crash(tmp_path: Path, org: Any, document: Any) -> None:
    """Whatever a policy file holds, loading gives policies or located errors, never a crash."""
    folder = tmp_path / "fuzz"
    folder.mkdir(exist_ok=True)
    yaml = YAML(typ="safe", pure=True)
    with (folder / "p.yaml").open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
    problems = []
    try:
        load_policies(folder, org)
    except FileValidationError as exc:
        problems = [str(p) for p in exc.problems] or ["<no problems listed>"]
    assert all(p.startswith(str(folder / "p.yaml")) for p in problems), problems
