"""Snapshot look-ups are indexed (linear plan and audit) yet answer exactly like a scan."""

from __future__ import annotations

from pdorgsync.models.org import managed_description
from pdorgsync.models.snapshot import Snapshot, Team, User


def _user(uid: str, email: str, name: str = "Someone") -> User:
    return User(id=uid, name=name, email=email)


def test_lookups_find_the_first_match_like_a_scan() -> None:
    """Duplicate ids, emails or names: the first one in snapshot order wins, as before."""
    marker = "Managed by pdorgsync (org=acme, department=support)"
    snapshot = Snapshot(
        users=[_user("P1", "a@x.test", "First"), _user("P1", "b@x.test", "Second")],
        teams=[
            Team(id="T1", name="Support"),
            Team(id="T2", name="Support", description=managed_description("Support", marker)),
            Team(id="T3", name="Other", description=managed_description("Other", marker)),
        ],
    )
    assert snapshot.user_by_id("P1").name == "First"  # type: ignore[union-attr]  # a None fails the test too
    assert snapshot.user_by_email("A@X.test").id == "P1"  # type: ignore[union-attr]  # a None fails the test too
    assert snapshot.user_by_id("missing") is None
    assert snapshot.by_name("team", "Support").id == "T1"  # type: ignore[union-attr]  # a None fails the test too
    assert snapshot.by_marker("team", "acme", "support").id == "T2"  # type: ignore[union-attr]  # a None fails the test too
    assert snapshot.by_marker("team", "acme", "sales") is None
    assert snapshot.team_by_id("T3").name == "Other"  # type: ignore[union-attr]  # a None fails the test too


def test_a_copy_with_other_users_does_not_see_the_old_index() -> None:
    """The audit completes users with model_copy(update=...): look-ups see the new users."""
    snapshot = Snapshot(users=[_user("P1", "a@x.test", "Old")])
    assert snapshot.user_by_id("P1").name == "Old"  # type: ignore[union-attr]  # builds the index
    copy = snapshot.model_copy(update={"users": [_user("P1", "a@x.test", "New")]})
    assert copy.user_by_id("P1").name == "New"  # type: ignore[union-attr]  # a None fails the test too
    assert snapshot.user_by_id("P1").name == "Old"  # type: ignore[union-attr]  # a None fails the test too


def test_the_index_is_not_part_of_equality_or_dumps() -> None:
    """A snapshot that was looked into equals one that was not, and dumps the same."""
    looked = Snapshot(users=[_user("P1", "a@x.test")])
    fresh = Snapshot(users=[_user("P1", "a@x.test")])
    looked.user_by_id("P1")
    assert looked == fresh
    assert looked.model_dump() == fresh.model_dump()
    assert "lookup_tables" not in looked.model_dump_json()


def test_org_department_lookup_is_indexed_and_follows_copies() -> None:
    """Org.department answers by key like a scan, and a copy with other departments too."""
    from pdorgsync.models.org import Org

    org = Org.model_validate(
        {"version": 1, "org": "acme", "departments": [{"key": "a", "name": "A"}]}
    )
    assert org.department("a").name == "A"  # type: ignore[union-attr]  # a None fails the test too
    assert org.department("b") is None
    other = org.model_copy(
        update={
            "departments": [
                *org.departments,
                org.departments[0].model_copy(update={"key": "b", "name": "B"}),
            ]
        }
    )
    assert other.department("b").name == "B"  # type: ignore[union-attr]  # a None fails the test too
    assert org.department("b") is None
    assert org == Org.model_validate(org.model_dump())
