"""The billing commands in process (`cli.main.main`) on SQLite: `invoices` lists (and --overdue),
`invoice ID` shows one and writes its PDF, `pay` records full, partial and over payments,
`invoice cancel` makes a credit note, `invoice milestone` marks one reached; a user's mistake is
one line, never a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from pypdf import PdfReader

from aicmo_actors.billing import BillingStore
from aicmo_actors.billing.emails import Letterhead
from aicmo_actors.billing.rules import NewInvoice, line
from aicmo_actors.billing.tax import tax_for
from aicmo_actors.cli.main import main
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from tests.integration.test_billing import CLIENT, MILESTONES, PROJECT

Run = Callable[..., tuple[int, str, str]]
HEAD = Letterhead(
    mail_from="billing@bright.example", agency_name="Bright Agency GmbH", agency_country="DE", agency_tax_id="DE123"
)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    for name in list(os.environ):
        if name.upper().startswith("AICMO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/aicmo.db"
    monkeypatch.setenv("AICMO_DATABASE_URL", url)
    now = datetime.now(UTC)

    async def prepare() -> None:
        await upgrade(url)
        engine = make_engine(url)
        store = BillingStore(engine)
        client = CLIENT.model_dump(mode="json")
        tax = tax_for(agency_country="DE", client_country="FR", client_tax_id=CLIENT.tax_id)
        for key, price, days_ago in (("a", "2500.00", 40), ("b", "150.00", 1)):
            new = NewInvoice(
                key=key,
                kind="retainer" if key == "a" else "extra_round",
                client=client,
                currency="EUR",
                lines=(line(f"work {key}", Decimal(price), "EUR"),),
                tax=tax,
                payment_days=14,
            )
            issued = now - timedelta(days=days_ago)
            assert await store.billing.issue(HEAD, new, today=issued.date(), now=issued) is not None
        await store.billing.open_account(
            deal_id=3,
            client=client,
            package=MILESTONES.model_dump(mode="json"),
            start_on=now.date(),
            signed_at=now,
            now=now,
        )
        await store.billing.link_project(str(PROJECT), 3)
        await engine.dispose()

    anyio.run(prepare)

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_list_show_pdf_pay_cancel_and_milestone(run: Run, tmp_path: Path) -> None:
    year = datetime.now(UTC).year
    first, second = f"{(datetime.now(UTC) - timedelta(days=40)).year}-0001", None
    code, out, _ = run("invoices")
    assert code == 0 and "Acme Logistique SAS" in out and "2,500.00 EUR" in out
    code, out, _ = run("invoices", "--overdue", "--json")
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["number"] for r in rows] == [first] and rows[0]["balance"] == "2500.00"
    second = json.loads(run("invoices", "--json", "--client", "acme")[1].splitlines()[0])["number"]
    assert second.startswith(f"{year}-")

    code, out, _ = run("invoice", first)
    assert code == 0 and "Reverse charge" in out and "balance:   2,500.00 EUR" in out
    code, out, _ = run("invoice", first, "--pdf", str(tmp_path / "i.pdf"))
    assert code == 0 and "wrote" in out
    text = " ".join((PdfReader(tmp_path / "i.pdf").pages[0].extract_text() or "").split())
    assert f"Invoice {first}" in text and "VAT number: DE123" in text

    code, out, _ = run("pay", first, "1000")
    assert code == 0 and "still owed: 1,500.00 EUR" in out
    code, out, _ = run("invoice", "pay", first, "1510.00", "--note", "bank ref 42")
    assert code == 0 and "paid over: a credit of 10.00 EUR" in out
    detail = json.loads(run("invoice", first, "--json")[1])
    assert (detail["state"], detail["balance"], len(detail["payments"])) == ("paid", "-10.00", 2)

    code, out, _ = run("invoice", "cancel", second, "--yes", "--reason", "sent by mistake")
    assert code == 0 and f"credit note CN-{year}-0001" in out
    code, out, _ = run("invoice", f"CN-{year}-0001")
    assert code == 0 and "credited by credit note" in out

    code, out, _ = run("invoice", "milestone", str(PROJECT)[:8], "site launched")
    assert code == 0 and "invoices it within a tick" in out
    code, out, _ = run("invoice", "milestone", str(PROJECT)[:8], "site launched")
    assert code == 0 and "reached already" in out


MISTAKES = [
    (("invoice", "2031-0099"), "no invoice '2031-0099'"),
    (("pay", "NUMBER", "10"), "no invoice 'NUMBER'"),
    (("pay", "FIRST", "10.005"), "more decimals than EUR has (2)"),
    (("pay", "FIRST", "1.000,00"), "not an amount"),
    (("pay", "FIRST", "0"), "more than 0"),
    (("invoice", "milestone", "0b5e2f3a", "launch"), "no milestone 'launch'"),
    (("invoice", "cancel"), "usage: python run.py invoice cancel"),
    (("invoice", "FIRST", "extra"), "say one invoice"),
]


def test_mistakes_are_one_line(run: Run) -> None:
    first = f"{(datetime.now(UTC) - timedelta(days=40)).year}-0001"
    for args, says in MISTAKES:
        code, _out, err = run(*(first if a == "FIRST" else a for a in args))
        assert code != 0 and says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
