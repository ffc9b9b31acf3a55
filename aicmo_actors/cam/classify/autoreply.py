"""Auto-replies: RFC 3834 and the de-facto headers, then subject and body phrases, and the
return date they announce. English first, German, French and Spanish too (plus some
Dutch, Italian and Portuguese)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from email.message import Message

from aicmo_actors.cam.classify.parse import header

SUBJECT = re.compile(
    r"automatic reply|auto(matic|mated)?[- ]?(reply|response|antwort)|out of (the )?office|\booo\b|on vacation|on holiday|"
    r"away from (the )?office|abwesenheit|automatische antwort|nicht im büro|réponse automatique|absence|absent du bureau|"
    r"en congés?|respuesta automática|fuera de la oficina|ausente|risposta automatica|fuori ufficio|"
    r"automatisch antwoord|afwezig|resposta automática|ausência|autoreply|autoresponder",
    re.I,
)
BODY = re.compile(
    r"(i am|i'm|i will be) (currently )?(out of (the )?office|away|on (annual |parental |maternity |sick )?(leave|vacation|holiday)|travell?ing|off)|"
    r"out of (the )?office (until|till|through|from)|limited access to (my )?e-?mail|will (reply|respond|get back) .{0,40}(when i return|upon my return|on my return)|"
    r"this is an automat(ic|ed) (reply|response|message)|"
    r"ich bin (bis|vom|ab|derzeit|zurzeit|momentan|nicht)|(bin|ist) .{0,40}nicht im büro|abwesend|keinen zugriff auf (meine )?e-?mails|"
    r"je suis (actuellement )?(absente?|en congés?|en vacances|hors du bureau)|je serai de retour|"
    r"estoy (fuera|de vacaciones|ausente)|estaré (fuera|de vuelta)|volveré el|regreso el|"
    r"sono (fuori ufficio|in ferie|assente)|ik ben (afwezig|met vakantie|niet op kantoor)|estou (fora|de férias|ausente)",
    re.I,
)
LEFT = re.compile(r"no longer (with|at|employed|work)|(has|have) left (the company|\w+)|this (mailbox|address|inbox) is no longer (monitored|in use|active)|nicht mehr (für|bei|im unternehmen)|ne fait plus partie|ya no (trabaja|forma parte)", re.I)

MONTHS = {
    # en
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
    # de
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "mai": 5, "juni": 6, "juli": 7, "oktober": 10, "dezember": 12,
    # fr
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "juin": 6, "juillet": 7, "août": 8, "aout": 8,
    "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12, "decembre": 12,
    # es
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7, "agosto": 8,
    "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
#: A return date follows one of these.
UNTIL = r"(?:until|till|til|through|thru|back (?:on|in the office on)?|return(?:ing)? (?:on)?|returning|from|bis (?:zum|einschließlich|einschl\.)?|ab|zurück am|wieder am|jusqu'(?:au|à)|retour le|de retour le|hasta el|hasta|regreso el|volveré el|de vuelta el|fino al|tot en met|tot|até)"
NUMERIC = re.compile(UNTIL + r"[^0-9\n]{0,30}?(\d{1,4})[./-](\d{1,2})(?:[./-](\d{2,4}))?", re.I)
WORDY = re.compile(UNTIL + r"[^\n]{0,25}?(\d{1,2})(?:st|nd|rd|th|er|\.|º)?\s+(?:de\s+)?(" + _MONTH + r")\.?(?:\s+(?:de\s+)?(\d{4}))?", re.I)
WORDY_US = re.compile(UNTIL + r"[^\n]{0,25}?\b(" + _MONTH + r")\.?\s+(\d{1,2})(?!\d)(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?", re.I)


def auto_reply_evidence(msg: Message, subject: str, text: str) -> tuple[list[str], float]:
    """What says `msg` is an auto-reply, and how sure that makes us (0: it is not)."""
    evidence: list[str] = []
    score = 0.0
    auto = header(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        evidence.append(f"Auto-Submitted: {auto} (RFC 3834)")
        score = max(score, 0.97)
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply", "X-Apple-Auto-Reply"):
        if header(msg, name):
            evidence.append(f"{name} header")
            score = max(score, 0.95)
    suppress = header(msg, "X-Auto-Response-Suppress")
    precedence = header(msg, "Precedence").lower()
    subject_match = SUBJECT.search(subject)
    body_match = BODY.search(text[:3000])
    if subject_match:
        evidence.append(f"subject says {subject_match.group(0)!r}")
        score = max(score, 0.9 if (suppress or precedence or body_match) else 0.8)
    if body_match:
        evidence.append(f"text says {body_match.group(0)!r}")
        score = max(score, 0.75 if not subject_match else score)
    if score and suppress:
        evidence.append(f"X-Auto-Response-Suppress: {suppress} (Exchange)")
    if score and precedence in {"auto_reply", "bulk", "junk", "list"}:
        evidence.append(f"Precedence: {precedence}")
    return evidence, score


def left_company(text: str) -> str | None:
    match = LEFT.search(text[:3000])
    return match.group(0) if match else None


def _year_for(month: int, day: int, sent: date | None) -> int:
    base = sent or date.today()
    candidate = date(base.year, month, day)
    return base.year + 1 if candidate < base - timedelta(days=31) else base.year


def return_date(text: str, sent: date | None) -> date | None:
    """The date the sender says they are back (None if not found or not a real date)."""
    snippet = text[:3000]
    found: list[tuple[int, date]] = []
    for match in NUMERIC.finditer(snippet):
        a, b, y = match.group(1), match.group(2), match.group(3)
        try:
            if len(a) == 4:  # ISO 2025-03-14
                found.append((match.start(), date(int(a), int(b), int(y or 1))))
                continue
            day, month = int(a), int(b)
            if month > 12 and day <= 12:  # US style 03/14
                day, month = month, day
            year = int(y) if y else _year_for(month, day, sent)
            if year < 100:
                year += 2000
            found.append((match.start(), date(year, month, day)))
        except ValueError:
            continue
    for match in WORDY.finditer(snippet):
        try:
            month = MONTHS[match.group(2).lower()]
            day = int(match.group(1))
            year = int(match.group(3)) if match.group(3) else _year_for(month, day, sent)
            found.append((match.start(), date(year, month, day)))
        except (KeyError, ValueError):
            continue
    for match in WORDY_US.finditer(snippet):
        try:
            month = MONTHS[match.group(1).lower()]
            day = int(match.group(2))
            year = int(match.group(3)) if match.group(3) else _year_for(month, day, sent)
            found.append((match.start(), date(year, month, day)))
        except (KeyError, ValueError):
            continue
    if not found:
        return None
    # The last date mentioned in the first sentence that names one is usually the return.
    found.sort()
    first_pos = found[0][0]
    same_sentence = [d for pos, d in found if pos - first_pos < 80]
    return max(same_sentence)
