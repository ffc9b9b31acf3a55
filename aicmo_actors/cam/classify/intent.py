"""What a human reply wants: read on the reply alone, with quotes and signature removed."""

from __future__ import annotations

import re

#: Where the quoted original starts (English, German, French, Spanish, Outlook, Gmail, Apple).
QUOTE_START = re.compile(
    r"^\s*(?:"
    r"On .{1,200}(?:wrote|schrieb|a écrit|escribió)\s*:"
    r"|Am .{1,200}schrieb .{0,200}:"
    r"|Le .{1,200}a écrit\s*:"
    r"|El .{1,200}escribió\s*:"
    r"|-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|Forwarded message)\s*-{2,}"
    r"|_{10,}"
    r"|(?:From|Von|De|Da)\s*:\s.+\n(?:.*\n){0,3}?\s*(?:Sent|Gesendet|Envoyé|Enviado|Date|Datum|Inviato)\s*:"
    r")",
    re.I | re.M,
)
SIGNATURE = re.compile(
    r"^(?:-- ?$|—\s*$|Sent from my (?:iPhone|iPad|Android|mobile|Samsung|Galaxy).*$|Von meinem iPhone gesendet.*$|"
    r"Envoyé de mon (?:iPhone|iPad).*$|Enviado desde mi (?:iPhone|iPad).*$|Get Outlook for .*$)",
    re.I | re.M,
)


def strip_quoted(text: str) -> str:
    """The reply without the quoted original and without the signature."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    match = QUOTE_START.search(text)
    if match:
        text = text[: match.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    text = "\n".join(lines)
    sig = SIGNATURE.search(text)
    if sig:
        text = text[: sig.start()]
    return text.strip()


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns), re.I)


UNSUBSCRIBE = _any(
    r"\bunsubscribe\b", r"remove me", r"take me off", r"opt(?:-| )?out", r"stop (?:e-?mailing|emailing|contacting|sending|writing)",
    r"(?:don't|do not|never) (?:contact|email|e-mail|write to|message) me", r"no more (?:e-?mails|emails|messages)",
    r"remove (?:my|this) (?:address|email|e-mail)", r"(?:delete|erase) my (?:data|address|details)",
    r"\babmelden\b", r"austragen", r"keine (?:weiteren )?(?:e-?mails|nachrichten)", r"nicht mehr (?:kontaktieren|anschreiben|schreiben)",
    r"désinscri", r"désabonn", r"ne plus (?:me )?(?:contacter|écrire|recevoir)", r"retirez[- ]moi",
    r"dar(?:me)? de baja", r"no (?:me )?(?:contacte|escriba|envíe)", r"elimin(?:en|ar)(?:me)? de (?:su|la) lista",
)
NOT_INTERESTED = _any(
    r"not interested", r"no interest", r"no thanks?\b", r"no,? thank you", r"not (?:a )?(?:good )?fit", r"(?:we're|we are|i'm|i am) (?:all )?set",
    r"not (?:looking|in the market)", r"(?:we|i) (?:already )?(?:have|work with|use) (?:a|an|our own) ", r"not (?:right )?now", r"pass on this",
    r"no need", r"not for us", r"kein interesse", r"nicht interessiert", r"pas intéress", r"no (?:me|nos) interesa", r"no estamos interesados",
)
MEETING = _any(
    r"(?:schedule|book|set up|arrange|have|hop on|jump on) (?:a |an )?(?:quick |short |brief )?(?:call|meeting|chat|demo|zoom|time)",
    r"calendly\.com", r"(?:are you|you) (?:free|available)", r"what(?:'s| is) your availability", r"(?:send|share) (?:me )?(?:a |an |your )?(?:calendar|invite|link)",
    r"let'?s (?:talk|meet|chat|connect)", r"(?:mon|tues|wednes|thurs|fri)day (?:at|morning|afternoon)", r"\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b",
    r"termin", r"telefonat", r"rendez-vous", r"appel", r"reunión", r"llamada",
)
REFERRAL = _any(
    r"(?:talk|speak|reach out|write|get in touch) (?:to|with) (?:my|our) (?:colleague|partner|boss|manager|cmo|ceo|team)",
    r"not the right (?:person|contact)", r"(?:you should|better to|please) (?:contact|reach|email|speak to|talk to)", r"(?:cc'?ing|copying|looping in|forwarded (?:this|your email) to)",
    r"(?:she|he|they) (?:handles?|is responsible|looks after|takes care)", r"(?:in charge of|responsible for) (?:marketing|this)",
    r"wenden sie sich an", r"zuständig", r"la bonne personne", r"contactez", r"la persona adecuada", r"póngase en contacto",
)
INTERESTED = _any(
    r"(?<!not )(?<!not really )interested", r"sounds (?:good|great|interesting)", r"tell me more", r"(?:send|share) (?:me )?(?:more )?(?:info|information|details|a proposal|the deck|pricing)",
    r"(?:yes|sure|absolutely|definitely),? (?:let's|please|i'd|we'd|happy)", r"i'?d (?:love|like) to (?:learn|hear|know|see)", r"(?:happy|keen|open) to (?:chat|talk|learn|hear|explore)",
    r"let'?s do it", r"count (?:me|us) in", r"interessiert", r"klingt gut", r"intéress", r"ça m'intéresse", r"me interesa", r"suena bien",
)
QUESTION_WORDS = _any(
    r"\b(?:how much|what (?:does|do|is|are|would)|how (?:does|do|would|long|many)|which|who|why|when|where|can you|could you|do you|is there|are there)\b",
    r"\b(?:price|pricing|cost|rates?|fees?|budget)\b", r"\b(?:wie viel|was kostet|kosten|combien|quel est|cuánto|qué precio)\b",
)


def classify_intent(reply: str) -> tuple[str, float, str]:
    """(category, confidence, evidence) for a human reply's own text."""
    text = " ".join(reply.split())
    if not text:
        return "other", 0.3, "the reply has no text of its own"
    if m := UNSUBSCRIBE.search(text):
        return "unsubscribe", 0.92, f"asks to be removed: {m.group(0)!r}"
    later = re.search(r"\b(?:ask|try|contact|reach out to|come back to|check in with) (?:me|us) (?:again )?(?:in|next|later|after)|(?:later this year|next (?:year|quarter)|\bin q[1-4]\b)", text, re.I)
    if m := NOT_INTERESTED.search(text):
        if later:
            # "Not now, ask me in Q3": not a no, not a yes: a human should see it.
            return "not_interested", 0.55, f"declines for now ({m.group(0)!r}) but invites a later contact ({later.group(0)!r})"
        return "not_interested", 0.85, f"declines: {m.group(0)!r}"
    if m := REFERRAL.search(text):
        return "referral", 0.8, f"points to someone else: {m.group(0)!r}"
    if m := MEETING.search(text):
        return "meeting_request", 0.8, f"asks for a meeting: {m.group(0)!r}"
    question = "?" in text and QUESTION_WORDS.search(text)
    if m := INTERESTED.search(text):
        return "interested", 0.8, f"shows interest: {m.group(0)!r}"
    if question:
        return "question", 0.75, f"asks a question: {QUESTION_WORDS.search(text).group(0)!r}"  # type: ignore[union-attr]
    if "?" in text:
        return "question", 0.55, "contains a question mark"
    return "other", 0.4, "no intent recognised"
