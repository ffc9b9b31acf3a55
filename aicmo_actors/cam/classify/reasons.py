"""Why a delivery failed, from the enhanced status code AND the diagnostic text.

The code alone is often wrong or missing (some servers say 5.7.1 for "user unknown",
5.0.0 for anything), so the decision is made in tiers, and an explicit phrase always wins
over a bare status code found in the same text ("5.2.1 ... User Unknown" is a dead user):

1. a specific text phrase ("user unknown", "blocked using zen.spamhaus.org", "over quota"),
   in the order of SPECIFIC_TEXT (a temporary DNS failure before an unknown host),
2. 4.7.1 / 4.2.0 with "try again later" (greylisting that does not say so),
3. reply code 521 or 556 (RFC 7504: the host accepts no mail),
4. a bare status code written in the text (SPECIFIC_TEXT's codes), then the enhanced
   status code (5.1.1, 5.2.2, 5.7.26 ...),
5. a generic text phrase ("blocked", "policy", "access denied"),
6. a generic status or reply code (5.7.1, 4.7.0, 421, 554 ...),
7. `undefined`.

Then whose address failed, from the SMTP phase (`smtp_phase`) and the words: a reply about
our own sender address (MAIL FROM refused, "Sender address rejected", 5.1.7 / 5.1.8) is a
problem of our sending (`policy` when the reason would otherwise describe the recipient),
and "user unknown" answered after the message was sent (end of DATA, the recipient was
accepted at RCPT TO) is a content or policy filter (`filtered`), not a dead mailbox.

Every tier's phrases are matched in English and in the languages of `languages.PHRASES`
(Japanese, Russian, Chinese, Korean, Portuguese, Italian, Dutch, German, French, Spanish).

Greylisting is temporary and nobody's fault: never hard, never a problem of our sending.
Hard means the address itself is dead: user_unknown, host_unknown, has_moved or not_accept
with a permanent (5xx) code. Everything else that failed is soft. Pure functions.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any

from aicmo_actors.cam.classify.languages import phrases_for
from aicmo_actors.cam.classify.parse import AnyCase
from contracts.cam import ADDRESS_DEAD_REASONS, SENDING_SIDE_REASONS, BounceReason, ReplyCategory

R = BounceReason

__all__ = [
    "category_for",
    "compile_reading",
    "find_reply_code",
    "find_status",
    "is_permanent",
    "reason_from",
    "required_words",
    "sending_side",
    "smtp_phase",
]


#: The standard library's own reading of a pattern (`required_words`), read only; private modules,
#: so any surprise there only turns the shortcut off.
try:
    _sre: Any = importlib.import_module("re._constants")
    _sre_parser: Any = importlib.import_module("re._parser")
    _sre_compiler: Any = importlib.import_module("re._compiler")
except ImportError:  # pragma: no cover - Python 3.11 has them
    _sre = _sre_parser = _sre_compiler = None


def _required(items: Any) -> set[str] | None:
    """Strings one of which every match of the parsed pattern `items` contains (None: unknown).

    Read from the parsed pattern: a run of literal characters is required where it is not
    optional; a group or an alternation gives what each of its branches requires; a repeat
    at least once gives what its body requires. Of several required items, the one with the
    longest strings is kept.
    """
    found: list[set[str]] = []
    run = ""
    for op, value in items:
        if op is _sre.LITERAL:
            run += chr(value)
            continue
        if op is _sre.AT:  # \b, ^, $: zero width, the literal run goes on
            continue
        if run:
            found.append({run})
            run = ""
        needed: set[str] | None = None
        if op is _sre.SUBPATTERN:
            needed = _required(value[3])
        elif op is _sre.ATOMIC_GROUP:
            needed = _required(value)
        elif op is _sre.BRANCH:
            needed = set()
            for branch in value[1]:
                each = _required(branch)
                if each is None:
                    needed = None
                    break
                needed |= each
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and value[0] >= 1:
            needed = _required(value[2])
        if needed:
            found.append(needed)
    if run:
        found.append({run})
    return max(found, key=lambda s: (min(map(len, s)), -len(s))) if found else None


def _words(needed: set[str] | None) -> tuple[str, ...] | None:
    return tuple(sorted(needed)) if needed and all(needed) else None


#: `required_words` of the patterns `compile_reading` compiled, by id (they live as long as the module).
_READ: dict[int, tuple[str, ...] | None] = {}


def required_words(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """What a match of `pattern` (case-sensitive) always contains: a cheap test (`in`) that it
    cannot match; None when the pattern could not be read so (then it is always tried)."""
    if id(pattern) in _READ:
        return _READ[id(pattern)]
    try:
        return _words(_required(_sre_parser.parse(pattern.pattern, pattern.flags)))
    except Exception:  # a private parser of the standard library: never let it break matching
        return None


def compile_reading(source: str, flags: int = 0) -> re.Pattern[str]:
    """`re.compile(source, flags)`, with its `required_words` read from the same parse.

    The stdlib's compiler parses the source and then generates the code; doing its two steps
    here (as `re._compiler.compile` does) spares a second parse of the classifier's longest
    alternations, a tenth of its import. Any surprise in the private modules falls back to
    `re.compile` (and `required_words` then parses on its own)."""
    flags = int(flags)  # a RegexFlag would make every flag test of the compiler an enum operation
    try:
        parsed = _sre_parser.parse(source, flags)
        needed = _words(_required(parsed))
        state = parsed.state
        index_group: list[str | None] = [None] * state.groups
        for name, index in state.groupdict.items():
            index_group[index] = name
        code = _sre_compiler._code(parsed, flags)
        pattern: re.Pattern[str] = _sre_compiler._sre.compile(
            source, flags | state.flags, code, state.groups - 1, state.groupdict, tuple(index_group)
        )
    except Exception:  # pragma: no cover - the private modules changed: the plain way
        return re.compile(source, flags)
    _READ[id(pattern)] = needed
    return pattern


def _rules(*pairs: tuple[BounceReason, str]) -> tuple[tuple[BounceReason, re.Pattern[str]], ...]:
    """Each reason's pattern, with its phrases in other languages (`languages.PHRASES`) after its own.

    Written in lower case and matched against the lower-cased text (`_first_match`): without
    IGNORECASE the regex engine skips positions by their first character, which it cannot do
    under IGNORECASE, and the rules are the classifier's most used patterns.
    """
    return tuple(
        (reason, compile_reading("|".join(p for p in (pattern, phrases_for(reason)) if p))) for reason, pattern in pairs
    )


#: Tier 1: phrases that name the reason, most specific first (matched in lower case).
SPECIFIC_TEXT = _rules(
    # The recipient's side filtered our message out, the address being alive: a mailing list or
    # a group that takes no posts from non-members (Mailman, LISTSERV, Sympa, Google Groups), a
    # moderator's rejection, a Sieve `reject` (RFC 5429). Before "not allowed" reads as our policy
    # and "may not exist" as an unknown user.
    (
        R.FILTERED,
        r"not (?:allowed|authori[sz]ed|permitted) to (?:post|send(?: mail| messages?| e-?mails?)?) to "
        r"(?:this|the|that) (?:\S{1,60} )?(?:mailing )?(?:list|group)|not member article from|"
        r"not a member of (?:this|the) (?:mailing )?list|"
        r"rejected by the (?:list )?moderator|post by non-?member|(?:members|subscribers)[- ]only (?:mailing )?list|"
        r"non-?members are not allowed|may not have permission to post|group you tried to contact|"
        r"(?:list|group) (?:is )?not (?:accepting|open to) (?:posts|posting|messages)|"
        r"rejected by (?:the recipient's |a |the )?sieve|by sieve, a mail filtering language|\bsieve (?:filter|script)|"
        r"closed mailing list|members-only list|not subscribed to this group|"
        # Exchange Online: a group that takes mail only from its organisation or an allow list.
        r"sendernotauthenticatedforgroup|not authenticated when sending to this group|"
        r"only accepts messages from people (?:in|within) its organi[sz]ation|delivery restriction check failed|"
        # The recipient's own rules: an allow list, preferences, the person blocking us.
        r"only accepting mail from specific (?:e-?mail )?addresses|isn't on the recipient's list of senders|"
        r"refused due to recipient preferences|recipient's (?:preferences|privacy settings)|"
        r"message rejected due to user rules|you have been blocked by the recipient|refuse to receive mail|"
        r"due to extended inactivity new mail is not currently being accepted",
    ),
    # Our authentication (SPF, DKIM, DMARC): a problem of our sending.
    (
        R.AUTH_FAILURE,
        r"\b(?:spf|dkim|dmarc)\b|unauthenticated|not authenticated|authentication (?:check )?fail|"
        r"fails? to pass authentication|does not have authentication information|"
        r"doesn't meet the (?:required )?authentication|sender policy framework|\b[45]\.7\.2[3-7]\b|"
        r"sender (?:address )?verification failed|"
        r"sending domain .{0,40}(?:not|isn't) (?:authenticated|verified)",
    ),
    # RFC 7505 null MX and hosts that say they take no mail at all (RFC 7504's 521 and 556
    # replies say it in words); "not accepting mail from your IP" is a block (below).
    (
        R.NOT_ACCEPT,
        r"null ?mx|does not accept (?:any )?mail(?! from)|doesn't accept (?:any )?mail(?! from)|accepts? no mail|"
        r"not (?:currently )?accepting (?:any )?(?:e-?)?mail(?! from)|"
        r"mail receiving disabled|no mx record found for domain=|couldn't find a mail exchanger or ip address|"
        r"domain .{0,40}does not receive (?:e-?)?mail",
    ),
    # The person moved on.
    (
        R.HAS_MOVED,
        r"has moved|\bmoved to\b|no longer (?:with|at|employed|works?)|\b5\.1\.6\b|"
        r"address (?:has )?changed|left the (?:company|organi[sz]ation)|address has been replaced by",
    ),
    # Greylisting (RFC 6647): a first refusal that asks every unknown sender to come back later.
    (R.GREYLISTED, r"gr[ae]y-?list(?:ed|ing)?|postgrey"),
    # Our own sending quota is a rate problem, not a full mailbox.
    (
        R.RATE_LIMITED,
        r"sending (?:quota|limit)|daily (?:user )?sending|(?:daily|hourly) .{0,20}(?:quota|limit) (?:exceeded|reached)|"
        r"receiving mail at a rate|unusual rate of|\[tss?0[1-4]\]|unexpected volume|"
        r"deferred due to (?:unexpected )?volume|"
        r"too many (?:messages(?! on the server| in (?:the|this|his|her|your) mailbox)|connections|concurrent|"
        r"recipients|emails|mails|errors|sessions|smtp sessions|smtp connections)|rate ?limit|"
        r"connection limit|trop de connexions|"
        r"\bthrottl|please (?:try again )?slow(?:er| down)|exceeded the max emails per hour|\b4\.7\.28\b|"
        r"\b5\.4\.5\b",
    ),
    (
        R.MAILBOX_FULL,
        r"over ?quota|over the (?:allowed )?quota|quota (?:exceeded|exceed|violation|full|usage exceeded)|"
        r"exceed(?:ed|s|ing)? (?:its |the |his |her |their )?(?:storage|quota|mailbox|disk space)|"
        r"mailbox exceeded the local limit|too many messages (?:on the server|in (?:the|this|his|her|your) mailbox)|"
        r"mailbox (?:is )?full|mail ?box (?:size limit|would exceed)|full mailbox|mailfolder is full|"
        r"insufficient (?:disk )?(?:space|storage) for (?:the )?(?:mailbox|user)|"
        r"not enough (?:free |storage )?space|(?:not|n't) have enough (?:free )?space|"
        r"disk quota|storage allocation|user's space has been used up|too much mail data|\b[45]\.2\.2\b|"
        r"postfach (?:ist )?voll|speicherplatz|boite (?:du destinataire )?pleine|boîte .{0,30}pleine|"
        r"buz[oó]n .{0,30}lleno|casella .{0,30}piena|ящик переполнен",
    ),
    (
        R.SUSPENDED,
        r"account (?:is |has been )?(?:disabled|suspended|deactivated|inactive|locked|frozen|closed|terminated)|"
        r"(?:mailbox|user|address|recipient) (?:is |has been )?"
        r"(?:disabled|suspended|deactivated|inactive|frozen|locked)|"
        r"is (?:currently |temporarily )?(?:suspended|disabled|deactivated|inactive)|inactive (?:account|user|mailbox)|"
        r"temporarily inactive|tried to reach is (?:disabled|inactive)|\b5\.2\.1\b|mailbox disabled|"
        r"this mailbox is disabled|user is terminated|archived recipient|has been (?:suspended|deactivated)|"
        r"deactivated mailbox|currently suspended|temporar(?:y|ily) locked|suspend the service|"
        r"mailbox unavailable or access denied|destinataire archiv",
    ),
    # A DNS lookup that failed for now (SERVFAIL, a timeout, no answer) says nothing about the
    # domain: the words of Postfix ("Host not found, try again", "Malformed or unexpected name
    # server reply"), glibc (EAI_AGAIN), Exim, Sendmail, Exchange and Gmail, before any
    # "name service error" or "host not found" below reads them as an unknown host.
    (
        R.NETWORK_ERROR,
        r"host not found, try again|malformed (?:or unexpected )?name server reply|\bservfail\b|\bserverfailure\b|"
        r"dns records for the destination computer could not be found|unable to resolve route|"
        r"\berrorretry\b|temporary failure in name resolution|name resolution (?:temporarily )?failed|"
        r"host lookup did not complete|host name lookup failure|name server timeout|"
        r"(?:dns|name ?server|resolver) (?:query |lookup )?(?:timed out|timeout|time-out)|"
        r"(?:dns|name ?server|resolver) (?:lookup |query )?(?:temporary|temporarily) (?:failure|failed|error)|"
        r"temporary (?:dns|name ?server|resolver) (?:failure|error)|could not contact dns servers?|"
        r"dns server returned general failure|(?:dns|name service) error: (?:timeout|try again)",
    ),
    (
        R.HOST_UNKNOWN,
        r"host or domain name not found|name service error|domain (?:name )?not found|no such domain|"
        r"unroute?able (?:mail )?(?:domain|address)|domain does(?: not|n't|nt) exist|domain must exist|"
        r"unknown (?:mail )?domain|nxdomain|\b[45]\.1\.2\b|host unknown|unknown host|host not found|"
        r"couldn't find any host|name or service not known|nodename nor servname|no address associated with hostname|"
        r"non-?existent domain|nonexistentdomain|dns\.nonexistentdomain|no mx (?:record|host)s? (?:found )?for|"
        r"could not resolve|mx lookup (?:failed|error)|domain is not reachable|"
        r"domain mentioned in (?:the )?e-?mail address is unknown",
    ),
    (
        R.USER_UNKNOWN,
        r"user(?:name)? (?:is )?unknown|\buser \(?<?[^\s()<>@]{1,64}@[^\s()<>]{1,255}?>?\)? unknown\b|"
        r"unknown (?:user|recipient|local[- ]?part|mailbox|address|e-?mail address)|"
        r"no such (?:user|recipient|mailbox|address|account|person)|"
        r"(?:user|recipient|mailbox|account|address|e-?mail address|addressee) (?:does not|doesn't|did not) exist|"
        r"(?:user|recipient|mailbox) (?:not found|not known|not exist)|recipient ?not ?found|recip ?not ?found|"
        r"mailbox (?:is )?(?:unavailable|not available|not present|invalid|unknown|inexistent)|"
        r"invalid (?:recipient|mailbox|user|address|e-?mail address)|not a valid (?:recipient|mailbox|user)|"
        r"is not a valid mailbox|bad (?:destination )?(?:mailbox )?address|"
        r"address (?:is )?(?:unknown|invalid|not found)|"
        r"recipient address rejected: "
        r"(?:access denied|user unknown|unknown user|invalid user|invalid-recipient|userunknown)|"
        r"doesn't have an? \S+ account|does not have an? \S+ account|"
        r"no mailbox (?:here )?by that name|no mailbox found|"
        r"not listed in (?:the )?(?:domino directory|public name & address book)|address couldn't be found|"
        r"account (?:that you tried to reach )?does not exist|there is no one at this address|not our customer|"
        r"resolver\.adr\.recip|recipientnotfound|no account by that name|is not a known user|address not present|"
        r"does not exist|doesn't exist|utilisateur inconnu|adresse (?:e-?mail )?inconnue|n'existe pas|"
        r"usuario (?:desconocido|inexistente)|no existe|unbekannter? (?:empf[äa]nger|benutzer)|existiert nicht|"
        r"nicht gefunden|не существует|нет такого|not found in (?:the )?directory|"
        r"is not an active address|this address no longer accepts mail|"
        r"non-?existent (?:user|recipient|mailbox|address)|bad[-_ ]recipient|badrcptto|badrecipientto|validrcptto|"
        r"can't accept user|destination addresses were unknown|e-?mail address could not be found|"
        r"wrong or no longer valid|envelope recipient has been denied|e-?mail name is not found|"
        r"no mail ?box available for this user|nessun utente|"
        r"\bmailbox <?[^\s<>@]{1,64}@[^\s<>]{1,255}?>? (?:is )?unavailable|<[^\s<>@]{1,64}@[^\s<>]{1,255}> not found|"
        r"\brecipient <?[^\s<>@]{1,64}@[^\s<>]{1,255}?>? was not found|\b[45]\.1\.1\b|\b[45]\.1\.10\b",
    ),
    (
        R.MESSAGE_TOO_BIG,
        r"too (?:big|large)|size (?:limit|exceed)|exceeds? (?:the )?(?:maximum|max|size|fixed)|message size|"
        r"message length exceeds|\b[45]\.3\.4\b|\b5\.2\.3\b|databytes limit|line limit exceeded|taille limite",
    ),
    (
        R.EXPIRED,
        r"retry time(?:out)? (?:exceeded|not reached for any host after a long failure)|retry timeout|"
        r"gave up|giving up after|not going to try again|"
        r"delivery (?:time )?expired|message expired|in the queue too long|"
        r"too long in (?:the )?queue|(?:could not be|was not) delivered (?:within|for) .{0,20}(?:days?|hours?)|"
        r"unable to deliver message after multiple retries|queue period|\b[45]\.4\.7\b|"
        r"have been failing for a long time|message timed out|envelope expired|"
        r"could not be delivered for more than|has not been collected after|could not find a gateway for",
    ),
    # IP / domain reputation and block lists: our sending.
    (
        R.BLOCKED,
        r"block ?list|black ?list|blacklisted|blocklisted|deny ?list|\brbl\b|\bdnsbl\b|spamhaus|spamcop|sorbs|"
        r"barracuda ?(?:central|reputation|networks)|abuseat|uceprotect|blocked using|listed (?:at|on|in|by)|"
        r"reputation|banned sending ip|\bbanned\b|\bs3150\b|\bs3140\b|\bs3114\b|\b5\.7\.606\b|\b5\.7\.511\b|"
        r"\[tss?(?:09|11)\]|permanently deferred|host network not allowed|"
        r"not (?:currently )?accepting mail from your ip|"
        r"client host .{0,60}(?:rejected|blocked|refused)|"
        r"(?:your|sender|sending|client) ip .{0,40}(?:blocked|rejected|refused|listed)|"
        r"ip address .{0,40}(?:blocked|rejected|refused|listed)|blocked - see|refused - see|"
        r"envelope blocked|dynamic ip|reverse (?:dns|hostname|lookup)|\bptr\b|helo command rejected|"
        r"rejecting open proxy|part of their network is on our block list|blocked by rbl|ipcheck\.proofpoint|"
        r"your access to submit messages to this e-?mail system has been rejected",
    ),
    (
        R.SPAM_DETECTED,
        r"\bspam\b|spam-like|unsolicited|\buce\b|bulk (?:e-?mail|mail)|junk ?mail|content (?:was )?rejected|"
        r"rejected (?:due to|because of) (?:its )?content|unacceptable content|message content|content filter|"
        r"\bvirus|malware|phish|infected|suspicious|spamassassin|spam ?score|5\.7\.350|"
        r"rejected by .{0,30}filter|message filtered|mail content denied|content presents a potential",
    ),
    # The server wants TLS or a login first: our sending is misconfigured, not a network fault.
    (
        R.POLICY,
        r"must issue a starttls|starttls (?:is )?required|must (?:use|issue) (?:a )?starttls|"
        r"(?:encryption|tls) (?:is )?required|requires? (?:an )?encrypted connection|"
        r"authentication (?:is )?required|must authenticate|smtp auth(?:entication)? required|requires authentication|"
        r"illegal attachment|potentially executable attachment|executable files are not allowed|"
        r"do not accept messages containing (?:images|attachments)|improper use of 8-bit data|"
        r"invalid mime headers?|improperly-formatted binary content|unnecessary base64 encoding",
    ),
    (
        R.NETWORK_ERROR,
        r"connection (?:timed out|refused|reset|lost|closed|dropped)|timed out|\btimeout\b|"
        r"network (?:is )?unreachable|no route to host|host (?:is )?unreachable|could not connect|unable to connect|"
        r"couldn't connect|failed to connect|lost connection|broken pipe|tls (?:handshake|negotiation)|"
        r"starttls|ssl (?:handshake|error)|wasn't able to establish an smtp connection|errno 1(?:04|10|11|13)\b|"
        r"\b4\.4\.[12]\b|connect to .{0,80}: connection",
    ),
    (
        R.SYSTEM_ERROR,
        r"system (?:error|failure)|internal (?:server )?error|"
        r"local (?:error|problem)|temporary (?:local )?(?:failure|problem)|"
        r"server (?:error|failure)|resources? (?:are )?(?:temporarily )?unavailable|insufficient system storage|"
        r"mail (?:system|server) (?:is )?full|loop(?:s)? (?:back|detected)|mail loop|routing loop|too many hops|"
        r"hop count|configuration error|misconfigur|\b[45]\.3\.[0-5]\b|\b[45]\.4\.6\b|forwarding loop|"
        r"message looping|loop was found|can't create (?:user )?output file|queue file write error|"
        r"interrupted system call|system config error|error while being processed",
    ),
)

#: Tier 3: generic words that still say something when nothing specific did.
GENERIC_TEXT = _rules(
    (R.BLOCKED, r"\bblocked\b|\bblock(?:ing)?\b|refused to talk"),
    (
        R.POLICY,
        r"polic(?:y|ies)|not (?:allowed|permitted|authori[sz]ed)|"
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|"
        r"unable to relay|prohibited|administrativ|restricted|unauthori[sz]ed|anti-?spoof|access denied|"
        r"resolver\.rst|not an open relay|insecure mail relay|as a relay\b|not configured to relay|relaying mail to|"
        r"not a gateway|we don't handle mail for|list of allowed rcpthosts?|organizational settings|"
        r"protocol violation|header error",
    ),
)

#: Tier 2: enhanced status codes (class.subject.detail, class stripped) that name the reason.
SPECIFIC_CODES: dict[str, BounceReason] = {
    "1.1": R.USER_UNKNOWN,
    "1.3": R.USER_UNKNOWN,
    "1.10": R.USER_UNKNOWN,
    "1.2": R.HOST_UNKNOWN,
    "4.4": R.HOST_UNKNOWN,
    "1.6": R.HAS_MOVED,
    "1.7": R.POLICY,  # bad sender's mailbox address syntax: about our address
    "1.8": R.POLICY,  # bad sender's system address: our domain
    "2.1": R.SUSPENDED,
    "2.2": R.MAILBOX_FULL,
    "2.3": R.MESSAGE_TOO_BIG,
    "3.4": R.MESSAGE_TOO_BIG,
    "4.7": R.EXPIRED,
    "4.1": R.NETWORK_ERROR,
    "4.2": R.NETWORK_ERROR,
    "3.0": R.SYSTEM_ERROR,
    "3.1": R.SYSTEM_ERROR,
    "3.2": R.SYSTEM_ERROR,
    "3.5": R.SYSTEM_ERROR,
    "4.3": R.NETWORK_ERROR,  # directory server failure: DNS could not be reached (RFC 3463)
    "4.6": R.SYSTEM_ERROR,
    "7.23": R.AUTH_FAILURE,
    "7.24": R.AUTH_FAILURE,
    "7.25": R.AUTH_FAILURE,
    "7.26": R.AUTH_FAILURE,
    "7.7": R.AUTH_FAILURE,
    "7.8": R.AUTH_FAILURE,
    "7.27": R.POLICY,
    "7.28": R.RATE_LIMITED,
}
#: Tier 4: codes too generic to trust over any text.
GENERIC_CODES: dict[str, BounceReason] = {
    "1.0": R.USER_UNKNOWN,
    "2.0": R.MAILBOX_FULL,
    "4.0": R.NETWORK_ERROR,
    "7.0": R.POLICY,
    "7.1": R.POLICY,
}
#: Basic reply codes that mean something on their own (RFC 7504: 521/556 take no mail).
REPLY_CODES: dict[int, BounceReason] = {
    521: R.NOT_ACCEPT,
    556: R.NOT_ACCEPT,
    552: R.MAILBOX_FULL,
    452: R.SYSTEM_ERROR,
    421: R.RATE_LIMITED,
    554: R.POLICY,
    553: R.USER_UNKNOWN,
}

#: Greylisting that does not name itself: "450 4.7.1 Please try again later" (milter-greylist,
#: Sendmail, Exim), with nothing more specific said. Tier 2 of the order above.
GREYLIST_STATUSES = frozenset({"4.7.1", "4.2.0"})
TRY_LATER = re.compile(r"(?:try|come back|retry|resend)(?: again)? later|come back in \d", re.I)

STATUS = re.compile(r"(?<![\d.])([245])\.([0-7])\.(\d{1,3})(?!\d|\.\d)")
REPLY_CODE = re.compile(r"(?<![\w.#-])([245][0-5]\d)(?=[ \-:;,)\]]|$)", re.M)


def find_status(text: str) -> str | None:
    """The first enhanced status code (RFC 3463) in `text`, e.g. '5.1.1'."""
    match = STATUS.search(text or "")
    return match.group(0) if match else None


def find_reply_code(text: str) -> int | None:
    """The first basic SMTP reply code (e.g. 550) in `text`."""
    match = REPLY_CODE.search(text or "")
    return int(match.group(1)) if match else None


def _detail(status: str) -> str:
    return status.split(".", 1)[1] if "." in status else ""


@functools.cache
def _ignorecase(
    rules: tuple[tuple[BounceReason, re.Pattern[str]], ...],
) -> tuple[tuple[BounceReason, re.Pattern[str]], ...]:
    """`rules` for a text that lower-casing would lengthen (a Turkish "İ" becomes two characters,
    so the places of the lower-cased text are not the text's): the same patterns, IGNORECASE.
    Compiled the first time such a text comes."""
    return tuple((reason, re.compile(pattern.pattern, pattern.flags | re.I)) for reason, pattern in rules)


_TRIGGERS = {
    id(rules): tuple(required_words(pattern) for _reason, pattern in rules) for rules in (SPECIFIC_TEXT, GENERIC_TEXT)
}
#: _TRIGGERS for an ASCII text, which holds none of the words in other scripts.
_ASCII_TRIGGERS = {
    key: tuple(None if words is None else tuple(w for w in words if w.isascii()) for words in triggers)
    for key, triggers in _TRIGGERS.items()
}


def _first_match(
    rules: tuple[tuple[BounceReason, re.Pattern[str]], ...], text: str, exclude: frozenset[BounceReason]
) -> tuple[tuple[BounceReason, str] | None, tuple[BounceReason, str] | None]:
    """(the first rule whose words match, the first rule whose bare status code matches).

    A rule's pattern may hold status codes (5.2.1 in `suspended`); a code alone is weaker than any
    rule's words, so the two are found apart and the caller ranks them. The words are matched in
    the lower-cased text (when lower-casing keeps every character's place) and quoted from `text`.
    """
    lowered = text.lower()
    triggers: tuple[tuple[str, ...] | None, ...] = ()
    if len(lowered) == len(text):
        source, triggers = lowered, (_ASCII_TRIGGERS if lowered.isascii() else _TRIGGERS).get(id(rules), ())
    else:
        rules, source = _ignorecase(rules), text
    bare: tuple[BounceReason, str] | None = None
    for index, (reason, pattern) in enumerate(rules):
        if reason in exclude:
            continue
        needed = triggers[index] if triggers else None
        if needed is not None and not any(word in source for word in needed):
            continue  # none of the words every match holds is in the text
        for match in pattern.finditer(source):
            words = text[match.start() : match.end()].strip()
            if not STATUS.fullmatch(words):
                return (reason, words), bare
            if bare is None:
                bare = (reason, words)
    return None, bare


def _reason_of_words_and_codes(
    status: str | None, text: str, code: int | None, exclude: frozenset[BounceReason]
) -> tuple[BounceReason, str]:
    """The reason the words and codes give, in the tiers of the module's docstring."""
    detail = _detail(status) if status else ""
    if (code == 556 or detail == "1.10") and re.search(r"null ?mx|does not accept", text, re.I):
        return R.NOT_ACCEPT, f"status {status or code} with a null MX"
    words, bare = _first_match(SPECIFIC_TEXT, text, exclude)
    if words:
        return words[0], f"diagnostic says {words[1]!r}"
    if status in GREYLIST_STATUSES and R.GREYLISTED not in exclude and (later := TRY_LATER.search(text)):
        return R.GREYLISTED, f"temporary status {status} that says {later.group(0)!r}: greylisting"
    if code in (521, 556) and R.NOT_ACCEPT not in exclude:
        return R.NOT_ACCEPT, f"reply code {code}: the host accepts no mail (RFC 7504)"
    if bare:
        return bare[0], f"diagnostic gives the code {bare[1]!r}"
    if SPECIFIC_CODES.get(detail, R.UNDEFINED) not in exclude | {R.UNDEFINED}:
        return SPECIFIC_CODES[detail], f"status code {status}"
    words, _ = _first_match(GENERIC_TEXT, text, exclude)
    if words:
        return words[0], f"diagnostic says {words[1]!r}"
    if status and status.startswith("4") and detail == "7.0" and R.RATE_LIMITED not in exclude:
        return R.RATE_LIMITED, f"temporary status {status}: deferred, usually for volume"
    if GENERIC_CODES.get(detail, R.UNDEFINED) not in exclude | {R.UNDEFINED}:
        return GENERIC_CODES[detail], f"status code {status}"
    if code is not None and REPLY_CODES.get(code, R.UNDEFINED) not in exclude | {R.UNDEFINED}:
        return REPLY_CODES[code], f"reply code {code}"
    return R.UNDEFINED, (f"status {status} names no known reason" if status else "no known status code or diagnostic")


# -- whose address: the SMTP phase and our sender ------------------------------------------------
#: How reports name the command a reply answered: Postfix "(in reply to RCPT TO command)",
#: Exim "SMTP error from remote mail server after MAIL FROM:<...>" / "after end of data",
#: qmail-remote "... does not like recipient." / "... but sender was rejected.".
PHASE_WORDS = re.compile(
    r"\bin reply to (rcpt to|mail from|end of data|data|bdat|ehlo|helo|lhlo|starttls|auth|xforward|xclient) command|"
    r"\bafter (?:pipelined )?(rcpt to|mail from|end of data|data|bdat|initial connection|ehlo|helo|lhlo|starttls)\b|"
    r"\b(does not like recipient|sender was rejected|my name was rejected|failed on data command|"
    r"failed after i sent the message|refused to talk to me)\b",
    re.I,
)
#: Sendmail's session transcript: ">>> RCPT To:<...>" then "<<< 550 ..."; ">>> ." ends DATA.
TRANSCRIPT = re.compile(r">>> ?(mail from|rcpt to|data|bdat|\.|ehlo|helo|lhlo|starttls|auth)(?!\w)|<<< ?[45]\d\d", re.I)
#: With PIPELINING a refused RCPT TO is read after DATA was sent: the reply names the recipient
#: ("<<< 550 5.1.1 <a@b>... User unknown"), and DATA itself gets "503 Need RCPT".
PIPELINED_RCPT_REPLY = re.compile(r"[ \d.-]{0,16}<[^<>\s@]{1,64}@")
NO_RECIPIENT_LEFT = re.compile(r"need rcpt|no valid recipients", re.I)
COMMAND_PHASE = {
    "mail from": "mail",
    "sender was rejected": "mail",
    "rcpt to": "rcpt",
    "does not like recipient": "rcpt",
    "data": "data",
    "end of data": "data",
    "bdat": "data",
    ".": "data",
    "failed on data command": "data",
    "failed after i sent the message": "data",
}
#: Words that say the reply is about our own sender address or domain, not the recipient's.
SENDER_TEXT = AnyCase(
    r"sender address rejected|domain of sender address|sender verify failed|"
    r"sender (?:address )?verification failed|"
    r"sender(?:'s)? domain (?:must exist|does(?: not|n't) (?:exist|resolve)|not found|(?:is )?unknown|has no)|"
    r"(?:invalid|unknown|unroutable|unresolvable|non-?existent|bad) sender(?:'s)? (?:mailbox |system )?"
    r"(?:address|domain)|sender (?:address|domain) (?:is )?"
    r"(?:invalid|unknown|unroutable|unresolvable|not found|does(?: not|n't) exist)|"
    r"sender (?:e-?mail )?(?:address )?rejected|invalid sender|sender is (?:a )?spammer|sender not pre-?approved|"
    r"sender domain is empty|bogus mail from|mail from not owned by user|e-?mail address is not verified|"
    r"fully qualified (?:e-?mail )?address required|without a valid sender domain|from: domain is invalid|"
    r"null sender is not allowed|empty envelope senders?|(?:server|host|system) does not accept mail from",
)
#: X.1.7 bad sender's mailbox address syntax, X.1.8 bad sender's system address (RFC 3463).
SENDER_DETAILS = frozenset({"1.7", "1.8"})
#: Reasons that describe the recipient's mailbox or domain: wrong when the reply is about ours.
ABOUT_THE_RECIPIENT = frozenset(
    {R.USER_UNKNOWN, R.HOST_UNKNOWN, R.HAS_MOVED, R.NOT_ACCEPT, R.MAILBOX_FULL, R.SUSPENDED, R.UNDEFINED}
)
#: Reasons that would say the address is dead: after the message was sent they say a filter.
DEAD_AFTER_DATA = frozenset({R.USER_UNKNOWN, R.HOST_UNKNOWN, R.HAS_MOVED, R.NOT_ACCEPT})
#: Servers known to look up the mailbox only once the message is in, in their own words:
#: mail.ru's "550 Message was not accepted -- invalid mailbox. Local mailbox a@b is
#: unavailable: user not found". There the dead address is a dead address.
CHECKS_MAILBOX_AFTER_DATA = re.compile(r"message was not accepted -- invalid mailbox", re.I)


def _transcript_phase(text: str) -> str | None:
    command: str | None = None
    for match in TRANSCRIPT.finditer(text):
        if match.group(1):
            command = match.group(1).lower()
            continue
        if command is None:
            return "connect"  # refused at the greeting
        if command == "data" and (PIPELINED_RCPT_REPLY.match(text, match.end()) or NO_RECIPIENT_LEFT.search(text)):
            return "rcpt"
        return COMMAND_PHASE.get(command, "connect")
    return None


#: PHASE_WORDS and SENDER_TEXT for lower-cased text (both are written in lower case).
_LOWER_PHASE_WORDS = re.compile(PHASE_WORDS.pattern)


def smtp_phase(text: str) -> str | None:
    """The step of the SMTP session a report's reply answered, where the report says it:
    "connect" (greeting, EHLO, STARTTLS), "mail" (MAIL FROM), "rcpt" (RCPT TO), "data" (DATA
    or the end of the message), or None."""
    text = " ".join((text or "").split())
    # The words found are lower-cased below, so finding them in the lower-cased text is the same.
    found = _LOWER_PHASE_WORDS.search(text.lower())
    if found:
        said = " ".join(next(g for g in found.groups() if g).lower().split())
        return COMMAND_PHASE.get(said, "connect")
    return _transcript_phase(text) if "<<<" in text else None


def _about_our_sender(status: str | None, text: str) -> str | None:
    """What says the reply is about our sender address (its words or its status), or None."""
    if status and _detail(status) in SENDER_DETAILS:
        return f"status {status}"
    lowered = text.lower()
    if len(lowered) != len(text):
        found = SENDER_TEXT.ignoring_case().search(text)
        return repr(found.group(0)) if found else None
    match = SENDER_TEXT.lower.search(lowered)
    return repr(text[match.start() : match.end()]) if match else None


def reason_from(
    status: str | None,
    text: str,
    code: int | None = None,
    *,
    exclude: frozenset[BounceReason] = frozenset(),
    phase: str | None = None,
) -> tuple[BounceReason, str]:
    """The bounce reason for an enhanced status code, diagnostic text and reply code, with
    the evidence for it (a human-readable phrase). Reasons in `exclude` are never chosen.

    `phase` is the SMTP step the reply answered ("connect", "mail", "rcpt", "data"); when
    None it is read from the text (`smtp_phase`). A reply about our sender, or to MAIL FROM,
    never gives a reason about the recipient; a dead-address reason given after the message
    was sent (end of DATA) is `filtered`.
    """
    text = " ".join((text or "").split())
    reason, why = _reason_of_words_and_codes(status, text, code, exclude)
    phase = phase or smtp_phase(text)
    sender = _about_our_sender(status, text)
    if (sender or phase == "mail") and reason in ABOUT_THE_RECIPIENT and R.POLICY not in exclude:
        whose = f"the reply is about our sender address ({sender})" if sender else "the server refused MAIL FROM"
        return R.POLICY, f"{why}, but {whose}: a problem of our sending, not of the recipient's address"
    if (
        phase == "data"
        and reason in DEAD_AFTER_DATA
        and not sender
        and R.FILTERED not in exclude
        and not CHECKS_MAILBOX_AFTER_DATA.search(text)
    ):
        return R.FILTERED, (
            f"{why}, but answered after the message was sent (end of DATA), the recipient having been "
            "accepted: a filter's refusal, not proof that the mailbox is gone"
        )
    if phase == "connect" and reason in {R.USER_UNKNOWN, R.HAS_MOVED} and R.POLICY not in exclude:
        return R.POLICY, f"{why}, but refused before any recipient was named: a problem of our sending"
    return reason, why


def is_permanent(status: str | None, code: int | None, action: str | None = None) -> bool:
    """A permanent failure: 5.x.x status or 5xx code; a delayed action is never permanent.
    With neither code, a failed report is taken as permanent."""
    if action and action.lower().startswith("delayed"):
        return False
    if code is not None:
        return code >= 500
    if status:
        return status.startswith("5")
    return action is None or action.lower().startswith("failed")


def category_for(reason: BounceReason, permanent: bool) -> ReplyCategory:
    """Hard only when the address itself is dead and the failure is permanent."""
    dead = reason in ADDRESS_DEAD_REASONS or reason is R.NOT_ACCEPT
    return ReplyCategory.BOUNCE_HARD if dead and permanent else ReplyCategory.BOUNCE_SOFT


def sending_side(reason: BounceReason | None) -> bool:
    """The failure is a problem of our sending (blocked, spam, policy, auth)."""
    return reason in SENDING_SIDE_REASONS
