"""IdentityStore on SQLite and PostgreSQL: users, password logins and their lockout, API tokens, the audit trail."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.identity import repos
from aicmo_actors.identity.repos import (
    CACHE_SECONDS,
    AuditActor,
    IdentityError,
    IdentityStore,
    LoginRefused,
    record_in,
)
from aicmo_actors.identity.roles import Principal
from aicmo_actors.identity.tables import identity_audit, identity_tokens, identity_users
from aicmo_actors.storage.work import run_write

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
#: argon2id at its cheapest: the tests check behaviour, not the cost (tests/unit/identity checks the defaults).
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
CLI = AuditActor("cli:tester", "cli")


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def new_store(engine: AsyncEngine, hasher: PasswordHasher = CHEAP) -> IdentityStore:
    return IdentityStore(engine, hasher=hasher)


async def column(engine: AsyncEngine, col: sa.Column[object], name: str) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(col).where(identity_users.c.name == name))).scalar_one()


async def every_value(engine: AsyncEngine) -> list[str]:
    """Every value of every row of identity's tables, as text."""
    values: list[str] = []
    async with engine.connect() as conn:
        for table in (identity_users, identity_tokens, identity_audit):
            for row in await conn.execute(sa.select(table)):
                values.extend(str(v) for v in row)
    return values


# -- users ----------------------------------------------------------------------------------------


async def test_add_list_get_and_remove_users(engine: AsyncEngine) -> None:
    store = new_store(engine)
    alice = await store.users.add("Alice@Example.com", "owner", PASSWORD, NOW)
    assert (alice.name, alice.role, alice.has_password, alice.created_at) == ("alice@example.com", "owner", True, NOW)
    assert (alice.failed_logins, alice.locked_until, alice.last_login_at) == (0, None, None)
    bob = await store.users.add("bob", "viewer", None, at(1))
    assert not bob.has_password
    assert [u.name for u in await store.users.list()] == ["alice@example.com", "bob"]
    assert await store.users.get("ALICE@example.com") == alice
    assert await store.users.get("nobody") is None
    assert await store.users.remove("BOB", at(2)) is True
    assert await store.users.remove("bob", at(3)) is False
    assert [u.name for u in await store.users.list()] == ["alice@example.com"]


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("", "owner", None, r"invalid user name '': use 1 to 100 characters"),
        ("a b", "owner", None, r"invalid user name 'a b'"),
        ("x" * 101, "owner", None, r"invalid user name"),
        ("ève", "owner", None, r"invalid user name"),
        ("carol", "admin", None, r"unknown role 'admin': use owner, operator or viewer"),
        ("carol", "owner", "too short", r"the password is 9 characters long: use at least 12"),
    ],
)
async def test_a_bad_user_is_refused_in_one_line(
    engine: AsyncEngine, name: str, role: str, password: str | None, message: str
) -> None:
    store = new_store(engine)
    with pytest.raises(IdentityError, match=message):
        await store.users.add(name, role, password, NOW, by=CLI)
    assert await store.users.list() == []
    assert await store.audit.list() == []


async def test_a_duplicate_name_is_refused_whatever_its_case(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", None, NOW, by=CLI)
    with pytest.raises(IdentityError, match=r"a user named 'alice' exists already"):
        await store.users.add("ALICE", "viewer", None, at(1), by=CLI)
    assert [(u.name, u.role) for u in await store.users.list()] == [("alice", "owner")]
    assert [a.action for a in await store.audit.list()] == ["user.add"]  # the refused add wrote nothing


async def test_the_last_owner_can_be_neither_removed_nor_demoted(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", None, NOW)
    await store.users.add("bob", "operator", None, NOW)
    for attempt in (store.users.remove("alice", at(1)), store.users.set_role("alice", "viewer", at(1))):
        with pytest.raises(IdentityError, match=r"'alice' is the last owner: make another user owner first"):
            await attempt
    assert (await store.users.set_role("alice", "owner", at(1))).role == "owner"  # no change, no refusal
    assert (await store.users.set_role("bob", "owner", at(2))).role == "owner"
    assert (await store.users.set_role("alice", "operator", at(3))).role == "operator"
    with pytest.raises(IdentityError, match=r"'bob' is the last owner"):
        await store.users.remove("bob", at(4))
    assert await store.users.remove("alice", at(5))
    with pytest.raises(IdentityError, match=r"no user named 'ghost'"):
        await store.users.set_role("ghost", "viewer", at(6))


# -- logins ---------------------------------------------------------------------------------------


async def test_login_with_the_right_password(engine: AsyncEngine) -> None:
    store = new_store(engine)
    alice = await store.users.add("alice", "operator", PASSWORD, NOW)
    assert await store.login("Alice", PASSWORD, at(1)) == Principal(alice.user_id, "alice", "operator", None)
    assert (await store.users.get("alice")).last_login_at == at(1)  # type: ignore[union-attr]


async def test_failures_lock_the_user_for_longer_and_longer_and_a_success_resets(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", PASSWORD, NOW)
    # The first two failures cost nothing more; the third locks for 1 s.
    assert await store.login("alice", "wrong password!", NOW) == LoginRefused("invalid", 0)
    assert await store.login("alice", "wrong password!", NOW) == LoginRefused("invalid", 0)
    assert await store.login("alice", "wrong password!", NOW) == LoginRefused("invalid", 1)
    # While locked even the right password is refused, unchecked, and the attempt does not count.
    assert await store.login("alice", PASSWORD, at(0.5)) == LoginRefused("locked", 1)
    assert (await store.users.get("alice")).failed_logins == 3  # type: ignore[union-attr]
    # Each further failure doubles the lock, up to 15 minutes.
    t = 1.0
    waits = []
    for _ in range(12):
        refused = await store.login("alice", "wrong password!", at(t))
        assert isinstance(refused, LoginRefused) and refused.reason == "invalid"
        waits.append(refused.retry_after_s)
        assert await store.login("alice", "wrong password!", at(t + refused.retry_after_s - 0.5)) == LoginRefused(
            "locked", 1
        )
        t += refused.retry_after_s
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    user = await store.users.get("alice")
    assert user is not None and user.failed_logins == 15 and user.locked_until == at(t)
    # The lock over, the right password lets them in and resets everything.
    assert isinstance(await store.login("alice", PASSWORD, at(t)), Principal)
    user = await store.users.get("alice")
    assert user is not None and (user.failed_logins, user.locked_until, user.last_login_at) == (0, None, at(t))
    assert await store.login("alice", "wrong password!", at(t + 1)) == LoginRefused("invalid", 0)


async def test_an_unknown_user_gets_the_same_answers_as_a_known_one(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", PASSWORD, NOW)
    await store.users.add("tokens-only", "viewer", None, NOW)
    times = [0, 0, 0, 0.5, 1, 1.5, 3, 3, 7, 20, 20.2]
    answers = {}
    for name in ("alice", "tokens-only", "nobody"):
        answers[name] = [await store.login(name, "wrong password!", at(t)) for t in times]
    assert answers["alice"] == answers["tokens-only"] == answers["nobody"]
    assert {type(a) for a in answers["nobody"]} == {LoginRefused}
    assert {a.reason for a in answers["nobody"]} == {"invalid", "locked"}  # type: ignore[union-attr]
    # A name that cannot be a user, however long, is just another unknown one.
    assert await store.login("x" * 100_000, "wrong password!", NOW) == LoginRefused("invalid", 0)
    # A user with no password never logs in with one, not even with the empty one.
    assert isinstance(await store.login("tokens-only", "", at(100)), LoginRefused)


async def test_simultaneous_attempts_are_taken_one_at_a_time(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", PASSWORD, NOW)
    answers = await asyncio.gather(*(store.login("alice", f"guess number {n}", NOW) for n in range(6)))
    assert sorted(answers, key=repr) == sorted(
        [LoginRefused("invalid", 0)] * 2 + [LoginRefused("invalid", 1)] + [LoginRefused("locked", 1)] * 3, key=repr
    )
    assert (await store.users.get("alice")).failed_logins == 3  # type: ignore[union-attr]
    assert store.users._attempts == {}  # nothing left behind


async def test_a_hash_with_old_parameters_is_replaced_at_login(engine: AsyncEngine) -> None:
    await new_store(engine).users.add("alice", "owner", PASSWORD, NOW)
    before = await column(engine, identity_users.c.password_hash, "alice")
    assert str(before).startswith("$argon2id$v=19$m=8,t=1,p=1$")
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert isinstance(await new_store(engine, stronger).login("alice", PASSWORD, at(1)), Principal)
    after = await column(engine, identity_users.c.password_hash, "alice")
    assert str(after).startswith("$argon2id$v=19$m=16,t=2,p=1$")
    assert isinstance(await new_store(engine, stronger).login("alice", PASSWORD, at(2)), Principal)


async def test_a_new_password_lifts_the_lock_and_none_removes_it(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", PASSWORD, NOW)
    for _ in range(4):
        await store.login("alice", "wrong password!", NOW)
    assert (await store.login("alice", PASSWORD, NOW)).reason == "locked"  # type: ignore[union-attr]
    user = await store.users.set_password("alice", "another long password", NOW, by=CLI)
    assert (user.failed_logins, user.locked_until, user.has_password) == (0, None, True)
    assert isinstance(await store.login("alice", "another long password", NOW), Principal)
    with pytest.raises(IdentityError, match=r"at least 12"):
        await store.users.set_password("alice", "short", NOW)
    assert not (await store.users.set_password("alice", None, at(1))).has_password
    assert await store.login("alice", "another long password", at(2)) == LoginRefused("invalid", 0)


# -- tokens ---------------------------------------------------------------------------------------


async def test_a_token_authenticates_its_user_and_only_its_hash_is_stored(engine: AsyncEngine) -> None:
    store = new_store(engine)
    alice = await store.users.add("alice", "operator", None, NOW)
    raw, row = await store.tokens.create("ALICE", " laptop ", NOW, by=CLI)
    assert raw.startswith("aicmo_") and len(raw) == 49
    assert (row.user_id, row.user_name, row.label, row.prefix) == (alice.user_id, "alice", "laptop", raw[:12])
    assert (row.created_at, row.expires_at, row.last_used_at, row.revoked_at) == (NOW, None, None, None)
    assert await store.tokens.authenticate(raw, NOW) == Principal(alice.user_id, "alice", "operator", row.token_id)
    for wrong in ("", raw[:-1], raw + "x", "Bearer " + raw, raw.upper(), "aicmo_" + "x" * 300):
        assert await new_store(engine).tokens.authenticate(wrong, NOW) is None
    stored = await every_value(engine)
    assert not [v for v in stored if raw in v]  # in no column of any table, the audit trail included
    assert hashlib.sha256(raw.encode()).hexdigest() in stored
    # Another token of hers is another principal (same user, another token id).
    raw2, row2 = await store.tokens.create("alice", "ci", NOW)
    assert raw2 != raw and (await store.tokens.authenticate(raw2, NOW)).token_id == row2.token_id  # type: ignore[union-attr]


async def test_tokens_are_listed_without_their_secret(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", None, NOW)
    await store.users.add("bob", "viewer", None, NOW)
    _, a = await store.tokens.create("alice", "laptop", NOW)
    _, b = await store.tokens.create("bob", "ci", NOW, expires_at=at(60))
    assert await store.tokens.list() == [a, b]
    assert await store.tokens.list("BOB") == [b]
    assert b.live(at(59)) and not b.live(at(60))
    with pytest.raises(IdentityError, match=r"no user named 'ghost'"):
        await store.tokens.list("ghost")
    with pytest.raises(IdentityError, match=r"no user named 'ghost'"):
        await store.tokens.create("ghost", "x", NOW)
    with pytest.raises(IdentityError, match=r"invalid token label '  ': use 1 to 100 printable characters"):
        await store.tokens.create("alice", "  ", NOW)
    with pytest.raises(IdentityError, match=r"before it is made"):
        await store.tokens.create("alice", "late", NOW, expires_at=NOW)
    assert await store.tokens.get(a.prefix) == a
    assert await store.tokens.get(str(b.token_id)) == b
    assert await store.tokens.get(999) is None


async def test_a_revoke_through_the_store_takes_effect_at_once(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", None, NOW)
    raw, row = await store.tokens.create("alice", "laptop", NOW)
    raw2, row2 = await store.tokens.create("alice", "ci", NOW)
    assert await store.tokens.authenticate(raw, NOW) is not None  # now in the cache
    assert await store.tokens.revoke(row.prefix, at(1), by=CLI) is True
    assert await store.tokens.authenticate(raw, at(1)) is None
    assert await store.tokens.revoke(row.prefix, at(2)) is False  # revoked already
    assert (await store.tokens.get(row.token_id)).revoked_at == at(1)  # type: ignore[union-attr]
    # By id, or by the whole token (one that leaked, pasted as it is).
    assert await store.tokens.revoke(raw2, at(3)) is True
    assert await store.tokens.revoke(row2.token_id, at(4)) is False
    with pytest.raises(IdentityError, match=r"'laptop' names no token"):
        await store.tokens.revoke("laptop", at(5))


async def test_a_revoke_from_another_process_takes_effect_within_the_cache_time(engine: AsyncEngine) -> None:
    service, cli = new_store(engine), new_store(engine)
    await cli.users.add("alice", "owner", None, NOW)
    raw, row = await cli.tokens.create("alice", "laptop", NOW)
    assert await service.tokens.authenticate(raw, NOW) is not None
    assert await cli.tokens.revoke(row.token_id, at(1))
    # The service trusts what it read at NOW until NOW + 5 s, and not a moment longer.
    assert await service.tokens.authenticate(raw, at(CACHE_SECONDS - 0.001)) is not None
    assert await service.tokens.authenticate(raw, at(CACHE_SECONDS)) is None
    assert await service.tokens.authenticate(raw, at(CACHE_SECONDS - 0.001)) is None  # not cached again


async def test_an_expired_token_is_refused_even_from_the_cache(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", None, NOW)
    raw, _ = await store.tokens.create("alice", "short-lived", NOW, expires_at=at(3600))
    assert await store.tokens.authenticate(raw, at(3598)) is not None  # cached until 3603 at most
    assert await store.tokens.authenticate(raw, at(3599.9)) is not None
    assert await store.tokens.authenticate(raw, at(3600)) is None
    assert await new_store(engine).tokens.authenticate(raw, at(3600)) is None


async def test_a_removed_user_or_a_new_role_counts_at_once(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", None, NOW)
    await store.users.add("bob", "owner", None, NOW)
    raw, _ = await store.tokens.create("bob", "laptop", NOW)
    assert (await store.tokens.authenticate(raw, NOW)).role == "owner"  # type: ignore[union-attr]
    await store.users.set_role("bob", "viewer", at(1))
    assert (await store.tokens.authenticate(raw, at(1))).role == "viewer"  # type: ignore[union-attr]
    assert await store.users.remove("bob", at(2))
    assert await store.tokens.authenticate(raw, at(2)) is None
    assert await store.tokens.list() == []  # the tokens went with the user


async def test_last_used_is_written_at_most_once_a_minute(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", None, NOW)
    raw, row = await store.tokens.create("alice", "laptop", NOW)
    writes: list[int] = []
    touch = repos._touch

    def counted(conn: sa.Connection, token_id: int, now: datetime) -> None:
        writes.append(token_id)
        touch(conn, token_id, now)

    monkeypatch.setattr(repos, "_touch", counted)

    async def last_used() -> datetime | None:
        found = await store.tokens.get(row.token_id)
        assert found is not None
        return found.last_used_at

    for second in range(0, 60, 2):  # a request every 2 s for a minute, cache hits and misses alike
        assert await store.tokens.authenticate(raw, at(second)) is not None
    assert writes == [row.token_id]
    assert await last_used() == NOW
    assert await store.tokens.authenticate(raw, at(60)) is not None
    assert len(writes) == 2 and await last_used() == at(60)
    # Another process (a store of its own) does not write sooner either.
    other = new_store(engine)
    assert await other.tokens.authenticate(raw, at(100)) is not None
    assert len(writes) == 2 and await last_used() == at(60)
    assert await other.tokens.authenticate(raw, at(121)) is not None
    assert await last_used() == at(121)


# -- audit ----------------------------------------------------------------------------------------


async def test_the_audit_trail_strips_secrets_at_any_depth(engine: AsyncEngine) -> None:
    store = new_store(engine)
    detail = {
        "password": "hunter2 hunter2",
        "new_Password": "x",
        "api_token": "aicmo_secret",
        "Client-Secret": "s",
        "API-Key": "k",
        "campaign": "spring",
        "when": at(1),
        "nested": {"smtp": {"host": "mail.example.com", "passwd": "p"}, "authorization": "Bearer x"},
        "items": [{"token": "t", "n": 2}, 3],
    }
    audit_id = await store.audit.record("alice", "api", "campaign.pause", "spring", detail, NOW)
    [row] = await store.audit.list()
    assert (row.audit_id, row.at, row.actor, row.source, row.action, row.target) == (
        audit_id,
        NOW,
        "alice",
        "api",
        "campaign.pause",
        "spring",
    )
    assert row.detail == {
        "campaign": "spring",
        "when": at(1).isoformat(),
        "nested": {"smtp": {"host": "mail.example.com"}},
        "items": [{"n": 2}, 3],
    }
    assert not [v for v in await every_value(engine) if "hunter2" in v or "aicmo_secret" in v]


async def test_the_audit_trail_pages_newest_first_and_filters(engine: AsyncEngine) -> None:
    store = new_store(engine)
    actions = ["user.add", "token.create", "user_x", "campaign.pause", "user.remove", "token.revoke", "user.add"]
    ids = [
        await store.audit.record("alice" if n % 2 else "cli:root", "api", action, f"t{n}", None, at(n))
        for n, action in enumerate(actions)
    ]
    first = await store.audit.list(limit=3)
    assert [r.audit_id for r in first] == ids[::-1][:3]
    second = await store.audit.list(limit=3, before_id=first[-1].audit_id)
    assert [r.audit_id for r in second] == ids[::-1][3:6]
    third = await store.audit.list(limit=3, before_id=second[-1].audit_id)
    assert [r.audit_id for r in third] == [ids[0]]
    assert await store.audit.list(before_id=ids[0]) == []
    assert [r.target for r in await store.audit.list(action="user.")] == ["t6", "t4", "t0"]
    assert [r.target for r in await store.audit.list(action="user_")] == ["t2"]  # _ is a character, not a wildcard
    assert [r.target for r in await store.audit.list(action="token")] == ["t5", "t1"]
    assert [r.target for r in await store.audit.list(actor="alice")] == ["t5", "t3", "t1"]
    assert [r.target for r in await store.audit.list(since=at(5))] == ["t6", "t5"]
    assert [r.target for r in await store.audit.list(since=at(1), actor="cli:root", action="user")] == [
        "t6",
        "t4",
        "t2",
    ]
    with pytest.raises(IdentityError, match=r"limit must be 1 to 1000"):
        await store.audit.list(limit=0)


async def test_an_audit_row_is_part_of_the_change_it_records(engine: AsyncEngine) -> None:
    store = new_store(engine)
    await store.users.add("alice", "owner", PASSWORD, NOW, by=CLI)
    raw, token = await store.tokens.create("alice", "laptop", at(1), by=CLI)
    await store.tokens.revoke(token.prefix, at(2), by=AuditActor("alice", "api"))
    await store.users.add("bob", "viewer", None, at(3), by=CLI)
    await store.users.set_role("bob", "operator", at(4), by=CLI)
    await store.users.remove("bob", at(5), by=CLI)
    with pytest.raises(IdentityError):
        await store.users.remove("alice", at(6), by=CLI)  # refused: no audit row either
    rows = await store.audit.list()
    assert [(r.actor, r.source, r.action, r.target) for r in rows] == [
        ("cli:tester", "cli", "user.remove", "bob"),
        ("cli:tester", "cli", "user.role", "bob"),
        ("cli:tester", "cli", "user.add", "bob"),
        ("alice", "api", "token.revoke", "alice"),
        ("cli:tester", "cli", "token.create", "alice"),
        ("cli:tester", "cli", "user.add", "alice"),
    ]
    assert rows[-1].detail == {"role": "owner", "login": "password and tokens"}
    assert rows[-2].detail == {"id": token.token_id, "label": "laptop", "prefix": token.prefix, "expires_at": None}
    assert rows[0].detail == {"role": "operator", "revoked": 0}

    # record_in writes inside another transaction: rolled back with it.
    def fails(conn: sa.Connection) -> None:
        record_in(conn, "alice", "api", "module.disable", "cam", {"reason": "test"}, at(7))
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await run_write(engine, fails)
    assert len(await store.audit.list()) == 6
    await run_write(engine, lambda conn: record_in(conn, "alice", "api", "module.disable", "cam", None, at(8)))
    assert [(r.action, r.detail) for r in await store.audit.list(limit=1)] == [("module.disable", {})]
    assert raw not in str([r.detail for r in await store.audit.list()])
