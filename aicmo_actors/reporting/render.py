"""A report as people read it: the HTML email (tables and CSS-width bars: mail clients such as
Gmail and Outlook do not show SVG), the PDF (fpdf2, with its charts drawn by fpdf2's own
primitives), the plain text alternative, and the email that carries them. Pure: the same
report makes the same bytes (Message-ID and MIME boundary come from the report's key).

Client-provided text (company, names, KPI names, campaign names) only reaches the HTML through
Jinja2's sandbox with autoescape on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path

from fpdf import FPDF
from jinja2.sandbox import SandboxedEnvironment

from aicmo_actors.gateways.mail_message import build_message, make_message_id
from aicmo_actors.reporting.rules import DeliverableLine, progress

FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
)
_FAMILY = "dejavu"


@dataclass(frozen=True)
class KpiLine:
    name: str
    unit: str
    direction: str
    target: float
    value: float | None
    attained: bool | None
    #: (period label, value) of the latest periods of the same kind, oldest first, this one last.
    history: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class FunnelLine:
    campaign: str
    sent: int
    replies: int
    positive: int
    signed: int


@dataclass(frozen=True)
class Reviews:
    verdicts: int = 0
    approved: int = 0
    changes: int = 0
    items: int = 0


@dataclass(frozen=True)
class ReportData:
    """Everything one report says (read in one transaction, then rendered)."""

    agency: str
    company: str
    contact_name: str | None
    client_ref: str
    period: str
    first: date
    last: date
    timezone: str
    deliverables: tuple[DeliverableLine, ...] = ()
    delivered_in_period: int = 0
    reviews: Reviews = field(default_factory=Reviews)
    kpis: tuple[KpiLine, ...] = ()
    funnel: tuple[FunnelLine, ...] = ()

    @property
    def planned(self) -> int:
        return sum(d.planned for d in self.deliverables)

    @property
    def delivered(self) -> int:
        return sum(d.delivered for d in self.deliverables)

    @property
    def on_time(self) -> int:
        return sum(d.on_time for d in self.deliverables)


def number(value: float | None) -> str:
    """A figure as a report shows it: whole numbers without decimals, others with up to two."""
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)} %" if whole else "-"


def subject(data: ReportData) -> str:
    return f"{data.company}: your report for {data.period}"


def _bar(value: float | None, target: float, direction: str) -> int:
    return 0 if value is None else round(100 * progress(value, target, direction))


_TEMPLATE = """{% macro meter(width, colour) -%}
<div style="background: #e6e6e6; width: 100%;">
<div style="background: {{ colour }}; height: 10px; width: {{ width }}%;"></div></div>
{%- endmacro %}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="font-family: Helvetica, Arial, sans-serif; color: #222; max-width: 680px;">
<h1 style="font-size: 20px;">{{ d.company }}: report for {{ d.period }}</h1>
<p style="color: #666;">{{ d.first.isoformat() }} to {{ d.last.isoformat() }} ({{ d.timezone }}),
from {{ d.agency }}</p>
{% if d.contact_name %}<p>Dear {{ d.contact_name }},</p>{% endif %}
<p>here is what we planned and delivered for you in this period, and how your figures moved.</p>
<h2 style="font-size: 16px;">Deliverables</h2>
{% if d.deliverables %}
<table cellpadding="4" cellspacing="0" border="1" style="border-collapse: collapse; width: 100%;">
<tr style="background: #eee;"><th align="left">Type</th><th align="left">Channel</th><th>Planned</th>
<th>Delivered</th><th>On time</th><th align="left" width="35%">Done</th></tr>
{% for line in d.deliverables %}<tr><td>{{ line.type }}</td><td>{{ line.channel }}</td>
<td align="right">{{ line.planned }}</td><td align="right">{{ line.delivered }}</td>
<td align="right">{{ line.on_time }}</td>
<td>{{ meter(done(line), "#3c7dd9") }}</td></tr>
{% endfor %}
<tr><td colspan="2"><b>All</b></td><td align="right"><b>{{ d.planned }}</b></td>
<td align="right"><b>{{ d.delivered }}</b></td>
<td align="right"><b>{{ d.on_time }}</b></td><td>{{ pct(d.on_time, d.planned) }} on time</td></tr>
</table>
{% else %}<p>Nothing was planned for this period.</p>{% endif %}
<p>Delivered during the period: {{ d.delivered_in_period }}.</p>
<h2 style="font-size: 16px;">Reviews</h2>
<p>{{ d.reviews.verdicts }} verdicts on {{ d.reviews.items }} pieces: {{ d.reviews.approved }} approved,
{{ d.reviews.changes }} asked for changes.</p>
{% if d.kpis %}<h2 style="font-size: 16px;">Results against targets</h2>
<table cellpadding="4" cellspacing="0" border="1" style="border-collapse: collapse; width: 100%;">
<tr style="background: #eee;"><th align="left">KPI</th><th>Value</th><th>Target</th><th align="left">Status</th>
<th align="left" width="35%">Toward the target</th></tr>
{% for k in d.kpis %}<tr><td>{{ k.name }}{% if k.unit %} ({{ k.unit }}){% endif %}</td>
<td align="right">{{ num(k.value) }}</td>
<td align="right">{{ "&le;"|safe if k.direction == "down" else "&ge;"|safe }} {{ num(k.target) }}</td>
<td>{% if k.attained is none %}not measured{% elif k.attained %}attained{% else %}not attained{% endif %}</td>
<td>{{ meter(bar(k), "#2e9e5b" if k.attained else "#d98b3c") }}</td></tr>
{% endfor %}</table>{% endif %}
{% if d.funnel %}<h2 style="font-size: 16px;">Your lead generation</h2>
<table cellpadding="4" cellspacing="0" border="1" style="border-collapse: collapse; width: 100%;">
<tr style="background: #eee;"><th align="left">Campaign</th><th>Emails sent</th><th>Replies</th><th>Positive</th>
<th>Clients signed</th><th>Reply rate</th></tr>
{% for f in d.funnel %}<tr><td>{{ f.campaign }}</td><td align="right">{{ num(f.sent) }}</td>
<td align="right">{{ num(f.replies) }}</td><td align="right">{{ num(f.positive) }}</td>
<td align="right">{{ num(f.signed) }}</td><td align="right">{{ pct(f.replies, f.sent) }}</td></tr>
{% endfor %}</table>{% endif %}
{% if pdf %}<p>The charts are in the attached PDF.</p>{% endif %}
<p>Kind regards,<br>{{ d.agency }}</p>
</body></html>
"""


@lru_cache(maxsize=1)
def _template() -> object:
    environment = SandboxedEnvironment(autoescape=True)
    return environment.from_string(_TEMPLATE)


def html(data: ReportData, *, pdf_attached: bool = True) -> str:
    """The report as an HTML page (the email's body, and `report`'s .html file)."""
    template = _template()
    return template.render(  # type: ignore[attr-defined,no-any-return]
        d=data,
        title=subject(data),
        pdf=pdf_attached,
        num=number,
        pct=percent,
        done=lambda line: round(100 * line.delivered / line.planned) if line.planned else 100,
        bar=lambda k: _bar(k.value, k.target, k.direction),
    )


def text(data: ReportData, *, pdf_attached: bool = True) -> str:
    """The plain text alternative."""
    lines = [f"{data.company}: report for {data.period} ({data.first} to {data.last}, {data.timezone})", ""]
    if data.contact_name:
        lines += [f"Dear {data.contact_name},", ""]
    lines.append("Deliverables (planned / delivered / on time):")
    for d in data.deliverables:
        lines.append(f"  {d.type} on {d.channel}: {d.planned} / {d.delivered} / {d.on_time}")
    if not data.deliverables:
        lines.append("  nothing was planned for this period")
    lines.append(f"  all: {data.planned} / {data.delivered} / {data.on_time}")
    lines.append(f"Delivered during the period: {data.delivered_in_period}")
    r = data.reviews
    lines += ["", f"Reviews: {r.verdicts} verdicts on {r.items} pieces, {r.approved} approved, {r.changes} changes"]
    if data.kpis:
        lines += ["", "Results against targets:"]
        for k in data.kpis:
            state = "not measured" if k.attained is None else "attained" if k.attained else "not attained"
            sign = "<=" if k.direction == "down" else ">="
            unit = f" {k.unit}" if k.unit else ""
            lines.append(f"  {k.name}: {number(k.value)}{unit} (target {sign} {number(k.target)}): {state}")
    if data.funnel:
        lines += ["", "Lead generation (sent / replies / positive / signed):"]
        for f in data.funnel:
            lines.append(f"  {f.campaign}: {f.sent} / {f.replies} / {f.positive} / {f.signed}")
    if pdf_attached:
        lines += ["", "The charts are in the attached PDF."]
    lines += ["", "Kind regards,", data.agency]
    return "\n".join(lines) + "\n"


# -- PDF -------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def font_files() -> tuple[str, str] | None:
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).is_file() and Path(bold).is_file():
            return regular, bold
    return None


def _strings(data: ReportData) -> list[str]:
    found = [data.agency, data.company, data.contact_name or "", data.timezone]
    found += [s for d in data.deliverables for s in (d.type, d.channel)]
    found += [s for k in data.kpis for s in (k.name, k.unit)]
    found += [f.campaign for f in data.funnel]
    return found


def _latin1(data: ReportData) -> bool:
    try:
        for s in _strings(data):
            s.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class _ReportPdf(FPDF):
    def __init__(self, fonts: tuple[str, str] | None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        if fonts is not None:
            self.add_font(_FAMILY, "", fonts[0])
            self.add_font(_FAMILY, "B", fonts[1])
            self.family_name = _FAMILY
        else:
            self.family_name = "helvetica"
        self.unicode = fonts is not None

    def clean(self, value: str) -> str:
        if not self.unicode:
            return value.encode("latin-1", "replace").decode("latin-1")
        cmap: dict[int, str] = getattr(self.fonts[_FAMILY], "cmap", {})
        return "".join(c if ord(c) in cmap else "?" for c in value)

    def heading(self, value: str) -> None:
        self.ln(3)
        self.set_font(self.family_name, "B", 13)
        self.cell(0, 8, self.clean(value), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family_name, "", 10)

    def line_of_text(self, value: str, *, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", 10)
        self.multi_cell(0, 5.5, self.clean(value), new_x="LMARGIN", new_y="NEXT")

    def bars(
        self, title: str, rows: list[tuple[str, list[float]]], series: list[tuple[str, tuple[int, int, int]]]
    ) -> None:
        """A horizontal bar chart: one group per row (label, a value per series), scaled to the largest."""
        if not rows:
            return
        self.set_font(self.family_name, "B", 10)
        self.cell(0, 6, self.clean(title), new_x="LMARGIN", new_y="NEXT")
        top = max([v for _, values in rows for v in values] + [1.0])
        label_w, chart_w, bar_h = 50.0, 110.0, 4.0
        self.set_font(self.family_name, "", 8)
        for label, values in rows:
            if self.get_y() + bar_h * len(values) + 4 > self.h - 16:
                self.add_page()
            y = self.get_y()
            self.set_xy(self.l_margin, y)
            self.cell(label_w, bar_h, self.clean(label[:34]))
            for i, value in enumerate(values):
                colour = series[i][1]
                self.set_fill_color(*colour)
                width = max(0.3, chart_w * value / top) if value > 0 else 0.0
                if width:
                    self.rect(self.l_margin + label_w, y + i * bar_h, width, bar_h - 0.6, style="F")
                self.set_xy(self.l_margin + label_w + width + 1.5, y + i * bar_h)
                self.cell(20, bar_h - 0.6, number(value))
            self.set_xy(self.l_margin, y + bar_h * len(values) + 1.5)
        x = self.l_margin + label_w
        for name, colour in series:
            self.set_fill_color(*colour)
            self.rect(x, self.get_y() + 1, 3, 3, style="F")
            self.set_xy(x + 4, self.get_y())
            self.cell(35, 5, self.clean(name))
            x += 40
        self.ln(8)


PLANNED, DELIVERED, ON_TIME = (160, 160, 160), (60, 125, 217), (46, 158, 91)
VALUE, TARGET = (60, 125, 217), (200, 200, 200)


def pdf(data: ReportData, *, compress: bool = True, created: datetime | None = None) -> bytes:
    """The report as an A4 PDF: the same figures as the email, with charts (deliverables planned,
    delivered and on time; each KPI's recent values against its target; the funnel)."""
    document = _ReportPdf(None if _latin1(data) else font_files())
    document.set_compression(compress)
    if created is not None:
        document.set_creation_date(created)
    document.set_title(document.clean(subject(data)))
    document.set_author(document.clean(data.agency))
    document.set_creator("AICMO reporting")
    document.set_auto_page_break(True, margin=16)
    document.set_margins(16, 16, 16)
    document.add_page()
    document.set_font(document.family_name, "B", 16)
    document.multi_cell(
        0, 8, document.clean(f"{data.company}: report for {data.period}"), new_x="LMARGIN", new_y="NEXT"
    )
    document.set_font(document.family_name, "", 9)
    document.set_text_color(90)
    document.cell(
        0,
        5,
        document.clean(f"{data.first} to {data.last} ({data.timezone}), {data.agency}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    document.set_text_color(0)

    document.heading("Deliverables")
    document.line_of_text(
        f"Planned {data.planned}, delivered {data.delivered}, on time {data.on_time} "
        f"({percent(data.on_time, data.planned)}); delivered during the period: {data.delivered_in_period}."
    )
    document.bars(
        "Planned, delivered and on time, by type and channel",
        [(f"{d.type} / {d.channel}", [d.planned, d.delivered, d.on_time]) for d in data.deliverables],
        [("planned", PLANNED), ("delivered", DELIVERED), ("on time", ON_TIME)],
    )
    r = data.reviews
    document.heading("Reviews")
    document.line_of_text(
        f"{r.verdicts} verdicts on {r.items} pieces: {r.approved} approved, {r.changes} asked for changes."
    )
    if data.kpis:
        document.heading("Results against targets")
        for k in data.kpis:
            state = "not measured" if k.attained is None else "attained" if k.attained else "not attained"
            sign = "<=" if k.direction == "down" else ">="
            unit = f" {k.unit}" if k.unit else ""
            document.line_of_text(f"{k.name}: {number(k.value)}{unit} (target {sign} {number(k.target)}): {state}")
            history = list(k.history) or ([(data.period, k.value)] if k.value is not None else [])
            document.bars(
                f"{k.name}: recent periods against the target",
                [(label, [value, k.target]) for label, value in history],
                [("value", VALUE), ("target", TARGET)],
            )
    if data.funnel:
        document.heading("Lead generation")
        for f in data.funnel:
            document.line_of_text(
                f"{f.campaign}: {f.sent} emails sent, {f.replies} replies ({percent(f.replies, f.sent)}), "
                f"{f.positive} positive, {f.signed} clients signed."
            )
        document.bars(
            "Funnel by campaign",
            [(f.campaign, [f.sent, f.replies, f.positive, f.signed]) for f in data.funnel],
            [("sent", PLANNED), ("replies", DELIVERED), ("positive", ON_TIME), ("signed", (217, 139, 60))],
        )
    return bytes(document.output())


def file_name(company: str, period: str) -> str:
    """`report-<company>-<period>`, safe as a file name."""
    slug = "".join(c.lower() if c.isalnum() else "-" for c in company).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"report-{slug[:60] or 'client'}-{period}"


def report_email(
    data: ReportData,
    *,
    mail_from: str,
    to_address: str,
    key: str,
    formats: tuple[str, ...],
    now: datetime,
) -> EmailMessage:
    """The report's email to the client's contact: HTML (with a text alternative) when "html" is
    among `formats`, else the text alone; the PDF attached when "pdf" is."""
    domain = mail_from.rpartition("@")[2] or "localhost"
    message_id = make_message_id(domain, "report." + hashlib.sha256(key.encode()).hexdigest()[:32])
    attach = "pdf" in formats
    message = build_message(
        from_address=mail_from,
        from_name=data.agency,
        to_address=to_address,
        to_name=" ".join(data.contact_name.split()) if data.contact_name else None,
        subject=" ".join(subject(data).split()),
        text=text(data, pdf_attached=attach),
        html=html(data, pdf_attached=attach) if "html" in formats else None,
        message_id=message_id,
        date=now,
    )
    if attach:
        message.add_attachment(
            pdf(data, created=now),
            maintype="application",
            subtype="pdf",
            filename=f"{file_name(data.company, data.period)}.pdf",
        )
        message.set_boundary("mixed." + "".join(c for c in message_id if c.isalnum())[:40])
    return message
