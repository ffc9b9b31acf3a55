"""The reporting commands in process (`cli.main.main`) on SQLite: `report` writes the HTML and the
PDF and sends nothing, `reports` lists, `kpi import` takes all rows or none and names each bad
line, `reporting schedule` shows and changes; a user's mistake is one line, never a traceback."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from pypdf import PdfReader

from aicmo_actors.cli.main import main
from aicmo_actors.reporting.periods import parse_label
from aicmo_actors.reporting.render import report_email
from aicmo_actors.reporting.repos import NewClient, ReportingStore, report_key
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from tests.integration.test_reporting import CLIENT, PACKAGE

pytestmark = pytest.mark.integration

Run = Callable[..., tuple[int, str, str]]
NOW = datetime(2027, 1, 4, 9, tzinfo=UTC)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    for name in list(os.environ):
        if name.upper().startswith("AICMO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/aicmo.db"
    monkeypatch.setenv("AICMO_DATABASE_URL", url)
    monkeypatch.setenv("AICMO_AGENCY_NAME", "Bright Agency")

    async def prepare() -> None:
        await upgrade(url)
        engine = make_engine(url)
        store = ReportingStore(engine)
        new = NewClient(
            client_ref=str(CLIENT.client_ref),
            deal_id=7,
            company=CLIENT.company,
            contact_email=CLIENT.contact_email,
            client=CLIENT.model_dump(mode="json"),
            package=PACKAGE.model_dump(mode="json"),
            campaign="spring",
            start=NOW.date(),
            signed_at=NOW,
            period="month",
            hour=8,
            timezone=CLIENT.timezone,
            formats="html,pdf",
        )
        await store.learn_client(new, NOW)
        period = parse_label("2027-01")
        data = await store.report_data(new.client_ref, period, agency="Bright Agency")
        key = report_key(new.client_ref, period.label)
        message = report_email(
            data, mail_from="r@agency.example", to_address=new.contact_email, key=key, formats=("html", "pdf"), now=NOW
        )
        assert await store.record_report(new.client_ref, period, ("html", "pdf"), key, message, NOW)
        await engine.dispose()

    anyio.run(prepare)

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_report_writes_html_and_pdf(run: Run, tmp_path: Path) -> None:
    code, out, err = run("report", "acme logistics", "--period", "2027-01")
    assert code == 0, err
    html_path, pdf_path = (Path(line) for line in out.split())
    assert html_path.name == "report-acme-logistics-2027-01.html"
    assert "Acme Logistics: report for 2027-01" in html_path.read_text(encoding="utf-8")
    text = " ".join((PdfReader(io.BytesIO(pdf_path.read_bytes())).pages[0].extract_text() or "").split())
    assert "Acme Logistics: report for 2027-01" in text and "organic_sessions: - sessions" in text
    code, out, err = run("report", "ann@acme.example", "--period", "2027-W03", "--out", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "report-acme-logistics-2027-W03.pdf").is_file()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("report", "Nobody", "--period", "2027-01"), "error: no client 'Nobody'"),
        (("report", "Acme Logistics", "--period", "2027-13"), "error: period '2027-13' is not a date"),
        (("report", "Acme Logistics", "--period", "soon"), "error: period 'soon' is not one of"),
        (("report", "Acme Logistics", "--period", "2027-01", "--timezone", "Mars/X"), "error: unknown timezone"),
        (("reporting", "schedule", "Acme Logistics", "--timezone", "Mars/X"), "error: unknown timezone"),
        (("reporting", "schedule", "Acme Logistics", "--formats", "docx"), "error: formats 'docx'"),
        (("reports", "--client", "Nobody"), "error: no client 'Nobody'"),
    ],
)
def test_mistakes_are_one_line(run: Run, args: tuple[str, ...], says: str) -> None:
    code, _, err = run(*args)
    assert code == 2 and err.startswith(says) and len(err.strip().splitlines()) == 1, err


def test_reports_listed(run: Run) -> None:
    code, out, _ = run("reports")
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["COMPANY", "PERIOD", "DAYS"]
    assert "Acme Logistics" in row and "2027-01" in row and "queued" in row


def test_kpi_import_all_or_nothing(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "client,kpi,period,value\n"
        "Acme Logistics,organic_sessions,2027-01,1200\n"
        "Acme Logistics,likes,2027-01,3\n"
        "Nobody,organic_sessions,2027-01,3\n"
        "Acme Logistics,organic_sessions,2027-02,many\n",
        encoding="utf-8",
    )
    code, _, err = run("kpi", "import", str(bad))
    assert code == 1
    lines = err.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["bad.csv line 3", "bad.csv line 4", "bad.csv line 5"]
    assert "package has no KPI 'likes'" in lines[0] and "nothing imported: 3 bad rows" in lines[-1]
    assert run("kpi", "list")[1].startswith("No KPI values yet")
    good = tmp_path / "good.csv"
    good.write_text("client,kpi,period,value\nAcme Logistics,cost_per_lead,2027-01,44\n", encoding="utf-8")
    code, out, err = run("kpi", "import", str(good))
    assert code == 0 and out.startswith("1 KPI values imported"), err
    code, out, _ = run("kpi", "list", "--client", "acme logistics")
    assert "cost_per_lead" in out and "<= 50" in out and "yes" in out


def test_schedule_shown_and_changed(run: Run) -> None:
    code, out, _ = run("reporting", "schedule", "Acme Logistics")
    assert code == 0 and "period          month" in out and "hour            8" in out
    code, out, _ = run(
        "reporting", "schedule", "Acme Logistics", "--period", "week", "--hour", "7", "--campaigns", "spring"
    )
    assert code == 0 and "period          week" in out and "hour            7" in out and "spring" in out
    code, out, _ = run("reporting", "schedule", "Acme Logistics", "--off")
    assert "enabled         False" in out
    code, out, _ = run("reporting", "clients")
    assert "Acme Logistics" in out and "07:00 Europe/Berlin" in out and "off" in out
