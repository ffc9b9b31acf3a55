"""Reading whatever a mail server hands us: the stdlib `email` parser, made robust.

Line ends are normalised first (LF, CRLF or a lone CR), so a message saved on any system
parses the same. Headers are read from their raw form and decoded here (RFC 2047 words,
each in its charset), so a malformed address header cannot make the header registry raise.
Text in any charset is read by `decode_bytes`: the declared charset (or the superset mail
clients write under its name), else ISO-2022-JP by its escapes, UTF-8, the Japanese,
Korean, Cyrillic and Chinese charsets whose script the text then reads as, and at last
Windows-1252/Latin-1. A body labelled Latin-1 or Windows-1252 that reads as mojibake is read
as undeclared (kept as labelled unless another charset decodes it cleanly into its script),
and an HTML part whose header names no charset is read in the one its <meta> names.
Nothing in this module raises on bad input.
"""

from __future__ import annotations

import functools
import html
import itertools
import re
from collections.abc import Iterator
from email import message_from_bytes
from email._policybase import Compat32  # as email.policy has it, without its header registry
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from typing import Any

__all__ = [
    "AnyCase",
    "body_text",
    "decode_bytes",
    "first_address",
    "header",
    "html_to_text",
    "leaf_parts",
    "mailbox_addresses",
    "message_ids",
    "message_text",
    "normalise_line_ends",
    "parse_message",
    "part_text",
    "raw_headers",
]

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


class AnyCase:
    """A pattern written in lower case, for text in any case.

    `lower` is compiled at once and is matched against the lower-cased text: without IGNORECASE
    the regex engine skips positions by their first character. A text that lower-casing would
    lengthen (a Turkish "İ" becomes two characters, so the places of the lower-cased text are not
    the text's) is matched as it is by `ignoring_case()`, the IGNORECASE twin, compiled the first
    time such a text comes: compiling a long alternation under IGNORECASE costs milliseconds.
    """

    __slots__ = ("_ignoring_case", "lower", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.lower = re.compile(pattern)
        self._ignoring_case: re.Pattern[str] | None = None

    def ignoring_case(self) -> re.Pattern[str]:
        if self._ignoring_case is None:
            self._ignoring_case = re.compile(self.pattern, re.I)
        return self._ignoring_case


#: Header values handed to the stdlib's structured parsers (Content-Type ...) are cut here.
MAX_PARSED_HEADER = 8192
#: Longer header values are not RFC 2047 decoded (the stdlib decoder is quadratic in them).
MAX_DECODED_HEADER = 2048
#: Address headers longer than this are read up to here (real ones with 500 recipients fit).
MAX_ADDRESS_HEADER = 65536
#: Header fields read per message or part: every lookup walks them, and real ones have < 100.
MAX_HEADER_FIELDS = 1000
#: Charsets tried, in order, when neither the declared charset nor a likely one fits.
FALLBACK_CHARSETS = ("windows-1252", "latin-1")


def normalise_line_ends(raw: bytes) -> bytes:
    """CRLF and lone CR become LF."""
    return _LINE_ENDS.sub(b"\n", raw) if b"\r" in raw else raw


class _ParsedMessage(EmailMessage):
    """An `EmailMessage` that finds a header field through an index of each name's first field.

    The parser and `get_payload` ask for Content-Type and Content-Transfer-Encoding a dozen
    times per part, and the stdlib's `get` lower-cases every field name each time (and the
    policy reads the value again). The index is rebuilt when the fields change (their number,
    or the name at a place), and a value is read again when its field was replaced."""

    def get(self, name: str, failobj: Any = None) -> Any:
        fields = self._headers  # type: ignore[attr-defined]
        wanted = name.lower()
        index = self.__dict__.get("_first_field")
        if index is None or index[0] != len(fields):
            index = self.__dict__["_first_field"] = _field_index(fields)
        place = index[1].get(wanted)
        if place is not None and fields[place][0].lower() != wanted:  # changed in place: read again
            index = self.__dict__["_first_field"] = _field_index(fields)
            place = index[1].get(wanted)
        if place is None:
            return failobj
        field = fields[place]
        fetched = index[2].get(wanted)
        if fetched is None or fetched[0] is not field:
            fetched = index[2][wanted] = (field, self.policy.header_fetch_parse(*field))
        return fetched[1]

    def get_content_type(self) -> str:
        """The stdlib's, read once per Content-Type value (the parser asks it again and again)."""
        value = self.get("content-type")
        if value is None:
            return self.get_default_type()
        known = self.__dict__.get("_content_type")
        if known is None or known[0] is not value:
            ctype = str(value).partition(";")[0].strip().lower()
            known = self.__dict__["_content_type"] = (value, ctype if ctype.count("/") == 1 else "text/plain")
        return known[1]


def _field_index(fields: list[tuple[str, str]]) -> tuple[int, dict[str, int], dict[str, tuple[Any, Any]]]:
    """(how many fields, the place of each name's first field, the values read so far)."""
    first: dict[str, int] = {}
    for place, (key, _value) in enumerate(fields):
        first.setdefault(key.lower(), place)
    return len(fields), first, {}


class _ReadingPolicy(Compat32):
    """The parser's policy: compat32's plain header strings, in `EmailMessage` objects.

    The parser and the part helpers only ask for Content-Type, Content-Transfer-Encoding and
    their parameters (every other header is read raw, `header`), and `policy.default`'s header
    registry parsed each of them into a structured object first: a quarter of the classifier's
    time on messages it had not seen. Values are cut at MAX_PARSED_HEADER: the stdlib's
    parameter parsing is quadratic in the length of a value (it re-slices the rest of the
    value for every parameter), and a real Content-Type is far shorter.
    """

    message_factory = _ParsedMessage

    def header_fetch_parse(self, name: str, value: str) -> Any:
        value = value[:MAX_PARSED_HEADER]
        if name.lower() == "content-transfer-encoding":
            value = value.strip()  # "base64 " is base64, as the header registry read it
        return super().header_fetch_parse(name, value)


POLICY = _ReadingPolicy()


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw bytes; a message that breaks the parser still gives a (possibly empty) message."""
    try:
        # The policy makes `EmailMessage`s (its message_factory); typeshed ties that to `EmailPolicy`.
        msg: EmailMessage = message_from_bytes(normalise_line_ends(raw or b""), policy=POLICY)  # type: ignore[arg-type]
        return msg
    except Exception:  # pragma: no cover - the stdlib parser is lenient; belt and braces
        return EmailMessage(policy=POLICY)


#: Declared charsets read with the superset mail clients really write under that name
#: (Outlook's "gb2312" holds GBK, "shift_jis" holds Windows' cp932, "euc-kr" holds cp949).
SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "cp936": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_ext",
    "iso-2022-kr": "iso2022_kr",
}
#: ISO-2022 escape sequences: JIS X 0208 / 0201 / 0212 (Japanese), KS C 5601 (Korean).
_ISO_2022_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(I", b"\x1b$(D")
#: Undeclared 8-bit text that is not UTF-8: the charsets tried, in order, each with the test its
#: text must pass (`_script_fits`). Japanese first (it needs kana, which no other of these
#: gives), then Korean (mostly Hangul), Cyrillic, Chinese; Windows-1252 and Latin-1 take the rest.
#: Korean and Chinese are read strictly (both bytes 0xA1-0xFE), so that Latin-1 text (an
#: accented letter, then an ASCII one) never decodes as them.
#: Cyrillic comes before Chinese: Russian whose words all have an even number of letters decodes
#: as GB2312 or Big5 ideographs, while Chinese never passes the Cyrillic tests (its lead bytes
#: B0-BF are symbols in Windows-1251 and box drawing in KOI8-R). Big5 comes last: GB2312 cannot
#: decode most Big5 text (its common rows AA-AF are empty there).
UNDECLARED_CHARSETS = ("cp932", "euc_jp", "euc_kr", "cp1251", "koi8_r", "gb2312", "big5")
#: Characters of decoded text looked at to tell which charset fits.
SCRIPT_SAMPLE = 4000


def _script_fits(charset: str, text: str) -> bool:
    """Does `text`, decoded as `charset`, read as the script that charset is for?"""
    sample = [c for c in text[:SCRIPT_SAMPLE] if c >= "\x80"]
    if not sample:
        return False
    kana = sum(1 for c in sample if "\u3040" <= c <= "\u30ff")
    hangul = sum(1 for c in sample if "\uac00" <= c <= "\ud7a3")
    han = sum(1 for c in sample if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff01" <= c <= "\uff5e")
    cyrillic_lower = sum(1 for c in sample if "\u0430" <= c <= "\u044f" or c == "\u0451")
    cyrillic = cyrillic_lower + sum(1 for c in sample if "\u0410" <= c <= "\u042f" or c == "\u0401")
    size = len(sample)
    if charset in {"cp932", "euc_jp"}:
        if kana * 10 >= size and (kana + han) * 10 >= size * 8:
            return True
        # Kanji alone (a short "宛先不明"): Chinese in GB2312 or Big5 read as cp932 gives
        # half-width katakana (their lead bytes A1-DF are single characters in cp932).
        # Latin-1 read as cp932 or Big5 gives lone ideographs inside Latin words ("Tr鑚"), never runs.
        halfwidth = any("\uff61" <= c <= "\uff9f" for c in sample)
        return charset == "cp932" and not halfwidth and han * 10 >= size * 9 and _in_runs(text)
    if charset == "big5":
        return han * 10 >= size * 8 and _in_runs(text)
    if charset == "euc_kr":
        return hangul * 10 >= size * 6
    if charset == "gb2312":
        return han * 10 >= size * 8
    # Cyrillic: letters come in words (Latin-1 read as cp1251 gives lone letters inside Latin
    # words), and most letters of running text are lower case, which koi8-r and cp1251 put in
    # each other's upper-case rows.
    head = text[:SCRIPT_SAMPLE]
    in_words = sum(1 for a, b in itertools.pairwise(head) if _cyrillic(a) and _cyrillic(b))
    return cyrillic * 10 >= size * 8 and cyrillic_lower * 2 >= cyrillic and in_words * 2 >= cyrillic


def _in_runs(text: str) -> bool:
    """Most non-ASCII characters of `text` stand next to another one (words of a CJK script)."""
    head = text[:SCRIPT_SAMPLE]
    high = [c >= "\x80" for c in head]
    total = sum(high)
    together = sum(
        1 for i, h in enumerate(high) if h and ((i > 0 and high[i - 1]) or (i + 1 < len(high) and high[i + 1]))
    )
    return total >= 2 and together * 10 >= total * 8


def _cyrillic(char: str) -> bool:
    return "\u0410" <= char <= "\u044f" or char in "\u0401\u0451"


def _undeclared(data: bytes) -> str | None:
    """Text of undeclared bytes in the first charset of a bounded list that decodes them
    cleanly and gives its own script; None when none does. At most one decode per charset."""
    if b"\x1b" in data and any(escape in data for escape in _ISO_2022_ESCAPES):
        for charset in ("iso2022_jp_ext", "iso2022_jp_2", "iso2022_kr"):
            try:
                return data.decode(charset)
            except ValueError:
                continue
    if data.isascii():
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except ValueError:
        pass
    for charset in UNDECLARED_CHARSETS:
        try:
            text = data.decode(charset)
        except ValueError:
            continue
        if _script_fits(charset, text):
            return text
    return None


#: Labels that any bytes decode under: a mislabelled body (Shift_JIS or Windows-1251 sent as
#: Latin-1) decodes without error and reads as mojibake.
_ANY_BYTES = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "windows-1252", "cp1252"})
#: Non-ASCII characters looked at to tell mojibake from Latin text.
MOJIBAKE_SAMPLE = 2000


def _mojibake(text: str) -> bool:
    """Text decoded as Latin-1 or Windows-1252 that reads as mojibake: C1 controls (no Latin
    text has them), or non-ASCII characters that mostly stand next to each other (Latin text
    puts an accented letter between plain ones; Cyrillic, Japanese or UTF-8 read as Latin-1
    give runs of them)."""
    high = 0
    paired = 0
    previous = False
    for char in text:
        is_high = char >= "\x80"
        if is_high:
            if char <= "\x9f":
                return True
            high += 1
            if previous:
                paired += 1
            if high >= MOJIBAKE_SAMPLE:
                break
        previous = is_high
    return high >= 8 and paired * 2 >= high


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes as text: the declared charset (or the superset written under its name); for
    undeclared or undecodable bytes ISO-2022 by its escapes, UTF-8, then the first of
    UNDECLARED_CHARSETS that fits; then Windows-1252, then Latin-1. Linear in `data`."""
    name = (charset or "").strip().lower()
    declared = (name, SUPERSETS[name]) if name in SUPERSETS else (name,) if name else ()
    for candidate in declared:
        if candidate in {"us-ascii", "ascii"} and b"\x1b" in data:
            break  # ISO-2022 text mislabelled as ASCII: read below
        try:
            text = data.decode(candidate)
        except (LookupError, ValueError):  # unknown charset, undecodable bytes, a NUL in the name
            continue
        if candidate in _ANY_BYTES and not data.isascii() and _mojibake(text):
            # Mislabelled: the bytes are read as undeclared, once, and kept only when another
            # charset decodes them cleanly into its own script.
            return _undeclared(data) or text
        return text
    undeclared = _undeclared(data)
    if undeclared is not None:
        return undeclared
    for candidate in FALLBACK_CHARSETS:
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):
            continue
    return data.decode("utf-8", errors="replace")  # pragma: no cover - latin-1 always decodes


def _unescape(value: str) -> str:
    """A string holding surrogate-escaped raw bytes (8-bit headers) as proper text."""
    if value.isascii() and "\x1b" not in value:  # nearly every header: nothing to do
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return decode_bytes(value.encode("utf-8", "surrogateescape"))
    if "\x1b" in value:  # raw ISO-2022-JP, as old Japanese mailers write headers
        return decode_bytes(value.encode("utf-8"))
    return value


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words (`=?utf-8?q?...?=`) decoded, each in its charset by
    `decode_bytes` (so "gb2312" words holding GBK, or ISO-2022-JP with Windows' extra
    characters, still read); the value unchanged if they are broken or the value is too long
    to be a real header."""
    if "=?" not in value or len(value) > MAX_DECODED_HEADER:
        return value
    try:
        chunks = [
            (decode_bytes(chunk, charset), "utf-8")
            if isinstance(chunk, bytes) and charset and charset.lower() not in {"us-ascii", "ascii"}
            else (chunk, charset)
            for chunk, charset in decode_header(value)
        ]
        return str(make_header(chunks))
    except Exception:
        return value


class _Headers:
    """The header fields of one message or part, by lower-case name, read once."""

    __slots__ = ("decoded", "raw")

    def __init__(self, msg: Message) -> None:
        self.raw: dict[str, list[str]] = {}
        self.decoded: dict[str, str] = {}
        try:
            items = msg.raw_items() if hasattr(msg, "raw_items") else msg.items()
            for key, value in itertools.islice(items, MAX_HEADER_FIELDS):
                self.raw.setdefault(key.lower(), []).append(_unescape(str(value)))
        except Exception:  # a header the stdlib cannot give back: the ones read so far count
            pass


def _headers_of(msg: Message) -> _Headers:
    """A message's or part's fields, read on first use and kept on the object itself: the
    rules ask for the same dozen headers again and again (walking the fields every time was
    a sixth of the classifier's time), and a parsed message is never changed."""
    found = msg.__dict__.get("_classify_headers")
    if found is None:
        found = msg.__dict__["_classify_headers"] = _Headers(msg)
    return found


def raw_headers(msg: Message, name: str) -> list[str]:
    """Every `name` header as the sender wrote it (8-bit text decoded, encoded words kept,
    folding kept), in order; [] when missing (never raises)."""
    return list(_headers_of(msg).raw.get(name.lower(), ()))


def header(msg: Message, name: str) -> str:
    """The first `name` header as one line of text, '' when missing (never raises).

    Kept under the name as asked too: the rules ask for a few names, spelled the same way,
    dozens of times per message."""
    fields = msg.__dict__.get("_classify_headers") or _headers_of(msg)
    text = fields.decoded.get(name)
    if text is None:
        wanted = name.lower()
        text = fields.decoded.get(wanted)
        if text is None:
            values = fields.raw.get(wanted)
            text = fields.decoded[wanted] = " ".join(_decode_words(values[0]).split()) if values else ""
        fields.decoded[name] = text
    return text


_CTYPE = re.compile(r"^\s*([\w.+-]+/[\w.+-]+)")


def content_type(part: Message) -> str:
    """`maintype/subtype` of a part, lower case; text/plain when missing or malformed.

    Read from the raw header (the header registry is slow and this runs on every part).
    """
    fields = part.__dict__.get("_classify_headers") or _headers_of(part)
    found = fields.decoded.get(_CTYPE_KEY)
    if found is None:
        match = _CTYPE.match(header(part, "Content-Type"))
        found = fields.decoded[_CTYPE_KEY] = match.group(1).lower() if match else "text/plain"
    return found


#: Where `content_type` and `content_param` keep what they read (no header name holds a space).
_CTYPE_KEY = " content-type"
_PARAM_KEY = " param "


@functools.cache
def _param_pattern(param: str) -> re.Pattern[str]:
    return re.compile(rf";\s*{re.escape(param)}\s*=\s*(?:\"([^\"]*)\"|([^\s;]+))", re.I)


def content_param(part: Message, param: str) -> str:
    """A Content-Type parameter (e.g. report-type, charset), lower case, '' when missing."""
    fields = part.__dict__.get("_classify_headers") or _headers_of(part)
    key = _PARAM_KEY + param
    found = fields.decoded.get(key)
    if found is None:
        match = _param_pattern(param).search(header(part, "Content-Type"))
        found = "" if not match else (match.group(1) if match.group(1) is not None else match.group(2)).strip().lower()
        fields.decoded[key] = found
    return found


def _is_attachment(part: Message) -> bool:
    disposition = header(part, "Content-Disposition").lower()
    return disposition.startswith("attachment")


def _children(part: Message) -> list[Message]:
    # What `get_payload()` returns for a multipart, read without it: for any other part it
    # reads the transfer encoding and the charset, to return a text we do not want here.
    payload = getattr(part, "_payload", None)
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def leaf_parts(msg: Message, *, into_messages: bool = False) -> Iterator[Message]:
    """Every non-multipart part, depth first; embedded messages (message/*) are entered only
    when `into_messages`, otherwise yielded as one leaf. Walked once per message (the readers
    of a message ask for its parts again and again), at most 500 parts."""
    key = "_classify_leaves_in" if into_messages else "_classify_leaves"
    leaves = msg.__dict__.get(key)
    if leaves is None:
        leaves = msg.__dict__[key] = list(_walk(msg, into_messages))
    return iter(leaves)


def _walk(msg: Message, into_messages: bool) -> Iterator[Message]:
    stack: list[Message] = [msg]
    seen = 0
    while stack and seen < 500:  # a hostile message cannot make us walk forever
        part = stack.pop()
        seen += 1
        children = _children(part)
        ctype = content_type(part)
        if children and (ctype.startswith("multipart/") or into_messages):
            stack.extend(reversed(children))
        else:
            yield part


#: HTML's own charset: <meta charset="..."> or <meta http-equiv="Content-Type" content="...; charset=...">.
_META_CHARSET = re.compile(rb"<meta\b[^<>]{0,300}?charset\s*=\s*[\"']?\s*([\w.:-]{1,40})", re.I)
#: Bytes of an HTML part looked at for its <meta> charset (HTML requires it in the first 1024).
META_SAMPLE = 2048


def _meta_charset(payload: bytes) -> str | None:
    """The charset an HTML part names in its <meta>, for a part whose header names none."""
    match = _META_CHARSET.search(payload[:META_SAMPLE])
    return match.group(1).decode("ascii", "replace") if match else None


def part_text(part: Message) -> str:
    """The decoded text of one part, by `decode_bytes` (never raises). Decoded once per part:
    the readers of a message (its text, a report's text, a complaint's) ask for the same parts."""
    found = part.__dict__.get("_classify_text")
    if found is None:
        found = part.__dict__["_classify_text"] = _part_text(part)
    return found


def _part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        charset = content_param(part, "charset") or None
        if charset is None and content_type(part) == "text/html":
            charset = _meta_charset(payload)
        return decode_bytes(payload, charset)
    try:
        inner = part.get_payload()
    except Exception:
        return ""
    if isinstance(inner, str):
        return _unescape(inner)
    if isinstance(inner, list):
        texts = []
        for sub in inner:
            if isinstance(sub, Message):
                texts.append("\n".join(f"{k}: {header(sub, k)}" for k in _keys(sub)))
                texts.append(part_text(sub))
        return "\n".join(t for t in texts if t)
    return ""


def _keys(msg: Message) -> list[str]:
    try:
        return list(dict.fromkeys(k for k, _ in msg.raw_items()))
    except Exception:
        return []


#: A start or end tag. Every part is possessive and stops at the next `<`, `>` or quote (a
#: quoted value runs to its closing quote), so a tag that never closes costs only the text up
#: to there, and no text is scanned twice by tags of the same kind of quote.
_HTML_TAG = re.compile(r"""<(/?)([a-zA-Z][a-zA-Z0-9:-]*+)(?:[^<>"']++|"[^"]*+"|'[^']*+')*+>""")
#: A declaration or processing instruction (<!doctype ...>, <![CDATA[ ... ]]>, <?xml ...?>).
_HTML_DECLARATION = re.compile(r"<[!?][^<>]*+>")
#: Elements whose content is not markup: skipped to their end tag.
_HTML_RAW_END = {"script": re.compile(r"</script\s*>", re.I), "style": re.compile(r"</style\s*>", re.I)}


class _TextFromHtml:
    """HTML to plain text: block elements break lines, <blockquote> lines get a '> ' prefix,
    <script>, <style>, <head> and <title> are dropped.

    A small scanner, not `html.parser`: the stdlib parser re-scans unclosed constructs and
    takes minutes on a few hundred kilobytes of hostile markup. Every step here moves forward.
    """

    BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "tr",
            "li",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "blockquote",
            "hr",
            "pre",
            "section",
            "article",
            "header",
            "footer",
            "dt",
            "dd",
        }
    )
    SKIP = frozenset({"head", "title"})

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skip = 0
        self._quote = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._line).split())
        self._line = []
        prefix = "> " * self._quote
        self.lines.append(prefix + text if text else prefix.rstrip())

    def _start(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCK:
            self._flush()
            if tag == "blockquote":
                self._quote += 1

    def _end(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCK:
            self._flush()
            if tag == "blockquote":
                self._quote = max(0, self._quote - 1)

    def _data(self, data: str) -> None:
        if data and not self._skip:
            self._line.append(html.unescape(data) if "&" in data else data)

    def feed(self, markup: str) -> None:
        pos, size = 0, len(markup)
        while pos < size:
            lt = markup.find("<", pos)
            if lt < 0:
                self._data(markup[pos:])
                break
            self._data(markup[pos:lt])
            if markup.startswith("<!--", lt):
                end = markup.find("-->", lt + 4)
                pos = size if end < 0 else end + 3
                continue
            tag = _HTML_TAG.match(markup, lt)
            if tag is None:
                declaration = _HTML_DECLARATION.match(markup, lt)
                if declaration is None:
                    self._data("<")  # a lone '<' in the text ("a < b")
                pos = declaration.end() if declaration else lt + 1
                continue
            pos = tag.end()
            name = tag.group(2).lower()
            if tag.group(1):
                self._end(name)
                continue
            self._start(name)
            if name in _HTML_RAW_END and not tag.group(0).endswith("/>"):
                end_tag = _HTML_RAW_END[name].search(markup, pos)
                pos = end_tag.end() if end_tag else size

    def text(self) -> str:
        self._flush()
        out: list[str] = []
        for line in self.lines:
            if line.strip(" >") or (out and out[-1].strip(" >")):
                out.append(line)
        return "\n".join(out).strip()


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body (linear in its length; never raises)."""
    parser = _TextFromHtml()
    parser.feed(markup)
    return parser.text()


_LOOKS_HTML = re.compile(r"^\s*(?:<!doctype html|<html|<body|<div|<p[ >])", re.I)


def message_text(msg: Message) -> str:
    """The best human text of a parsed message: its text/plain parts, else its HTML as text.

    Attachments and embedded messages (a forwarded or returned message/rfc822) are not read.
    A broken multipart (no boundary, boundary never found) gives its raw body.
    """
    plain: list[str] = []
    html_parts: list[Message] = []
    for part in leaf_parts(msg):
        if part is not msg and _is_attachment(part):
            continue
        ctype = content_type(part)
        if ctype == "text/plain":
            plain.append(part_text(part))
        elif ctype == "text/html":
            html_parts.append(part)
    text = "\n".join(t for t in plain if t.strip())
    if text:
        return text
    text = "\n".join(t for t in (html_to_text(part_text(p)) for p in html_parts) if t.strip())
    if text:
        return text
    if content_type(msg).startswith("multipart/") and not _children(msg):
        raw = part_text(msg)
        return html_to_text(raw) if _LOOKS_HTML.search(raw) else raw
    return ""


def body_text(raw: bytes) -> str:
    """The best human text of raw message bytes: text/plain preferred, else HTML made text
    (never raises)."""
    try:
        return message_text(parse_message(raw))
    except Exception:  # pragma: no cover - every step above is guarded; belt and braces
        return ""


_ADDRESS_PATTERN = r"[\w.!#$%&'*+/=?^`{|}~-]+@(?:[\w-]+\.)+[\w-]{2,}"
#: An address found in free text. The lookbehind lets a match start only where a run of
#: address characters starts: without it, a long run without an `@` was scanned again from
#: every position in it (150 KB of letters took a minute). It changes no match: a match that
#: starts inside a run also starts at the run's beginning.
_ADDRESS = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])" + _ADDRESS_PATTERN)


def first_address(value: str) -> str | None:
    """The first e-mail address in `value`, lower case."""
    match = _ADDRESS.search(value or "")
    return match.group(0).lower().strip(".") if match else None


def addresses(value: str) -> list[str]:
    """Every e-mail address in `value`, lower case, in order, without repeats."""
    return list(dict.fromkeys(m.group(0).lower().strip(".") for m in _ADDRESS.finditer(value or "")))


#: The pieces of an address header (RFC 5322 3.4), each read once: a quoted display name,
#: a comment, an angle address, a comma between mailboxes, anything else.
_MAILBOX_TOKEN = re.compile(
    r'"(?:[^"\\]++|\\.)*+"?|\((?:[^()\\]++|\\.)*+\)?|<([^<>]*+)>?|,|[^"(<,]++|.',
    re.S,
)


def mailbox_addresses(value: str, limit: int | None = None) -> list[str]:
    """The real address of each mailbox in an address header (From, To ...), lower case, in
    order, without repeats: at most `limit`.

    The address is the angle address when there is one, else the bare address; text in a
    quoted display name or a comment is never taken, so `"ceo@bank.example"
    <x@evil.example>` and `ceo@bank.example <x@evil.example>` both give x@evil.example.
    Give the header as written (`raw_headers`): a decoded encoded word could hold anything.
    """
    value = value or ""
    # A longer header is hostile: only the mailboxes that end within the first part count.
    whole = len(value) <= MAX_ADDRESS_HEADER
    found: dict[str, None] = {}
    angle: str | None = None
    bare: list[str] = []

    def mailbox_done() -> None:
        address = first_address(angle) if angle is not None else first_address(" ".join(bare))
        if address:
            found.setdefault(address)

    for token in _MAILBOX_TOKEN.finditer(value[:MAX_ADDRESS_HEADER]):
        text = token.group(0)
        if text == ",":
            mailbox_done()
            angle, bare = None, []
            if limit is not None and len(found) >= limit:
                break
        elif text.startswith("<") and (angle is None or not angle.strip()):
            angle = token.group(1)
        elif not text.startswith(('"', "(")):
            bare.append(text)
    else:
        if whole:
            mailbox_done()
    return list(found)[:limit]


_MSGID = re.compile(r"<[^<>\s@]+@[^<>\s]+>")
_BARE_MSGID = re.compile(r"^[^<>\s@]+@[^<>\s]+$")


def message_ids(value: str) -> list[str]:
    """The Message-IDs in a Message-ID / In-Reply-To / References value, in order.

    A bare `id@host` (brackets forgotten, as some mailers do) is accepted and bracketed.
    """
    found = _MSGID.findall(value or "")
    if not found and _BARE_MSGID.match((value or "").strip()):
        found = [f"<{value.strip()}>"]
    return list(dict.fromkeys(found))
