"""`deal renew` and what `deal list` shows of renewals, in process, on the records folder (ann
replied interested; bob and cy are leads of other companies). The command line has no clock
but the wall's: each deal starts today, so that its contract is running whenever this runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from aicmo_actors.gateways.calendar import add_months
from tests.unit.cli_records.conftest import Folder, Run, one_error_line
from tests.unit.cli_records.test_deal_cli import _rows, packages

__all__ = ["packages"]


def _today() -> date:
    return datetime.now(UTC).date()


def _won(run: Run, address: str, package: str = "growth") -> dict[str, object]:
    """`deal won` for `address`, starting today: the deal as its JSON says."""
    code, out, err = run(
        "deal", "won", address, "--package", package, "--country", "DE", "--start", _today().isoformat(), "--json"
    )
    assert code == 0, err
    deal: dict[str, object] = json.loads(out)
    return deal


@pytest.fixture
def one_off(packages: Path) -> Path:
    """A package `launch` billed once, beside the monthly `growth`."""
    text = (packages / "growth.toml").read_text(encoding="utf-8").replace('\nname = "growth"', '\nname = "launch"', 1)
    text = text.replace('\nbilling = "monthly"', '\nbilling = "one_off"', 1)
    assert '\nname = "launch"' in text and '\nbilling = "one_off"' in text
    (packages / "launch.toml").write_text(text, encoding="utf-8")
    return packages


def test_a_renewal_prints_one_line_of_what_it_renewed(folder: Folder, packages: Path, run: Run) -> None:
    deal = _won(run, "ann@one.example.com")
    start = _today()
    code, out, err = run("deal", "renew", str(deal["deal"]), "--months", "3")
    assert code == 0, err
    end, renewed_end = add_months(start, 12), add_months(add_months(start, 12), 3)
    summary, after = out.splitlines()
    assert summary == f"deal {deal['deal']}: renewal 1, 3 more month(s) from {end} to {renewed_end}"
    assert after.startswith("The running service extends the project")
    assert _rows(folder, "SELECT deal_id, number, months, starts_on, ends_on FROM cam_renewals") == [
        (deal["deal"], 1, 3, end.isoformat(), renewed_end.isoformat())
    ]
    audit = _rows(folder, "SELECT action, target, source FROM identity_audit WHERE action = 'deal.renew'")
    assert audit == [("deal.renew", str(deal["deal"]), "cli")]


def test_a_renewal_as_json(folder: Folder, packages: Path, run: Run) -> None:
    deal = _won(run, "ann@one.example.com")
    start = _today()
    run("deal", "renew", str(deal["deal"]), "--months", "3")
    code, out, err = run("deal", "renew", str(deal["deal"]), "--months", "6", "--json")
    assert code == 0, err
    [line] = out.splitlines()
    renewal = json.loads(line)
    renewed_at = renewal.pop("renewed_at")
    assert abs((datetime.fromisoformat(renewed_at) - datetime.now(UTC)).total_seconds()) < 600
    assert renewal.pop("renewed_by").startswith("cli:")
    assert renewal == {
        "deal": deal["deal"],
        "number": 2,
        "months": 6,
        "starts_on": add_months(start, 15).isoformat(),
        "ends_on": add_months(add_months(start, 15), 6).isoformat(),
        "applied_at": None,
        "outcome": None,
    }


def test_what_cannot_be_renewed_is_one_line_on_stderr_and_a_non_zero_exit(
    folder: Folder, one_off: Path, run: Run
) -> None:
    monthly = _won(run, "ann@one.example.com")
    once = _won(run, "bob@two.example.com", "launch")
    cases = [
        (["999", "--months", "3"], "error: no deal 999 (python run.py deal list shows them)"),
        ([str(once["deal"]), "--months", "1"], f"error: deal {once['deal']} cannot be renewed: its package 'launch'"),
        ([str(monthly["deal"]), "--months", "0"], "the months must be 1 to 120, not 0"),
        ([str(monthly["deal"]), "--months", "121"], "the months must be 1 to 120, not 121"),
    ]
    for args, said in cases:
        code, out, err = run("deal", "renew", *args)
        assert code == 2, (args, out, err)
        assert said in one_error_line(err), (args, err)
        assert out == "", args
    assert _rows(folder, "SELECT count(*) FROM cam_renewals") == [(0,)]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["1"], "the following arguments are required: --months"),
        (["x", "--months", "3"], "argument DEAL: invalid int value: 'x'"),
        (["1", "--months", "three"], "argument --months: invalid int value: 'three'"),
    ],
)
def test_a_usage_mistake_exits_2_naming_the_argument_without_a_traceback(
    folder: Folder, packages: Path, run: Run, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    _won(run, "ann@one.example.com")
    with pytest.raises(SystemExit) as exited:
        run("deal", "renew", *args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    # argparse's usage, then its one line of error.
    assert err.splitlines()[-1] == f"python run.py deal renew: error: {said}", err
    assert "Traceback" not in err
    assert _rows(folder, "SELECT count(*) FROM cam_renewals") == [(0,)]


def test_renew_help_explains_what_renews_and_until_when(
    folder: Folder, run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run("deal", "renew", "--help")
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for said in (
        "--months N",
        "from the end of its term so far",
        "Only a monthly retainer renews, by whole periods, until 30 days after its end",
        "the deal's id (python run.py deal list)",
        "print the renewal as JSON",
    ):
        assert said in text, said
    with pytest.raises(SystemExit):
        run("deal", "--help")
    assert "the client renewed: MONTHS more of its monthly retainer" in " ".join(capsys.readouterr().out.split())


def test_deal_list_shows_the_new_end_and_how_many_renewals(folder: Folder, one_off: Path, run: Run) -> None:
    renewed = _won(run, "ann@one.example.com")
    other = _won(run, "bob@two.example.com", "launch")
    start = _today()
    code, out, err = run("deal", "list")
    assert code == 0, err
    before = _columns(out)
    assert [(r["PACKAGE"], r["ENDS"], r["RENEWED"]) for r in before] == [
        ("growth", add_months(start, 12).isoformat(), ""),
        ("launch", add_months(start, 12).isoformat(), ""),
    ]
    for months in ("3", "6"):
        code, _, err = run("deal", "renew", str(renewed["deal"]), "--months", months)
        assert code == 0, err
    code, out, err = run("deal", "list")
    assert code == 0, err
    after = _columns(out)
    assert [(r["PACKAGE"], r["ENDS"], r["RENEWED"]) for r in after] == [
        ("growth", add_months(start, 21).isoformat(), "2"),
        ("launch", add_months(start, 12).isoformat(), ""),
    ]
    code, out, err = run("deal", "list", "--json")
    assert code == 0, err
    listed = {d["deal"]: d for d in map(json.loads, out.splitlines())}
    assert listed[renewed["deal"]]["ends"] == add_months(start, 21).isoformat()
    assert [(r["number"], r["months"]) for r in listed[renewed["deal"]]["renewals"]] == [(1, 3), (2, 6)]
    assert listed[renewed["deal"]]["renewals"][1]["starts_on"] == add_months(start, 15).isoformat()
    assert (listed[other["deal"]]["ends"], listed[other["deal"]]["renewals"]) == (
        add_months(start, 12).isoformat(),
        [],
    )


def _columns(out: str) -> list[dict[str, str]]:
    """`deal list`'s table as one dict per row, cut where its header's columns begin."""
    lines = [line for line in out.splitlines() if line.strip()]
    header = next(i for i, line in enumerate(lines) if "ENDS" in line and "RENEWED" in line)
    names = lines[header].split()
    starts = [lines[header].index(name) for name in names]
    rows = []
    for line in lines[header + 1 :]:
        if set(line.strip()) <= {"-", " "}:
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows
