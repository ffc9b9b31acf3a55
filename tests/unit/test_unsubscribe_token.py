"""Unsubscribe tokens, links and the Prometheus renderer: pure functions, no server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import struct

import pytest

from aicmo_actors.cam.unsubscribe import (
    MAX_LEAD_ID,
    generate_secret,
    list_unsubscribe_headers,
    render_prometheus,
    sign_token,
    token_in_subject,
    unsubscribe_mailto,
    unsubscribe_url,
    verify_token,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


@pytest.mark.parametrize("lead_id", [0, 1, 42, 2**32 + 7, MAX_LEAD_ID])
def test_round_trip(lead_id: int) -> None:
    token = sign_token(SECRET, lead_id)
    assert verify_token(SECRET, token) == lead_id


def test_round_trip_many_seeded_ids() -> None:
    rng = random.Random(20240611)
    for _ in range(500):
        lead_id = rng.randrange(0, MAX_LEAD_ID + 1)
        assert verify_token(SECRET, sign_token(SECRET, lead_id)) == lead_id


def test_token_is_url_safe_short_and_carries_a_128_bit_mac() -> None:
    token = sign_token(SECRET, 123456789)
    assert len(token) == 34
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert "=" not in token
    raw = _raw(token)
    assert len(raw) - struct.calcsize(">BQ") == 16  # 128-bit MAC
    assert sign_token(SECRET, 123456789) == token  # deterministic
    assert sign_token(SECRET, 123456790) != token


def test_other_secret_rejected() -> None:
    token = sign_token(OTHER_SECRET, 42)
    assert verify_token(OTHER_SECRET, token) == 42
    assert verify_token(SECRET, token) is None


def test_every_single_character_change_rejected() -> None:
    token = sign_token(SECRET, 42)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(len(token)):
        for replacement in alphabet:
            if replacement == token[position]:
                continue
            tampered = token[:position] + replacement + token[position + 1 :]
            assert verify_token(SECRET, tampered) is None, (position, replacement)


def test_changed_lead_id_with_original_mac_rejected() -> None:
    raw = _raw(sign_token(SECRET, 42))
    forged = raw[:1] + struct.pack(">Q", 43) + raw[9:]
    assert verify_token(SECRET, _b64(forged)) is None


def test_mac_over_another_version_rejected() -> None:
    # A correctly MACed payload with an unknown version must not be accepted.
    payload = struct.pack(">BQ", 2, 42)
    label = b"aicmo-actors/unsubscribe\x00"
    mac = hmac.new(SECRET, label + payload, hashlib.sha256).digest()[:16]
    assert verify_token(SECRET, _b64(payload + mac)) is None
    # The same construction with version 1 is exactly what sign_token produces.
    payload_v1 = struct.pack(">BQ", 1, 42)
    mac_v1 = hmac.new(SECRET, label + payload_v1, hashlib.sha256).digest()[:16]
    assert _b64(payload_v1 + mac_v1) == sign_token(SECRET, 42)


def test_non_canonical_base64_rejected() -> None:
    token = sign_token(SECRET, 42)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last character carries 2 payload bits and 4 unused ones: setting a spare bit
    # decodes to the very same bytes, yet must not verify.
    sibling = token[:-1] + alphabet[alphabet.index(token[-1]) | 1]
    assert sibling != token
    assert _raw(sibling) == _raw(token)
    assert verify_token(SECRET, sibling) is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "x",
        "not a token",
        "u" * 34,
        "=" * 34,
        "AQAAAAAAAAAq",
        "../../etc/passwd",
        "é" * 34,
        "A" * 10_000,
        "\x00" * 34,
    ],
)
def test_garbage_rejected_without_raising(bad: str) -> None:
    assert verify_token(SECRET, bad) is None


def test_truncated_extended_and_padded_rejected() -> None:
    token = sign_token(SECRET, 42)
    assert verify_token(SECRET, token[:-1]) is None
    assert verify_token(SECRET, token[:20]) is None
    assert verify_token(SECRET, token + "A") is None
    assert verify_token(SECRET, token + "==") is None
    assert verify_token(SECRET, " " + token) is None
    assert verify_token(SECRET, token + "\n") is None


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["list"]])
def test_non_string_rejected_without_raising(bad: object) -> None:
    assert verify_token(SECRET, bad) is None


def test_bad_secret_and_lead_id_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        sign_token(b"short", 1)
    with pytest.raises(ValueError):
        verify_token(b"short", sign_token(SECRET, 1))
    with pytest.raises(ValueError):
        sign_token(SECRET, -1)
    with pytest.raises(ValueError):
        sign_token(SECRET, MAX_LEAD_ID + 1)
    with pytest.raises(TypeError):
        sign_token(SECRET, True)


def test_generate_secret_uses_the_given_randomness() -> None:
    rng = random.Random(7)
    secret = generate_secret(rng.randbytes)
    assert len(secret) == 32
    assert secret == random.Random(7).randbytes(32)
    assert verify_token(secret, sign_token(secret, 5)) == 5
    with pytest.raises(ValueError):
        generate_secret(lambda n: b"\x00" * (n - 1))


def test_unsubscribe_url() -> None:
    token = sign_token(SECRET, 42)
    assert unsubscribe_url("https://mail.example.com", token) == (f"https://mail.example.com/u/{token}")
    assert unsubscribe_url("https://example.com/agency/", token) == (f"https://example.com/agency/u/{token}")
    for bad_base in ["ftp://example.com", "example.com", "https://example.com/?a=1", "/u"]:
        with pytest.raises(ValueError):
            unsubscribe_url(bad_base, token)
    with pytest.raises(ValueError):
        unsubscribe_url("https://example.com", "not-a-token")


def test_unsubscribe_mailto_and_subject_round_trip() -> None:
    token = sign_token(SECRET, 42)
    mailto = unsubscribe_mailto("unsubscribe@Example.COM", token)
    assert mailto == f"mailto:unsubscribe@example.com?subject=unsubscribe%20{token}"
    with pytest.raises(ValueError):
        unsubscribe_mailto("not an address", token)
    assert token_in_subject(f"unsubscribe {token}") == token
    assert token_in_subject(f"Re: UNSUBSCRIBE: {token}") == token
    assert token_in_subject(f"unsubscribe {token}x") is None
    assert token_in_subject("please unsubscribe me") is None


def test_list_unsubscribe_headers() -> None:
    headers = list_unsubscribe_headers("https://e.com/u/T", "mailto:u@e.com?subject=unsubscribe%20T")
    assert headers == {
        "List-Unsubscribe": "<https://e.com/u/T>, <mailto:u@e.com?subject=unsubscribe%20T>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert list_unsubscribe_headers("https://e.com/u/T")["List-Unsubscribe"] == ("<https://e.com/u/T>")


def test_render_prometheus_exposition_format() -> None:
    text = render_prometheus(
        {
            "aicmo_emails_sent_total": (
                "counter",
                'Emails sent.\nBackslash \\ and "quotes" stay.',
                [
                    ({"mailbox": "b@x", "campaign": "spring"}, 3),
                    ({"campaign": 'say "hi"\\now\nline'}, 1.5),
                ],
            ),
            "aicmo_mailbox_depth": ("gauge", "", [({}, float("inf")), ({"a": "1"}, float("nan"))]),
            "aicmo_unknown": ("untyped", "Plain.", [({}, -float("inf"))]),
        }
    )
    assert text == (
        '# HELP aicmo_emails_sent_total Emails sent.\\nBackslash \\\\ and "quotes" stay.\n'
        "# TYPE aicmo_emails_sent_total counter\n"
        'aicmo_emails_sent_total{campaign="spring",mailbox="b@x"} 3\n'
        'aicmo_emails_sent_total{campaign="say \\"hi\\"\\\\now\\nline"} 1.5\n'
        "# TYPE aicmo_mailbox_depth gauge\n"
        "aicmo_mailbox_depth +Inf\n"
        'aicmo_mailbox_depth{a="1"} NaN\n'
        "# HELP aicmo_unknown Plain.\n"
        "# TYPE aicmo_unknown untyped\n"
        "aicmo_unknown -Inf\n"
    )
    assert render_prometheus({}) == ""


@pytest.mark.parametrize(
    "metrics",
    [
        {"1bad": ("gauge", "", [])},
        {"bad-name": ("gauge", "", [])},
        {"ok": ("histogram", "", [])},
        {"ok": ("gauge", "", [({"bad-label": "x"}, 1)])},
        {"ok": ("gauge", "", [({"__reserved": "x"}, 1)])},
        {"ok": ("gauge", "", [({"a": "1"}, 1), ({"a": "1"}, 2)])},
    ],
)
def test_render_prometheus_rejects_invalid_input(metrics: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        render_prometheus(metrics)
