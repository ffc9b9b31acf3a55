"""File names that survive hostile titles, and the documents a client receives: the HTML
(escaped, cleaned), the PDF (pypdf reads the text, non-Latin too) and the Word file
(python-docx reads the text); the same piece gives the same bytes."""

from __future__ import annotations

import io
import struct
import zipfile
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader

from aicmo_actors.delivery import documents
from aicmo_actors.delivery.emails import Letterhead, delivery_email
from aicmo_actors.delivery.folder import ExportError, _inside, export
from aicmo_actors.delivery.names import base_name, client_folder, file_names, is_plain_name, slug
from contracts.clients import ClientInfo

CREATED = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
ITEM = "5a1f0c3e-7b2d-4c8e-9f10-aabbccddeeff"
CLIENT = ClientInfo(
    client_ref="11111111-2222-4333-8444-555555555555",
    company="Acme Logistics",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    language="de",
)
TEXT = (
    "Route optimisation cuts empty miles.\n\n"
    "Über 30 % weniger Leerfahrten: grüße aus Köln.\n\n"
    "Ελληνικά και русский текст тоже."
)
PIECE = documents.Piece(
    title="Five ways to cut empty miles",
    type="blog_post",
    channel="blog",
    version=2,
    text=TEXT,
    html="<h2>Five ways</h2><p>Route optimisation <script>alert(1)</script><b onclick=x()>cuts</b> empty miles.</p>",
    company="Acme Logistics",
    agency="Bright Agency",
    language="de",
    created=CREATED,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Five ways to cut empty miles", "five-ways-to-cut-empty-miles"),
        ("Über uns / 2026", "uber-uns-2026"),
        ("../../etc/passwd", "etc-passwd"),
        ("..", "untitled"),
        ("", "untitled"),
        ("   ", "untitled"),
        ("русский", "untitled"),
        ("a\x00b\\c:d*e?f|g<h>", "a-b-c-d-e-f-g-h"),
        (".hidden", "hidden"),
        ("CON", "con"),
        ("x" * 200, "x" * 60),
    ],
)
def test_slugs(text: str, expected: str) -> None:
    assert slug(text) == expected


@pytest.mark.parametrize(
    "title", ["../../../../tmp/owned", "/etc/passwd", "a/b\\c", "..", "\x00", "C:\\Windows", "💥" * 30, ".env"]
)
def test_hostile_titles_make_plain_file_names(title: str) -> None:
    for name in file_names("blog_post", title, ITEM, 3).values():
        assert is_plain_name(name), name
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert name.startswith("blog-post-") and "-5a1f0c3e-v3." in name
    assert is_plain_name(client_folder("../" + title, "11111111-2222-4333-8444-555555555555"))


def test_names() -> None:
    assert client_folder("Acme Logistics", "11111111-2222-4333-8444-555555555555") == "acme-logistics-11111111"
    assert base_name("blog_post", "Five ways", ITEM, 2) == "blog-post-five-ways-5a1f0c3e-v2"
    assert file_names("social_post", "Hi", ITEM, 1)["docx"] == "social-post-hi-5a1f0c3e-v1.docx"
    assert not is_plain_name("../x") and not is_plain_name("a/b") and not is_plain_name(".x")


def test_a_name_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError):
        _inside(tmp_path, "../x")
    with pytest.raises(ExportError):
        _inside(tmp_path, "a/b")


def test_html_is_a_page_with_the_piece_cleaned() -> None:
    page = documents.html(PIECE).decode()
    assert page.startswith("<!DOCTYPE html>") and '<html lang="de">' in page
    assert "<h1>Five ways to cut empty miles</h1>" in page
    assert "<h2>Five ways</h2>" in page and "<b>cuts</b>" in page
    assert "<script" not in page and "onclick" not in page
    plain = documents.html(
        documents.Piece(**{**PIECE.__dict__, "html": "", "title": "<img src=x onerror=alert(1)>"})
    ).decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in plain and "<img" not in plain
    assert "<p>Über 30 % weniger Leerfahrten: grüße aus Köln.</p>" in plain


def test_pdf_holds_the_text_in_any_script() -> None:
    data = documents.pdf(PIECE)
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    flat = " ".join(text.split())
    assert "Five ways to cut empty miles" in flat
    assert "Über 30 % weniger Leerfahrten" in flat
    if documents.font_files() is not None:
        assert "Ελληνικά" in flat and "русский" in flat
    assert documents.pdf(PIECE) == data  # the same piece, the same bytes


def test_docx_opens_and_holds_the_text() -> None:
    data = documents.docx(PIECE)
    opened = docx.Document(io.BytesIO(data))
    paragraphs = [p.text for p in opened.paragraphs]
    assert paragraphs[0] == "Five ways to cut empty miles"
    assert "Ελληνικά και русский текст тоже." in paragraphs
    assert "Über 30 % weniger Leerfahrten: grüße aus Köln." in paragraphs
    assert opened.core_properties.author == "Bright Agency"
    assert documents.docx(PIECE) == data
    dates = {info.date_time for info in zipfile.ZipFile(io.BytesIO(data)).infolist()}
    assert dates == {(2026, 12, 7, 9, 30, 0)}


def test_docx_drops_control_characters() -> None:
    piece = documents.Piece(**{**PIECE.__dict__, "text": "bell\x07 and\x0b tab\tend", "title": "t\x01"})
    opened = docx.Document(io.BytesIO(documents.docx(piece)))
    paragraphs = [p.text for p in opened.paragraphs]
    assert paragraphs[0] == "t" and "bell and tab end" in paragraphs


def test_docx_from_the_kept_template_holds_what_python_docx_saves() -> None:
    """The Word file made from the template parsed once (`documents.docx`) is python-docx's own
    save of the same piece (`_docx_saved`): the same entries, in the same order, with the same
    contents, piece after piece (nothing of one piece stays in the kept template for the next)."""
    long_text = "\n\n".join(f"Paragraph {n}: " + "words " * (n * 7) for n in range(40))
    pieces = [
        PIECE,
        documents.Piece(**{**PIECE.__dict__, "text": long_text, "title": "A much longer piece", "version": 5}),
        documents.Piece(**{**PIECE.__dict__, "text": "", "title": "t\x01 empty", "agency": ""}),
        PIECE,
    ]
    for piece in pieces:
        fast, saved = documents.docx(piece), documents._docx_saved(piece)
        a, b = zipfile.ZipFile(io.BytesIO(fast)), zipfile.ZipFile(io.BytesIO(saved))
        assert a.testzip() is None
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        assert all(a.read(name) == b.read(name) for name in a.namelist())
        assert {i.date_time for i in a.infolist()} == {(2026, 12, 7, 9, 30, 0)}
        assert [p.text for p in docx.Document(io.BytesIO(fast)).paragraphs][1:] == [
            p.text for p in docx.Document(io.BytesIO(saved)).paragraphs
        ][1:]
    assert documents.docx(PIECE) == documents.docx(PIECE)


def test_a_piece_that_changes_more_than_the_body_is_saved_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A piece that adds a relationship (a hyperlink, say; none does today) spoils the kept
    template: that piece is saved by python-docx alone and the template is parsed again."""
    from docx.opc.constants import RELATIONSHIP_TYPE

    fill = documents._fill

    def linking(document: object, piece: documents.Piece, heading: str | None = None) -> None:
        fill(document, piece, heading)
        document.part.relate_to("https://example.com/", RELATIONSHIP_TYPE.HYPERLINK, is_external=True)  # type: ignore[attr-defined]

    kept = documents._word()
    monkeypatch.setattr(documents, "_fill", linking)
    data = documents.docx(PIECE)
    assert documents._word() is not kept
    assert b"https://example.com/" in zipfile.ZipFile(io.BytesIO(data)).read("word/_rels/document.xml.rels")
    monkeypatch.setattr(documents, "_fill", fill)
    plain = zipfile.ZipFile(io.BytesIO(documents.docx(PIECE)))
    assert b"https://example.com/" not in plain.read("word/_rels/document.xml.rels")


def test_the_hand_written_zip_is_read_back_by_zipfile() -> None:
    entries = [documents._Entry.of(name, body) for name, body in (("a.xml", b"<a/>" * 500), ("d/b", b""), ("c", b"x"))]
    data = documents._zip(entries, datetime(2031, 7, 8, 9, 10, 12, tzinfo=UTC))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert [(i.filename, i.date_time) for i in archive.infolist()] == [
        (name, (2031, 7, 8, 9, 10, 12)) for name in ("a.xml", "d/b", "c")
    ]
    assert archive.read("a.xml") == b"<a/>" * 500 and archive.read("d/b") == b"" and archive.read("c") == b"x"


def test_the_email_carries_the_text_and_three_parseable_attachments() -> None:
    files = documents.all_files(PIECE)
    head = Letterhead("work@agency.example", "Bright Agency")
    message = delivery_email(head, CLIENT, PIECE, key=f"{ITEM}:v2:email", item_id=ITEM, files=files, now=CREATED)
    again = delivery_email(head, CLIENT, PIECE, key=f"{ITEM}:v2:email", item_id=ITEM, files=files, now=CREATED)
    assert message.as_bytes() == again.as_bytes()
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["To"] == "Ann Lee <ann@acme.example>"
    assert "Five ways to cut empty miles" in str(parsed["Subject"])
    body = parsed.get_body(("plain",))
    assert body is not None and "Über 30 % weniger Leerfahrten" in body.get_content()
    attached = {a.get_filename(): a.get_content() for a in parsed.iter_attachments()}
    base = "blog-post-five-ways-to-cut-empty-miles-5a1f0c3e-v2"
    assert set(attached) == {f"{base}.html", f"{base}.pdf", f"{base}.docx"}
    assert attached[f"{base}.pdf"] == files["pdf"] and attached[f"{base}.docx"] == files["docx"]
    assert docx.Document(io.BytesIO(attached[f"{base}.docx"])).paragraphs[0].text == PIECE.title


def test_export_twice_writes_the_same_files_once(tmp_path: Path) -> None:
    files = documents.all_files(PIECE)
    common = {
        "company": "Acme Logistics",
        "client_ref": "11111111-2222-4333-8444-555555555555",
        "key": f"{ITEM}:v2:folder",
        "project_id": "p",
        "item_id": ITEM,
        "version": 2,
        "title": "../../" + PIECE.title,
        "type_": "blog_post",
        "channel": "blog",
        "files": files,
    }
    receipt = export(tmp_path, **common, now=CREATED)  # type: ignore[arg-type]
    first = {p.name: p.read_bytes() for p in (tmp_path / "acme-logistics-11111111").iterdir()}
    export(tmp_path, **common, now=CREATED)  # type: ignore[arg-type]
    second = {p.name: p.read_bytes() for p in (tmp_path / "acme-logistics-11111111").iterdir()}
    assert first == second
    assert sorted(first) == [
        "blog-post-five-ways-to-cut-empty-miles-5a1f0c3e-v2.docx",
        "blog-post-five-ways-to-cut-empty-miles-5a1f0c3e-v2.html",
        "blog-post-five-ways-to-cut-empty-miles-5a1f0c3e-v2.md",
        "blog-post-five-ways-to-cut-empty-miles-5a1f0c3e-v2.pdf",
        "manifest.json",
    ]
    assert receipt.startswith("acme-logistics-11111111/blog-post-five-ways")
    assert list(tmp_path.iterdir()) == [tmp_path / "acme-logistics-11111111"]


@pytest.mark.parametrize("zip64", [False, True])
def test_zip_dates_are_written_over_in_place_and_the_archive_stays_whole(zip64: bool) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as made:
        for name, body in (("a.xml", b"<a/>" * 50), ("docs/b.xml", b"b"), ("c", b"")):
            with made.open(zipfile.ZipInfo(name, date_time=(2001, 2, 3, 4, 5, 6)), "w", force_zip64=zip64) as f:
                f.write(body)
        made.comment = b"kept"
    fixed = documents._fixed_zip_dates(out.getvalue(), datetime(2027, 3, 4, 5, 6, 8, tzinfo=UTC))
    archive = zipfile.ZipFile(io.BytesIO(fixed))
    assert archive.testzip() is None and archive.comment == b"kept"
    assert {i.date_time for i in archive.infolist()} == {(2027, 3, 4, 5, 6, 8)}
    assert archive.read("a.xml") == b"<a/>" * 50 and archive.read("c") == b""
    # The local headers (what a streaming reader sees) carry the date too.
    dos = struct.pack("<HH", (5 << 11) | (6 << 5) | (8 // 2), ((2027 - 1980) << 9) | (3 << 5) | 4)
    assert [fixed[i.header_offset + 10 : i.header_offset + 14] for i in archive.infolist()] == [dos] * 3
