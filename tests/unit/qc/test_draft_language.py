"""A draft is checked in the language it is written in: the offline templates write English
for every client, and production says so (`CheckDraft.language`)."""

from __future__ import annotations

import uuid

from aicmo_actors.qc.checker import run_checks
from contracts.packages import Deliverable, PackageSpec
from contracts.qc import CheckDraft
from tests.unit.qc.cases import DRAFTS, EN_BLOG, NORDLICHT

PACKAGE = PackageSpec(
    name="p",
    title="P",
    price="1",
    currency="EUR",
    billing="monthly",
    deliverables=(Deliverable(type="blog_post", count=1, channel="blog"),),
    review_rounds=1,
    turnaround_days=2,
    reporting="monthly",
)


def _command(language: str | None) -> CheckDraft:
    return CheckDraft(
        project_id=uuid.UUID(int=1),
        item_id=uuid.UUID(int=2),
        version=1,
        idempotency_key="k",
        client=NORDLICHT,  # a German client
        package=PACKAGE,
        brief=EN_BLOG.brief,
        item=EN_BLOG.item,
        title="",
        text=(DRAFTS / "en_blog.md").read_text(encoding="utf-8"),
        language=language,
    )


def test_an_english_draft_for_a_german_client_is_spelt_in_english_when_production_says_so() -> None:
    as_german = run_checks(_command(None), [])
    as_english = run_checks(_command("en"), [])
    spelling = [f for f in as_german.findings if f.check == "spelling" and f.severity == "error"]
    assert spelling, "an English text read as German is full of unknown words"
    assert not [f for f in as_english.findings if f.check == "spelling"]
