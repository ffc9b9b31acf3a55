"""Every language and encoding (issue 21, item 4).

The corpus in `corpus/lang/` is written in the charsets the servers really use, declared or
not: Japanese in ISO-2022-JP, Shift_JIS and EUC-JP, Russian in KOI8-R and Windows-1251,
Chinese in GB2312 and Big5, Korean in EUC-KR, Portuguese in Latin-1, Italian and Dutch in
UTF-8, with the wordings native servers and providers use. Each says in English no more than
a generic "could not be delivered": the reason is read from the text in its own language,
once it is decoded. The files sit in a folder of their own so that `test_corpus.py`'s table
of the top-level corpus stays whole.
"""

from __future__ import annotations

import pytest

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.classify.languages import PHRASES, UNDELIVERED, UNDELIVERED_TEXT
from aicmo_actors.cam.classify.parse import decode_bytes, header, parse_message, part_text
from aicmo_actors.cam.classify.reasons import reason_from
from contracts.cam import SENDING_SIDE_REASONS, BounceReason, ReplyCategory
from tests.unit.classify.test_corpus import CORPUS

LANG_CORPUS = CORPUS / "lang"
LANGUAGES = ("ja", "ru", "zh", "ko", "pt", "it", "nl", "de", "fr", "es")

#: file -> (category, reason, failed recipients, enhanced status, our Message-ID found in the report, subject)
EXPECTED: dict[str, tuple[str, str, tuple[str, ...], str | None, str, str]] = {
    # ISO-2022-JP declared, subject an ISO-2022-JP encoded word.
    "ja_iso2022jp_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("tanaka@example.co.jp",),
        None,
        "<lang.301.1@outreach.example.com>",
        "メール配信エラーのお知らせ",
    ),
    # Shift_JIS body and raw 8-bit subject, no charset anywhere; the words beat nothing here: 5.2.2 agrees.
    "ja_sjis_undeclared_mailbox_full.eml": (
        "bounce_soft",
        "mailbox_full",
        ("suzuki@example.ne.jp",),
        "5.2.2",
        "<lang.302.1@outreach.example.com>",
        "メール配送エラー (配送できませんでした)",
    ),
    # EUC-JP body with no charset declared.
    "ja_eucjp_undeclared_spam.eml": (
        "bounce_soft",
        "spam_detected",
        ("sato@example.jp",),
        None,
        "<lang.311.1@outreach.example.com>",
        "配信不能のお知らせ",
    ),
    # KOI8-R declared.
    "ru_koi8r_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("ivanov@example.ru",),
        None,
        "<lang.303.1@outreach.example.com>",
        "Недоставленное сообщение",
    ),
    # Windows-1251 body and raw 8-bit subject, no charset declared.
    "ru_cp1251_undeclared_host_unknown.eml": (
        "bounce_hard",
        "host_unknown",
        ("petrov@nosuch-domain.example",),
        None,
        "<lang.304.1@outreach.example.com>",
        "Сообщение не доставлено",
    ),
    # GB2312 declared (simplified Chinese).
    "zh_gb2312_spam_rejected.eml": (
        "bounce_soft",
        "spam_detected",
        ("wang@example.cn",),
        None,
        "<lang.305.1@outreach.example.com>",
        "系统退信",
    ),
    # Big5 declared (traditional Chinese), from a no-reply sender that marks itself Auto-Submitted.
    "zh_big5_noreply_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("chen@example.com.tw",),
        None,
        "<lang.310.1@outreach.example.com>",
        "郵件無法投遞",
    ),
    # EUC-KR declared.
    "ko_euckr_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("kim@example.co.kr",),
        None,
        "<lang.306.1@outreach.example.com>",
        "메일 발송 실패 안내",
    ),
    "pt_latin1_mailbox_full.eml": (
        "bounce_soft",
        "mailbox_full",
        ("joao.silva@example.com.br",),
        None,
        "<lang.307.1@outreach.example.com>",
        "Mensagem não entregue",
    ),
    "it_utf8_host_unknown.eml": (
        "bounce_hard",
        "host_unknown",
        ("mario.rossi@dominio-inesistente.example",),
        None,
        "<lang.308.1@outreach.example.com>",
        "Messaggio non recapitabile",
    ),
    "nl_utf8_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("jan.devries@example.nl",),
        None,
        "<lang.309.1@outreach.example.com>",
        "Onbestelbaar bericht",
    ),
    # -- mislabelled and undeclared (issue 21 item 4, the decoding gaps) ------------------------------------
    # Shift_JIS under "charset=ISO-8859-1": the Latin-1 reading is mojibake, Shift_JIS reads cleanly.
    "ja_sjis_labelled_latin1_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("watanabe@example.co.jp",),
        None,
        "<lang.320.1@outreach.example.com>",
        "Returned mail",
    ),
    # Windows-1251 under "charset=windows-1252".
    "ru_cp1251_labelled_cp1252_mailbox_full.eml": (
        "bounce_soft",
        "mailbox_full",
        ("kuznetsova@example.ru",),
        None,
        "<lang.321.1@outreach.example.com>",
        "Undelivered Mail Returned to Sender",
    ),
    # An HTML part with no charset in its header, EUC-JP named only by its <meta>; kanji alone, which
    # read undeclared as GB2312 would pass for Chinese.
    "ja_eucjp_html_meta_charset.eml": (
        "bounce_hard",
        "user_unknown",
        ("kobayashi@example.ne.jp",),
        None,
        "<lang.322.1@outreach.example.com>",
        "Mail delivery failed",
    ),
    # Big5 with no charset anywhere.
    "zh_big5_undeclared_mailbox_full.eml": (
        "bounce_soft",
        "mailbox_full",
        ("lin@example.com.tw",),
        None,
        "<lang.323.1@outreach.example.com>",
        "Undelivered Mail Returned to Sender",
    ),
}


def test_every_file_of_the_lang_corpus_has_an_expectation() -> None:
    assert sorted(p.name for p in LANG_CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_lang_corpus(name: str) -> None:
    category, reason, failed, status, ours, subject = EXPECTED[name]
    c = classify_message((LANG_CORPUS / name).read_bytes())
    assert c.category == ReplyCategory(category), c.reasons
    assert c.reason == reason, c.reasons
    assert c.failed_recipients == failed, c.reasons
    assert c.status == status, c.reasons
    assert c.in_reply_to == ours, c.reasons
    assert c.subject == subject
    assert c.sending_side == (BounceReason(c.reason) in SENDING_SIDE_REASONS)
    assert c.confidence >= 0.8


# -- decoding --------------------------------------------------------------------------------------------
JAPANESE = "宛先のユーザーは存在しません。メールボックスが一杯です。"
RUSSIAN = "Почтовый ящик получателя не существует, сообщение не доставлено."
CHINESE = "收件人不存在。邮件无法投递。"
KOREAN = "존재하지 않는 사용자입니다. 메일이 전달되지 않았습니다."


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        (JAPANESE, "iso-2022-jp"),
        (JAPANESE, "shift_jis"),
        (JAPANESE, "cp932"),
        (JAPANESE, "euc_jp"),
        (JAPANESE, "utf-8"),
        (RUSSIAN, "cp1251"),
        (RUSSIAN, "koi8_r"),
        (CHINESE, "gb2312"),
        (KOREAN, "euc_kr"),
        ("您的郵件無法投遞，收件者的信箱已滿。", "big5"),  # noqa: RUF001 (Chinese punctuation)
        ("宛先不明", "shift_jis"),  # kanji alone, no kana
        ("Пользователь не найден", "cp1251"),  # words of even length only: GB2312 would decode them too
        ("Пользователь не найден", "koi8_r"),
        ("Informação: a caixa está cheia, não é possível.", "latin-1"),
        ("Größe überschritten, Empfänger unbekannt", "windows-1252"),
        ("información útil y réservé à être", "latin-1"),
    ],
)
def test_undeclared_text_is_read_in_the_charset_that_fits(text: str, charset: str) -> None:
    assert decode_bytes(text.encode(charset)) == text
    assert decode_bytes(text.encode(charset), "us-ascii") == text  # a wrong label is no better than none


@pytest.mark.parametrize(
    ("text", "declared"),
    [
        ("邮件退回 镕", "gb2312"),  # a GBK character under the name gb2312, as Outlook writes it
        ("ﾕｰｻﾞｰ不明", "iso-2022-jp"),  # half-width katakana (ESC ( I), outside plain ISO-2022-JP
        ("①ユーザー不明", "shift_jis"),
        ("똠방각하", "euc-kr"),  # cp949's extra Hangul
        ("Пользователь не найден", "windows-1251"),
    ],
)
def test_a_declared_charset_is_read_as_the_superset_written_under_its_name(text: str, declared: str) -> None:
    encoded = text.encode(
        {"gb2312": "gb18030", "iso-2022-jp": "iso2022_jp_ext", "shift_jis": "cp932", "euc-kr": "cp949"}.get(
            declared, declared
        )
    )
    assert decode_bytes(encoded, declared) == text


@pytest.mark.parametrize(
    ("raw_subject", "expected"),
    [
        ("配信エラー".encode("shift_jis"), "配信エラー"),
        ("Сообщение не доставлено".encode("cp1251"), "Сообщение не доставлено"),
        ("Недоставленное сообщение".encode("koi8_r"), "Недоставленное сообщение"),
        ("配信エラー".encode("iso-2022-jp"), "配信エラー"),  # raw escapes, no encoded word
        (b"=?gb2312?B?" + __import__("base64").b64encode("退信 镕".encode("gb18030")) + b"?=", "退信 镕"),
        (b"=?utf-8?q?a?= =?utf-8?q?b?= plain =?iso-8859-1?q?caf=E9?=", "ab plain café"),
    ],
)
def test_subjects_in_any_charset(raw_subject: bytes, expected: str) -> None:
    msg = parse_message(b"From: a@b.example\nSubject: " + raw_subject + b"\n\nhi")
    assert header(msg, "Subject") == expected


# -- the phrases -----------------------------------------------------------------------------------------
#: (language, reason) -> how servers and providers of that language say it.
SAID: dict[tuple[str, str], list[str]] = {
    ("ja", "user_unknown"): ["宛先のユーザーは存在しません", "このメールアドレスは存在しません", "宛先不明"],
    ("ja", "mailbox_full"): ["メールボックスが一杯です", "メールボックスの容量を超えています"],
    ("ja", "host_unknown"): ["宛先ドメインが見つかりません", "ドメインが存在しません"],
    ("ja", "spam_detected"): ["迷惑メールと判定されました", "スパムとして拒否されました"],
    ("ru", "user_unknown"): ["Пользователь не найден", "Почтовый ящик не существует", "Адресат неизвестен: нет такого"],
    ("ru", "mailbox_full"): ["Почтовый ящик переполнен", "Превышена квота почтового ящика"],
    ("ru", "host_unknown"): ["Домен example.ru не найден", "Несуществующий домен"],
    ("ru", "spam_detected"): ["Сообщение отклонено как спам", "нежелательная рассылка"],
    ("zh", "user_unknown"): ["收件人不存在", "用户不存在", "該用戶不存在", "收件者不存在"],
    ("zh", "mailbox_full"): ["收件人邮箱已满", "信箱已滿", "超出邮箱容量"],
    ("zh", "host_unknown"): ["域名不存在", "找不到主機"],
    ("zh", "spam_detected"): ["邮件被判定为垃圾邮件", "垃圾郵件"],
    ("ko", "user_unknown"): [
        "존재하지 않는 사용자입니다",
        "수신자를 찾을 수 없습니다",
        "받는 사람 주소가 존재하지 않습니다",
    ],
    ("ko", "mailbox_full"): ["메일함 용량이 초과되었습니다", "받는 사람의 메일함이 가득 찼습니다"],
    ("ko", "host_unknown"): ["도메인을 찾을 수 없습니다", "존재하지 않는 도메인입니다"],
    ("ko", "spam_detected"): ["스팸으로 분류되어 차단되었습니다"],
    ("pt", "user_unknown"): ["Usuário desconhecido", "Destinatário não encontrado", "Endereço inexistente"],
    ("pt", "mailbox_full"): ["A caixa postal do destinatário está cheia", "Cota excedida"],
    ("pt", "host_unknown"): ["Domínio não encontrado", "Domínio inexistente"],
    ("pt", "spam_detected"): ["Mensagem rejeitada como spam", "mensagem não solicitada"],
    ("it", "user_unknown"): ["Utente sconosciuto", "Destinatario inesistente", "L'indirizzo non esiste"],
    ("it", "mailbox_full"): ["La casella di posta è piena", "Quota superata"],
    ("it", "host_unknown"): ["Dominio inesistente", "Dominio example.it non trovato"],
    ("it", "spam_detected"): ["Messaggio rifiutato come spam", "posta indesiderata"],
    ("nl", "user_unknown"): ["Gebruiker onbekend", "Dit e-mailadres bestaat niet", "Onbekende ontvanger"],
    ("nl", "mailbox_full"): ["De mailbox is vol", "Quota overschreden"],
    ("nl", "host_unknown"): ["Domein bestaat niet", "Onbekend domein"],
    ("nl", "spam_detected"): ["Bericht geweigerd als spam", "ongewenste e-mail"],
    ("de", "user_unknown"): ["Empfänger unbekannt", "Die E-Mail-Adresse existiert nicht", "Unbekannter Benutzer"],
    ("de", "mailbox_full"): ["Postfach voll", "Das Speicherkontingent ist überschritten"],
    ("de", "host_unknown"): ["Domain existiert nicht", "Host nicht gefunden"],
    ("de", "spam_detected"): ["Als Spam abgelehnt", "unerwünschte Werbung"],
    ("fr", "user_unknown"): ["Destinataire inconnu", "Adresse introuvable", "L'adresse n'existe pas"],
    ("fr", "mailbox_full"): ["Boîte aux lettres pleine", "Quota dépassé"],
    ("fr", "host_unknown"): ["Domaine inconnu", "Le domaine example.fr n'existe pas"],
    ("fr", "spam_detected"): ["Message refusé comme spam", "courrier indésirable"],
    ("es", "user_unknown"): ["Destinatario desconocido", "Usuario inexistente", "La dirección no existe"],
    ("es", "mailbox_full"): ["Buzón lleno", "Cuota excedida"],
    ("es", "host_unknown"): ["Dominio no existe", "Dominio desconocido"],
    ("es", "spam_detected"): ["Mensaje rechazado como spam", "correo no deseado"],
}


@pytest.mark.parametrize(("language", "reason"), sorted(SAID))
def test_each_reason_is_read_in_each_language(language: str, reason: str) -> None:
    for text in SAID[(language, reason)]:
        found, why = reason_from(None, text, 550)
        assert found is BounceReason(reason), (text, why)


def test_every_language_has_its_phrases() -> None:
    for reason in (BounceReason.USER_UNKNOWN, BounceReason.MAILBOX_FULL, BounceReason.HOST_UNKNOWN):
        assert set(PHRASES[reason]) == set(LANGUAGES)
    assert set(UNDELIVERED) == set(LANGUAGES)
    assert {language for language, _ in SAID} == set(LANGUAGES)


@pytest.mark.parametrize(
    "text",
    [
        "配信できませんでした",
        "Сообщение не может быть доставлено",
        "邮件无法投递",
        "메일이 전달되지 않았습니다",
        "A mensagem não pôde ser entregue",
        "Il messaggio non è stato recapitato",
        "Uw bericht kon niet worden afgeleverd",
        "Die Nachricht konnte nicht zugestellt werden",
        "Le message n'a pas pu être remis",
        "El mensaje no pudo ser entregado",
    ],
)
def test_could_not_be_delivered_in_each_language(text: str) -> None:
    assert UNDELIVERED_TEXT.search(text)


# -- linear time -------------------------------------------------------------------------------------------
MB = 1_000_000


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "unit",
    [
        "домен ",
        "пользователь ",
        "dominio ",
        "caixa postal ",
        "メールボックス",
        "ユーザー",
        "용량이 ",
        "超过",
    ],
)
def test_the_language_phrases_read_hostile_text_in_linear_time(unit: str) -> None:
    text = unit * (MB // len(unit.encode()))
    assert reason_from(None, text, 550)[0] in set(BounceReason)
    raw = (
        b"From: MAILER-DAEMON@mx.example\nTo: alex@outreach.example.com\nSubject: Undelivered Mail\n"
        b"Content-Type: text/plain\n\nThis message could not be delivered.\n\n<a@b.example>: 550 "
    )
    for charset in ("utf-8", "shift_jis", "cp1251", "euc_kr"):
        try:
            body = text.encode(charset)
        except UnicodeEncodeError:
            continue
        c = classify_message(raw + body)
        assert c.category in {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("unit", [b"\x82\xa0", b"\xa4\xa2", b"\xd0", b"\xe0 ", b"\x1b$B", b"\xb0\xa1", b"\xff"])
def test_undeclared_8bit_text_is_decoded_in_linear_time(unit: bytes) -> None:
    data = unit * (MB // len(unit))
    assert isinstance(decode_bytes(data), str)
    msg = parse_message(b"From: a@b.example\nSubject: " + data[:5000] + b"\n\n" + data)
    assert isinstance(header(msg, "Subject"), str)


# -- mislabelled text ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "actual", "label"),
    [
        (JAPANESE, "cp932", "iso-8859-1"),
        (RUSSIAN, "cp1251", "iso-8859-1"),
        (RUSSIAN, "koi8_r", "windows-1252"),
        (JAPANESE, "utf-8", "latin-1"),
        (KOREAN, "euc_kr", "windows-1252"),
    ],
)
def test_text_labelled_latin1_that_reads_as_mojibake_is_read_in_the_charset_that_fits(
    text: str, actual: str, label: str
) -> None:
    assert decode_bytes(text.encode(actual), label) == text


@pytest.mark.parametrize(
    "text",
    [
        "Informação, atenção: a recepção não é possível, transmissão interrompida.",
        "Größe überschritten, Empfänger unbekannt, Grüße aus Köln.",
        "Très intéressant, envoyez-moi plus d'informations s'il vous plaît.",
        "Curly “quotes” – and dashes — stay as they are… ½ € ©",  # noqa: RUF001 (Windows-1252 punctuation)
    ],
)
def test_real_latin1_text_keeps_its_label(text: str) -> None:
    for label in ("iso-8859-1", "windows-1252"):
        try:
            data = text.encode(label)
        except UnicodeEncodeError:
            continue
        assert decode_bytes(data, label) == text


def test_an_html_meta_charset_is_read_only_when_the_header_names_none() -> None:
    html = '<html><head><meta charset="koi8-r"></head><body>Пользователь не найден</body></html>'
    part = b"From: MAILER-DAEMON@mx.example\nSubject: x\nContent-Type: text/html%s\n\n" % b"" + html.encode("koi8_r")
    assert "Пользователь не найден" in part_text(parse_message(part))
    declared = b"From: a@b.example\nSubject: x\nContent-Type: text/html; charset=utf-8\n\n" + html.encode()
    assert "Пользователь не найден" in part_text(parse_message(declared))


@pytest.mark.timeout(20)
def test_a_long_mislabelled_body_is_decoded_in_linear_time() -> None:
    data = "Пользователь не найден. ".encode("cp1251") * (MB // 40)
    assert decode_bytes(data, "iso-8859-1").startswith("Пользователь")
    noise = bytes(range(0xA0, 0x100)) * (MB // 96)
    assert isinstance(decode_bytes(noise, "iso-8859-1"), str)
