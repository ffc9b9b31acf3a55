"""Passwords: argon2id hashes (argon2-cffi's defaults) and the lockout schedule after failed logins.

Pure and synchronous: hashing is slow on purpose (about 0.1 s), so async callers run these
functions in a thread (`asyncio.to_thread`), never on the event loop.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "DEFAULT_HASHER",
    "LOCKOUT_AFTER",
    "LOCKOUT_MAX_S",
    "MIN_PASSWORD_LENGTH",
    "check_password",
    "hash_password",
    "lockout_seconds",
    "needs_rehash",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 12

#: argon2id with the library's defaults (RFC 9106's low-memory profile).
DEFAULT_HASHER = PasswordHasher()

#: Failed logins in a row before each further one locks the user for a while.
LOCKOUT_AFTER = 3
#: The longest lock, in seconds.
LOCKOUT_MAX_S = 900


def check_password(password: str) -> None:
    """Refuse a password too short to keep (ValueError, with what to do)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"the password is {len(password)} characters long: use at least {MIN_PASSWORD_LENGTH} "
            "(a few random words make a good one)"
        )


def hash_password(password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """The argon2id PHC string of `password`; refuses one shorter than `MIN_PASSWORD_LENGTH`."""
    check_password(password)
    return hasher.hash(password)


def verify_password(password_hash: str, password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether `password` matches `password_hash` (compared in constant time by argon2).

    A malformed or foreign hash is a mismatch, never an exception. The parameters come from
    the hash itself, so a hash made with other settings still verifies: `needs_rehash` then
    says to store a new one.
    """
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether `password_hash` was made with other parameters than `hasher`'s (rehash at the next login)."""
    try:
        return hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def lockout_seconds(failed_logins: int) -> int:
    """How long a user is locked after `failed_logins` failures in a row: none for the first
    two, then 1 s, 2 s, 4 s ... doubling up to 900 s (15 minutes)."""
    if failed_logins < LOCKOUT_AFTER:
        return 0
    exponent = failed_logins - LOCKOUT_AFTER
    return LOCKOUT_MAX_S if exponent >= 10 else min(2**exponent, LOCKOUT_MAX_S)
