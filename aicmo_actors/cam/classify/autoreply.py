"""Auto-replies: RFC 3834 and the de-facto headers, then subject and body phrases, whether
the person left, and the return date they announce.

English first, German, French and Spanish too, some Dutch, Italian and Portuguese.
Headers weigh most (Auto-Submitted, X-Autoreply ...); weak headers (Precedence: bulk,
X-Auto-Response-Suppress, an empty Return-Path) only add to a subject or body phrase.
Those headers say a machine wrote the message, not what it is: an automatic message whose
text reports a failed delivery with a code or a reason is a bounce (`delivery_failure_evidence`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import Message

from aicmo_actors.cam.classify.parse import AnyCase, header
from aicmo_actors.cam.classify.reasons import find_reply_code, find_status, reason_from
from contracts.cam import BounceReason

__all__ = [
    "AutoReplyEvidence",
    "auto_reply_evidence",
    "automatic_marker",
    "delivery_failure_evidence",
    "left_company",
    "return_date",
]

#: Subjects that begin like an automatic reply (Exchange, Gmail, Apple, Thunderbird ...).
SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|tr|fw|wg)\s*:\s*)*"
    r"(?:automatic reply|auto(?:matic|mated)?[- ]?(?:reply|response|responder|answer)|"
    r"autoreply|autosvar|automatische antwort|abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[aá]tica|"
    r"risposta automatica|automatisch antwoord|resposta autom[aá]tica|odpowied[źz] automatyczna|"
    r"out of (?:the )?office|ooo)\b",
    re.I,
)
#: Subjects that mention an absence anywhere.
SUBJECT_ANY = re.compile(
    r"out of (?:the )?office|\booo\b|on vacation|on holiday|on leave|away from (?:the )?office|"
    r"abwesenheit|nicht im b[üu]ro|im urlaub|absence du bureau|\babsente?\b|en cong[ée]s?|"
    r"fuera de la oficina|\bausente\b|de vacaciones|fuori (?:dall')?ufficio|in ferie|afwezig|buiten kantoor|"
    r"fora do escrit[óo]rio|de f[ée]rias|vacation reply|autoresponder",
    re.I,
)
#: Body phrases of an absence notice.
BODY = AnyCase(
    r"\bout of (?:the )?office\b|"
    r"\b(?:i am|i'm|i will be|i'll be|i shall be)\s+(?:currently\s+|now\s+)?"
    r"(?:away|out|off|travell?ing|attending|at a conference|"
    r"on (?:annual |parental |maternity |paternity |sick |medical |study |a |business )?"
    r"(?:leave|vacation|holiday|holidays|a trip|business travel))"
    r"(?=[\s,.;]|$)(?! (?:of (?:ideas|time|budget|luck)|there|now\b))|"
    r"\b(?:on|annual|parental|maternity|paternity|sick) leave\b|\bon (?:vacation|holiday)\b|"
    r"limited (?:access to (?:my )?e-?mails?|access to my inbox|availability|connectivity|e-?mail access)|"
    r"(?:respond|reply|get back to you|answer|attend to your (?:e-?mail|message))"
    r".{0,60}(?:when i(?:'m| am)? (?:back|return)|upon my return|on my return|after my return|when i get back)|"
    r"this is an? automat(?:ic|ed) (?:reply|response|message|notification)|\bauto-?reply\b|"
    r"away from (?:my desk|the office|e-?mail|my e-?mail)|"
    r"(?:for urgent (?:matters|requests|issues|inquiries)|"
    r"if (?:this is|it is|it's) urgent|in case of (?:urgency|emergency|urgent matters))|"
    # German
    r"nicht im b[üu]ro|\babwesend\b|abwesenheit|\bim urlaub\b|urlaubsbedingt|keinen zugriff auf (?:meine )?e-?mails|"
    r"eingeschr[äa]nkt erreichbar|nicht erreichbar|in dringenden f[äa]llen|"
    r"ich bin (?:bis|vom|ab|derzeit|zurzeit|momentan|aktuell)\b|"
    # French
    r"je suis (?:actuellement |pr[ée]sentement )?"
    r"(?:absente?|en cong[ée]s?|en vacances|hors du bureau|en d[ée]placement)|"
    r"absente? du bureau|je serai de retour|en cas d'urgence|"
    r"acc[èe]s limit[ée] (?:à|a) (?:mes )?(?:e-?mails|courriels)|"
    # Spanish
    r"estoy (?:fuera|de vacaciones|ausente|de viaje)|fuera de la oficina|estar[ée] (?:fuera|de vuelta|ausente)|"
    r"volver[ée] (?:el|a la oficina)|regresar[ée] el|en caso de urgencia|acceso limitado al correo|"
    # Dutch, Italian, Portuguese
    r"ik ben (?:afwezig|met vakantie|niet op kantoor|niet aanwezig)|buiten kantoor|"
    r"sono (?:fuori ufficio|in ferie|assente)|fuori (?:dall')?ufficio|"
    r"estou (?:fora|de f[ée]rias|ausente)|fora do escrit[óo]rio",
)
#: The person is gone for good: still an auto-reply, but a human should see it.
LEFT = re.compile(
    r"(?:is|am|are) no longer (?:with|at|employed|working|part of|in the company)|"
    r"no longer (?:works?|employed) (?:at|for|with|by)|"
    r"(?:has|have) left (?:the company|the organi[sz]ation|the firm|the business|[A-Z][\w&.-]+)|"
    r"this (?:e-?mail )?(?:mailbox|address|inbox|account) is no "
    r"longer (?:monitored|in use|active|being monitored|valid|checked)|"
    r"mailbox is not monitored|"
    r"nicht mehr (?:f[üu]r|bei|im unternehmen|in unserem unternehmen|t[äa]tig)|"
    r"hat (?:das unternehmen|die firma|uns) verlassen|"
    r"ne fait plus partie|n'est plus (?:en poste|chez|dans|employ[ée])|a quitt[ée] (?:la soci[ée]t[ée]|l'entreprise)|"
    r"ya no (?:trabaja|forma parte|est[áa] en|pertenece)|dej[óo] la empresa",
    re.I,
)

#: Auto-reply headers that decide on their own, with their weight and reason code.
STRONG_HEADERS: tuple[tuple[str, float, str], ...] = (
    ("X-Autoreply", 0.95, "auto_submitted_header"),
    ("X-Autorespond", 0.95, "auto_submitted_header"),
    ("X-Autoresponder", 0.95, "auto_submitted_header"),
    ("X-Auto-Reply", 0.95, "auto_submitted_header"),
    ("X-Apple-Auto-Reply", 0.95, "auto_submitted_header"),
    ("X-Vacation", 0.95, "auto_submitted_header"),
    ("X-POST-MessageClass", 0.9, "auto_submitted_header"),
)
FALSE_VALUES = frozenset({"", "no", "false", "0", "off"})
#: What an automatic message says when it is in fact a delivery failure (relays, helpdesks
#: and some MTAs send their bounces as `Auto-Submitted: auto-replied`, from any address).
DELIVERY_FAILED = re.compile(
    r"could(?: not|n't) be delivered|was(?: not|n't) delivered|\bundeliverable\b|delivery (?:has )?failed|"
    r"(?:unable|failed) to deliver|"
    r"(?:message|mail|e-?mail) (?:was |has been )?(?:rejected|refused|bounced)|"
    r"rejected (?:your|the) (?:message|mail|e-?mail)",
    re.I,
)


@dataclass
class AutoReplyEvidence:
    """How sure we are that a message is automatic, why, and the deciding code."""

    score: float = 0.0
    code: str | None = None
    reasons: list[str] = field(default_factory=list)

    def add(self, score: float, code: str, reason: str | None) -> None:
        if reason:
            self.reasons.append(reason)
        if score > self.score:
            self.score, self.code = score, code


def auto_reply_evidence(msg: Message, subject: str, text: str, sent: date | None = None) -> AutoReplyEvidence:
    """Weigh the headers, the subject and the reply's own text (quotes removed).

    A score of 0.7 or more decides; below that (body phrases alone, with nothing else to
    back them) it is only a hint, used when the reply shows no intent of a person.
    """
    ev = AutoReplyEvidence()
    auto = header(msg, "Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        ev.add(0.97, "auto_submitted_header", f"Auto-Submitted: {auto} (RFC 3834)")
    for name, weight, code in STRONG_HEADERS:
        value = header(msg, name)
        if value.lower() not in FALSE_VALUES and (name != "X-POST-MessageClass" or "autoreply" in value.lower()):
            ev.add(weight, code, f"{name}: {value[:40]}")
    precedence = header(msg, "Precedence").lower()
    mailer = header(msg, "X-Mailer")
    if re.search(r"vacation|autorespond|auto-?reply", mailer, re.I):
        ev.add(0.9, "auto_submitted_header", f"X-Mailer: {mailer[:60]}")
    weak: list[str] = []
    if suppress := header(msg, "X-Auto-Response-Suppress"):
        weak.append(f"X-Auto-Response-Suppress: {suppress} (Exchange)")
    if precedence in {"auto_reply", "bulk", "junk", "list"}:
        weak.append(f"Precedence: {precedence}")
    if header(msg, "Return-Path").replace(" ", "") == "<>":
        weak.append("empty Return-Path <>")
    if header(msg, "X-MS-Exchange-Inbox-Rules-Loop"):
        weak.append("X-MS-Exchange-Inbox-Rules-Loop (an inbox rule answered)")
    head = text[:4000]
    lowered = head.lower()  # the phrases are kept in lower case: found in the lower-cased text alike
    body, source = (BODY.lower, lowered) if len(lowered) == len(head) else (BODY.ignoring_case(), head)
    phrases = list(dict.fromkeys(" ".join(m.group(0).lower().split()) for m in body.finditer(source)))
    prefix = SUBJECT_PREFIX.search(subject)
    anywhere = prefix or SUBJECT_ANY.search(subject)
    if anywhere or phrases:
        if anywhere:
            score = 0.93 if (prefix and (phrases or weak)) else 0.9 if prefix else 0.88 if (phrases or weak) else 0.8
        elif weak or len(phrases) >= 2 or return_date(text, sent) is not None:
            score = 0.78
        else:
            score = 0.62  # one phrase alone: a person may write "I'm on vacation, but yes!"
        if anywhere:
            ev.reasons.append(f"subject says {anywhere.group(0).strip()!r}")
        if phrases:
            ev.reasons.append(f"text says {', '.join(repr(p) for p in phrases[:3])}")
        ev.add(score, "ooo_text" if phrases else "ooo_subject", None)
    if left := left_company(text):
        monitored = re.search(r"monitored|no longer (?:in use|active|valid|checked)", left, re.I)
        ev.add(0.75 if monitored else 0.65, "left_company", f"says the person is gone: {left!r}")
    if ev.score:
        ev.reasons.extend(weak)
    return ev


def automatic_marker(msg: Message) -> str | None:
    """The header that marks `msg` as machine-written (Auto-Submitted other than "no", or a
    strong auto-reply header), as evidence; None when there is none."""
    auto = header(msg, "Auto-Submitted")
    if auto and auto.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto[:40]}"
    for name, _weight, _code in STRONG_HEADERS:
        value = header(msg, name)
        if value.lower() not in FALSE_VALUES and (name != "X-POST-MessageClass" or "autoreply" in value.lower()):
            return f"{name}: {value[:40]}"
    return None


def delivery_failure_evidence(msg: Message, text: str) -> list[str]:
    """Evidence that an automatic message is a delivery failure, judged by its own text
    (quotes and the returned message removed): a failure phrase, and a 4xx/5xx code or a
    known bounce reason. Empty when `msg` is not automatic or its text says no such thing."""
    marker = automatic_marker(msg)
    if marker is None:
        return []
    head = text[:20000]
    said = DELIVERY_FAILED.search(head)
    if said is None:
        return []
    status, code = find_status(head), find_reply_code(head)
    reason, _why = reason_from(status, head, code)
    coded = bool(status and status[0] in "45") or bool(code and code >= 400)
    if not coded and reason is BounceReason.UNDEFINED:
        return []
    what = f"status {status}" if status else f"code {code}" if code else f"reason {reason.value}"
    return [f"{marker}, but its text says {' '.join(said.group(0).split())!r} with {what}: a delivery failure"]


def left_company(text: str) -> str | None:
    """The phrase saying the person left the company or the mailbox is dead, if any."""
    match = LEFT.search(text[:4000])
    return " ".join(match.group(0).split()) if match else None


# -- return dates --------------------------------------------------------------------------------
MONTHS: dict[str, int] = {
    # English
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
    # German
    "januar": 1,
    "jänner": 1,
    "februar": 2,
    "märz": 3,
    "maerz": 3,
    "mär": 3,
    "mai": 5,
    "juni": 6,
    "juli": 7,
    "oktober": 10,
    "okt": 10,
    "dezember": 12,
    "dez": 12,
    # French
    "janvier": 1,
    "janv": 1,
    "février": 2,
    "fevrier": 2,
    "févr": 2,
    "fevr": 2,
    "mars": 3,
    "avril": 4,
    "avr": 4,
    "juin": 6,
    "juillet": 7,
    "juil": 7,
    "août": 8,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "décembre": 12,
    "decembre": 12,
    "déc": 12,
    # Spanish
    "enero": 1,
    "ene": 1,
    "febrero": 2,
    "marzo": 3,
    "abril": 4,
    "abr": 4,
    "mayo": 5,
    "junio": 6,
    "julio": 7,
    "agosto": 8,
    "ago": 8,
    "septiembre": 9,
    "setiembre": 9,
    "octubre": 10,
    "noviembre": 11,
    "diciembre": 12,
    "dic": 12,
    # Dutch, Italian, Portuguese (the forms not above)
    "januari": 1,
    "februari": 2,
    "maart": 3,
    "mei": 5,
    "augustus": 8,
    "gennaio": 1,
    "febbraio": 2,
    "aprile": 4,
    "maggio": 5,
    "giugno": 6,
    "luglio": 7,
    "settembre": 9,
    "ottobre": 10,
    "dicembre": 12,
    "janeiro": 1,
    "fevereiro": 2,
    "março": 3,
    "maio": 5,
    "junho": 6,
    "julho": 7,
    "setembro": 9,
    "outubro": 10,
    "dezembro": 12,
}
WEEKDAYS: dict[str, int] = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
    "montag": 0,
    "dienstag": 1,
    "mittwoch": 2,
    "donnerstag": 3,
    "freitag": 4,
    "samstag": 5,
    "sonntag": 6,
    "lundi": 0,
    "mardi": 1,
    "mercredi": 2,
    "jeudi": 3,
    "vendredi": 4,
    "samedi": 5,
    "dimanche": 6,
    "lunes": 0,
    "martes": 1,
    "miércoles": 2,
    "miercoles": 2,
    "jueves": 3,
    "viernes": 4,
    "sábado": 5,
    "sabado": 5,
    "domingo": 6,
}
_MONTH = "|".join(sorted(map(re.escape, MONTHS), key=len, reverse=True))
_WEEKDAY = "|".join(sorted(map(re.escape, WEEKDAYS), key=len, reverse=True))
_LEAD = rf"(?:(?:{_WEEKDAY})\.?,?\s+(?:(?:the|den|le|el|il)\s+)?)?"
#: Written in lower case (only digits and lower-cased names are read from a match): matched
#: against the lower-cased text (`AnyCase`).
DATE_TOKENS: tuple[tuple[str, AnyCase], ...] = (
    ("iso", AnyCase(rf"{_LEAD}\b(\d{{4}})-(\d{{1,2}})-(\d{{1,2}})\b")),
    ("numeric", AnyCase(rf"{_LEAD}\b(\d{{1,2}})([./])(\d{{1,2}})(?:\2(\d{{4}}|\d{{2}}))?\b\.?(?![./]?\d)")),
    (
        "day_month",
        AnyCase(
            rf"{_LEAD}\b(\d{{1,2}})(?:st|nd|rd|th|er|º|°|\.)?\s*(?:de\s+|of\s+)?({_MONTH})\b\.?(?:,?\s*(?:de\s+)?(\d{{4}}))?"
        ),
    ),
    ("month_day", AnyCase(rf"{_LEAD}\b({_MONTH})\b\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s*(\d{{4}}))?")),
    ("weekday", AnyCase(rf"\b({_WEEKDAY})\b")),
)
#: Words before a date that say the person is back on it.
BACK = re.compile(
    r"(?:\bback|\breturn(?:ing|s)?|\bi(?:'ll| will) return|\bin the office|\bat work|\bin office|"
    r"\bzur[üu]ck|\bwieder(?: im b[üu]ro| erreichbar| da| verf[üu]gbar)?|"
    r"\bab|\bde retour|\bretour(?: pr[ée]vu)?|\bà partir du|\ba partir du|"
    r"\bde vuelta|\bregreso|\bregresar[ée]|\bvolver[ée]|\breincorporar[ée]|"
    r"\ba partir del|\bterug|\brientro|\bde volta|\bretorno)"
    r"[\s,:]*(?:(?:on|the|am|dem|den|ab|le|el|il|op|em|a|en la oficina|"
    r"to the office|in the office|at work|in office|im b[üu]ro)\s+)*$",
    re.I,
)
_UNTIL_TAIL = (
    r"[\s,:]*(?:(?:and including|einschlie(?:\u00df|ss)lich|einschl\.|inkl\.|"
    r"inclusive|incl\.|zum|dem|den|am|the|le|el|au|\u00e0|a|il|en met)\s*)*$"
)
#: Words before a date that say the absence lasts until it.
UNTIL = re.compile(
    r"(?:\buntil|\btill|\btil|\bthrough|\bthru|\bup to and including|"
    r"\bbis|\bjusqu'|\bjusqu\u2019|\bhasta|\bfino al|\bfino a|"
    r"\btot en met|\btot|\bat\u00e9)" + _UNTIL_TAIL,
    re.I,
)
#: "to", "au", "al" and dashes only count after a first date ("from 3 to 14 March").
RANGE_END = re.compile(r"\d[^\d\n]{0,20}?(?:\bto|\bau|\bal|[-\u2013])[\s,:]*(?:(?:the|le|el)\s+)*$", re.I)


@dataclass(frozen=True)
class _Found:
    position: int
    end: int
    kind: str  # back, until
    value: date


def _year_for(month: int, day: int, sent: date) -> int:
    candidate = date(sent.year, month, day)
    return sent.year + 1 if candidate < sent - timedelta(days=60) else sent.year


def _month_first(separator: str, a: int, b: int, us_style: bool) -> bool:
    if separator == ".":
        return False
    if a > 12:
        return False
    if b > 12:
        return True
    return us_style


def _to_date(kind: str, groups: tuple[str | None, ...], sent: date | None, us_style: bool) -> date | None:
    """The date a token names, or None (not a real date, or no year and no message date)."""
    try:
        if kind == "iso":
            return date(int(groups[0] or 0), int(groups[1] or 0), int(groups[2] or 0))
        if kind == "numeric":
            a, separator, b, year_text = int(groups[0] or 0), groups[1] or ".", int(groups[2] or 0), groups[3]
            month, day = (a, b) if _month_first(separator, a, b, us_style) else (b, a)
        elif kind == "day_month":
            day, month, year_text = int(groups[0] or 0), MONTHS[(groups[1] or "").lower()], groups[2]
        else:
            month, day, year_text = MONTHS[(groups[0] or "").lower()], int(groups[1] or 0), groups[2]
        if year_text:
            year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        elif sent is not None:
            year = _year_for(month, day, sent)
        else:
            return None
        return date(year, month, day)
    except (KeyError, ValueError, TypeError):
        return None


def _next_weekday(name: str, sent: date | None) -> date | None:
    if sent is None:
        return None
    ahead = (WEEKDAYS[name.lower()] - sent.weekday()) % 7 or 7
    return sent + timedelta(days=ahead)


def _dates(text: str, sent: date | None, us_style: bool) -> list[_Found]:
    """Every date in `text` that follows a 'back on' or 'until' phrase."""
    taken: list[tuple[int, int]] = []
    found: list[_Found] = []
    lowered = text.lower()
    if len(lowered) == len(text):
        source, tokens = lowered, tuple((kind, pattern.lower) for kind, pattern in DATE_TOKENS)
    else:
        source, tokens = text, tuple((kind, pattern.ignoring_case()) for kind, pattern in DATE_TOKENS)
    for kind, pattern in tokens:
        for match in pattern.finditer(source):
            start, end = match.span()
            if any(s < end and start < e for s, e in taken):
                continue
            if kind == "weekday":
                value = _next_weekday(match.group(1), sent)
            else:
                value = _to_date(kind, match.groups(), sent, us_style)
            if value is None:
                continue
            taken.append((start, end))
            before = text[max(0, start - 60) : start]
            if BACK.search(before):
                found.append(_Found(start, end, "back", value))
            elif UNTIL.search(before) or RANGE_END.search(before):
                found.append(_Found(start, end, "until", value))
    return sorted(found, key=lambda f: f.position)


def return_date(text: str, sent: date | None, *, us_style: bool = False) -> date | None:
    """The date the sender says they are back: a 'back on' date first, else an 'until' date.

    A date without a year takes the year of `sent` (the message's Date), the next year when it
    would lie more than two months before it. `us_style` reads 03/04 as March 4th.
    Dates before `sent` or more than a year after it are ignored.
    """
    found = _dates(text[:4000], sent, us_style)
    if sent is not None:
        found = [f for f in found if sent - timedelta(days=1) <= f.value <= sent + timedelta(days=400)]
    for kind in ("back", "until"):
        for item in found:
            if item.kind == kind:
                return item.value
    return None
