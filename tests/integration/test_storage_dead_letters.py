"""Dead letters land in runtime_dead_letters and are listed newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.storage.dead_letters import list_dead_letters, store_dead_letters
from contracts.runtime import DeadLetter

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

T0 = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def _letter(n: int, payload: str = '{"outbound_id": 1}') -> DeadLetter:
    return DeadLetter(
        kind="poison",
        actor=f"cam.sender.{n}",
        message_type="SendEmail",
        payload=payload,
        error=f"boom {n}\nTraceback ...",
        at=T0 + timedelta(seconds=n),
        timestamp=T0,
    )


async def test_store_and_list(engine: AsyncEngine) -> None:
    first, second, third = _letter(1), _letter(2, payload="<not json>"), _letter(3)
    assert await store_dead_letters(engine, [first, second]) == 2
    # The sink may hand the same letter over again (retry after a failed write): one row.
    assert await store_dead_letters(engine, [second, third]) == 1
    assert await store_dead_letters(engine, []) == 0

    listed = await list_dead_letters(engine, limit=10)
    assert [row.actor for row in listed] == ["cam.sender.3", "cam.sender.2", "cam.sender.1"]
    newest = listed[0]
    assert newest.letter_id == str(third.message_id)
    assert newest.kind == "poison" and newest.message_type == "SendEmail"
    assert newest.payload == {"outbound_id": 1}
    assert newest.error == "boom 3\nTraceback ..."
    assert newest.at == third.at and newest.at.tzinfo is not None
    assert listed[1].payload == "<not json>"
    assert [row.actor for row in await list_dead_letters(engine, limit=1)] == ["cam.sender.3"]
