"""What a person's reply wants, read on the reply alone (quotes and signature removed).

Unsubscribe requests first, then the intents, weighed by plain phrase lists in English
(German, French and Spanish basics too) with negation handled: a positive phrase with
"not", "no", "never", "nicht", "pas" ... shortly before it in the same clause counts as
a refusal ("not interested", "wouldn't be interested", "no need for a call").

When a reply both declines and says something positive, the clause that comes last
decides, with a lower confidence, so a human looks: "not interested right now but ask me
in Q3" is a `not_interested` at 0.55, and "not for SEO, but tell me more about ads" an
`interested` at 0.6.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from aicmo_actors.cam.classify.parse import addresses
from aicmo_actors.cam.classify.reasons import compile_reading, required_words

__all__ = [
    "Intent",
    "classify_intent",
    "unsubscribe_command",
    "unsubscribe_confirmation",
    "unsubscribe_request",
    "unsubscribe_token",
]


def _any(*patterns: str) -> re.Pattern[str]:
    return compile_reading("|".join(f"(?:{p})" for p in patterns), re.I)


UNSUBSCRIBE = _any(
    r"\bunsubscribe\b",
    r"\bremove (?:me|us|my (?:e-?mail|address|name|details|contact)|this (?:address|e-?mail))\b",
    r"\btake (?:me|us|my (?:e-?mail|address|name)) off\b",
    r"\bopt(?:-| )?(?:me )?out\b",
    r"\bstop (?:e-?mailing|contacting|sending|writing to|spamming|messaging) (?:me|us)\b",
    r"\b(?:don't|do not|never|dont) (?:ever )?(?:contact|e-?mail|write to|message|reach out to) (?:me|us)\b",
    r"\bno more (?:e-?mails|messages|mails)\b",
    r"\b(?:delete|erase|remove) (?:all )?my (?:data|details|information|personal data)\b",
    r"\b(?:off|from) (?:your|the) (?:mailing |contact |e-?mail )?list\b",
    r"\babmelden\b",
    r"\baustragen\b",
    r"\bkeine (?:weiteren )?(?:e-?mails|nachrichten|werbung)\b",
    r"\bnicht mehr (?:kontaktieren|anschreiben|schreiben)\b",
    r"\baus (?:ihrem|dem|eurem) verteiler\b",
    r"d[ée]sinscri",
    r"d[ée]sabonn",
    r"\bne (?:plus )?me (?:plus )?(?:contactez|[ée]crivez)\b",
    r"\bne plus (?:me )?(?:contacter|[ée]crire|recevoir)\b",
    r"\bretirez[- ]moi\b",
    r"\bdar(?:me)? de baja\b",
    r"\bno (?:me )?(?:contacte|contacten|escriba|escriban|env[íi]e|env[íi]en)\b",
    r"\belimin(?:en|ar)(?:me)? de (?:su|la|sus) lista",
    r"\bno (?:me )?vuelva[n]? a (?:contactar|escribir)\b",
)
#: A subject or a whole reply that is only the word.
UNSUBSCRIBE_ONLY = re.compile(
    r"^\s*(?:(?:re|aw|sv|tr)\s*:\s*)*"
    r"(?:unsubscribe|remove(?: me)?|stop|abmelden|austragen|d[ée]sinscription|d[ée]sinscrire|baja)"
    # The word, perhaps with a token (our List-Unsubscribe mailto: "unsubscribe TOKEN"). The
    # run of punctuation is possessive: "unsubscribe" and a long run of dots used to be split
    # between it and the token in every possible way.
    r"\b[\s:.!]*+\S*\s*$",
    re.I,
)
#: Our List-Unsubscribe mailto's subject, "unsubscribe TOKEN": the shape of
#: `aicmo_actors.cam.unsubscribe._SUBJECT_TOKEN_RE` (34 URL-safe base64 characters), copied
#: because that module brings in the web server. The token is unverified here.
#: A client that does not decode the mailto's subject leaves "%20" (or a form's "+") for the space.
UNSUBSCRIBE_TOKEN = re.compile(
    r"\bunsubscribe(?:[\s:+]|%20)++([A-Za-z0-9_-]{34})(?![A-Za-z0-9_-])", re.ASCII | re.IGNORECASE
)
#: A list manager's or a mailer's confirmation that the address was taken off (often sent with
#: `Auto-Submitted: auto-replied`): the address is to be suppressed like an unsubscribe.
UNSUBSCRIBE_CONFIRMED = _any(
    r"\b(?:you|address|subscription)(?:'ve| have| has)? (?:now )?been (?:successfully )?"
    r"(?:unsubscribed|removed from (?:the |our |this |all )?(?:mailing |e-?mail |distribution )?lists?)\b",
    r"\b(?:has|have) been (?:successfully )?unsubscribed\b",
    r"\bsuccessfully unsubscribed\b",
    r"\bunsubscri(?:be|ption) (?:request )?(?:confirmed|confirmation|successful|complete[d]?)\b",
    r"\b(?:you|address) will no longer receive (?:any )?(?:further |more )?"
    r"(?:e-?mails?|messages?|mail) (?:from|on|to)\b",
    r"\berfolgreich (?:abgemeldet|ausgetragen)\b",
    r"\babmeldung (?:best[äa]tigt|erfolgreich)\b",
    r"\bd[ée]sinscription (?:confirm[ée]e|r[ée]ussie|effectu[ée]e)\b",
    r"\bbaja (?:confirmada|realizada)\b",
)
#: Non-empty lines of a reply's own text searched for the token (clients that put the mailto's
#: subject in the body put it first).
TOKEN_BODY_LINES = 5
NOT_INTERESTED = _any(
    r"\bnot interested\b",
    r"\bno interest\b",
    r"\bno,? thanks?\b",
    r"\bno,? thank you\b",
    r"\bthanks,? but no\b",
    r"\bnot (?:a |the )?(?:good |right )?fit\b",
    r"\b(?:we're|we are|i'm|i am) (?:all )?set\b",
    r"\bwe(?:'re| are) good\b",
    r"\bnot (?:currently )?(?:looking|in the market)\b",
    r"\b(?:we|i) (?:already )?(?:have|use|work with) (?:a |an |our own |someone|another|in-house)",
    r"\b(?:we|i) (?:don't|do not) need\b",
    r"\bno need\b",
    r"\bnot for us\b",
    r"\bnot relevant\b",
    r"\bpass on (?:this|that)\b",
    r"\b(?:we'll|we will|i'll|i will) pass\b",
    r"\bnot at (?:this|the moment|the present)\b",
    r"\bnot (?:right )?now\b",
    r"\b(?:don't|do not|no) (?:have (?:the |any )?)?budget\b",
    r"\bnot a priority\b",
    r"\bplease (?:don't|do not) follow up\b",
    r"\bnot something (?:we|i)(?:'re| are| am|'m)? (?:interested|looking)\b",
    r"\bkein(?:en)? (?:interesse|bedarf)\b",
    r"\bnicht interessiert\b",
    r"\bbrauchen wir nicht\b",
    r"\bnein,? danke\b",
    r"\bpas int[ée]ress[ée]",
    r"\bpas besoin\b",
    r"\bnon,? merci\b",
    r"\bno (?:me|nos) interesa",
    r"\bno estamos interesados\b",
    r"\bno,? gracias\b",
)
LATER = _any(
    r"\b(?:ask|try|contact|reach out to|ping|follow up with|come back to|check (?:back )?in with|"
    r"circle back with|write to) (?:me|us) (?:again )?(?:in|next|later|after|around|towards)\b",
    r"\blater (?:this|in the) year\b",
    r"\bnext (?:year|quarter|month)\b",
    r"\bin q[1-4]\b",
    r"\bq[1-4]\b",
    r"\bin (?:a few|a couple of|\d+) (?:months|weeks)\b",
    r"\bmaybe later\b",
    r"\bat a later (?:date|time|point)\b",
    r"\bn[äa]chstes jahr\b",
    r"\bsp[äa]ter\b",
    r"\bplus tard\b",
    r"\bm[áa]s adelante\b",
)
REFERRAL = _any(
    r"\b(?:talk|speak|reach out|write|get in touch|connect) (?:to|with) (?:my|our) "
    r"(?:colleague|partner|boss|manager|team|cmo|ceo|cto|head|director|marketing)",
    r"\bnot the (?:right|best|correct) (?:person|contact|one)\b",
    r"\bwrong person\b",
    r"\b(?:better|best|right) person\b",
    r"\b(?:you should|better to|best to|please|kindly|you can|you could|you may want to) "
    r"(?:contact|reach out to|reach|e-?mail|speak (?:to|with)|talk to|get in touch with|write to)\b",
    r"\b(?:cc'?(?:ing|ed|'d)|copying|looping in|i've looped in|i have looped in|adding|"
    r"forwarded (?:this|your (?:e-?mail|message|note)) to|forwarding (?:this|your (?:e-?mail|message|note)) to)\b",
    r"\b(?:she|he|they) (?:handles?|is responsible|are responsible|owns?|"
    r"looks? after|takes? care|runs?|leads?|manages?|is in charge|deals? with)\b",
    r"\b(?:in charge of|responsible for|handles) (?:our )?(?:marketing|sales|this|growth|that|partnerships)\b",
    r"\bwenden sie sich (?:bitte )?an\b",
    r"\bansprechpartner",
    r"\bzust[äa]ndig",
    r"\bmein(?:e|em)? kolleg",
    r"\bla bonne personne\b",
    r"\bcontactez\b",
    r"\bmon coll[èe]gue\b",
    r"\bma coll[èe]gue\b",
    r"\bla persona (?:adecuada|indicada|correcta)\b",
    r"\bp[óo]ngase en contacto con\b",
    r"\bmi (?:compa[ñn]er[oa]|colega)\b",
)
MEETING = _any(
    r"\b(?:schedule|book|set up|setup|arrange|organi[sz]e|have|hop on|jump on|grab|find|put) "
    r"(?:a |an |some )?(?:quick |short |brief |15[- ]?min(?:ute)?s? |30[- ]?min(?:ute)?s? |intro )?"
    r"(?:call|meeting|chat|demo|zoom|teams call|time|slot|conversation|meet)\b",
    r"calendly\.com|\bcalendly\b|cal\.com/|meetings\.hubspot|savvycal|\bbooking link\b",
    r"\b(?:are|would|will) you (?:be )?(?:free|available)\b",
    r"\bwhat(?:'s| is) your availability\b",
    r"\bwhat time works\b",
    r"\bwhen (?:are|would|will) you (?:be )?(?:free|available)\b",
    r"\bdoes (?:monday|tuesday|wednesday|thursday|friday|next week|tomorrow) work\b",
    r"\b(?:send|share) (?:me |us )?(?:a |an |your )?(?:calendar|invite|invitation|link to book|meeting link)\b",
    r"\blet'?s (?:talk|meet|chat|connect|speak|jump on|hop on|set up|find a time)\b",
    r"\b(?:monday|tuesday|wednesday|thursday|friday)"
    r"(?: or (?:monday|tuesday|wednesday|thursday|friday))? (?:at|morning|afternoon|works)\b",
    r"\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b",
    r"\btermin\b",
    r"\btelefonat\b",
    r"\bgespr[äa]ch vereinbaren\b",
    r"\brendez-vous\b",
    r"\bun appel\b",
    r"\bune r[ée]union\b",
    r"\breuni[óo]n\b",
    r"\bllamada\b",
    r"\bagendar\b",
)
PRICING = _any(
    r"\bhow much\b",
    r"\bwhat (?:does|would|will) (?:it|this|that) cost\b",
    r"\bwhat(?:'s| is| are) (?:the |your )?(?:price|pricing|cost|costs|rates?|fees?)\b",
    r"\b(?:price|pricing|cost|costs|rates|fees|quote|budget)\b.{0,40}\?",
    r"\b(?:send|share|need|want|get) (?:me |us )?(?:your |the |a )?"
    r"(?:price list|prices|pricing|rates|quote|cost estimate)\b",
    r"\b(?:about|on|regarding) (?:your |the )?(?:pricing|prices|costs?|rates|fees)\b",
    r"\bwie viel\b",
    r"\bwas kostet\b",
    r"\bkosten\b.{0,30}\?",
    r"\bcombien\b",
    r"\bquel (?:est le )?(?:prix|tarif)\b",
    r"\bcu[áa]nto (?:cuesta|cobran|vale)\b",
    r"\bqu[ée] precio\b",
)
QUESTION_WORDS = _any(
    r"\b(?:how|what|which|who|why|when|where|can you|could you|do you|"
    r"does it|does this|is there|are there|is it|will you|would you)\b",
    r"\b(?:wie|was|welche|wer|warum|wann|wo|k[öo]nnen sie)\b",
    r"\b(?:comment|quoi|quel|quelle|pourquoi|quand|o[ùu])\b",
    r"\b(?:c[óo]mo|qu[ée]|cu[áa]l|qui[ée]n|por qu[ée]|cu[áa]ndo|d[óo]nde)\b",
)
INTERESTED = _any(
    r"\binterested\b",
    r"\bsounds (?:good|great|interesting|promising|intriguing)\b",
    r"\btell me more\b",
    r"\b(?:send|share) (?:me |us )?(?:some )?(?:more )?"
    r"(?:info|information|details|a proposal|the deck|a deck|case studies|examples)\b",
    r"\b(?:yes|yeah|sure|absolutely|definitely|of course),? "
    r"(?:let's|please|i'd|we'd|happy|go ahead|interested|i am|we are)\b",
    r"\bi'?d (?:love|like) to (?:learn|hear|know|see)\b",
    r"\b(?:happy|keen|open|glad) to (?:chat|talk|learn|hear|explore|discuss)\b",
    r"\blet'?s do it\b",
    r"\bcount (?:me|us) in\b",
    r"\bworth a (?:look|chat|conversation)\b",
    r"\b(?:this|that) (?:could|might|may) be (?:useful|helpful|interesting|relevant)\b",
    r"^\s*(?:yes|yep|sure)\b",
    r"\binteress(?:iert|ant)\b",
    r"\bklingt (?:gut|spannend|interessant)\b",
    r"\bgerne mehr\b",
    r"\bint[ée]ress",
    r"\bm'int[ée]resse\b",
    r"\ben savoir plus\b",
    r"\bme interesa\b",
    r"\bsuena (?:bien|interesante)\b",
    r"\bcu[ée]ntame m[áa]s\b",
    r"\bm[áa]s informaci[óo]n\b",
)
#: A reply that is only "no".
BARE_NO = re.compile(r"^(?:no|nope|nah|nein|non|no gracias)[.!]*$", re.I)
NEGATOR = re.compile(
    r"\b(?:not|no|never|don't|dont|doesn't|isn't|aren't|wasn't|won't|wouldn't|can't|cannot|nicht|kein\w*|pas|jamais|nunca|ni)\b|n't\b",
    re.I,
)
CLAUSE_BREAK = re.compile(r"[.!?;,]|\b(?:but|however|although|though|aber|mais|pero|sin embargo)\b", re.I)


@dataclass
class Intent:
    """The intent of a reply, how sure, and why."""

    category: str
    confidence: float
    evidence: list[str] = field(default_factory=list)


#: Words one of which every match of a pattern holds (`reasons.required_words`): a reply that
#: holds none of them is not searched. Only ASCII text is tested so (there IGNORECASE is plain
#: ASCII case, which lower-casing gives; a few non-ASCII letters fold otherwise).
_NEEDED: dict[int, tuple[str, ...] | None] = {
    id(pattern): required_words(pattern)
    for pattern in (INTERESTED, NOT_INTERESTED, MEETING, REFERRAL, PRICING, LATER, QUESTION_WORDS, UNSUBSCRIBE)
}


def _probe(text: str) -> str | None:
    """`text` lower-cased for `_absent`, or None when it is not ASCII (then every pattern runs)."""
    return text.lower() if text.isascii() else None


def _absent(pattern: re.Pattern[str], probe: str | None) -> bool:
    """`pattern` cannot match the text `probe` was made of."""
    needed = _NEEDED.get(id(pattern))
    return probe is not None and needed is not None and not any(word in probe for word in needed)


def _normalise(text: str) -> str:
    return " ".join((text or "").replace("\u2019", "'").replace("\u2018", "'").split())


def _negated(text: str, start: int) -> bool:
    """A negation in the same clause, at most five words before `start`."""
    before = text[max(0, start - 40) : start]
    breaks = list(CLAUSE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    words = before.split()[-5:]
    return bool(NEGATOR.search(" ".join(words)))


def _matches(pattern: re.Pattern[str], text: str, *, negatable: bool, probe: str | None = None) -> list[re.Match[str]]:
    if _absent(pattern, probe):
        return []
    return [m for m in pattern.finditer(text) if not (negatable and _negated(text, m.start()))]


def unsubscribe_request(text: str, subject: str) -> str | None:
    """The phrase asking to be removed, from the reply's own text or its subject."""
    command = unsubscribe_command(text, subject)
    if command and command.startswith("subject"):
        return command
    own = _normalise(text)
    found = _matches(UNSUBSCRIBE, own, negatable=True, probe=_probe(own))
    if found:
        return found[0].group(0)
    return command


def unsubscribe_command(text: str, subject: str) -> str | None:
    """A subject, or a whole short text, that is only the word ("unsubscribe", perhaps with a
    token): what a mail client sends to a List-Unsubscribe mailto, even one that marks its
    message `Auto-Submitted`."""
    if UNSUBSCRIBE_ONLY.match((subject or "")[:200]):
        return f"subject {subject.strip()[:60]!r}"
    own = _normalise(text)
    if own and len(own) < 40 and UNSUBSCRIBE_ONLY.match(own):
        return own
    return None


def unsubscribe_confirmation(text: str, subject: str) -> str | None:
    """A confirmation that the address was unsubscribed (a list manager's, a mailer's), from
    the subject or the first lines of the message's own text."""
    for where in (_normalise(subject)[:300], _normalise(text[:4000])):
        found = _matches(UNSUBSCRIBE_CONFIRMED, where, negatable=True)
        if found:
            return found[0].group(0)
    return None


def unsubscribe_token(subject: str, own_text: str = "") -> str | None:
    """The token of our List-Unsubscribe mailto ("unsubscribe TOKEN"), from the subject or the
    first lines of the reply's own text; unverified (its signature is checked by the caller)."""
    match = UNSUBSCRIBE_TOKEN.search(subject or "")
    if match is None:
        lines = (line for line in (own_text or "").splitlines() if line.strip())
        for line in itertools.islice(lines, TOKEN_BODY_LINES):
            if match := UNSUBSCRIBE_TOKEN.search(line[:1000]):
                break
    return match.group(1) if match else None


def _pick_conflict(text: str, negative: re.Match[str], positive: re.Match[str], positive_category: str) -> Intent:
    """A decline and something positive in one reply: the later clause decides, less surely."""
    if positive.start() > negative.start():
        return Intent(positive_category, 0.6, [f"declines ({negative.group(0)!r}) but then says {positive.group(0)!r}"])
    return Intent("not_interested", 0.6, [f"says {positive.group(0)!r} but then declines: {negative.group(0)!r}"])


def classify_intent(reply: str, sender: str | None = None) -> Intent:
    """The intent of a person's reply (its own text: quotes and signature already removed)."""
    text = _normalise(reply)
    if not text:
        return Intent("other", 0.3, ["the reply has no text of its own"])
    probe = _probe(text)
    negative = None if _absent(NOT_INTERESTED, probe) else NOT_INTERESTED.search(text)
    positives = [] if _absent(INTERESTED, probe) else list(INTERESTED.finditer(text))
    negated_positive = [m for m in positives if _negated(text, m.start())]
    interested = [m for m in positives if not _negated(text, m.start())]
    meeting = _matches(MEETING, text, negatable=True, probe=probe)
    referral = _matches(REFERRAL, text, negatable=False, probe=probe)
    pricing = None if _absent(PRICING, probe) else PRICING.search(text)
    question = "?" in text and not _absent(QUESTION_WORDS, probe) and QUESTION_WORDS.search(text)
    later = None if _absent(LATER, probe) else LATER.search(text)
    others = [a for a in addresses(text) if a != (sender or "").lower()]

    if BARE_NO.match(text):
        return Intent("not_interested", 0.7, [f"a bare no: {text!r}"])
    decline = negative or (negated_positive[0] if negated_positive else None)
    if decline is not None:
        if later:
            # "Not now, ask me in Q3": not a yes, not a plain no: a human should see it.
            return Intent(
                "not_interested",
                0.55,
                [f"declines for now ({decline.group(0)!r}) but invites a later contact ({later.group(0)!r})"],
            )
        positive = next(iter(meeting or interested), None)
        if positive is not None and not NOT_INTERESTED.search(text[positive.start() :]):
            return _pick_conflict(text, decline, positive, "meeting_request" if meeting else "interested")
        if referral:
            return Intent(
                "referral",
                0.7,
                [f"declines ({decline.group(0)!r}) and points to someone else: {referral[0].group(0)!r}"],
            )
        return Intent("not_interested", 0.85, [f"declines: {decline.group(0)!r}"])
    if referral:
        confidence = 0.85 if others else 0.75
        evidence = [f"points to someone else: {referral[0].group(0)!r}"]
        if others:
            evidence.append(f"names {', '.join(others[:3])}")
        return Intent("referral", confidence, evidence)
    if meeting:
        return Intent("meeting_request", 0.8, [f"asks for a meeting: {meeting[0].group(0)!r}"])
    if pricing:
        return Intent("question", 0.8, [f"asks about price: {pricing.group(0)!r}"])
    if interested:
        return Intent("interested", 0.8, [f"shows interest: {interested[0].group(0)!r}"])
    if question:
        return Intent("question", 0.7, [f"asks a question: {question.group(0)!r} ... ?"])
    if "?" in text:
        return Intent("question", 0.5, ["contains a question mark"])
    if later:
        return Intent("not_interested", 0.5, [f"puts it off: {later.group(0)!r}"])
    return Intent("other", 0.4, ["no intent recognised"])
