"""Reading leads from CSV: lenient about the file, strict about each row."""

from __future__ import annotations

from pathlib import Path

import pytest
from email_validator import EmailNotValidError

from aicmo_actors.cam.lead_import import (
    LeadFileError,
    LeadImportResult,
    Rejected,
    normalise_address,
    normalise_header,
    parse_leads_csv,
    parse_leads_text,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def reasons(result: LeadImportResult) -> list[tuple[int, str]]:
    return [(r.line, r.reason) for r in result.rejected]


def one_line_error(call: object, *args: object) -> str:
    with pytest.raises(LeadFileError) as info:
        call(*args)  # type: ignore[operator]
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert info.value.__cause__ is None
    return message


# -- the example files -----------------------------------------------------------------------------


def test_the_example_leads_file() -> None:
    result = parse_leads_csv(EXAMPLES / "leads.csv")
    assert (len(result.leads), len(result.rejected), result.duplicates, result.total_rows) == (200, 0, 0, 200)
    first = result.leads[0]
    assert first.line == 2
    assert first.email == "liam.schmidt@ironenergy.example.org"
    assert (first.first_name, first.last_name, first.company, first.timezone) == (
        "Liam",
        "Schmidt",
        "Iron Energy",
        "Europe/Paris",
    )
    assert first.variables == {"industry": "energy", "city": "Paris"}
    assert result.leads[-1].line == 201
    no_tz = next(lead for lead in result.leads if lead.email == "fatima.smith@swiftfoods.example.net")
    assert no_tz.timezone is None and no_tz.variables == {"industry": "food", "city": ""}


def test_the_bad_example_counts_each_outcome_with_its_line() -> None:
    result = parse_leads_csv(EXAMPLES / "bad_leads.csv")
    assert result.total_rows == 7
    assert [(lead.line, lead.email) for lead in result.leads] == [(2, "jane@example.com"), (8, "ok.person@example.net")]
    assert result.duplicates == 1  # JANE@EXAMPLE.COM on line 6
    assert [line for line, _ in reasons(result)] == [3, 4, 5, 7]
    by_line = dict(reasons(result))
    assert by_line[3].startswith("invalid address 'not-an-address': ")
    assert by_line[4] == "no email address"
    assert by_line[5] == "unknown timezone 'Mars/Olympus_Mons' (use an IANA name like Europe/Berlin)"
    assert by_line[7].startswith("invalid address 'two@@example.net': ")
    # The first of the duplicates is the one kept.
    jane = result.leads[0]
    assert (jane.first_name, jane.last_name, jane.timezone) == ("Jane", "Doe", "Europe/Berlin")


# -- rows --------------------------------------------------------------------------------------------


def test_duplicates_are_found_whatever_the_case() -> None:
    text = "email\njane@example.com\nJANE@EXAMPLE.COM\n  Jane@Example.Com  \njoe@example.com\n"
    result = parse_leads_text(text)
    assert [lead.email for lead in result.leads] == ["jane@example.com", "joe@example.com"]
    assert result.duplicates == 2 and result.total_rows == 4


def test_line_numbers_follow_quoted_multi_line_cells_and_blank_lines() -> None:
    text = (
        "email,company,notes\n"  # 1
        'a@example.com,A,"first line\n'  # 2 (the row starts here)
        "second line\n"  # 3
        'third line"\n'  # 4
        "not-an-address,B,x\n"  # 5
        "\n"  # 6 (blank: skipped)
        ",C,no address\n"  # 7
        "c@example.com,C,y\n"  # 8
    )
    result = parse_leads_text(text)
    assert [(lead.line, lead.email) for lead in result.leads] == [(2, "a@example.com"), (8, "c@example.com")]
    assert result.leads[0].variables == {"notes": "first line\nsecond line\nthird line"}
    assert [line for line, _ in reasons(result)] == [5, 7]
    assert result.total_rows == 4


def test_crlf_line_ends_and_a_multi_line_cell() -> None:
    result = parse_leads_text('email,notes\r\na@example.com,"x\r\ny"\r\nbad,z\r\n')
    assert [lead.line for lead in result.leads] == [2]
    assert reasons(result)[0][0] == 4


@pytest.mark.parametrize(
    "header",
    [
        "E-mail,First Name,Last Name,Company Name,Time Zone",
        "EMAIL , first_name,  SURNAME ,Organisation,TZ",
        "Email Address,FirstName,LastName,Organization,Timezone",
        "\ufeffe_mail,Given Name,Family Name,COMPANY,time-zone",
    ],
)
def test_header_aliases_and_odd_casing(header: str) -> None:
    result = parse_leads_text(f"{header}\njane@example.com,Jane,Doe,Acme,Asia/Tokyo\n")
    lead = result.leads[0]
    assert (lead.email, lead.first_name, lead.last_name, lead.company, lead.timezone) == (
        "jane@example.com",
        "Jane",
        "Doe",
        "Acme",
        "Asia/Tokyo",
    )
    assert lead.variables == {}


def test_normalise_header() -> None:
    assert normalise_header(" E-Mail ") == "email"
    assert normalise_header("Job Title") == "job_title"
    assert normalise_header("---") == ""


@pytest.mark.parametrize(
    ("text", "company"),
    [
        ("E-mail;First Name;Company\njane@example.com;Jane;Acme, Inc\n", "Acme, Inc"),
        ("Email\tFirst Name\tCompany\njane@example.com\tJane\tAcme; Inc\n", "Acme; Inc"),
        ('"email";"first_name";"company"\n"jane@example.com";"Jane";"Acme; Inc"\n', "Acme; Inc"),
        ('email,first_name,company\njane@example.com, Jane, "Acme, Inc"\n', "Acme, Inc"),
    ],
    ids=["semicolon", "tab", "quoted-semicolon", "space-after-comma"],
)
def test_delimiters(text: str, company: str) -> None:
    result = parse_leads_text(text)
    assert [(lead.email, lead.first_name, lead.company) for lead in result.leads] == [
        ("jane@example.com", "Jane", company)
    ]


def test_a_value_starting_with_an_apostrophe_does_not_merge_rows() -> None:
    text = "email,city,notes\na@example.com,'s-Hertogenbosch,ok\nb@example.com,Rock 'n' Roll,'quoted'\n"
    result = parse_leads_text(text)
    assert [(lead.email, lead.variables["city"]) for lead in result.leads] == [
        ("a@example.com", "'s-Hertogenbosch"),
        ("b@example.com", "Rock 'n' Roll"),
    ]


def test_extra_columns_become_variables() -> None:
    text = "email,first_name,Job Title,City,industry\njane@example.com,Jane,CTO,Paris,\n"
    lead = parse_leads_text(text).leads[0]
    assert lead.variables == {"job_title": "CTO", "city": "Paris", "industry": ""}
    assert lead.fields() == {
        "job_title": "CTO",
        "city": "Paris",
        "industry": "",
        "email": "jane@example.com",
        "first_name": "Jane",
        "last_name": "",
        "company": "",
        "timezone": "",
    }


def test_short_and_long_rows() -> None:
    result = parse_leads_text("email,first_name,company\na@example.com\nb@example.com,Bo,B,surplus,cells\n")
    assert [(lead.email, lead.first_name, lead.company, lead.variables) for lead in result.leads] == [
        ("a@example.com", None, None, {}),
        ("b@example.com", "Bo", "B", {}),
    ]


def test_the_first_of_two_same_named_columns_wins() -> None:
    lead = parse_leads_text("email,E-mail\na@example.com,b@example.com\n").leads[0]
    assert lead.email == "a@example.com"


def test_names_are_single_line() -> None:
    text = 'email,first_name,company\na@example.com,"Jane\r\nBcc: x@example.com","Acme\x00\tInc"\n'
    lead = parse_leads_text(text).leads[0]
    assert lead.first_name == "Jane Bcc: x@example.com"
    assert lead.company == "Acme Inc"


@pytest.mark.parametrize(
    ("timezone", "accepted"),
    [
        ("Europe/Berlin", True),
        ("America/New_York", True),
        ("UTC", True),
        ("Mars/Olympus_Mons", False),
        ("europe/berlin", False),
        ("Europe", False),  # a directory of the tz database
        ("../../etc/passwd", False),
        ("/etc/localtime", False),
        ("+02:00", False),
    ],
)
def test_timezones(timezone: str, accepted: bool) -> None:
    result = parse_leads_text(f"email,timezone\na@example.com,{timezone}\n")
    if accepted:
        assert result.leads[0].timezone == timezone and not result.rejected
    else:
        assert not result.leads
        assert result.rejected == [Rejected(2, f"unknown timezone {timezone!r} (use an IANA name like Europe/Berlin)")]


def test_addresses_are_validated_and_normalised() -> None:
    text = "email\n Jane.Doe@Example.COM \njörg@example.com\nkim@bücher.example\nno-at-sign\nx@localhost\n"
    result = parse_leads_text(text)
    assert [lead.email for lead in result.leads] == ["jane.doe@example.com", "kim@bücher.example"]
    assert [line for line, _ in reasons(result)] == [3, 5, 6]
    assert "jörg@example.com" in reasons(result)[0][1]


def test_normalise_address() -> None:
    assert normalise_address("  Jane.Doe@EXAMPLE.com ") == "jane.doe@example.com"
    with pytest.raises(EmailNotValidError):
        normalise_address("jane@@example.com")


# -- encodings ---------------------------------------------------------------------------------------


def test_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "Email,First Name,Company\nzoe@example.com,Zoë,Café Müller\n".encode())
    lead = parse_leads_csv(path).leads[0]
    assert (lead.email, lead.first_name, lead.company) == ("zoe@example.com", "Zoë", "Café Müller")


def test_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("email;first_name;company\r\nzoe@example.com;Zoë;Müller \u2013 Söhne \u20ac\r\n".encode("cp1252"))
    lead = parse_leads_csv(path).leads[0]
    assert (lead.first_name, lead.company) == ("Zoë", "Müller \u2013 Söhne \u20ac")


def test_utf16_from_excel(tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes("Email\tFirst Name\r\nzoe@example.com\tZoë\r\n".encode("utf-16"))
    lead = parse_leads_csv(path).leads[0]
    assert (lead.email, lead.first_name) == ("zoe@example.com", "Zoë")


# -- the file as a whole ---------------------------------------------------------------------------


def test_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert (
        one_line_error(parse_leads_csv, path)
        == f"{path}: the file is empty: expected a header row with an 'email' column"
    )
    assert one_line_error(parse_leads_text, "") == "the file is empty: expected a header row with an 'email' column"
    assert one_line_error(parse_leads_text, "\n\n") == "no 'email' column in the header (found: nothing)"


def test_a_header_without_an_email_column(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("Name,Company,Phone\nJane,Acme,123\n")
    assert (
        one_line_error(parse_leads_csv, path)
        == f"{path}: no 'email' column in the header (found: Name, Company, Phone)"
    )


def test_a_binary_file_is_refused_on_one_short_line() -> None:
    message = one_line_error(parse_leads_text, "PK\x03\x04\x14\x00\x06\x00" + "x\x00" * 400)
    assert message.startswith("no 'email' column in the header (found: PK")
    assert "\x00" not in message and len(message) < 200


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert one_line_error(parse_leads_csv, path) == f"{path}: no such file"
    assert one_line_error(parse_leads_csv, tmp_path).startswith(f"{tmp_path}: cannot read it: ")


def test_an_unclosed_quote_in_a_big_file_is_a_file_error() -> None:
    rows = "".join(f"u{i}@example.com,Company {i}\n" for i in range(10_000))
    message = one_line_error(parse_leads_text, 'email,company\na@example.com,"Acme\n' + rows)
    assert message.startswith("line 2: cannot read the file from here on (field larger than field limit")
    assert message.endswith("an unclosed quote?")


def test_20000_rows_parse_and_report_progress() -> None:
    lines = ["Email,First Name,Company,Score"]
    lines += [f"lead{i}@company{i % 97}.example.com,Name{i},Company {i % 97},{i}" for i in range(20_000)]
    lines.insert(10_001, "lead5@company5.example.com,Again,X,0")  # a duplicate half way
    lines.insert(15_001, "broken-address,X,Y,0")
    calls: list[tuple[int, int]] = []
    result = parse_leads_text("\n".join(lines) + "\n", lambda done, total: calls.append((done, total)))
    assert len(result.leads) == 20_000 and result.duplicates == 1 and result.total_rows == 20_002
    assert reasons(result)[0][0] == 15_002
    assert result.leads[-1].line == 20_003 and result.leads[-1].variables == {"score": "19999"}
    totals = {total for _, total in calls}
    assert totals == {20_003}
    assert len(calls) == 20_002 // 500 + 1
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[0] == (501, 20_003) and calls[-1] == (20_003, 20_003)


def test_progress_is_called_at_the_end_of_a_small_file() -> None:
    calls: list[tuple[int, int]] = []
    parse_leads_text("email\na@example.com\n", lambda done, total: calls.append((done, total)))
    assert calls == [(2, 2)]


# -- binary files, unprintable text, encodings, test domains ------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"PK\x03\x04\x14\x00\x06\x00" + b"x" * 100,
            "not a CSV file: it looks like a zip archive or an Excel/OpenDocument workbook",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"x" * 100,
            "not a CSV file: it looks like an old Excel workbook (.xls)",
        ),
        (b"\x1f\x8b\x08\x00" + b"x" * 100, "not a CSV file: it looks like a gzip archive"),
        (b"%PDF-1.7\n" + b"x" * 100, "not a CSV file: it looks like a PDF document"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "not a CSV file: it holds binary data (NUL bytes)"),
        (b"email\nann@example.com\x00\n", "not a CSV file: it holds binary data (NUL bytes)"),
    ],
)
def test_a_binary_file_is_refused_as_a_whole(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(data)
    assert one_line_error(parse_leads_csv, path).startswith(f"{path}: {expected}")


def test_utf16_is_not_taken_for_binary(tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes("Email\r\nzoe@example.com\r\n".encode("utf-16"))  # NUL bytes in every other place
    result = parse_leads_csv(path)
    assert [lead.email for lead in result.leads] == ["zoe@example.com"] and result.encoding == "utf-16"


def test_the_encoding_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes("email,first_name\nzoe@example.com,Zoë\n".encode())
    assert parse_leads_csv(path).encoding == "utf-8"
    path.write_bytes("email,first_name\nzoe@example.com,Zoë\n".encode("cp1252"))
    assert parse_leads_csv(path).encoding == "cp1252"


def test_an_empty_file_is_its_own_error(tmp_path: Path) -> None:
    from aicmo_actors.cam.lead_import import LeadFileEmpty

    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(LeadFileEmpty):
        parse_leads_csv(path)
    path.write_text("Name\nJane\n")
    with pytest.raises(LeadFileError) as info:
        parse_leads_csv(path)
    assert not isinstance(info.value, LeadFileEmpty)


def test_unprintable_characters_from_the_file_are_escaped() -> None:
    message = one_line_error(parse_leads_text, "na\x1b[31mme,comp\x7fany\n")
    assert message == "no 'email' column in the header (found: na\\x1b[31mme, comp\\x7fany)"
    result = parse_leads_text("email\n\x1b[2Jann@example.com\n")
    assert all(r.reason.isprintable() for r in result.rejected)
    assert "\\x1b[2Jann@example.com" in result.rejected[0].reason


def test_shown_keeps_printable_text() -> None:
    from aicmo_actors.cam.lead_import import shown

    assert shown("Zoë Müller \u2013 Café") == "Zoë Müller \u2013 Café"
    assert shown("a\x00b\x07c\u200bd") == "a\\x00b\\x07c\\u200bd"


def test_test_domains_need_allow_test_domains(tmp_path: Path) -> None:
    text = "email\nann@corp.test\nbob@mail.invalid\ncid@localhost\ndan@corp.example.com\n"
    strict = parse_leads_text(text)
    assert [lead.email for lead in strict.leads] == ["dan@corp.example.com"]
    assert [line for line, _ in reasons(strict)] == [2, 3, 4]
    allowed = parse_leads_text(text, allow_test_domains=True)
    assert [lead.email for lead in allowed.leads] == [
        "ann@corp.test",
        "bob@mail.invalid",
        "cid@localhost",
        "dan@corp.example.com",
    ]
    path = tmp_path / "leads.csv"
    path.write_text(text)
    assert len(parse_leads_csv(path, allow_test_domains=True).leads) == 4
    assert len(parse_leads_csv(path).leads) == 1  # strict again: no state left behind
    assert normalise_address(" Ann@Corp.TEST ", allow_test_domains=True) == "ann@corp.test"
    with pytest.raises(EmailNotValidError):
        normalise_address("ann@corp.test")


def test_a_field_longer_than_its_column_rejects_its_row_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from aicmo_actors.cam.lead_import import parse_leads_csv

    path = tmp_path / "long.csv"
    path.write_text("email,first_name,company\nok@example.com,Ann,Acme\nlong@example.com," + "A" * 201 + ",Acme\n")
    result = parse_leads_csv(path)
    assert [lead.email for lead in result.leads] == ["ok@example.com"]
    assert [(r.line, r.reason) for r in result.rejected] == [(3, "first_name is longer than 200 characters")]
