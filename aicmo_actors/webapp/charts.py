"""Charts for the web app: SVG made on the server with pygal and put inline in the page.

No JavaScript, in the page or in the chart (pygal's config script is taken out), so a chart
shows with JavaScript off; the numbers behind it are in a table next to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any
from xml.etree.ElementTree import Element

import pygal  # type: ignore[import-untyped]
from markupsafe import Markup
from pygal.style import Style  # type: ignore[import-untyped]

#: Days shown one by one up to this span; a longer span is shown per month.
MAX_DAYS = 92
#: Beyond this many bars, only some labels are written under the axis.
_LABELLED = 16

STYLE = Style(
    background="#fff",
    plot_background="#fff",
    foreground="#1d2430",
    foreground_strong="#1d2430",
    foreground_subtle="#5b6575",
    guide_stroke_color="#d9dee7",
    major_guide_stroke_color="#d9dee7",
    guide_stroke_dasharray="0",
    major_guide_stroke_dasharray="0",
    opacity=".85",
    font_family='system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=15,
    colors=("#1f5fbf", "#17693a", "#b3261e", "#8a5a00", "#6b3fa0", "#00838f", "#5b6575", "#c2185b"),
)


def timeline(per_day: Mapping[str, Mapping[str, int]], series: Sequence[str]) -> tuple[list[str], dict[str, list[int]]]:
    """The labels along the x axis and each series' values: every day from the first to the
    last of `per_day` ({ISO day: {series: quantity}}), a day without a value as 0; per month
    (YYYY-MM) when the days span more than `MAX_DAYS`. Pure."""
    values: dict[str, list[int]] = {name: [] for name in series}
    if not per_day:
        return [], values
    first, last = date.fromisoformat(min(per_day)), date.fromisoformat(max(per_day))
    monthly = (last - first).days + 1 > MAX_DAYS

    def bucket(day: str) -> str:
        return day[:7] if monthly else day

    labels: list[str] = []
    day = first
    while day <= last:
        if not labels or labels[-1] != bucket(day.isoformat()):
            labels.append(bucket(day.isoformat()))
        day += timedelta(days=1)
    index = {label: i for i, label in enumerate(labels)}
    values = {name: [0] * len(labels) for name in series}
    for day_text, quantities in per_day.items():
        for name, quantity in quantities.items():
            if name in values:
                values[name][index[bucket(day_text)]] += quantity
    return labels, values


def integer_ticks(top: int) -> list[int]:
    """Whole-number marks for an axis of counts from 0 to at least `top` (about five). Pure."""
    if top <= 0:
        return [0, 1]
    rough = top / 5
    magnitude = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    step = max(1, int(step))
    return [i * step for i in range(-(-top // step) + 1)]


def _without_scripts(root: Element) -> Element:
    """pygal writes its config in a <script> even without its JavaScript: not in our pages."""
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def counts_chart(
    title: str, labels: Sequence[str], values: Mapping[str, Sequence[int]], *, line: bool = False
) -> Markup:
    """Counts along `labels`, one series a colour, as bars side by side (never stacked: a sum of
    different kinds means nothing) or lines; inline SVG (`class="chart"`, labelled for screen
    readers). Nothing (an empty string) without labels: there is nothing to draw."""
    if not labels:
        return Markup("")
    top = max((max(series, default=0) for series in values.values()), default=0)
    many = len(labels) > _LABELLED
    kind: Any = pygal.Line if line else pygal.Bar
    chart = kind(
        js=[],
        disable_xml_declaration=True,
        classes=["pygal-chart", "chart"],
        style=STYLE,
        title=title,
        width=900,
        height=340,
        legend_at_bottom=True,
        legend_at_bottom_columns=min(max(len(values), 1), 4),
        truncate_legend=-1,
        truncate_label=-1,
        x_label_rotation=30 if len(labels) > 8 else 0,
        show_minor_x_labels=not many,
        x_labels_major_every=math.ceil(len(labels) / _LABELLED) if many else None,
        y_labels=integer_ticks(top),
        **({"dots_size": 3, "show_only_major_dots": many} if line else {}),
    )

    def label(root: Element) -> Element:
        root.set("role", "img")
        root.set("aria-label", title)
        return root

    chart.add_xml_filter(_without_scripts)
    chart.add_xml_filter(label)
    chart.x_labels = list(labels)
    for name, series in values.items():
        chart.add(name, list(series))
    return Markup(chart.render(is_unicode=True))
