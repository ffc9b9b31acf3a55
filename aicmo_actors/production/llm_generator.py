"""`LlmGenerator`: drafts written by a model behind an OpenAI-compatible endpoint
(`gateways.llm.ChatClient`).

It asks once per call (the studio retries across ticks, then falls back to the templates and
tells a person; it also keeps the client's token budget). What the model writes is held to
the same rules as a template's draft: the first "# " line is the title, the rest the text,
the brief's words to avoid dropped, fitted to the item's limits, HTML made the same way.
"""

from __future__ import annotations

from aicmo_actors.gateways.llm import ChatClient, LlmError
from aicmo_actors.production import drafting
from aicmo_actors.production.generator import Draft, DraftRequest, GeneratorError, TemplateGenerator

SYSTEM = (
    "You write marketing content for an agency's client. Write clean, plain English in Markdown: "
    "the first line is the title as '# Title', then the text, with '## ' headings where they help. "
    "No placeholders, no links, no email addresses, no phone numbers, no made-up figures."
)


def prompt(request: DraftRequest) -> list[dict[str, str]]:
    item, brief = request.item, request.brief
    limits = []
    if item.min_words:
        limits.append(f"at least {item.min_words} words")
    if item.max_words:
        limits.append(f"at most {item.max_words} words")
    if item.max_chars:
        limits.append(f"at most {item.max_chars} characters")
    lines = [
        f"Company (spell exactly so): {request.client.company}",
        f"Piece: {item.type.replace('_', ' ')} for {item.channel}",
        f"Topic: {item.topic}",
        f"Length: {', '.join(limits) or 'as fits the piece'}",
    ]
    for key in ("business", "audience", "goals", "brand_voice", "words_to_use", "words_to_avoid"):
        if brief.get(key):
            lines.append(f"{key.replace('_', ' ').capitalize()}: {brief[key][:500]}")
    if request.previous is not None:
        lines.append(f"\nThe previous version (v{request.previous.version}):\n{request.previous.text[:8000]}")
        if request.comment:
            lines.append(f"\nThe client asked for these changes; keep the rest:\n{request.comment[:2000]}")
        for f in request.findings:
            lines.append(f"Quality control found ({f.check}): {f.message} {f.excerpt!r}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def split_title(answer: str, fallback: str) -> tuple[str, str]:
    lines = answer.strip().splitlines()
    if lines and lines[0].startswith("# "):
        return lines[0][2:].strip() or fallback, "\n".join(lines[1:]).strip() + "\n"
    return fallback, answer.strip() + "\n"


class LlmGenerator:
    kind = "llm"

    def __init__(self, client: ChatClient, *, budget_tokens: int | None = None, max_tokens: int = 2000) -> None:
        self.client = client
        self.budget_tokens = budget_tokens
        self.max_tokens = max_tokens
        self._fill = TemplateGenerator()

    async def draft(self, request: DraftRequest) -> Draft:
        try:
            answer = await self.client.complete(prompt(request), max_tokens=self.max_tokens)
        except LlmError as exc:
            raise GeneratorError(str(exc), permanent=exc.permanent) from None
        title, text = split_title(answer.text, request.item.topic)
        pattern = drafting.avoid_pattern(request.avoid)
        text = drafting.drop_matching(text, pattern)
        if pattern is not None and pattern.search(title):
            title = request.item.topic
        text = drafting.fit(text, request.limits)
        return Draft(title=title, text=text, html=drafting.to_html(text), source="llm", tokens=answer.total_tokens)

    async def aclose(self) -> None:
        await self.client.aclose()
