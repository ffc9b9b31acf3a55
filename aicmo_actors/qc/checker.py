"""`qc.checker`: checks one version of one item, once per idempotency key.

`CheckDraft` (told by production, possibly many times): the first time for its key, the
client's earlier passed drafts of other items are read, the checks run (`checks.check_draft`,
in a worker thread: their cost grows with the client's history, and a language's dictionary
is loaded on its first use, so the event loop is never held up), and the verdict is recorded
with the draft in one transaction; then `DraftChecked`. Told again with the same key, it
publishes the recorded verdict: a check never runs twice. Nothing is kept in memory: a
replacement after a kill answers from the database.
"""

from __future__ import annotations

import uuid
from functools import partial

import anyio.to_thread

from aicmo_actors.qc.checks import Earlier, Verdict, check_draft
from aicmo_actors.qc.repos import Check, EarlierDraft, NewCheck, QcStore
from aicmo_actors.runtime import Actor
from contracts.qc import CheckDraft, DraftChecked, Finding

CHECKER = "qc.checker"


def run_checks(message: CheckDraft, earlier: list[EarlierDraft]) -> Verdict:
    """The checks of one `CheckDraft` against the client's earlier drafts (pure, CPU only)."""
    client = message.client
    if message.language and message.language != client.language:
        client = client.model_copy(update={"language": message.language})
    return check_draft(
        message.title,
        message.text,
        item=message.item,
        brief=message.brief,
        client=client,
        reading_grade=message.package.reading_grade,
        earlier=[Earlier(item=f"item {e.item_id}, version {e.version}", title=e.title, text=e.text) for e in earlier],
    )


class Checker(Actor[CheckDraft]):
    """Checks drafts, once per key (see the module)."""

    def __init__(self, store: QcStore, *, in_thread: bool = True) -> None:
        self.store = store
        self.in_thread = in_thread

    async def receive(self, message: CheckDraft) -> None:
        found = await self.store.checks.find(message.idempotency_key)
        if found is None:
            found = await self._check(message)
        elif (found.project_id, found.item_id, found.version) != (
            str(message.project_id),
            str(message.item_id),
            message.version,
        ):
            self.ctx.log.warning(
                "CheckDraft with a key already used for another draft: the recorded verdict said again",
                key=message.idempotency_key,
            )
        await self.ctx.publish(
            DraftChecked(
                project_id=uuid.UUID(found.project_id),
                item_id=uuid.UUID(found.item_id),
                version=found.version,
                passed=found.passed,
                findings=tuple(Finding.model_validate(f) for f in found.findings),
                checked_at=found.checked_at,
            )
        )

    async def _check(self, message: CheckDraft) -> Check:
        earlier = await self.store.checks.earlier(str(message.client.client_ref), str(message.item_id))
        check = partial(run_checks, message, earlier)
        verdict = await anyio.to_thread.run_sync(check) if self.in_thread else check()
        new = NewCheck(
            idempotency_key=message.idempotency_key,
            project_id=str(message.project_id),
            item_id=str(message.item_id),
            version=message.version,
            client_ref=str(message.client.client_ref),
            passed=verdict.passed,
            findings=[f.model_dump(mode="json") for f in verdict.findings],
            title=message.title,
            text=message.text,
        )
        created, found = await self.store.checks.record(new, self.ctx.clock.now())
        if created:
            self.ctx.log.info(
                "draft checked",
                project_id=new.project_id,
                item_id=new.item_id,
                version=new.version,
                passed=new.passed,
                errors=len(verdict.errors()),
                warnings=len(verdict.findings) - len(verdict.errors()),
            )
        return found
