"""Loading YAML files: YAML 1.2 semantics, located problems, and no tracebacks ever."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdorgsync.errors import FileValidationError, Problem
from pdorgsync.loading import (
    LoadedOrg,
    SourceMap,
    load_model,
    load_org,
    load_yaml,
    render_path,
)
from pdorgsync.models.org import Layer, Org

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "org.yaml"

MINIMAL = """\
version: 1
org: acme
departments:
  - key: ops
    name: Operations
    point_of_contact: a@acme.test
    members: [a@acme.test]
    schedule:
      layers:
        - name: Primary
          rotation: weekly
          start: "2026-01-05T09:00:00"
          users: [a@acme.test]
    escalation_policy:
      levels:
        - targets: [schedule]
    service: {}
"""


def write(tmp_path: Path, text: str, name: str = "org.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def outcome(path: Path) -> LoadedOrg | list[Problem]:
    """The loaded org, or the problems; anything else raised fails the test."""
    try:
        return load_org(path)
    except FileValidationError as exc:
        return exc.problems


def problems_of(path: Path) -> list[str]:
    with pytest.raises(FileValidationError) as info:
        load_org(path)
    return [str(p) for p in info.value.problems]


def test_yaml_12_keeps_on_no_and_times_as_strings(tmp_path: Path) -> None:
    """`on`, `no`, `yes` and 17:00 are strings, as YAML 1.2 says, not booleans or sexagesimals."""
    data, _ = load_yaml(write(tmp_path, "a: on\nb: no\nc: 17:00\nd: yes\ne: 017\n"))
    assert data == {"a": "on", "b": "no", "c": "17:00", "d": "yes", "e": 17}
    assert all(type(v) in (str, int) for v in data.values())


def test_timestamps_stay_text_so_quoted_and_unquoted_agree(tmp_path: Path) -> None:
    """An unquoted layer start means exactly the same as a quoted one, offsets included."""
    data, _ = load_yaml(
        write(
            tmp_path,
            "a: 2026-01-05T09:00:00\nb: '2026-01-05T09:00:00'\nc: 2026-01-05T09:00:00+01:00\n",
        )
    )
    assert data == {
        "a": "2026-01-05T09:00:00",
        "b": "2026-01-05T09:00:00",
        "c": "2026-01-05T09:00:00+01:00",
    }
    unquoted = write(
        tmp_path, MINIMAL.replace('"2026-01-05T09:00:00"', "2026-01-05T09:00:00"), "u.yaml"
    )
    quoted = write(tmp_path, MINIMAL, "q.yaml")
    start_u = load_org(unquoted).org.departments[0].schedule.layers[0].start  # type: ignore[union-attr]  # a None fails the test too
    start_q = load_org(quoted).org.departments[0].schedule.layers[0].start  # type: ignore[union-attr]  # a None fails the test too
    assert start_u == start_q == datetime(2026, 1, 5, 9, 0)


def test_offset_in_start_is_kept(tmp_path: Path) -> None:
    """A start written with an offset stays an aware time at that offset."""
    path = write(tmp_path, MINIMAL.replace('"2026-01-05T09:00:00"', "2026-01-05T09:00:00+01:00"))
    start = load_org(path).org.departments[0].schedule.layers[0].start  # type: ignore[union-attr]  # a None fails the test too
    assert start.utcoffset() == timedelta(hours=1)


def test_duplicate_key_is_located_with_path_and_first_line(tmp_path: Path) -> None:
    """A repeated key names the key, its mapping, both lines, and no traceback."""
    path = write(
        tmp_path, "version: 1\norg: acme\ndepartments:\n  - key: a\n    name: A\n    name: B\n"
    )
    assert problems_of(path) == [
        f"{path}:6:5: departments[0]: duplicate key 'name' (first given at line 5)"
    ]


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    """A repeated top-level key is reported without a path."""
    path = write(tmp_path, "org: a\nversion: 1\norg: b\n")
    assert problems_of(path) == [f"{path}:3:1: duplicate key 'org' (first given at line 1)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1\n", ":2:1: while parsing a flow sequence (line 1, column 4): expected ',' or ']'"),
        ("a:\n\tb: 1\n", ":2:1: while scanning for the next token"),
        ("a: b: c\n", ":1:5: mapping values are not allowed here"),
        ("a: 1\n---\nb: 2\n", ":2:1: expected a single document in the stream"),
        ("a: *nope\n", ":1:4: found undefined alias 'nope'"),
    ],
)
def test_yaml_syntax_errors_are_located(tmp_path: Path, text: str, expected: str) -> None:
    """Broken YAML gives one line naming the file, line and column of the mistake."""
    path = write(tmp_path, text)
    with pytest.raises(FileValidationError) as info:
        load_yaml(path)
    [problem] = info.value.problems
    assert str(problem).startswith(f"{path}{expected}")


def test_missing_empty_and_unreadable_files(tmp_path: Path) -> None:
    """Missing, empty, comment-only, directory and non-UTF-8 files each give one clear line."""
    cases = {
        tmp_path / "nope.yaml": "no such file",
        write(tmp_path, "", "empty.yaml"): "the file is empty",
        write(tmp_path, "# only a comment\n", "comment.yaml"): "the file has no content",
        tmp_path: "is a directory, expected a YAML file",
    }
    for path, message in cases.items():
        with pytest.raises(FileValidationError) as info:
            load_yaml(path)
        assert [str(p) for p in info.value.problems] == [f"{path}: {message}"]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nname: caf\xe9\n")
    with pytest.raises(FileValidationError) as info:
        load_yaml(latin)
    assert [str(p) for p in info.value.problems] == [f"{latin}:2:10: not UTF-8 text (byte 0xe9)"]


def test_control_character_is_located(tmp_path: Path) -> None:
    """A control character YAML forbids is reported at its line and column."""
    path = write(tmp_path, "a: 1\nb: x\x07\n")
    with pytest.raises(FileValidationError) as info:
        load_yaml(path)
    assert str(info.value.problems[0]).startswith(f"{path}:2:5: unacceptable character U+0007")


def test_source_map_locates_deep_paths_and_missing_keys() -> None:
    """Any path maps to its line/column; a missing key maps to its nearest existing parent."""
    path = EXAMPLE
    data, source = load_yaml(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    line, col = source.locate(("departments", 0, "schedule", "layers", 1, "rotation"))
    assert lines[line - 1][col - 1 :].startswith("weekly")
    line, col = source.locate(("departments", 0, "schedule", "layers", 1))
    assert lines[line - 1][col - 1 :].startswith("name: Weekend")
    # escalation_policy.loops is missing in department 3: nearest parent is the policy key.
    assert data["departments"][3]["escalation_policy"].get("loops") is None
    line, col = source.locate(("departments", 3, "escalation_policy", "loops"))
    assert lines[line - 1][col - 1 :].startswith("escalation_policy:")
    # Nothing of the path exists: the document itself, i.e. its first key.
    assert source.locate(("nothing", "here")) == (lines.index("version: 1") + 1, 1)


def test_source_map_points_at_flow_mapping_values() -> None:
    """Values inside `{...}` flow mappings are located exactly."""
    _, source = load_yaml(EXAMPLE)
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    line, col = source.locate(
        ("departments", 0, "schedule", "layers", 1, "restrictions", 0, "hours")
    )
    assert lines[line - 1][col - 1 :].startswith("48}")


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        (
            ("departments", 2, "schedule", "layers", 0, "rotation"),
            "departments[2].schedule.layers[0].rotation",
        ),
        (("service_labels", "Checkout API"), 'service_labels["Checkout API"]'),
        ((), ""),
        ((3,), "[3]"),
    ],
)
def test_render_path(path: tuple[str | int, ...], rendered: str) -> None:
    """Paths read like the file: dots for keys, brackets for list positions and odd keys."""
    assert render_path(path) == rendered


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        (
            "rotation: weekly",
            "rotation: fortnightly",
            ":11:21: departments[0].schedule.layers[0].rotation: expected daily, weekly or <N>h "
            "with 1 <= N <= 8760, got 'fortnightly'",
        ),
        (
            "    service: {}",
            "    service: {}\n    foo: 1",
            ":18:5: departments[0]: unknown key 'foo'",
        ),
        ("    name: Operations\n", "", ":4:5: departments[0].name: required"),
        (
            "    members:",
            "    coverage: sometimes\n    members:",
            ":7:15: departments[0].coverage: expected one of always, business_hours, none, "
            "got 'sometimes'",
        ),
        (
            "org: acme",
            "org: acme\ndefaults: {adopt_existing: on}",
            ":3:28: defaults.adopt_existing: expected true or false, got 'on'",
        ),
        ("version: 1", "version: 2", ":1:10: version: expected 1, got 2"),
        (
            "        - targets: [schedule]",
            "        - targets: [schedule]\n          delay_minutes: 2.5",
            ":17:26: departments[0].escalation_policy.levels[0].delay_minutes: "
            "expected a whole number, got 2.5",
        ),
        (
            'start: "2026-01-05T09:00:00"',
            "start: soon",
            ":12:18: departments[0].schedule.layers[0].start: expected a date-time such as "
            "2026-01-05T09:00:00, got 'soon'",
        ),
        (
            "users: [a@acme.test]\n    escalation",
            "users: []\n    escalation",
            ":13:11: departments[0].schedule.layers[0].users: expected at least 1 item, got 0",
        ),
        (
            "departments:",
            "on: [x]\ndepartments:",
            ":3:1: unknown key 'on'",
        ),
    ],
)
def test_every_pydantic_error_is_located_and_human(
    tmp_path: Path, replace: str, by: str, expected: str
) -> None:
    """Field errors read `file:line:col: path: message` in plain words, without pydantic jargon."""
    assert replace in MINIMAL
    path = write(tmp_path, MINIMAL.replace(replace, by, 1))
    problems = problems_of(path)
    assert f"{path}{expected}" in problems
    assert not any("Value error" in p or "Input should" in p for p in problems)


def test_load_model_validates_any_model(tmp_path: Path) -> None:
    """load_model works for any model class and returns its source map."""
    path = write(
        tmp_path, "name: A\nrotation: 12h\nstart: 2026-03-01T00:00:00\nusers: [x@acme.test]\n"
    )
    layer, source = load_model(path, Layer)
    assert layer.turn_seconds == 12 * 3600
    assert source.locate(("users", 0)) == (4, 9)


def test_load_model_reuses_loaded_data(tmp_path: Path) -> None:
    """Passing load_yaml's result avoids reading the file twice."""
    path = write(tmp_path, MINIMAL)
    loaded = load_yaml(path)
    path.unlink()
    org, _ = load_model(path, Org, loaded)
    assert org.org == "acme"


def test_field_and_cross_file_problems_come_together_sorted(tmp_path: Path) -> None:
    """One run reports field errors and cross-file errors, ordered by line."""
    text = MINIMAL + (
        "  - key: ops\n    name: Ops copy\n  - key: web\n    name: Web\n    coverage: sometimes\n"
    )
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert problems == [
        f"{path}:18:10: departments[1].key: department key 'ops' is already used by departments[0]",
        f"{path}:22:15: departments[2].coverage: expected one of always, business_hours, none, got 'sometimes'",
    ]


def test_cross_file_problems_are_located(tmp_path: Path) -> None:
    """check_org problems point at the offending entry in the file."""
    text = (
        MINIMAL
        + '  - key: web\n    name: Web\n    escalation_policy:\n      levels: [{targets: ["schedule:nowhere"]}]\n'
    )
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:21:27: departments[1].escalation_policy.levels[0].targets[0]: "
        "no department with key 'nowhere' (known: ops, web)"
    ]


def test_example_loads_with_warnings_and_locations() -> None:
    """The shipped example is valid; its deliberate gaps are located warnings."""
    loaded = load_org("examples/org.yaml" if Path("examples/org.yaml").exists() else EXAMPLE)
    assert [d.key for d in loaded.org.departments] == [
        "engineering", "support", "marketing", "product", "executive", "sales", "hr", "finance",
    ]  # fmt: skip
    assert [w.severity for w in loaded.warnings] == ["warning"] * 3
    messages = [w.message for w in loaded.warnings]
    assert any("'product' has no service" in m for m in messages)
    assert any("'hr' has no schedule" in m for m in messages)
    location = loaded.location(("departments", 7, "schedule", "layers", 0, "restrictions", 3))
    file, line, column = location.rsplit(":", 2)
    assert file == loaded.file
    text = Path(file).read_text(encoding="utf-8").splitlines()[int(line) - 1]
    assert text[int(column) - 1 :].startswith("{day: thu")


def test_example_people_are_the_team_roster() -> None:
    """The example names exactly the 19 people of the sandbox seed, all @acme.test."""
    org = load_org(EXAMPLE).org
    people = {email for d in org.departments for email in d.all_people()}
    assert len(people) == 19
    assert all(email.endswith("@acme.test") for email in people)
    for dept in org.departments:
        members = set(dept.members)
        assert dept.point_of_contact in members
        for layer in dept.schedule.layers if dept.schedule else []:
            assert set(layer.users) <= members, (dept.key, layer.name)


YAMLISH = st.lists(
    st.sampled_from(
        [*"ab:-[]{}'\"#&*!|>? \n\t,.0123456789%@", "on", "no", "17:00", "key", "  ", "\n  - "]
    ),
    max_size=60,
).map("".join)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=YAMLISH)
def test_random_yamlish_text_never_raises_anything_else(tmp_path: Path, text: str) -> None:
    """Whatever a user types, loading yields a result or FileValidationError, never a crash."""
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    result = outcome(path)
    if isinstance(result, list):
        assert result
        assert all(p.file == str(path) for p in result)


EXAMPLE_LINES = EXAMPLE.read_text(encoding="utf-8").splitlines()
TOKENS = [
    "on",
    "no",
    "17:00",
    "~",
    "[]",
    "{}",
    "- x",
    "key: ops",
    "name:",
    "0",
    "-1",
    "2.5",
    "'",
    "&a",
    "*a",
    "weekly",
    "24h",
    "schedule:hr",
    "user:x@y.z",
    "  ",
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(EXAMPLE_LINES) - 1),
            st.sampled_from(["delete", "duplicate", "replace_value", "append"]),
            st.sampled_from(TOKENS),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_example_never_crashes(tmp_path: Path, edits: list[tuple[int, str, str]]) -> None:
    """Random edits of the example produce a valid org or located problems, never a traceback."""
    lines = list(EXAMPLE_LINES)
    for index, action, token in edits:
        index %= len(lines)
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "replace_value" and ":" in lines[index]:
            head = lines[index].split(":", 1)[0]
            lines[index] = f"{head}: {token}"
        else:
            lines.insert(index, token)
        if not lines:
            lines = ["x"]
    path = tmp_path / "mutated.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = outcome(path)
    if isinstance(result, list):
        assert result
        for problem in result:
            assert problem.line is None or 1 <= problem.line <= len(lines) + 1
    else:
        assert result.org.org == "acme"


def test_source_map_of_scalar_document() -> None:
    """A document that is a single scalar still locates to line 1, column 1."""
    assert SourceMap("text").locate(("a", 1)) == (1, 1)
