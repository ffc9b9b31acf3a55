"""Passwords: argon2id hashes, constant-time checks that never raise, the lockout schedule."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from aicmo_actors.identity.passwords import (
    DEFAULT_HASHER,
    MIN_PASSWORD_LENGTH,
    check_password,
    hash_password,
    lockout_seconds,
    needs_rehash,
    verify_password,
)

PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_the_default_is_argon2id_with_the_library_defaults() -> None:
    assert DEFAULT_HASHER.type is Type.ID
    library = PasswordHasher()
    assert (DEFAULT_HASHER.time_cost, DEFAULT_HASHER.memory_cost, DEFAULT_HASHER.parallelism) == (
        library.time_cost,
        library.memory_cost,
        library.parallelism,
    )


def test_a_hash_verifies_its_password_only() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + " ")
    assert not verify_password(stored, "")


def test_two_hashes_of_one_password_differ_by_their_salt() -> None:
    first, second = hash_password(PASSWORD, CHEAP), hash_password(PASSWORD, CHEAP)
    assert first != second
    assert verify_password(first, PASSWORD, CHEAP) and verify_password(second, PASSWORD, CHEAP)


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$broken", "$2b$12$bcrypt"])
def test_a_malformed_hash_is_a_mismatch_not_an_error(stored: str) -> None:
    assert verify_password(stored, PASSWORD) is False
    assert needs_rehash(stored) is True


def test_short_passwords_are_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"the password is 11 characters long: use at least 12"):
        hash_password("x" * (MIN_PASSWORD_LENGTH - 1))
    with pytest.raises(ValueError, match=r"is 0 characters long"):
        check_password("")
    check_password("x" * MIN_PASSWORD_LENGTH)
    assert verify_password(hash_password("x" * MIN_PASSWORD_LENGTH, CHEAP), "x" * MIN_PASSWORD_LENGTH, CHEAP)


def test_a_hash_made_with_other_parameters_verifies_and_asks_for_a_rehash() -> None:
    cheap = hash_password(PASSWORD, CHEAP)
    assert verify_password(cheap, PASSWORD)  # the parameters come from the hash
    assert needs_rehash(cheap)
    assert not needs_rehash(cheap, CHEAP)
    assert not needs_rehash(hash_password(PASSWORD))


@pytest.mark.parametrize(
    ("failed", "seconds"),
    [(0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 4), (6, 8), (12, 512), (13, 900), (14, 900), (10**9, 900)],
)
def test_the_lockout_doubles_from_the_third_failure_up_to_15_minutes(failed: int, seconds: int) -> None:
    assert lockout_seconds(failed) == seconds
