"""The invoice and the credit note as PDF files (fpdf2), with what Art. 226 of Directive
2006/112/EC asks an invoice to say: its date and sequential number, the seller's and (for the
reverse charge) the buyer's VAT numbers, both names and addresses, what was supplied and when,
the net amount per rate, the rate, the VAT, the total, and the reverse-charge or exemption note;
plus the due date and payment terms. Pure: the same invoice makes the same bytes (the PDF's date
is the invoice's).

Helvetica (built in, Latin-1) when every text fits it, else DejaVu Sans when installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from aicmo_actors.billing.money import shown
from aicmo_actors.billing.rules import Line
from aicmo_actors.gateways.pdf import FontPdf, fonts_for


@dataclass(frozen=True)
class Party:
    """A seller or a buyer as the invoice prints it."""

    name: str
    address: str = ""
    country: str = ""
    tax_id: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Paper:
    """Everything printed on one invoice or credit note."""

    title: str  # "Invoice" or "Credit note"
    number: str
    issued_on: date
    seller: Party
    buyer: Party
    currency: str
    lines: tuple[Line, ...]
    net: object
    tax_rate: object
    tax: object
    total: object
    due_on: date | None = None
    service_from: date | None = None
    service_to: date | None = None
    notes: tuple[str, ...] = ()
    terms: str = ""
    refers_to: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())


def _texts(paper: Paper) -> list[str]:
    parties = [paper.seller, paper.buyer]
    return [
        *(p.name for p in parties),
        *(p.address for p in parties),
        *(x.description for x in paper.lines),
        *paper.notes,
        paper.terms,
    ]


class _Pdf(FontPdf):
    def text_block(self, text: str, size: float = 10, *, bold: bool = False, height: float = 5) -> None:
        self.set_font(self.family_name, "B" if bold else "", size)
        self.multi_cell(0, height, self.clean(text), new_x="LMARGIN", new_y="NEXT")


def _party(party: Party, label: str) -> str:
    lines = [label, party.name]
    lines += [x.strip() for x in party.address.replace("\r", "").split("\n") if x.strip()]
    if party.country:
        lines.append(party.country)
    if party.tax_id:
        lines.append(f"VAT number: {party.tax_id}")
    return "\n".join(lines)


def pdf(paper: Paper, *, compress: bool = True) -> bytes:
    """`paper` as an A4 PDF."""
    document = _Pdf(fonts_for(_texts(paper)))
    document.set_compression(compress)
    when = datetime(paper.issued_on.year, paper.issued_on.month, paper.issued_on.day, tzinfo=UTC)
    document.set_creation_date(when)
    document.set_title(document.clean(f"{paper.title} {paper.number}"))
    document.set_author(document.clean(paper.seller.name))
    document.set_creator("AICMO billing")
    document.set_auto_page_break(True, margin=16)
    document.set_margins(16, 16, 16)
    document.add_page()
    document.text_block(f"{paper.title} {paper.number}", 18, bold=True, height=9)
    document.ln(2)
    top = document.get_y()
    document.set_font(document.family_name, "", 9)
    document.multi_cell(85, 4.5, document.clean(_party(paper.seller, "From")), new_x="RIGHT", new_y="TOP")
    document.set_xy(106, top)
    document.multi_cell(88, 4.5, document.clean(_party(paper.buyer, "To")), new_x="LMARGIN", new_y="NEXT")
    document.set_y(max(document.get_y(), top + 30))
    document.ln(3)
    facts = [(f"{paper.title} number", paper.number), ("Date of issue", paper.issued_on.isoformat())]
    if paper.service_from and paper.service_to:
        facts.append(("Service period", f"{paper.service_from.isoformat()} to {paper.service_to.isoformat()}"))
    else:
        facts.append(("Date of supply", paper.issued_on.isoformat()))
    if paper.due_on is not None:
        facts.append(("Due date", paper.due_on.isoformat()))
    if paper.refers_to:
        facts.append(("Cancels invoice", paper.refers_to))
    facts += list(paper.extra)
    document.set_font(document.family_name, "", 10)
    for label, value in facts:
        document.cell(45, 5.5, document.clean(label))
        document.cell(0, 5.5, document.clean(value), new_x="LMARGIN", new_y="NEXT")
    document.ln(4)
    widths = (100, 16, 33, 33)
    document.set_font(document.family_name, "B", 9)
    for width, head, align in zip(widths, ("Description", "Qty", "Unit price", "Amount"), "LRRR", strict=True):
        document.cell(width, 6, head, border="B", align=align)
    document.ln()
    document.set_font(document.family_name, "", 9)
    for item in paper.lines:
        y = document.get_y()
        document.multi_cell(widths[0], 5, document.clean(item.description), new_x="RIGHT", new_y="TOP")
        end = document.get_y()
        document.set_xy(16 + widths[0], y)
        document.cell(widths[1], 5, f"{item.quantity.normalize():f}", align="R")
        document.cell(widths[2], 5, shown(item.unit_price, paper.currency), align="R")
        document.cell(widths[3], 5, shown(item.amount, paper.currency), align="R")
        document.set_y(max(end, y + 5) + 1)
    document.ln(2)
    rate = f"{paper.tax_rate}"
    sums = [
        ("Net amount", shown(paper.net, paper.currency)),  # type: ignore[arg-type]
        (f"VAT {rate} %", shown(paper.tax, paper.currency)),  # type: ignore[arg-type]
        ("Total", shown(paper.total, paper.currency)),  # type: ignore[arg-type]
    ]
    for index, (label, value) in enumerate(sums):
        document.set_font(document.family_name, "B" if index == 2 else "", 10)
        document.cell(sum(widths[:3]), 6, document.clean(label), align="R")
        document.cell(widths[3], 6, document.clean(value), align="R", new_x="LMARGIN", new_y="NEXT")
    document.ln(4)
    for note in paper.notes:
        document.text_block(note, 9)
    if paper.terms:
        document.ln(1)
        document.text_block(paper.terms, 9)
    return bytes(document.output())
