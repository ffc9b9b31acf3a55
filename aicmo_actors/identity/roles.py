"""Roles and permissions: who may do what, as data and one pure function.

| role       | read | operate | own |
|------------|------|---------|-----|
| `owner`    | yes  | yes     | yes |
| `operator` | yes  | yes     | no  |
| `viewer`   | yes  | no      | no  |

`read` is looking at anything; `operate` is running the business (campaigns, replies,
module switches); `own` is users, other people's tokens and secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

from aicmo_actors.identity.tables import ROLES

__all__ = ["PERMISSIONS", "ROLES", "Principal", "allows", "check_permission", "check_role"]

#: The permission levels, weakest first.
PERMISSIONS = ("read", "operate", "own")

#: Each role's rank; a role holds every permission up to its own rank.
_RANK = {"viewer": 0, "operator": 1, "owner": 2}
_NEEDED_RANK = {"read": 0, "operate": 1, "own": 2}


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user, and the token they came with (None after a password login)."""

    user_id: int
    name: str
    role: str
    token_id: int | None = None


def check_role(role: str) -> str:
    """`role` if it is one of `ROLES`, else ValueError naming them."""
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}: use {', '.join(ROLES[:-1])} or {ROLES[-1]}")
    return role


def check_permission(needed: str) -> str:
    """`needed` if it is one of `PERMISSIONS`, else ValueError naming them."""
    if needed not in _NEEDED_RANK:
        raise ValueError(f"unknown permission {needed!r}: use {', '.join(PERMISSIONS[:-1])} or {PERMISSIONS[-1]}")
    return needed


def allows(role: str, needed: str) -> bool:
    """Whether `role` holds permission `needed` (`read`, `operate` or `own`).

    An unknown role allows nothing; an unknown permission is a bug (ValueError), so a typo in
    a route's requirement fails loudly instead of opening or closing it silently.
    """
    rank = _RANK.get(role)
    return rank is not None and rank >= _NEEDED_RANK[check_permission(needed)]
