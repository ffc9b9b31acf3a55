"""identity: users, roles, API tokens and the audit trail of the control plane.

The names load on first use (PEP 562): `from aicmo_actors.identity import allows` does not
pay for argon2 and the repositories.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.identity.passwords import hash_password, verify_password
    from aicmo_actors.identity.repos import (
        AuditActor,
        AuditRow,
        IdentityError,
        IdentityStore,
        LoginRefused,
        TokenRow,
        UserRow,
        record_in,
    )
    from aicmo_actors.identity.roles import PERMISSIONS, ROLES, Principal, allows

_EXPORTS = {
    "hash_password": "aicmo_actors.identity.passwords",
    "verify_password": "aicmo_actors.identity.passwords",
    "AuditActor": "aicmo_actors.identity.repos",
    "AuditRow": "aicmo_actors.identity.repos",
    "IdentityError": "aicmo_actors.identity.repos",
    "IdentityStore": "aicmo_actors.identity.repos",
    "LoginRefused": "aicmo_actors.identity.repos",
    "TokenRow": "aicmo_actors.identity.repos",
    "UserRow": "aicmo_actors.identity.repos",
    "record_in": "aicmo_actors.identity.repos",
    "PERMISSIONS": "aicmo_actors.identity.roles",
    "ROLES": "aicmo_actors.identity.roles",
    "Principal": "aicmo_actors.identity.roles",
    "allows": "aicmo_actors.identity.roles",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "PERMISSIONS",
    "ROLES",
    "AuditActor",
    "AuditRow",
    "IdentityError",
    "IdentityStore",
    "LoginRefused",
    "Principal",
    "TokenRow",
    "UserRow",
    "allows",
    "hash_password",
    "record_in",
    "verify_password",
]
