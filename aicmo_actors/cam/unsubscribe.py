"""Signed one-click unsubscribe: tokens, links, headers and the small HTTP app serving them.

A token is ``base64url(version ‖ lead id ‖ HMAC-SHA256(secret, label ‖ version ‖ lead id)[:16])``
without padding: 34 URL-safe characters carrying a 128-bit MAC. The token is the
credential (RFC 8058 forbids cookies and logins on the one-click POST), so anything that
does not verify gets a 404 and changes nothing.

The app also serves ``/healthz`` and ``/metrics`` (Prometheus text format 0.0.4); it is
served by `aicmo_actors.gateways.http.HttpServer`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import math
import re
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import structlog
from email_validator import validate_email
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = [
    "MAX_LEAD_ID",
    "METRICS_CONTENT_TYPE",
    "build_app",
    "generate_secret",
    "list_unsubscribe_headers",
    "render_prometheus",
    "return_path_address",
    "return_path_tokens",
    "sign_return_path",
    "sign_token",
    "token_in_subject",
    "unsubscribe_mailto",
    "unsubscribe_url",
    "verify_return_path",
    "verify_token",
]

_log = structlog.get_logger("aicmo", component="unsubscribe")

TOKEN_VERSION = 1
#: Lead ids are PostgreSQL BIGINT primary keys.
MAX_LEAD_ID = 2**63 - 1
SECRET_BYTES = 32
MIN_SECRET_BYTES = 16
_MAC_BYTES = 16
_PAYLOAD = struct.Struct(">BQ")
# Domain separation: the same secret must never produce a valid token for another purpose.
_MAC_LABEL = b"aicmo-actors/unsubscribe\x00"
_TOKEN_LENGTH = len(base64.urlsafe_b64encode(bytes(_PAYLOAD.size + _MAC_BYTES)).rstrip(b"="))
_TOKEN_RE = re.compile(rf"[A-Za-z0-9_-]{{{_TOKEN_LENGTH}}}", re.ASCII)
_SUBJECT_TOKEN_RE = re.compile(
    rf"\bunsubscribe[\s:]+([A-Za-z0-9_-]{{{_TOKEN_LENGTH}}})(?![A-Za-z0-9_-])",
    re.ASCII | re.IGNORECASE,
)

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"
# A one-click POST body is a few dozen bytes; anything larger is not a mail client.
_MAX_POST_BODY = 64 * 1024


# --- tokens -------------------------------------------------------------------------


def generate_secret(random_bytes: Callable[[int], bytes]) -> bytes:
    """A fresh 32-byte signing secret from the caller's randomness (`os.urandom` in production)."""
    secret = random_bytes(SECRET_BYTES)
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise ValueError(f"random_bytes({SECRET_BYTES}) must return {SECRET_BYTES} bytes")
    return secret


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the unsubscribe secret must be at least {MIN_SECRET_BYTES} bytes")


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _MAC_LABEL + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def sign_token(secret: bytes, lead_id: int) -> str:
    """The unsubscribe token for `lead_id`: 34 URL-safe characters, deterministic."""
    _check_secret(secret)
    if isinstance(lead_id, bool) or not isinstance(lead_id, int):
        raise TypeError(f"lead_id must be an int, not {type(lead_id).__name__}")
    if not 0 <= lead_id <= MAX_LEAD_ID:
        raise ValueError(f"lead_id out of range: {lead_id}")
    payload = _PAYLOAD.pack(TOKEN_VERSION, lead_id)
    raw = payload + _mac(secret, payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def verify_token(secret: bytes, token: object) -> int | None:
    """The lead id a genuine token names, or None for anything else (never raises on input)."""
    _check_secret(secret)
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # Reject non-canonical spellings (stray low bits in the last character) so that one
    # lead has exactly one valid token string.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    version, lead_id = _PAYLOAD.unpack(payload)
    if version != TOKEN_VERSION or lead_id > MAX_LEAD_ID:
        return None
    return int(lead_id)


# --- per-message return paths (VERP) ---------------------------------------------------
# A bounce that quotes nothing of the original still reaches the address it was sent to:
# the envelope sender. With `sender+TOKEN@domain` as the envelope sender (where the mailbox
# takes plus addressing) the token names the very email that bounced. Base32, lower case:
# some servers change the case of local parts; 19 bytes (version, outbound id, an 80-bit
# MAC) make 31 characters, so a local part of up to 32 characters still fits RFC 5321's 64.
_RP_LABEL = b"aicmo-actors/return-path\x00"
_RP_PAYLOAD = struct.Struct(">BQ")
_RP_MAC_BYTES = 10
_RP_LENGTH = 31
_RP_TOKEN_RE = re.compile(rf"\+([a-z2-7]{{{_RP_LENGTH}}})@", re.ASCII)
#: The longest local part that still leaves room for "+TOKEN" within 64 characters.
RETURN_PATH_MAX_LOCAL = 64 - 1 - _RP_LENGTH


def sign_return_path(secret: bytes, outbound_id: int) -> str:
    """The return-path token of one outbound email: 31 characters of [a-z2-7]."""
    _check_secret(secret)
    if isinstance(outbound_id, bool) or not isinstance(outbound_id, int) or not 0 <= outbound_id <= MAX_LEAD_ID:
        raise ValueError(f"outbound id out of range: {outbound_id!r}")
    payload = _RP_PAYLOAD.pack(TOKEN_VERSION, outbound_id)
    mac = hmac.new(secret, _RP_LABEL + payload, hashlib.sha256).digest()[:_RP_MAC_BYTES]
    return base64.b32encode(payload + mac).decode("ascii").rstrip("=").lower()


def verify_return_path(secret: bytes, token: object) -> int | None:
    """The outbound id a genuine return-path token names, or None (never raises on input)."""
    _check_secret(secret)
    if not isinstance(token, str) or len(token) != _RP_LENGTH:
        return None
    try:
        raw = base64.b32decode(token.upper() + "=" * (-_RP_LENGTH % 8))
    except (binascii.Error, ValueError):
        return None
    if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != token.lower():
        return None  # stray low bits in the last character: one email, one token
    payload, mac = raw[: _RP_PAYLOAD.size], raw[_RP_PAYLOAD.size :]
    expected = hmac.new(secret, _RP_LABEL + payload, hashlib.sha256).digest()[:_RP_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    version, outbound_id = _RP_PAYLOAD.unpack(payload)
    return int(outbound_id) if version == TOKEN_VERSION and outbound_id <= MAX_LEAD_ID else None


def return_path_address(mailbox: str, token: str) -> str | None:
    """``local+TOKEN@domain`` for `mailbox`, or None when its local part is too long for it
    (or already carries a ``+``: then plus addressing is taken for something else)."""
    local, at, domain = mailbox.partition("@")
    if not at or not local or "+" in local or len(local) > RETURN_PATH_MAX_LOCAL:
        return None
    return f"{local}+{token}@{domain}"


def return_path_tokens(addresses: Iterable[str]) -> list[str]:
    """Candidate return-path tokens in the addresses a message was delivered to (unverified)."""
    found: list[str] = []
    for address in addresses:
        for match in _RP_TOKEN_RE.finditer(address.lower()):
            if match.group(1) not in found:
                found.append(match.group(1))
    return found


# --- links and headers ----------------------------------------------------------------


def _check_token_shape(token: str) -> None:
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise ValueError("not an unsubscribe token (use sign_token)")


def unsubscribe_url(base_url: str, token: str) -> str:
    """``{base_url}/u/{token}``; `base_url` is the public http(s) root, path prefix allowed.

    Gmail and Yahoo only honour one-click over HTTPS; plain http is accepted for
    development and tests.
    """
    _check_token_shape(token)
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"base_url must be an absolute http(s) URL, not {base_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not carry a query or fragment: {base_url!r}")
    return f"{base_url.rstrip('/')}/u/{token}"


def unsubscribe_mailto(address: str, token: str) -> str:
    """``mailto:{address}?subject=unsubscribe%20{token}`` for the List-Unsubscribe header.

    The inbox recognises such a message with `token_in_subject` and must still verify the
    token. Raises ValueError for an invalid address.
    """
    _check_token_shape(token)
    return f"{_mailto_target(address)}?subject={quote('unsubscribe ' + token)}"


@functools.lru_cache(maxsize=256)
def _mailto_target(address: str) -> str:
    """``mailto:{address}``, normalized and quoted: the same few sending mailboxes each time,
    so validated once each (email-validator's check was a tenth of building an email)."""
    normalized = validate_email(address, check_deliverability=False).normalized
    return f"mailto:{quote(normalized, safe='@!$()*+,;:')}"


def token_in_subject(subject: str) -> str | None:
    """The token in a subject like ``unsubscribe <token>`` (or ``Re: unsubscribe: …``), unverified."""
    match = _SUBJECT_TOKEN_RE.search(subject)
    return match.group(1) if match else None


def list_unsubscribe_headers(url: str, mailto: str | None = None) -> dict[str, str]:
    """``List-Unsubscribe`` (RFC 2369) and ``List-Unsubscribe-Post`` (RFC 8058) values.

    RFC 8058 also asks that the DKIM signature cover both header fields.
    """
    targets = [url] if mailto is None else [url, mailto]
    return {
        "List-Unsubscribe": ", ".join(f"<{target}>" for target in targets),
        "List-Unsubscribe-Post": ONE_CLICK_BODY,
    }


# --- Prometheus text exposition -------------------------------------------------------

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*", re.ASCII)
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*", re.ASCII)
_SIMPLE_TYPES = frozenset({"counter", "gauge", "untyped"})


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_value(value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a sample value must be int or float, not {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def render_prometheus(
    metrics: Mapping[str, tuple[str, str, list[tuple[dict[str, str], float]]]],
) -> str:
    """Render ``name -> (type, help, [(labels, value), ...])`` in text format 0.0.4.

    Types are counter, gauge or untyped (histograms and summaries need per-sample
    suffixes this shape cannot express). Labels are written sorted by name. Raises
    ValueError on an invalid metric or label name or a repeated label set.
    """
    lines: list[str] = []
    for name, (kind, help_text, samples) in metrics.items():
        if not _METRIC_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid metric name: {name!r}")
        if kind not in _SIMPLE_TYPES:
            raise ValueError(f"metric {name}: type must be counter, gauge or untyped, not {kind!r}")
        if help_text:
            lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} {kind}")
        seen: set[tuple[tuple[str, str], ...]] = set()
        for labels, value in samples:
            key = tuple(sorted(labels.items()))
            if key in seen:
                raise ValueError(f"metric {name}: repeated label set {dict(key)}")
            seen.add(key)
            for label in labels:
                if not _LABEL_NAME_RE.fullmatch(label) or label.startswith("__"):
                    raise ValueError(f"metric {name}: invalid label name {label!r}")
            rendered = ",".join(f'{k}="{_escape_label_value(str(v))}"' for k, v in key)
            selector = f"{{{rendered}}}" if rendered else ""
            lines.append(f"{name}{selector} {_format_value(value)}")
    return "".join(line + "\n" for line in lines)


# --- the HTTP app -----------------------------------------------------------------------

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em;\
line-height:1.5}}button{{font-size:1em;padding:.5em 1.5em}}</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""

_CONFIRM_PAGE = _PAGE.format(
    title="Unsubscribe",
    body=(
        "<p>Confirm to stop receiving our emails at this address.</p>\n"
        # No action attribute: the form posts back to this very URL, token included.
        '<form method="post">\n'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
        '<button type="submit">Confirm</button>\n'
        "</form>"
    ),
)
_DONE_PAGE = _PAGE.format(
    title="You are unsubscribed",
    body="<p>You will not receive any further emails from us at this address.</p>",
)
_INVALID_PAGE = _PAGE.format(
    title="Link not valid",
    body=(
        "<p>This unsubscribe link is not valid. If you copied it from an email, "
        "check that it is complete, or simply reply to the email asking to unsubscribe.</p>"
    ),
)
_RETRY_PAGE = _PAGE.format(
    title="Please try again",
    body="<p>We could not record your request just now. Please try again in a few minutes.</p>",
)

# The token sits in the URL: keep it out of caches, referrers and search indexes.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _page(html: str, status: int) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


async def _body_within_limit(request: Request) -> bool:
    """Drain the request body (so keep-alive stays usable); False if it exceeds the cap."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_POST_BODY:
            return False
    return True


def build_app(
    *,
    secret: bytes,
    on_unsubscribe: Callable[[int], Awaitable[bool]],
    health: Callable[[], Awaitable[dict[str, Any]]],
    metrics: Callable[[], Awaitable[str]],
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The public HTTP app: ``GET|POST /u/{token}``, ``GET /healthz``, ``GET /metrics``.

    `on_unsubscribe(lead_id)` must suppress the lead's address for every campaign before
    returning; it answers whether this call changed anything (False: already
    unsubscribed), which is only logged: the response is 200 either way. `health()`
    returns a JSON-able dict; ``{"ok": False}`` turns into a 503. `metrics()` returns
    Prometheus text (see `render_prometheus`). `routes` are served too (the control API).
    """
    _check_secret(secret)

    async def confirm_page(request: Request) -> Response:
        if verify_token(secret, request.path_params["token"]) is None:
            _log.info("unsubscribe_token_rejected", method="GET")
            return _page(_INVALID_PAGE, 404)
        return _page(_CONFIRM_PAGE, 200)

    async def unsubscribe(request: Request) -> Response:
        lead_id = verify_token(secret, request.path_params["token"])
        if lead_id is None:
            _log.info("unsubscribe_token_rejected", method="POST")
            return _page(_INVALID_PAGE, 404)
        # RFC 8058 senders post "List-Unsubscribe=One-Click" as multipart/form-data or
        # urlencoded, and our confirm form posts the same; the signed token is the only
        # credential, so the body is drained but not interpreted.
        if not await _body_within_limit(request):
            return PlainTextResponse("request body too large", status_code=413)
        try:
            changed = await on_unsubscribe(lead_id)
        except Exception:
            _log.exception("unsubscribe_failed", lead_id=lead_id)
            return _page(_RETRY_PAGE, 503)
        _log.info("unsubscribed", lead_id=lead_id, changed=bool(changed))
        return _page(_DONE_PAGE, 200)

    async def healthz(request: Request) -> Response:
        try:
            report = await health()
        except Exception:
            _log.exception("health_check_failed")
            report = {"ok": False, "error": "health check raised"}
        status = 503 if report.get("ok") is False else 200
        return JSONResponse(report, status_code=status, headers={"Cache-Control": "no-store"})

    async def prometheus(request: Request) -> Response:
        try:
            text = await metrics()
        except Exception:
            _log.exception("metrics_failed")
            return PlainTextResponse("metrics unavailable\n", status_code=500)
        return PlainTextResponse(text, media_type=METRICS_CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/u/{token}", confirm_page, methods=["GET"]),
            Route("/u/{token}", unsubscribe, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            *routes,
        ]
    )
