"""The simulated writer: the offline templates, with problems planted for quality control.

A seeded share of first drafts carries one problem a careless writer (or a language model)
leaves behind: an unfilled placeholder, a word the brief forbids, a malformed link, a stray
phone number, the client's name misspelt. Quality control must catch each one and send the
piece back; the retake is written afresh by the templates, clean. Which draft gets which
problem is a function of the seed and the piece's key alone, so a replay plants the same.

`planted` records what was planted where (key: "<item key>@<client>"): the invariants and
the demo read it against QC's verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from aicmo_actors.production import drafting
from aicmo_actors.production.generator import Draft, DraftRequest, TemplateGenerator
from aicmo_actors.simulation.faults import roll

#: A problem, and how it is planted into a draft's text.
PROBLEMS: tuple[str, ...] = ("placeholder", "forbidden_word", "malformed_link", "phone_number", "brand_name")


def plant(problem: str, text: str, *, company: str, avoid: tuple[str, ...]) -> str:
    """`text` with `problem` planted in its second paragraph (or at its end)."""
    if problem == "placeholder":
        extra = "Dear [Client Name], this is where {{ first_name }} should read on."
    elif problem == "forbidden_word":
        word = avoid[0] if avoid else "cheap"
        extra = f"It is a {word} way to get there."
    elif problem == "malformed_link":
        extra = "Read more at [our guide](http//www.example .com/guide)."
    elif problem == "phone_number":
        extra = "Call our team on +1 212 555 0147 to talk it through."
    else:
        extra = f"At {company.upper()} we see this every week."
    paragraphs = text.split("\n\n")
    at = 2 if len(paragraphs) > 2 else len(paragraphs)
    paragraphs.insert(at, extra)
    return "\n\n".join(paragraphs)


@dataclass
class PlantingGenerator:
    """`TemplateGenerator`, with a problem planted in a seeded share of first drafts."""

    seed: int
    share: float = 0.25
    #: "llm": production asks this writer for every draft (with "template" it would write
    #: them with its own templates); it never fails and counts no tokens.
    kind: str = "llm"
    budget_tokens: int | None = None
    planted: dict[str, str] = field(default_factory=dict)
    templates: TemplateGenerator = field(default_factory=TemplateGenerator)

    async def draft(self, request: DraftRequest) -> Draft:
        if request.kind == "retake":
            if any(f.check == "near_duplicate" for f in request.findings):
                return self.templates.write(request)  # written anew from another turn: never planted
            # A careful rewrite: the templates afresh, not the planted text patched.
            clean = self.templates.write(replace(request, previous=None, findings=()))
            return replace(clean, title=request.previous.title if request.previous else clean.title)
        draft = self.templates.write(request)
        if request.kind != "first":
            return draft
        where = f"{request.item.key}@{request.client.client_ref}"
        chance = roll(self.seed, "plant", where)
        if chance >= self.share:
            return draft
        problem = PROBLEMS[int(roll(self.seed, "plant-kind", where) * len(PROBLEMS))]
        self.planted[where] = problem
        avoid = request.avoid
        text = plant(problem, draft.text, company=request.client.company, avoid=avoid)
        return replace(draft, text=text, html=drafting.to_html(text))
