"""Roles: owner > operator > viewer, over the permissions read < operate < own."""

from __future__ import annotations

import dataclasses

import pytest

from aicmo_actors.identity import tables
from aicmo_actors.identity.roles import PERMISSIONS, ROLES, Principal, allows, check_permission, check_role

#: role -> the permissions it holds.
TABLE = {
    "owner": {"read", "operate", "own"},
    "operator": {"read", "operate"},
    "viewer": {"read"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("needed", PERMISSIONS)
def test_each_role_holds_exactly_its_permissions(role: str, needed: str) -> None:
    assert allows(role, needed) is (needed in TABLE[role])


def test_the_roles_are_the_tables_roles() -> None:
    assert ROLES == tables.ROLES == ("owner", "operator", "viewer")
    assert set(TABLE) == set(ROLES)


@pytest.mark.parametrize("role", ["", "Owner", "admin", "root"])
def test_an_unknown_role_allows_nothing(role: str) -> None:
    assert not any(allows(role, needed) for needed in PERMISSIONS)
    with pytest.raises(ValueError, match=r"unknown role .*: use owner, operator or viewer"):
        check_role(role)


def test_an_unknown_permission_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(ValueError, match=r"unknown permission 'write': use read, operate or own"):
        allows("owner", "write")
    assert check_permission("own") == "own"


def test_a_principal_is_frozen_and_compares_by_value() -> None:
    by_token = Principal(user_id=1, name="alice", role="owner", token_id=7)
    assert by_token == Principal(1, "alice", "owner", 7)
    assert Principal(1, "alice", "owner").token_id is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_token.role = "viewer"  # type: ignore[misc]
