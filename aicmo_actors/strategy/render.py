"""The plan as a person reads it: HTML (for the client's page) and PDF (attached to the email).

Both show the same things: the client's name, the period, the summary, the changes the
client asked for, the calendar (due date, deliverable, channel, topic, length), the KPIs
with their targets, and the notes. Pure: the same plan gives the same bytes (the PDF's
creation date is the plan's, handed in).

HTML comes from the templates in `templates/`, through a sandboxed Jinja2 environment with
autoescaping: a brief's answer such as ``<script>`` is shown as text, never run. The
fragment (`render_html`) is an ``<article>`` with no style of its own; the client's page
(`web.py`) and `html_document` put it in a page.

The PDF is drawn with fpdf2 in the PDF's built-in Helvetica when Latin-1 holds every text of
the plan, else in DejaVu Sans when that font is installed (any Unicode text the font has a
glyph for; a character it lacks is printed as "?"), otherwise in Helvetica (Latin-1 only:
other characters are printed as "?"). `font_files()` says whether DejaVu was found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from aicmo_actors.gateways.pdf import FontPdf, fonts_for
from aicmo_actors.strategy import texts
from aicmo_actors.strategy.plan import Plan, PlanItem, PlanKpi

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _length_text(item: PlanItem) -> str:
    return texts.length_limits(item.min_words, item.max_words, item.max_chars)


def _kpi_target(kpi: PlanKpi) -> str:
    return texts.kpi_target(kpi.target, kpi.unit, kpi.direction)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The module's one Jinja2 environment: sandboxed, autoescaped, strict about undefined names."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        day=texts.day,
        short_day=texts.short_day,
        type_label=texts.type_label,
        channel_label=texts.channel_label,
        length_text=_length_text,
        kpi_target=_kpi_target,
        round_outcome=lambda r: texts.round_outcome(r.version, r.topics_changed, r.avoided),
    )
    return env


def render_html(plan: Plan, *, agency: str = "") -> str:
    """The plan as an HTML fragment (an ``<article>``), every value escaped."""
    return environment().get_template("plan.html").render(plan=plan, agency=agency)


def html_document(fragment: str, *, title: str) -> str:
    """A fragment of `render_html` as a page of its own (no script, readable on a phone)."""
    return environment().get_template("document.html").render(title=title, body=Markup(fragment))


# -- PDF -----------------------------------------------------------------------------------------------------------


class _PlanPdf(FontPdf):
    def __init__(self, fonts: tuple[str, str] | None, footer_text: str) -> None:
        super().__init__(fonts)
        self.footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family_name, "", 8)
        self.set_text_color(110)
        self.cell(0, 6, self.clean(f"{self.footer_text} - page {self.page_no()}"), align="C")
        self.set_text_color(0)


def _heading(pdf: _PlanPdf, text: str) -> None:
    pdf.ln(4)
    pdf.set_font(pdf.family_name, "B", 13)
    pdf.multi_cell(0, 7, pdf.clean(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family_name, "", 10)


def _paragraph(pdf: _PlanPdf, text: str, size: float = 10) -> None:
    pdf.set_font(pdf.family_name, "", size)
    pdf.multi_cell(0, 5, pdf.clean(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _table(pdf: _PlanPdf, header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]) -> None:
    from fpdf.fonts import FontFace  # fpdf2 loads with the first document (see gateways.pdf)

    pdf.set_font(pdf.family_name, "", 9)
    with pdf.table(
        col_widths=tuple(widths),
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
        line_height=5,
        text_align="LEFT",
        first_row_as_headings=True,
    ) as table:
        row = table.row()
        for cell in header:
            row.cell(pdf.clean(cell))
        for values in rows:
            row = table.row()
            for cell in values:
                row.cell(pdf.clean(cell))


def _strings(value: object) -> Iterator[str]:
    """Every text in `value` (a plan: its dataclasses, tuples and mappings, walked whole, so a
    field added later is not missed). Pure."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            yield from _strings(item)


@lru_cache(maxsize=8)
def render_pdf(
    plan: Plan,
    *,
    agency: str = "",
    created: datetime,
    fonts: tuple[str, str] | Literal["auto"] | None = "auto",
    compress: bool = True,
) -> bytes:
    """The plan as a PDF document (A4). `created` is its creation date (the same plan and date
    give the same bytes); `fonts`: "auto" uses Helvetica when Latin-1 holds every text of the
    plan, else DejaVu Sans (`fonts_for`, as the invoice, the report and the delivered piece
    choose; a third of the time of embedding a font), None uses Helvetica, a (regular, bold)
    pair of TTF paths uses those. `compress=False` leaves the content streams readable (tests).

    Pure, and a draft made again after a crash asks for the same bytes: the last few are kept
    (a plan's calendar table takes about 0.1 s to draw)."""
    chosen = fonts_for([agency, *_strings(plan)]) if fonts == "auto" else fonts
    title = f"Plan for {plan.company}"
    pdf = _PlanPdf(chosen, f"{title}, version {plan.version}")
    pdf.set_compression(compress)
    pdf.set_creation_date(created)
    pdf.set_title(pdf.clean(title))
    pdf.set_author(pdf.clean(agency or "AICMO"))
    pdf.set_creator("AICMO strategy")
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(12, 12, 12)
    pdf.add_page()

    pdf.set_font(pdf.family_name, "B", 18)
    pdf.multi_cell(0, 9, pdf.clean(title), new_x="LMARGIN", new_y="NEXT")
    period = f"{texts.day(plan.period_start)} to {texts.day(plan.period_end)}"
    meta = f"{plan.package_title} - {period} - version {plan.version}" + (f" - prepared by {agency}" if agency else "")
    _paragraph(pdf, meta, 9)
    _paragraph(pdf, plan.summary)

    if plan.changes:
        _heading(pdf, "Changes requested")
        for round_ in plan.changes:
            _paragraph(pdf, f"Your comments on version {round_.version}:")
            pdf.set_x(pdf.l_margin + 6)
            pdf.set_font(pdf.family_name, "", 9)
            pdf.multi_cell(0, 5, pdf.clean(round_.comments), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
            _paragraph(pdf, texts.round_outcome(round_.version, round_.topics_changed, round_.avoided))

    _heading(pdf, "Calendar")
    if plan.items:
        rows = [
            [
                texts.short_day(item.due),
                f"{texts.type_label(item.type)} {item.piece}",
                texts.channel_label(item.channel),
                item.topic,
                _length_text(item),
            ]
            for item in plan.items
        ]
        _table(pdf, ["Due", "Deliverable", "Channel", "Topic", "Length"], rows, (28, 26, 20, 86, 26))
    else:
        _paragraph(pdf, "No deliverables in this period.")

    _heading(pdf, "KPIs and targets")
    if plan.kpis:
        rows = [[k.label, _kpi_target(k), k.baseline_note] for k in plan.kpis]
        _table(pdf, ["KPI", "Target for the period", "Baseline"], rows, (50, 46, 90))
    else:
        _paragraph(pdf, "Your package names no KPI: we report on the deliverables themselves.")

    _heading(pdf, "Notes")
    notes = list(plan.notes)
    if plan.holidays:
        listed = ", ".join(f"{texts.day(d)} ({name})" for d, name in plan.holidays)
        notes.append(f"Public holidays in the period (not business days): {listed}.")
    for note in notes:
        _paragraph(pdf, f"- {note}")
    return bytes(pdf.output())
