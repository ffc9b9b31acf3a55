"""Starting the service does not import the libraries that only draw or parse documents: they load
on first use (a PDF, a chart, a Word file, an invitation, a business-day count, a QC check), so
`python run.py` and every process the kill tests start do not pay for them."""

from __future__ import annotations

import json
import subprocess
import sys

#: Imported by the function that uses each, never by `import aicmo_actors.cli.service`.
ON_FIRST_USE = (
    "fpdf",  # gateways.pdf: the PDFs of billing, delivery, reporting, strategy
    "matplotlib",  # reporting.render: the chart
    "holidays",  # gateways.calendar: business days
    "docx",  # delivery.documents: the Word file
    "icalendar",  # onboarding.invite: the kickoff invitation
    "markdown_it",  # production.drafting, qc.prose
    "phonenumbers",  # qc.checks
    "pyphen",  # qc.checks
    "rapidfuzz",  # qc.checks
)


def test_importing_the_service_leaves_document_libraries_unloaded() -> None:
    code = (
        "import json, sys\n"
        "import aicmo_actors.cli.service\n"
        f"print(json.dumps(sorted(name for name in {ON_FIRST_USE!r} if name in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == []


def test_a_pdf_class_is_an_fpdf_document_with_its_own_methods_first() -> None:
    from fpdf import FPDF

    from aicmo_actors.gateways.pdf import FontPdf

    class Footed(FontPdf):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(self.family_name, "", 8)
            self.cell(0, 6, self.clean(f"page {self.page_no()}"))

    document = Footed(None)
    assert isinstance(document, FPDF)
    assert isinstance(document, Footed)
    assert type(document) is type(Footed(None))  # one class per subclass, made once
    document.set_compression(False)
    document.add_page()
    assert b"(page 1)" in bytes(document.output())


def test_the_service_is_loaded_with_the_collector_off_then_frozen_and_the_collector_back_on() -> None:
    code = (
        "import gc, json\n"
        "from aicmo_actors.cli.startup import imports_without_gc\n"
        "seen = []\n"
        "gc.callbacks.append(lambda phase, info: seen.append(info['generation']) if phase == 'start' else None)\n"
        "with imports_without_gc():\n"
        "    import aicmo_actors.cli.service\n"
        "print(json.dumps({'collections': len(seen), 'frozen': gc.get_freeze_count(), 'on': gc.isenabled()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    found = json.loads(done.stdout)
    assert found["collections"] == 0 and found["on"]
    assert found["frozen"] > 100_000  # the modules' objects, out of every later collection's way
