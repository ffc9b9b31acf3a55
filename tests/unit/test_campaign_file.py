"""Campaign TOML files: the example loads; every user mistake is one line naming file and key."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from aicmo_actors.cam.campaign import CampaignFileError, CampaignSpec, load_campaign, parse_campaign

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "campaign.toml"

TOP = """name = "spring-intro"
timezone = "Europe/Berlin"
postal_address = "Example GmbH, Strasse 1, 10115 Berlin"
"""
MAILBOX = """[[mailboxes]]
address = "alex@outreach.example.com"
display_name = "Alex Berger"
"""
STEP = """[[steps]]
subject = "Hello {{ first_name }}"
body = "Hi {{ first_name }}"
"""


def toml(top: str = TOP, window: str = "", limits: str = "", mailboxes: str = MAILBOX, steps: str = STEP) -> str:
    return "\n".join(
        [top, f"[window]\n{window}" if window else "", f"[limits]\n{limits}" if limits else "", mailboxes, steps]
    )


def error_of(text: str, source: str = "c.toml") -> str:
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(text, source)
    message = str(info.value)
    # One line for the terminal, and no chained exception to print as a traceback.
    assert "\n" not in message and "\r" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    return message


# -- the example and the happy path ------------------------------------------------------------


def test_the_example_campaign_loads() -> None:
    spec = load_campaign(EXAMPLE)
    assert spec.name == "agency-intro"
    assert spec.timezone == "Europe/Berlin"
    assert spec.stop_company_on_reply is True
    assert spec.window.days == ("mon", "tue", "wed", "thu", "fri")
    assert (spec.window.start, spec.window.end) == (time(9, 0), time(17, 0))
    assert (spec.limits.daily_cap, spec.limits.min_gap_seconds, spec.limits.jitter_seconds) == (60, 120, 90)
    assert [m.address for m in spec.mailboxes] == ["alex@outreach.example.com", "sam@outreach.example.com"]
    assert [m.display_name for m in spec.mailboxes] == ["Alex Berger", "Sam Keller"]
    assert [s.delay_days for s in spec.steps] == [0, 4, 7]
    assert [v.name for v in spec.steps[0].variants] == ["B"]
    assert spec.steps[1].subject == ""  # a follow-up in the same thread


def test_load_campaign_accepts_a_str_path() -> None:
    assert load_campaign(str(EXAMPLE)).name == "agency-intro"


def test_defaults_when_window_and_limits_are_left_out() -> None:
    spec = parse_campaign(toml(top='name = "x"\npostal_address = "1 Main St"\n'))
    assert spec.timezone == "UTC"
    assert spec.window.days == ("mon", "tue", "wed", "thu", "fri")
    assert spec.window.weekday_numbers == frozenset({0, 1, 2, 3, 4})
    assert spec.limits.daily_cap == 40
    assert spec.mailboxes[0].transport == "default"
    assert spec.stop_company_on_reply is False


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ('["Mon", "TUE", " wed "]', ("mon", "tue", "wed")),
        ('["monday", "tues", "Thursday", "fri"]', ("mon", "tue", "thu", "fri")),
        ('["sat", "sun", "sat"]', ("sat", "sun")),
    ],
)
def test_weekdays_are_normalised(days: str, expected: tuple[str, ...]) -> None:
    assert parse_campaign(toml(window=f"days = {days}")).window.days == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ('"9:00"', '"17:30"', (time(9, 0), time(17, 30))),
        ('"08:15:30"', '"24:00"', (time(8, 15, 30), time(23, 59, 59, 999999))),
        ("07:00:00", "12:00:00", (time(7, 0), time(12, 0))),  # TOML's own local time
    ],
)
def test_window_times(start: str, end: str, expected: tuple[time, time]) -> None:
    window = parse_campaign(toml(window=f"start = {start}\nend = {end}")).window
    assert (window.start, window.end) == expected


def test_step_variant_falls_back_to_the_step_text() -> None:
    steps = STEP + '[[steps.variants]]\nname = "B"\nsubject = "Other subject"\n'
    step = parse_campaign(toml(steps=steps)).steps[0]
    assert step.variant("A") == ("Hello {{ first_name }}", "Hi {{ first_name }}", None)
    assert step.variant("B") == ("Other subject", "Hi {{ first_name }}", None)
    with pytest.raises(KeyError):
        step.variant("C")


def test_an_idn_sending_domain_is_accepted() -> None:
    spec = parse_campaign(toml(mailboxes='[[mailboxes]]\naddress = "alex@bücher.example"\n'))
    assert spec.mailboxes[0].address == "alex@bücher.example"


# -- user mistakes: one line, naming the file and the key ---------------------------------------

NO_STEPS = toml(steps="")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            toml(top=TOP.replace('name = "spring-intro"\n', "")), "c.toml: name: is required", id="missing-name"
        ),
        pytest.param(
            toml(top=TOP.replace('"spring-intro"', '"Spring Intro"')),
            "c.toml: name: 'Spring Intro': use lower-case",
            id="bad-name",
        ),
        pytest.param(
            toml(window='days = ["mon", "funday"]'), "c.toml: window.days: unknown weekday 'funday'", id="bad-weekday"
        ),
        pytest.param(
            toml(window='days = ["monkey"]'),
            "c.toml: window.days: unknown weekday 'monkey'",
            id="weekday-prefix-is-not-enough",
        ),
        pytest.param(toml(window="days = []"), "c.toml: window.days: needs at least one day", id="no-weekday"),
        pytest.param(
            toml(window='start = "17:00"\nend = "09:00"'),
            "c.toml: window: end 09:00 must be after start 17:00",
            id="end-before-start",
        ),
        pytest.param(
            toml(window='start = "09:00"\nend = "09:00"'),
            "c.toml: window: end 09:00 must be after start 09:00",
            id="end-equals-start",
        ),
        pytest.param(
            toml(window='start = "9am"'), "c.toml: window.start: '9am' is not a time like 09:00", id="bad-time"
        ),
        pytest.param(
            toml(window='start = "25:00"'), "c.toml: window.start: '25:00' is not a time like 09:00", id="hour-25"
        ),
        pytest.param(
            toml(window='start = "09:00+02:00"'),
            "c.toml: window.start: '09:00+02:00': no UTC offset here",
            id="time-with-offset",
        ),
        pytest.param(
            toml(top=TOP.replace("Europe/Berlin", "Mars/Olympus_Mons")),
            "c.toml: timezone: unknown timezone 'Mars/Olympus_Mons'",
            id="unknown-timezone",
        ),
        pytest.param(
            toml(top=TOP.replace("Europe/Berlin", "Europe")),
            "c.toml: timezone: unknown timezone 'Europe'",
            id="timezone-directory",
        ),
        pytest.param(
            toml(top=TOP.replace("Europe/Berlin", "../../etc/passwd")),
            "c.toml: timezone: unknown timezone",
            id="timezone-path",
        ),
        pytest.param(NO_STEPS, "c.toml: steps: is required", id="no-steps"),
        pytest.param(
            NO_STEPS.replace("[[mailboxes]]", "steps = []\n[[mailboxes]]"),
            "c.toml: steps: Tuple should have at least 1 item",
            id="empty-steps",
        ),
        pytest.param(toml(mailboxes=""), "c.toml: mailboxes: is required", id="no-mailboxes"),
        pytest.param(
            toml(steps=STEP.replace('subject = "Hello {{ first_name }}"', 'subject = "  "')),
            "c.toml: steps[0].subject: the first step needs a subject",
            id="first-subject-empty",
        ),
        pytest.param(
            toml(steps=STEP.replace("body", "boddy")),
            "c.toml: steps[0].boddy: unknown key (a typo?) (and 1 more problem)",
            id="typo-key",
        ),
        pytest.param(
            toml(steps=STEP + "delay_days = -1\n"),
            "c.toml: steps[0].delay_days: Input should be greater than or equal to 0",
            id="negative-delay",
        ),
        pytest.param(
            toml(steps=STEP + "delay_days = inf\n"),
            "c.toml: steps[0].delay_days: Input should be a finite number",
            id="infinite-delay",
        ),
        pytest.param(
            toml(steps=STEP + "delay_days = 100000\n"),
            "c.toml: steps[0].delay_days: Input should be less than or equal to 3650",
            id="huge-delay",
        ),
        pytest.param(
            toml(steps=STEP + '[[steps.variants]]\nname = "B"\nweight = 0\n'),
            "c.toml: steps[0].variants[0].weight: Input should be greater than 0",
            id="variant-weight-zero",
        ),
        pytest.param(
            toml(steps=STEP + '[[steps.variants]]\nname = "B"\nweight = -2\n'),
            "c.toml: steps[0].variants[0].weight: Input should be greater than 0",
            id="variant-weight-negative",
        ),
        pytest.param(
            toml(steps=STEP + '[[steps.variants]]\nname = "B"\nweight = nan\n'),
            "c.toml: steps[0].variants[0].weight: Input should be a finite number",
            id="variant-weight-nan",
        ),
        pytest.param(
            toml(steps=STEP + '[[steps.variants]]\nname = "B"\nweight = inf\n'),
            "c.toml: steps[0].variants[0].weight: Input should be a finite number",
            id="variant-weight-inf",
        ),
        pytest.param(
            toml(steps=STEP + 'weight = "heavy"\n'),
            "c.toml: steps[0].weight: Input should be a valid number",
            id="step-weight-text",
        ),
        pytest.param(
            toml(steps=STEP + '[[steps.variants]]\nname = "A"\n'),
            "c.toml: steps[0]: variant names must be unique and not 'A'",
            id="variant-named-A",
        ),
        pytest.param(
            toml(steps=STEP + '[[steps.variants]]\nname = "B"\n[[steps.variants]]\nname = "B"\n'),
            "c.toml: steps[0]: variant names must be unique",
            id="variant-twice",
        ),
        pytest.param(
            toml(steps=STEP + '[[steps.variants]]\nname = " "\n'),
            "c.toml: steps[0].variants[0].name: a variant needs a name",
            id="variant-no-name",
        ),
        pytest.param(
            toml(mailboxes=MAILBOX.replace("alex@outreach.example.com", "not-an-address")),
            "c.toml: mailboxes[0].address: 'not-an-address' is not a valid address",
            id="bad-mailbox-address",
        ),
        pytest.param(
            toml(mailboxes=MAILBOX.replace("alex@outreach.example.com", "alex@@outreach.example.com")),
            "c.toml: mailboxes[0].address: 'alex@@outreach.example.com' is not a valid address",
            id="two-at-signs",
        ),
        pytest.param(
            toml(mailboxes=MAILBOX.replace("alex@outreach.example.com", "jörg@outreach.example.com")),
            "c.toml: mailboxes[0].address: 'jörg@outreach.example.com' is not a valid address",
            id="non-ascii-local-part",
        ),
        pytest.param(
            toml(mailboxes=MAILBOX + MAILBOX.replace("alex@", "ALEX@")),
            "c.toml: mailboxes: 'ALEX@outreach.example.com' is listed twice",
            id="mailbox-twice",
        ),
        pytest.param(
            toml(mailboxes=MAILBOX.replace('"Alex Berger"', '"Alex\\r\\nBcc: all@example.com"')),
            "c.toml: mailboxes[0].display_name: must not contain line breaks",
            id="crlf-display-name",
        ),
        pytest.param(
            toml(mailboxes=MAILBOX.replace('"Alex Berger"', '"Alex\\nBerger"')),
            "c.toml: mailboxes[0].display_name: must not contain line breaks",
            id="lf-display-name",
        ),
        pytest.param(
            toml(mailboxes=MAILBOX.replace('"Alex Berger"', '"Alex\\u2028Berger"')),
            "c.toml: mailboxes[0].display_name: must not contain line breaks",
            id="unicode-line-separator",
        ),
        pytest.param(
            toml(limits="daily_cap = -1"),
            "c.toml: limits.daily_cap: Input should be greater than or equal to 0",
            id="negative-cap",
        ),
        pytest.param(
            toml(limits="daily_cap = 2.5"),
            "c.toml: limits.daily_cap: Input should be a valid integer",
            id="fractional-cap",
        ),
        pytest.param(
            toml(limits="jitter_seconds = inf"),
            "c.toml: limits.jitter_seconds: Input should be a finite number",
            id="infinite-jitter",
        ),
        pytest.param(
            toml(limits="min_gap_seconds = nan"),
            "c.toml: limits.min_gap_seconds: Input should be a finite number",
            id="nan-gap",
        ),
        pytest.param(
            toml(top=TOP.replace('postal_address = "Example GmbH, Strasse 1, 10115 Berlin"\n', "")),
            "c.toml: postal_address: is required",
            id="postal-address-missing",
        ),
        pytest.param(
            toml(top=TOP.replace('"Example GmbH, Strasse 1, 10115 Berlin"', '"   "')),
            "c.toml: postal_address: the sender's postal address is required in every email (CAN-SPAM)",
            id="postal-address-blank",
        ),
        pytest.param(
            toml(top=TOP + "stop_company_on_reply = 3\n"),
            "c.toml: stop_company_on_reply: Input should be a valid boolean",
            id="not-a-boolean",
        ),
        pytest.param(
            toml(top=TOP + "typo_key = 1\n"), "c.toml: typo_key: unknown key (a typo?)", id="unknown-top-level-key"
        ),
    ],
)
def test_user_mistakes_are_one_line_naming_the_file_and_the_key(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


@pytest.mark.parametrize("key", ["smtp_password", "password", "api_key", "secret", "smtp_token"])
def test_a_secret_in_the_file_is_refused_without_echoing_it(key: str) -> None:
    text = toml(mailboxes=MAILBOX + f'{key} = "hunter2-s3cret"\n')
    message = error_of(text)
    assert message.startswith(f"c.toml: mailboxes[0].{key}: unknown key: passwords and other secrets do not belong")
    assert "AICMO_TRANSPORTS" in message
    assert "hunter2" not in message


def test_a_toml_syntax_error_names_file_and_line() -> None:
    text = toml() + "oops = \n"
    message = error_of(text)
    assert message.startswith("c.toml: not valid TOML: ")
    assert f"line {text.count(chr(10))}" in message


def test_consequential_errors_are_not_counted_as_more_problems() -> None:
    # The bad display name also makes pydantic report "mailboxes: at least 1 item".
    bad_name = MAILBOX.replace('"Alex Berger"', '"A\\nB"')
    assert not error_of(toml(mailboxes=bad_name)).endswith("more problem)")
    both = error_of(toml(top=TOP.replace('name = "spring-intro"\n', ""), mailboxes=bad_name))
    assert both == "c.toml: name: is required (and 1 more problem)"
    three = error_of(toml(top=TOP.replace("Europe/Berlin", "Nowhere"), window='days = ["x"]', limits="daily_cap = -1"))
    assert three.endswith("(and 2 more problems)")


def test_load_campaign_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(toml(window='days = ["noday"]'), encoding="utf-8")
    with pytest.raises(CampaignFileError, match=r"^broken\.toml: window\.days: unknown weekday 'noday'"):
        load_campaign(path)


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(CampaignFileError) as info:
        load_campaign(path)
    assert str(info.value) == f"{path}: no such file"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_directory_or_binary_file_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(CampaignFileError, match="cannot read it"):
        load_campaign(tmp_path)
    binary = tmp_path / "latin1.toml"
    binary.write_bytes(toml().encode("utf-8") + b"# caf\xe9\n")
    with pytest.raises(CampaignFileError, match=r"latin1\.toml: cannot read it: .*utf-8"):
        load_campaign(binary)


# -- spec_hash -----------------------------------------------------------------------------------


def test_spec_hash_is_stable() -> None:
    a = parse_campaign(toml())
    assert a.spec_hash() == parse_campaign(toml()).spec_hash()
    assert len(a.spec_hash()) == 64 and int(a.spec_hash(), 16) >= 0
    # The stored JSON round trip keeps the hash (it is what the database compares).
    assert CampaignSpec.from_json(a.to_json()).spec_hash() == a.spec_hash()
    # Key order in the file and spelling of equal values do not matter ...
    reordered = toml(
        top='postal_address = "Example GmbH, Strasse 1, 10115 Berlin"\n'
        'timezone = "Europe/Berlin"\nname = "spring-intro"\n'
    )
    assert parse_campaign(reordered).spec_hash() == a.spec_hash()
    defaults_spelt_out = toml(
        window='days = ["Monday", "tue", "wed", "thu", "fri"]\nstart = "9:00"\nend = "17:00"', limits="daily_cap = 40"
    )
    assert parse_campaign(defaults_spelt_out).spec_hash() == a.spec_hash()
    # ... but any change of content does.
    assert parse_campaign(toml(limits="daily_cap = 41")).spec_hash() != a.spec_hash()
    assert parse_campaign(toml(steps=STEP.replace("Hi ", "Hey "))).spec_hash() != a.spec_hash()


def test_spec_hash_is_pinned() -> None:
    # The hash is stored with each campaign: a change here means stored campaigns look edited.
    assert parse_campaign(toml()).spec_hash() == PINNED_HASH


PINNED_HASH = "d943939d84a9c8d44e2838e0c5beba3ff5a48286c11d1f029a3cbe003cb99b9e"


# -- test domains -------------------------------------------------------------------------------------------

TEST_MAILBOX = MAILBOX.replace("alex@outreach.example.com", "alex@outreach.test")


def test_a_mailbox_on_a_test_domain_needs_allow_test_domains() -> None:
    assert "special-use or reserved name" in error_of(toml(mailboxes=TEST_MAILBOX))
    spec = parse_campaign(toml(mailboxes=TEST_MAILBOX), "c.toml", allow_test_domains=True)
    assert spec.mailboxes[0].address == "alex@outreach.test"
    # The next file is strict again: nothing is left behind in email-validator.
    assert "special-use or reserved name" in error_of(toml(mailboxes=TEST_MAILBOX))


def test_load_campaign_passes_allow_test_domains(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml(mailboxes=TEST_MAILBOX))
    with pytest.raises(CampaignFileError):
        load_campaign(path)
    assert load_campaign(path, allow_test_domains=True).mailboxes[0].address == "alex@outreach.test"


def test_a_stored_campaign_on_a_test_domain_reads_back() -> None:
    spec = parse_campaign(toml(mailboxes=TEST_MAILBOX), allow_test_domains=True)
    assert CampaignSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("address", "strict", "allowed"),
    [
        ("a@corp.example.com", "a@corp.example.com", "a@corp.example.com"),
        ("a@example.org", "a@example.org", "a@example.org"),
        ("a@corp.example", "a@corp.example", "a@corp.example"),
        ("Ann@Corp.TEST", None, "Ann@corp.test"),
        ("a@test", None, "a@test"),
        ("a@mail.invalid", None, "a@mail.invalid"),
        ("a@Mail.INVALID", None, "a@mail.invalid"),
        ("a@localhost", None, "a@localhost"),
        ("a@shop.localhost", None, "a@shop.localhost"),
        ("a@bücher.invalid", None, "a@bücher.invalid"),
        ("a@host.local", None, None),  # not a test domain: refused either way
        ("a@host.onion", None, None),
        ("not-an-address", None, None),
        ("a b@mail.invalid", None, None),  # the rest of the syntax still counts
        ("zoë@corp.test", None, None),  # no SMTPUTF8
    ],
)
def test_check_address(address: str, strict: str | None, allowed: str | None) -> None:
    from email_validator import EmailNotValidError

    from aicmo_actors.cam.campaign import check_address

    for allow, expected in ((False, strict), (True, allowed)):
        if expected is None:
            with pytest.raises(EmailNotValidError):
                check_address(address, allow_test_domains=allow)
        else:
            assert check_address(address, allow_test_domains=allow) == expected
