"""What `production` counts as usage: drafts written, and the generator's tokens per client.

As in `cam.usage`: `usage_of(event)` turns a `DraftWritten` into records as it happens, and
`usage_since_in(conn, since)` reads the same acts back from `production_versions`, keyed
alike ("production.draft:<item>:<version>"), so the meter counts each once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aicmo_actors.production.tables import production_items, production_versions
from contracts.base import Event
from contracts.observability import UsageRecord
from contracts.production import DraftWritten

MODULE = "production"
COUNTED_EVENTS: tuple[type[Event], ...] = (DraftWritten,)
KINDS = ("draft_written", "generator_tokens")


def _records(item: str, version: int, client: str | None, tokens: int, at: datetime) -> tuple[UsageRecord, ...]:
    act = f"{item}:{version}"
    out = [UsageRecord(f"{MODULE}.draft_written:{act}", MODULE, "draft_written", client, 1, at)]
    if tokens:
        out.append(UsageRecord(f"{MODULE}.generator_tokens:{act}", MODULE, "generator_tokens", client, tokens, at))
    return tuple(out)


def usage_of(event: Event) -> tuple[UsageRecord, ...]:
    if isinstance(event, DraftWritten):
        client = str(event.client_ref) if event.client_ref else None
        return _records(str(event.item_id), event.version, client, event.tokens, event.timestamp)
    return ()


def usage_since_in(conn: Connection, since: datetime | None) -> Iterator[UsageRecord]:
    v, i = production_versions, production_items
    query = sa.select(v.c.item_id, v.c.version, i.c.client_ref, v.c.tokens, v.c.created_at).join(
        i, i.c.id == v.c.item_id
    )
    if since is not None:
        query = query.where(v.c.created_at >= since)
    for item, version, client, tokens, at in conn.execute(query):
        yield from _records(item, int(version), client, int(tokens or 0), at)
