"""A report as people read it: the chart of the period (matplotlib, a PNG drawn in memory), the
HTML email (the chart as an inline `cid:` image, and tables with CSS-width bars for clients that
block images and for screen readers: Gmail and Outlook show neither SVG nor data: images), the
PDF (fpdf2, with the same PNG), the plain text alternative, and the email that carries them.
Pure: the same report makes the same bytes (Message-ID, Content-ID and MIME boundaries come from
the report's key; the PNG has no timestamp and a fixed size and resolution).

Client-provided text (company, names, KPI names, campaign names) only reaches the HTML through
Jinja2's sandbox with autoescape on.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from aicmo_actors.gateways.mail_message import build_message, make_message_id
from aicmo_actors.gateways.pdf import FontPdf, fonts_for
from aicmo_actors.reporting.rules import DeliverableLine, progress


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
{% if chart %}<p><img src="{{ chart.src }}" width="{{ chart.width }}" height="{{ chart.height }}" alt="{{ alt }}"
style="display: block; width: 100%; max-width: {{ chart.width }}px; height: auto; border: 0;"></p>{% endif %}
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
<p>{{ d.reviews.verdicts }} verdict{{ "" if d.reviews.verdicts == 1 else "s" }}
on {{ d.reviews.items }} piece{{ "" if d.reviews.items == 1 else "s" }}: {{ d.reviews.approved }} approved,
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


def html(data: ReportData, *, pdf_attached: bool = True, chart: ChartImage | None = None) -> str:
    """The report as an HTML page (the email's body, and `report`'s .html file); with `chart`, the
    chart of the period as an image (in the email, a `cid:` URL to its related part)."""
    template = _template()
    return template.render(  # type: ignore[attr-defined,no-any-return]
        d=data,
        title=subject(data),
        pdf=pdf_attached,
        chart=chart,
        alt=chart_alt(data),
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
    lines += [
        "",
        f"Reviews: {_count(r.verdicts, 'verdict')} on {_count(r.items, 'piece')}, "
        f"{r.approved} approved, {r.changes} changes",
    ]
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


# -- Chart -----------------------------------------------------------------------------------------------------------

#: The chart's width in inches and its resolution: fixed, so the same data draws the same pixels. Its height is
#: a function of the data alone (bar rows and KPI panels, see `_chart_rows`).
CHART_WIDTH_IN = 6.8
CHART_DPI = 150
#: The width the HTML email shows the chart at, in CSS pixels (the page is at most 680 px wide).
CHART_HTML_WIDTH = 680
_GREY, _BLUE, _GREEN, _ORANGE, _INK = "#a0a0a0", "#3c7dd9", "#2e9e5b", "#d98b3c", "#555555"
_DELIVERABLE_SERIES = (("planned", _GREY), ("delivered", _BLUE), ("on time", _GREEN))
_FUNNEL_SERIES = (("sent", _GREY), ("replies", _BLUE), ("positive", _GREEN), ("signed", _ORANGE))
_LABEL_CHARS = 34


@dataclass(frozen=True)
class ChartImage:
    """Where the HTML finds the chart (`cid:...` in the email) and the size it shows it at (CSS px)."""

    src: str
    width: int
    height: int

    @classmethod
    def of(cls, src: str, png: bytes) -> ChartImage:
        px_width, px_height = png_size(png)
        return cls(src, CHART_HTML_WIDTH, round(CHART_HTML_WIDTH * px_height / px_width))


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from the PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _kpi_history(data: ReportData, kpi: KpiLine) -> list[tuple[str, float]]:
    return list(kpi.history) or ([(data.period, kpi.value)] if kpi.value is not None else [])


def _charted_kpis(data: ReportData) -> list[tuple[KpiLine, list[tuple[str, float]]]]:
    """The KPIs with a value to chart (this period's or recent ones), with those values, oldest first."""
    return [(k, history) for k in data.kpis if (history := _kpi_history(data, k))]


def chart_alt(data: ReportData) -> str:
    """The chart said in words (the img's alt text, the PDF image's alternative text)."""
    parts = []
    if data.deliverables:
        parts.append(
            "deliverables planned, delivered and on time by type and channel "
            f"(all: {data.planned} planned, {data.delivered} delivered, {data.on_time} on time)"
        )
    kpis = _charted_kpis(data)
    if kpis:
        names = ", ".join(k.name for k, _ in kpis)
        parts.append(f"recent values of {names} against their targets")
    if data.funnel:
        parts.append("emails sent, replies, positive replies and clients signed by campaign")
    if not parts:
        return f"Chart for {data.period}: nothing to chart."
    return f"Chart for {data.period}: " + "; ".join(parts) + ". This period's figures are also given as text."


def _chart_rows(data: ReportData) -> list[tuple[str, float]]:
    """The chart's rows, top to bottom: (what, height in inches). KPIs go two to a row."""
    rows: list[tuple[str, float]] = []
    if data.deliverables:
        rows.append(("deliverables", 0.8 + 0.42 * len(data.deliverables)))
    kpis = len(_charted_kpis(data))
    rows += [("kpis", 2.0)] * ((kpis + 1) // 2)
    if data.funnel:
        rows.append(("funnel", 0.8 + 0.5 * len(data.funnel)))
    return rows


@lru_cache(maxsize=1)
def _chart_fonts() -> tuple[str, str, frozenset[int]]:
    """matplotlib's own DejaVu Sans (regular, bold) and the characters it has."""
    import matplotlib
    from matplotlib.font_manager import get_font

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    regular, bold = str(folder / "DejaVuSans.ttf"), str(folder / "DejaVuSans-Bold.ttf")
    return regular, bold, frozenset(get_font(regular).get_charmap())


def _label(value: str, glyphs: frozenset[int], limit: int = _LABEL_CHARS) -> str:
    """Client text as a chart label: one line, cut to `limit`, "?" for what the font cannot draw,
    "$" escaped (matplotlib would read "$...$" as mathematics, and fail on a bad formula)."""
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    value = "".join(c if ord(c) in glyphs else "?" for c in value)
    return value.replace("$", r"\$")


def chart_png(data: ReportData) -> bytes | None:
    """The chart of the period as PNG bytes, or None when there is nothing to chart: deliverables
    planned, delivered and on time by type and channel; each measured KPI's recent values against
    its target (this period's bar green when attained, orange when not); the funnel by campaign.

    matplotlib is imported here, not with this module (it takes about half a second), and used
    without pyplot: a `Figure` of its own drawn by the Agg canvas, no global state, nothing to
    close. The same data gives the same bytes: fixed width and resolution, the bundled DejaVu
    Sans, no metadata (no "Software", no time) in the PNG.
    """
    rows = _chart_rows(data)
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    regular, bold, glyphs = _chart_fonts()
    fonts = _Fonts(
        FontProperties(fname=regular, size=8), FontProperties(fname=regular, size=7), FontProperties(fname=bold, size=9)
    )
    figure = Figure(
        figsize=(CHART_WIDTH_IN, sum(h for _, h in rows)), dpi=CHART_DPI, facecolor="white", layout="constrained"
    )
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(len(rows), 2, height_ratios=[h for _, h in rows])
    kpis = iter(_charted_kpis(data))
    for row, (what, _) in enumerate(rows):
        if what == "deliverables":
            _hbars(
                figure.add_subplot(grid[row, :]),
                "Deliverables: planned, delivered and on time",
                [
                    (_label(f"{d.type} / {d.channel}", glyphs), [d.planned, d.delivered, d.on_time])
                    for d in data.deliverables
                ],
                _DELIVERABLE_SERIES,
                fonts,
            )
        elif what == "funnel":
            _hbars(
                figure.add_subplot(grid[row, :]),
                "Lead generation by campaign",
                [(_label(f.campaign, glyphs), [f.sent, f.replies, f.positive, f.signed]) for f in data.funnel],
                _FUNNEL_SERIES,
                fonts,
            )
        else:
            for column in range(2):
                found = next(kpis, None)
                if found is not None:
                    _kpi_bars(figure.add_subplot(grid[row, column]), data.period, *found, glyphs, fonts)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=CHART_DPI, facecolor="white", metadata={"Software": None})
    return out.getvalue()


@dataclass(frozen=True)
class _Fonts:
    text: object
    small: object
    title: object


def _hbars(
    axes: Any, title: str, rows: list[tuple[str, list[float]]], series: tuple[tuple[str, str], ...], fonts: _Fonts
) -> None:
    """Horizontal bars: a group per row (label, a value per series), each bar labelled with its value."""
    step = 0.8 / len(series)
    for i, (name, colour) in enumerate(series):
        values = [row_values[i] for _, row_values in rows]
        offset = (i - (len(series) - 1) / 2) * step
        bars = axes.barh([r + offset for r in range(len(rows))], values, height=step * 0.9, color=colour, label=name)
        axes.bar_label(bars, labels=[number(v) for v in values], padding=2, fontproperties=fonts.small)
    top = max([v for _, row_values in rows for v in row_values] + [1.0])
    axes.set_xlim(0, top * 1.15)
    axes.set_yticks(range(len(rows)), labels=[label for label, _ in rows], fontproperties=fonts.text)
    axes.invert_yaxis()
    axes.xaxis.set_visible(False)
    axes.tick_params(axis="y", length=0)
    for side in ("top", "right", "bottom"):
        axes.spines[side].set_visible(False)
    axes.set_title(title, loc="left", fontproperties=fonts.title)
    axes.legend(
        loc="upper left",
        bbox_to_anchor=(0, 0),
        ncols=len(series),
        frameon=False,
        prop=fonts.small,
        handlelength=1,
        borderaxespad=0.2,
    )


def _kpi_bars(
    axes: Any,
    period: str,
    kpi: KpiLine,
    history: list[tuple[str, float]],
    glyphs: frozenset[int],
    fonts: _Fonts,
) -> None:
    """One KPI's recent values as columns, its target as a dashed line."""
    values = [value for _, value in history]
    colours = [
        (_GREEN if kpi.attained else _ORANGE) if label == period and kpi.attained is not None else _BLUE
        for label, _ in history
    ]
    bars = axes.bar(range(len(values)), values, width=0.6, color=colours)
    axes.bar_label(bars, labels=[number(v) for v in values], padding=2, fontproperties=fonts.small)
    axes.axhline(kpi.target, color=_INK, linestyle="--", linewidth=1)
    labels = [_label(label, glyphs, 24) for label, _ in history]
    turned = len(labels) * max(len(label) for label in labels) > 32  # (about what fits across half the width)
    axes.set_xticks(
        range(len(values)),
        labels=labels,
        fontproperties=fonts.small,
        rotation=30 if turned else 0,
        ha="right" if turned else "center",
    )
    low, high = min([*values, kpi.target, 0.0]), max([*values, kpi.target, 0.0])
    axes.set_ylim(low * 1.18, high * 1.18 if high > 0 else 1.0)
    axes.yaxis.set_visible(False)
    axes.tick_params(axis="x", length=0)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    unit = f" ({_label(kpi.unit, glyphs, 16)})" if kpi.unit else ""
    sign = "\u2264" if kpi.direction == "down" else "\u2265"
    axes.set_title(
        f"{_label(kpi.name, glyphs, 28)}{unit}\ntarget {sign} {number(kpi.target)} (dashed)",
        loc="left",
        fontproperties=fonts.title,
    )


# -- PDF -------------------------------------------------------------------------------------------------------------


def _strings(data: ReportData) -> list[str]:
    found = [data.agency, data.company, data.contact_name or "", data.timezone]
    found += [s for d in data.deliverables for s in (d.type, d.channel)]
    found += [s for k in data.kpis for s in (k.name, k.unit)]
    found += [f.campaign for f in data.funnel]
    return found


class _ReportPdf(FontPdf):
    KEEP = ""  # one-line cells: a line break is printed as "?"

    def heading(self, value: str) -> None:
        self.ln(3)
        self.set_font(self.family_name, "B", 13)
        self.cell(0, 8, self.clean(value), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family_name, "", 10)

    def line_of_text(self, value: str, *, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", 10)
        self.multi_cell(0, 5.5, self.clean(value), new_x="LMARGIN", new_y="NEXT")


def pdf(data: ReportData, *, compress: bool = True, created: datetime | None = None) -> bytes:
    """The report as an A4 PDF: the same figures as the email, and the chart of the period
    (`chart_png`: deliverables planned, delivered and on time; each KPI's recent values against
    its target; the funnel) at the end."""
    return _pdf(data, compress=compress, created=created, chart=chart_png(data))


def _pdf(data: ReportData, *, compress: bool, created: datetime | None, chart: bytes | None) -> bytes:
    document = _ReportPdf(fonts_for(_strings(data)))
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
    r = data.reviews
    document.heading("Reviews")
    document.line_of_text(
        f"{_count(r.verdicts, 'verdict')} on {_count(r.items, 'piece')}: "
        f"{r.approved} approved, {r.changes} asked for changes."
    )
    if data.kpis:
        document.heading("Results against targets")
        for k in data.kpis:
            state = "not measured" if k.attained is None else "attained" if k.attained else "not attained"
            sign = "<=" if k.direction == "down" else ">="
            unit = f" {k.unit}" if k.unit else ""
            document.line_of_text(f"{k.name}: {number(k.value)}{unit} (target {sign} {number(k.target)}): {state}")
    if data.funnel:
        document.heading("Lead generation")
        for f in data.funnel:
            document.line_of_text(
                f"{f.campaign}: {f.sent} emails sent, {f.replies} replies ({percent(f.replies, f.sent)}), "
                f"{f.positive} positive, {f.signed} clients signed."
            )
    if chart is not None:
        px_width, px_height = png_size(chart)
        width = document.epw
        height = width * px_height / px_width
        if height > document.eph:  # a very long chart: as tall as a page, narrower
            width, height = width * document.eph / height, document.eph
        if document.get_y() + 11 + height > document.h - document.b_margin:
            document.add_page()
        document.heading("Charts")
        document.image(io.BytesIO(chart), w=width, h=height, alt_text=document.clean(chart_alt(data)))
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
    among `formats`, else the text alone; the PDF attached when "pdf" is. The chart of the period
    is drawn once, for both: in the HTML it is an inline image, a `multipart/related` part next to
    the HTML that the img's `cid:` URL names (Content-ID from the key)."""
    domain = mail_from.rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    message_id = make_message_id(domain, "report." + digest)
    attach = "pdf" in formats
    with_html = "html" in formats
    chart = chart_png(data) if attach or with_html else None
    content_id = make_message_id(domain, "chart." + digest)
    inline = ChartImage.of("cid:" + content_id[1:-1], chart) if chart is not None and with_html else None
    message = build_message(
        from_address=mail_from,
        from_name=data.agency,
        to_address=to_address,
        to_name=" ".join(data.contact_name.split()) if data.contact_name else None,
        subject=" ".join(subject(data).split()),
        text=text(data, pdf_attached=attach),
        html=html(data, pdf_attached=attach, chart=inline) if with_html else None,
        message_id=message_id,
        date=now,
    )
    boundary = "".join(c for c in message_id if c.isalnum())[:40]
    body = message.get_body(("html",))
    if chart is not None and inline is not None and body is not None:
        # The HTML part becomes multipart/related: the HTML first (the root), then the PNG.
        body.add_related(
            chart, maintype="image", subtype="png", cid=content_id, disposition="inline", filename="chart.png"
        )
        body.set_param("type", "text/html")  # RFC 2387: the root's type
        body.set_boundary("rel." + boundary)
    if attach:
        message.add_attachment(
            _pdf(data, compress=True, created=now, chart=chart),
            maintype="application",
            subtype="pdf",
            filename=f"{file_name(data.company, data.period)}.pdf",
        )
        message.set_boundary("mixed." + boundary)
    return message


def _count(n: int, word: str) -> str:
    """ "1 verdict", "3 verdicts"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
