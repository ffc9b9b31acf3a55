"""Service package files, table by table: what parses, every problem with its line, exact decimals (pure: no CLI)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from aicmo_actors.orchestration.packages import (
    CURRENCIES,
    DELIVERABLE_KEYS,
    KPI_KEYS,
    MILESTONE_KEYS,
    TOP_KEYS,
    KeyLines,
    PackageError,
    PackageNotFound,
    Problem,
    describe,
    find_package,
    list_packages,
    load_package,
    package_path,
    parse_package,
    with_name,
)
from contracts.packages import Deliverable, Kpi, Milestone, PackageSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Each key on a line of its own: the tables below name the lines.
GOOD = """\
name = "growth"
title = "Growth: content every week"
price = "2500.00"
currency = "EUR"
billing = "monthly"
period_months = 1
review_rounds = 2
turnaround_days = 5
reporting = "monthly"

[[deliverables]]
type = "blog_post"
count = 4
channel = "blog"
min_words = 900
max_words = 1400

[[deliverables]]
type = "social_post"
count = 12
channel = "linkedin"

[[kpis]]
name = "organic_sessions"
target = 15
unit = "%"
"""

MILESTONES = """
[[milestones]]
name = "kick-off"
share = 0.3

[[milestones]]
name = "launch"
share = 0.7
"""


def problems(text: str, *, file_stem: str | None = None) -> list[Problem]:
    with pytest.raises(PackageError) as caught:
        parse_package(text, source="p.toml", file_stem=file_stem)
    return caught.value.problems


def changed(old: str, new: str, text: str = GOOD) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# -- what parses ------------------------------------------------------------------------------------------------


def test_a_good_package_parses_into_the_contract() -> None:
    spec = parse_package(GOOD)
    assert spec == PackageSpec(
        name="growth",
        title="Growth: content every week",
        price=Decimal("2500.00"),
        currency="EUR",
        billing="monthly",
        period_months=1,
        deliverables=(
            Deliverable(type="blog_post", count=4, channel="blog", min_words=900, max_words=1400),
            Deliverable(type="social_post", count=12, channel="linkedin"),
        ),
        review_rounds=2,
        turnaround_days=5,
        reporting="monthly",
        kpis=(Kpi(name="organic_sessions", target=15.0, unit="%"),),
    )


def test_optional_keys_take_their_defaults() -> None:
    text = changed("period_months = 1\n", "", changed('unit = "%"\n', ""))
    spec = parse_package(text)
    assert spec.period_months == 1
    assert spec.kpis[0].unit == "" and spec.kpis[0].direction == "up"
    assert spec.deliverables[1].min_words is None and spec.deliverables[1].max_chars is None
    assert parse_package(text.split("[[kpis]]")[0]).kpis == ()


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("package*.toml")), ids=lambda p: p.name)
def test_every_example_is_a_valid_package(example: Path) -> None:
    spec = load_package(example)
    assert spec.name == example.stem


def test_the_examples_show_each_billing_rhythm() -> None:
    assert describe(load_package(EXAMPLES / "package.toml")) == (
        "package: 2,500.00 EUR monthly; 4 blog posts, 12 social posts on LinkedIn, 1 newsletter by email per month; "
        "2 review rounds; 5 business days; 12-month term, invoices due in 14 days, extra review round 150.00 EUR"
    )
    assert describe(load_package(EXAMPLES / "package-one-off.toml")) == (
        "package-one-off: 1,800.00 EUR one-off; 1 landing page on the website, 6 social posts on LinkedIn "
        "within 1 month; 1 review round; 10 business days; 12-month term, invoices due in 14 days"
    )
    milestones = load_package(EXAMPLES / "package-milestones.toml")
    assert [m.share for m in milestones.milestones] == [Decimal("0.3"), Decimal("0.4"), Decimal("0.3")]
    assert describe(milestones).startswith("package-milestones: 12,000.00 EUR in 3 milestones; 12 web pages")
    assert describe(milestones).endswith("; 3-month term, invoices due in 30 days")
    assert [m.at for m in milestones.milestones] == ["strategy", "production", None]


def test_billing_in_milestones() -> None:
    spec = parse_package(changed('billing = "monthly"', 'billing = "milestones"') + MILESTONES)
    assert spec.milestones == (
        Milestone(name="kick-off", share=Decimal("0.3")),
        Milestone(name="launch", share=Decimal("0.7")),
    )


@pytest.mark.parametrize(
    ("deliverable", "summary"),
    [
        ('type = "linkedin_post"\ncount = 12\nchannel = "linkedin"', "12 LinkedIn posts per month"),
        ('type = "case_study"\ncount = 1\nchannel = "website"', "1 case study on the website per month"),
        ('type = "case_study"\ncount = 2\nchannel = "blog"', "2 case studies on the blog per month"),
        ('type = "newsletter"\ncount = 2\nchannel = "email"', "2 newsletters by email per month"),
        ('type = "video"\ncount = 3\nchannel = "youtube"', "3 videos on YouTube per month"),
    ],
)
def test_describe_names_each_deliverable(deliverable: str, summary: str) -> None:
    head = GOOD.split("[[deliverables]]")[0]
    spec = parse_package(f"{head}[[deliverables]]\n{deliverable}\n")
    assert describe(spec) == (
        f"growth: 2,500.00 EUR monthly; {summary}; 2 review rounds; 5 business days; "
        "12-month term, invoices due in 14 days"
    )


def test_describe_a_longer_period_and_no_review_round() -> None:
    text = changed("period_months = 1", "period_months = 3", changed("review_rounds = 2", "review_rounds = 0"))
    assert "per 3 months; no review round; 5 business days;" in describe(parse_package(text))
    text = changed('currency = "EUR"', 'currency = "JPY"', changed('price = "2500.00"', "price = 250000"))
    assert describe(parse_package(text)).startswith("growth: 250,000 JPY monthly;")


# -- exact decimals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "price"),
    [
        ('"2500.00"', Decimal("2500.00")),
        ("2500", Decimal("2500")),
        ("2500.10", Decimal("2500.10")),  # a TOML decimal, read without a binary float
        ("0.1", Decimal("0.1")),
        ('"19.99"', Decimal("19.99")),
        ("1e3", Decimal("1000")),
        ("0", Decimal("0")),
        ("-0.0", Decimal("0.0")),
    ],
)
def test_prices_are_read_exactly(written: str, price: Decimal) -> None:
    spec = parse_package(changed('price = "2500.00"', f"price = {written}"))
    assert spec.price == price and str(spec.price) == str(price)


def test_shares_are_exact_decimals() -> None:
    # As floats, ten times 0.1 is 0.9999999999999999: read exactly, it is 1.
    tenths = "".join(f'\n[[milestones]]\nname = "m{i}"\nshare = 0.1\n' for i in range(10))
    spec = parse_package(changed('billing = "monthly"', 'billing = "milestones"') + tenths)
    assert sum((m.share for m in spec.milestones), Decimal(0)) == 1


# -- one problem, its line and its words ------------------------------------------------------------------------

# (what changes, into what, the line, the key, the message)
BAD = [
    ('price = "2500.00"', 'price = "abc"', 3, "price", '"abc" is not a number (write 2500 or "2500.00")'),
    (
        'price = "2500.00"',
        'price = "2,500.00"',
        3,
        "price",
        '"2,500.00" is not a number (write 2500 or "2500.00", without thousands separators)',
    ),
    ('price = "2500.00"', "price = -1", 3, "price", "-1 is negative (write 0 or more)"),
    ('price = "2500.00"', "price = nan", 3, "price", 'NaN is not a number (write 2500 or "2500.00")'),
    ('price = "2500.00"', "price = true", 3, "price", 'true is not a number (write 2500 or "2500.00")'),
    ('price = "2500.00"', "price = 2500.005", 3, "price", "2500.005 has more decimals than EUR has (2): write 2500.01"),
    ('currency = "EUR"', 'currency = "eur"', 4, "currency", '"eur" must be three upper-case letters: write "EUR"'),
    ('currency = "EUR"', 'currency = "ZZZ"', 4, "currency", '"ZZZ" is not an ISO 4217 currency code'),
    ('currency = "EUR"', 'currency = "EUX"', 4, "currency", "(did you mean"),
    ('currency = "EUR"', "currency = 978", 4, "currency", '978 is a number, not text (write it in quotes: "978")'),
    ('name = "growth"', 'name = "Growth Plan"', 1, "name", '"Growth Plan" is not a package name'),
    ('name = "growth"', 'name = "-growth"', 1, "name", "not starting or ending with a hyphen"),
    ('name = "growth"', f'name = "{"a" * 61}"', 1, "name", "1 to 60 characters"),
    ('title = "Growth: content every week"', 'title = ""', 2, "title", "is empty"),
    ('title = "Growth: content every week"', 'title = "a\\nb"', 2, "title", "must be one line (no line breaks)"),
    (
        'billing = "monthly"',
        'billing = "monthy"',
        5,
        "billing",
        '"monthy" is not one of monthly, one_off, milestones (did you mean "monthly"?)',
    ),
    ("period_months = 1", "period_months = 13", 6, "period_months", "13 is too large (at most 12)"),
    ("period_months = 1", "period_months = 0", 6, "period_months", "0 is too small (at least 1)"),
    ("review_rounds = 2", "review_rounds = -1", 7, "review_rounds", "-1 is too small (at least 0)"),
    ("review_rounds = 2", "review_rounds = 2.5", 7, "review_rounds", "2.5 is not a whole number"),
    ("turnaround_days = 5", 'turnaround_days = "5"', 8, "turnaround_days", '"5" is text, not a whole number'),
    ("turnaround_days = 5", "turnaround_days = 5.0", 8, "turnaround_days", "5.0 is not a whole number (write 5)"),
    (
        'reporting = "monthly"',
        'reporting = "daily"',
        9,
        "reporting",
        '"daily" is not one of weekly, fortnightly, monthly',
    ),
    ("period_months = 1", "period_month = 1", 6, "period_month", 'unknown key (did you mean "period_months"?)'),
    ("count = 4", "count = 0", 13, "deliverables[0].count", "0 is too small (at least 1)"),
    ("count = 4", 'count = "four"', 13, "deliverables[0].count", '"four" is not a whole number'),
    ('type = "blog_post"', 'type = "Blog Post"', 12, "deliverables[0].type", "is not a name (lower-case letters"),
    ("min_words = 900", "min_words = 1500", 15, "deliverables[0].min_words", "1500 is more than max_words (1400)"),
    ("max_words = 1400", "max_wrods = 1400", 16, "deliverables[0].max_wrods", 'did you mean "max_words"?'),
    ('channel = "linkedin"', 'channel = "blog"\ntype_ = 1', 22, "deliverables[1].type_", "unknown key"),
    (
        'type = "social_post"\ncount = 12\nchannel = "linkedin"',
        'type = "blog_post"\ncount = 12\nchannel = "blog"',
        19,
        "deliverables[1].type",
        '"blog_post" on "blog" is listed twice (also deliverables[0], line 12): add the counts up in one',
    ),
    ("target = 15", 'target = "15"', 25, "kpis[0].target", '"15" is text, not a number (write 15, without quotes)'),
    ("target = 15", "target = 1e400", 25, "kpis[0].target", "1E+400 is too large (at most 1,000,000,000,000 either"),
    ('price = "2500.00"', "price = 1e400", 3, "price", "1E+400 is too large"),
    ('price = "2500.00"', 'price = "-1e13"', 3, "price", '"-1e13" is too large'),
    ('unit = "%"', 'unit = "%"\ndirection = "sideways"', 27, "kpis[0].direction", "is not one of up, down"),
    (
        'unit = "%"',
        'unit = "%"\nreview_rounds = 3',
        27,
        "kpis[0].review_rounds",
        "review_rounds is a key of the package: it belongs above the first [[...]] table",
    ),
    ("period_months = 1", "count = 1", 6, "count", "count belongs in a [[deliverables]] table"),
]


@pytest.mark.parametrize(("old", "new", "line", "field", "message"), BAD, ids=[f"{b[3]}:{b[1]}" for b in BAD])
def test_a_problem_names_its_line_key_and_what_to_write(
    old: str, new: str, line: int, field: str, message: str
) -> None:
    found = problems(changed(old, new))
    assert [(p.line, p.field) for p in found] == [(line, field)], found
    assert message in found[0].message


def test_the_name_is_the_files_stem() -> None:
    assert parse_package(GOOD, file_stem="growth").name == "growth"
    [problem] = problems(GOOD, file_stem="growth-2")
    assert problem == Problem(
        1,
        "name",
        '"growth" differs from the file\'s name growth-2.toml (a package is named after its file: rename the file '
        'or write name = "growth-2")',
    )


def test_a_missing_key_says_what_to_add() -> None:
    found = problems(changed("turnaround_days = 5\n", ""))
    assert found == [Problem(None, "turnaround_days", "missing: add turnaround_days = 5 (business days)")]
    [missing] = problems(changed("count = 4\n", ""))
    assert (missing.line, missing.field) == (11, "deliverables[0].count")  # the line of its [[deliverables]]


def test_at_least_one_deliverable() -> None:
    head = GOOD.split("[[deliverables]]")[0]
    [problem] = problems(head)
    assert (problem.line, problem.field) == (None, "deliverables")
    assert "add a [[deliverables]] table with type, count and channel" in problem.message
    [problem] = problems(head + "deliverables = []\n")
    assert (problem.line, problem.field, problem.message[:10]) == (11, "deliverables", "none given")
    [problem] = problems(head + '[deliverables]\ntype = "blog_post"\n')
    assert problem.message == "write each one as [[deliverables]] (double brackets), not [deliverables]"


def test_kpi_names_are_unique() -> None:
    [problem] = problems(GOOD + '\n[[kpis]]\nname = "organic_sessions"\ntarget = 3\n')
    assert (problem.line, problem.field) == (29, "kpis[1].name")
    assert problem.message == '"organic_sessions" is listed twice (also kpis[0], line 24)'


def test_the_same_type_on_another_channel_is_another_deliverable() -> None:
    spec = parse_package(GOOD + '\n[[deliverables]]\ntype = "social_post"\ncount = 3\nchannel = "instagram"\n')
    assert [(d.type, d.channel) for d in spec.deliverables][1:] == [
        ("social_post", "linkedin"),
        ("social_post", "instagram"),
    ]


# -- milestones -------------------------------------------------------------------------------------------------

AS_MILESTONES = changed('billing = "monthly"', 'billing = "milestones"')


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (AS_MILESTONES, 5, "milestones", 'billing = "milestones" needs [[milestones]] tables'),
        (changed('"milestones"', '"milestones"\nmilestones = []', AS_MILESTONES), 6, "milestones", "none given"),
        (
            GOOD + MILESTONES,
            28,
            "milestones",
            'only billing = "milestones" has milestones, this package bills monthly',
        ),
        (
            changed("share = 0.7", "share = 0.6", AS_MILESTONES + MILESTONES),
            28,
            "milestones",
            "the shares add up to 0.9, not 1",
        ),
        (changed("share = 0.7", "share = 1.7", AS_MILESTONES + MILESTONES), 34, "milestones[1].share", "1.7 is not"),
        (changed("share = 0.7", "share = 0", AS_MILESTONES + MILESTONES), 34, "milestones[1].share", "0 is not"),
        (
            changed('name = "launch"', 'name = "kick-off"', AS_MILESTONES + MILESTONES),
            33,
            "milestones[1].name",
            '"kick-off" is listed twice (also milestones[0], line 29)',
        ),
        (changed("share = 0.7", "shar = 0.7", AS_MILESTONES + MILESTONES), 34, "milestones[1].shar", "did you mean"),
    ],
)
def test_milestones(text: str, line: int, field: str, message: str) -> None:
    found = problems(text)
    assert any((p.line, p.field) == (line, field) and message in p.message for p in found), found


def test_a_one_off_package() -> None:
    spec = parse_package(changed('billing = "monthly"', 'billing = "one_off"'))
    assert spec.billing == "one_off" and spec.milestones == ()


# -- every problem at once --------------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = GOOD
    for old, new in [
        ('price = "2500.00"', 'price = "abc"'),
        ('currency = "EUR"', 'currency = "euro"'),
        ("review_rounds = 2", "review_rounds = -2"),
        ("count = 4", "count = 0"),
        ("min_words = 900", "min_words = 9000"),
        ("target = 15", "target = []"),
        ('reporting = "monthly"\n', ""),
    ]:
        text = changed(old, new, text)
    error = problems(text)
    assert [(p.line, p.field) for p in error] == [
        (3, "price"),
        (4, "currency"),
        (7, "review_rounds"),
        (12, "deliverables[0].count"),
        (14, "deliverables[0].min_words"),
        (24, "kpis[0].target"),  # a line up: reporting's line is gone
        (None, "reporting"),
    ]
    with pytest.raises(PackageError) as caught:
        parse_package(text, source="growth.toml")
    assert (
        str(caught.value)
        == 'growth.toml:3: price: "abc" is not a number (write 2500 or "2500.00") (and 6 more problems)'
    )
    assert caught.value.lines()[-1].startswith("growth.toml: reporting: missing: add reporting = ")
    assert isinstance(caught.value, ValueError)


def test_not_toml_is_one_problem_with_its_line() -> None:
    [problem] = problems(changed("count = 4", "count = = 4"))
    assert problem.line == 13 and problem.field == ""
    assert problem.message.startswith("not valid TOML: ") and problem.message.endswith("(column 9)")


def test_a_key_written_twice_is_found_by_its_line() -> None:
    [problem] = problems(changed("count = 4", "count = 4\ncount = 5"))
    assert problem == Problem(14, "deliverables[0].count", "written twice (first on line 13): keep one")


def test_problem_format() -> None:
    assert Problem(3, "price", "bad").at("growth.toml") == "growth.toml:3: price: bad"
    assert Problem(None, "price", "bad").at("growth.toml") == "growth.toml: price: bad"
    assert Problem(None, "", "no such file").at("x.toml") == "x.toml: no such file"


# -- where keys are ---------------------------------------------------------------------------------------------


def test_key_lines_skip_multi_line_strings_and_read_quoted_and_dotted_keys() -> None:
    lines = KeyLines(
        'title = """\nprice = 1\n"""\n"price" = 2\nsite.url = 3\n[[deliverables]]\n  count = 1\n'
        "[[deliverables]]\ncount = 2\nnotes = '''\ncount = 3\n'''\n"
    )
    assert lines.line_of(("title",)) == 1
    assert lines.line_of(("price",)) == 4
    assert lines.line_of(("site", "url")) == 5
    assert lines.line_of(("deliverables",)) == 6
    assert lines.line_of(("deliverables", 0, "count")) == 7
    assert lines.line_of(("deliverables", 1, "count")) == 9
    assert lines.line_of(("deliverables", 1, "type")) == 8  # not there: its table's header
    assert lines.line_of(("kpis", 0, "name")) is None
    assert lines.duplicates == []


# -- the file format is the contract ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "model", "not_in_files"),
    [
        (TOP_KEYS, PackageSpec, {"contract_version"}),
        (DELIVERABLE_KEYS, Deliverable, set()),
        (MILESTONE_KEYS, Milestone, set()),
        (KPI_KEYS, Kpi, set()),
    ],
)
def test_every_field_of_the_contract_has_its_key(keys: dict[str, str], model: type, not_in_files: set[str]) -> None:
    assert set(keys) == set(model.model_fields) - not_in_files


def test_currencies_are_iso_codes() -> None:
    assert {"EUR", "USD", "GBP", "CHF", "JPY", "SEK", "PLN"} <= CURRENCIES
    assert all(len(code) == 3 and code.isupper() for code in CURRENCIES)
    assert not {"XXX", "XTS", "XAU", "HRK", "BGN", "ANG"} & CURRENCIES  # no test, metal or withdrawn codes


# -- files ------------------------------------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_package_checks_the_name_against_the_file(tmp_path: Path) -> None:
    assert load_package(write(tmp_path, "growth", GOOD)).name == "growth"
    with pytest.raises(PackageError) as caught:
        load_package(write(tmp_path, "other", GOOD))
    assert caught.value.lines() == [
        f'{tmp_path}/other.toml:1: name: "growth" differs from the file\'s name other.toml (a package is named '
        'after its file: rename the file or write name = "other")'
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"\xff\xfe", "not UTF-8 text (byte 0xff at offset 0)"),
    ],
)
def test_a_file_that_cannot_be_read(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "growth.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PackageError) as caught:
        load_package(path)
    assert caught.value.problems == [Problem(None, "", message)]


def test_package_path_refuses_what_is_not_a_name(tmp_path: Path) -> None:
    assert package_path(tmp_path, "growth") == tmp_path / "growth.toml"
    for bad in ("../etc/passwd", "Growth", "growth.toml", "", "a/b", "growth\n", "-growth", "growth-"):
        with pytest.raises(PackageError, match="not a package name"):
            package_path(tmp_path, bad)


def test_list_packages_sorted_with_bad_files_and_their_problems(tmp_path: Path) -> None:
    write(tmp_path, "starter", changed('name = "growth"', 'name = "starter"'))
    write(tmp_path, "growth", GOOD)
    write(tmp_path, "broken", 'name = "broken"\nprice = "abc"\n')
    write(tmp_path, ".#growth", "editor lock file")
    (tmp_path / "notes.txt").write_text("not a package")
    found = list_packages(tmp_path)
    assert [path.name for path, _ in found] == ["broken.toml", "growth.toml", "starter.toml"]
    broken = found[0][1]
    assert isinstance(broken, PackageError) and broken.problems[0].field == "price"
    assert isinstance(found[1][1], PackageSpec) and isinstance(found[2][1], PackageSpec)
    assert list_packages(tmp_path / "missing") == []


def test_find_package(tmp_path: Path) -> None:
    write(tmp_path, "growth", GOOD)
    write(tmp_path, "broken", 'name = "broken"\n')
    assert find_package(tmp_path, "growth").name == "growth"
    with pytest.raises(PackageNotFound) as missing:
        find_package(tmp_path, "starter")
    assert str(missing.value) == (
        f"{tmp_path}/starter.toml: no such package in {tmp_path} (the packages there: broken, growth)"
    )
    assert missing.value.known == ["broken", "growth"]
    with pytest.raises(PackageError) as bad:
        find_package(tmp_path, "broken")
    assert not isinstance(bad.value, PackageNotFound) and len(bad.value.problems) > 1
    with pytest.raises(PackageNotFound, match="it holds none yet"):
        find_package(tmp_path / "empty", "growth")


def test_with_name_changes_only_the_packages_name() -> None:
    text = changed('name = "growth"', 'name = "growth"   # the file name')
    renamed = with_name(text, "acme-special")
    assert renamed.splitlines()[0] == 'name = "acme-special"   # the file name'
    assert renamed.splitlines()[1:] == text.splitlines()[1:]  # the KPI's name too stays
    assert parse_package(renamed, file_stem="acme-special").kpis[0].name == "organic_sessions"
    with pytest.raises(ValueError, match="no line"):
        with_name("[[kpis]]\nname = 'x'\n", "growth")


# -- the keys of the work after the plan (delivery, sign-off, readability, auto-approval) --------------------------


def test_the_work_keys_parse_and_default() -> None:
    assert (parse_package(GOOD).delivery, parse_package(GOOD).qc_signoff) == (("email",), False)
    assert parse_package(GOOD).reading_grade is None and parse_package(GOOD).auto_approve_days is None
    keys = 'delivery = ["webhook", "email"]\nqc_signoff = true\nreading_grade = 11.5\nauto_approve_days = 5\n'
    spec = parse_package(changed('reporting = "monthly"\n', f'reporting = "monthly"\n{keys}'))
    assert spec.delivery == ("webhook", "email") and spec.qc_signoff is True
    assert spec.reading_grade == 11.5 and spec.auto_approve_days == 5


@pytest.mark.parametrize(
    ("line", "field", "says"),
    [
        ('delivery = ["email", "fax"]', "delivery", '"fax" is not one of email, webhook, folder'),
        ('delivery = ["email", "email"]', "delivery", "written twice"),
        ("delivery = []", "delivery", "not a list of methods"),
        ('qc_signoff = "yes"', "qc_signoff", "is not true or false"),
        ("reading_grade = 45", "reading_grade", "not a school grade between 1 and 30"),
        ("auto_approve_days = 0", "auto_approve_days", "too small"),
    ],
)
def test_the_work_keys_say_what_is_wrong(line: str, field: str, says: str) -> None:
    [problem] = problems(changed('reporting = "monthly"\n', f'reporting = "monthly"\n{line}\n'))
    assert problem.field == field and says in problem.message, problem


# -- the money terms (billing) -----------------------------------------------------------------------------------


def test_the_money_terms_default_and_parse() -> None:
    spec = parse_package(GOOD)
    assert (spec.term_months, spec.payment_days, spec.extra_round_price) == (12, 14, None)
    keys = 'term_months = 6\npayment_days = 0\nextra_round_price = "99.50"\n'
    spec = parse_package(changed('reporting = "monthly"\n', f'reporting = "monthly"\n{keys}'))
    assert (spec.term_months, spec.payment_days, spec.extra_round_price) == (6, 0, Decimal("99.50"))
    assert describe(spec).endswith("; 6-month term, invoices due on receipt, extra review round 99.50 EUR")
    spec = parse_package(changed('reporting = "monthly"\n', 'reporting = "monthly"\nextra_round_price = 0\n'))
    assert spec.extra_round_price == 0


@pytest.mark.parametrize(
    ("line", "field", "says"),
    [
        ("term_months = 0", "term_months", "too small"),
        ("term_months = 121", "term_months", "too large (at most 120)"),
        ('term_months = "12"', "term_months", "is text, not a whole number"),
        ("payment_days = -1", "payment_days", "too small"),
        ("payment_days = 366", "payment_days", "too large (at most 365)"),
        ("payment_days = 14.0", "payment_days", "not a whole number (write 14)"),
        ("extra_round_price = -5", "extra_round_price", "negative"),
        ("extra_round_price = 150.005", "extra_round_price", "more decimals than EUR has (2): write 150.01"),
        ('extra_round_price = "1,500.00"', "extra_round_price", "without thousands separators"),
    ],
)
def test_the_money_terms_say_what_is_wrong(line: str, field: str, says: str) -> None:
    [problem] = problems(changed('reporting = "monthly"\n', f'reporting = "monthly"\n{line}\n'))
    assert problem.field == field and says in problem.message, problem


def test_a_milestone_says_when_it_is_reached() -> None:
    text = changed('billing = "monthly"', 'billing = "milestones"') + MILESTONES.replace(
        'name = "kick-off"', 'name = "kick-off"\nat = "signed"'
    )
    spec = parse_package(text)
    assert [m.at for m in spec.milestones] == ["signed", None]
    [problem] = problems(text.replace('at = "signed"', 'at = "launch"'))
    assert problem.field == "milestones[0].at" and '"launch" is not one of signed, onboarding' in problem.message
