"""Server-rendered SVG charts: no JavaScript, no fonts or files to fetch, readable offline.

Every function returns a complete ``<svg>`` element as ``markupsafe.Markup``. Every piece of
text that goes into it (labels, titles, values) passes through ``esc`` here, because Markup is
not escaped again by the template. A chart with no data says so instead of drawing axes.

A suppressed value (None) is never drawn as zero: bars and points are left out and the label
says "<5" or "suppressed".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from upstream.monitoring.svg import (  # re-exported: charts.BLUE, charts.Series ...
    BLUE,
    GREEN,
    GREY,
    INK,
    LIGHT,
    ORANGE,
    PURPLE,
    SKY,
    VERMILLION,
    Number,
    Series,
    empty_chart,
    esc,
    fmt_count,
    fmt_hours,
    fmt_share,
    legend,
    nice_ticks,
    svg_root,
    x_labels,
    y_axis,
)
from upstream.monitoring.views import SUPPRESSED_COUNT, SUPPRESSED_VALUE

__all__ = [  # the chart types, and the building blocks callers use through this module
    "BLUE", "GREEN", "GREY", "INK", "LIGHT", "ORANGE", "PURPLE", "SKY", "VERMILLION",
    "Curve", "FunnelStep", "Interval", "Number", "Series",
    "empty_chart", "esc", "fmt_count", "fmt_hours", "fmt_share", "funnel", "intervals",
    "line_chart", "nice_ticks", "stacked_bars", "survival_chart",
]  # fmt: skip


def stacked_bars(chart_id: str, title: str, labels: Sequence[tuple[str, str]],
                 series: Sequence[Series], totals: Sequence[Number | None] | None = None,
                 y_label: str = "", width: int = 720, height: int = 300,
                 suppressed: str = SUPPRESSED_COUNT,
                 suppressed_note: str = "suppressed (1 to 4)") -> Markup:
    """Stacked columns (one per category); `totals` are written above each column.

    A suppressed segment is not drawn: its column is annotated `suppressed` ("<5") in the
    series colour (the release tier's report passes "withheld").
    """
    n = len(labels)
    if n == 0 or not series:
        return empty_chart(chart_id, title)
    left, right, top, bottom = 56, width - 12, 40, height - 46
    stack_tops = [sum(float(s.values[i] or 0) for s in series) for i in range(n)]
    top_value = max([*stack_tops, *(float(t) for t in (totals or []) if t is not None), 1.0])
    ticks = nice_ticks(top_value, whole=True)
    scale = (bottom - top) / ticks[-1]

    def y_of(v: float) -> float:
        return bottom - v * scale

    slot = (right - left) / n
    bar = max(2.0, min(48.0, slot * 0.7))
    body = [*legend(series, left, 18)]
    if y_label:
        body.append(f'<text x="{right}" y="18" text-anchor="end" fill="{GREY}" '
                    f'font-size="12">{esc(y_label)}</text>')
    body += y_axis(ticks, left, right, y_of, lambda t: f"{t:,.0f}")
    centers = []
    for i in range(n):
        cx = left + slot * (i + 0.5)
        centers.append(cx)
        base = 0.0
        missing = []
        for s in series:
            v = s.values[i]
            if v is None:
                missing.append(s)
                continue
            h = float(v) * scale
            if h > 0:
                body.append(f'<rect x="{cx - bar / 2:.1f}" y="{y_of(base) - h:.1f}" '
                            f'width="{bar:.1f}" height="{h:.1f}" fill="{s.color}">'
                            f'<title>{esc(labels[i][0])} {esc(labels[i][1])}: {esc(s.name)} '
                            f'{esc(fmt_count(v))}</title></rect>')
            base += float(v)
        label_y = y_of(base) - 6
        if totals is not None and n <= 24:
            body.append(f'<text x="{cx:.1f}" y="{label_y:.1f}" text-anchor="middle" '
                        f'font-size="12" font-weight="600">'
                        f'{esc(suppressed if totals[i] is None else fmt_count(totals[i]))}</text>')
            label_y -= 15
        for s in missing:
            mark = suppressed if slot < 90 else f"{s.name} {suppressed}"
            body.append(f'<text x="{cx:.1f}" y="{label_y:.1f}" text-anchor="middle" '
                        f'font-size="11" fill="{s.color}" font-weight="700">'
                        f'{esc(mark)}<title>{esc(s.name)}: {esc(suppressed_note)}'
                        f'</title></text>')
            label_y -= 13
    body += x_labels(labels, centers, bottom + 18)
    desc = f"{title}: {n} columns; exact numbers in the table below."
    return svg_root(chart_id, title, desc, width, height, body)


@dataclass(frozen=True)
class FunnelStep:
    label: str
    count: Number | None
    rate: Number | None


def funnel(chart_id: str, title: str, steps: Sequence[FunnelStep], width: int = 720) -> Markup:
    """Horizontal bars, one per step, longest first; each labelled with its count and rate."""
    if not steps:
        return empty_chart(chart_id, title)
    row_h, top = 38, 10
    height = top + row_h * len(steps) + 10
    label_w, value_w = 230, 150
    left, right = label_w, width - value_w
    biggest = max([float(s.count) for s in steps if s.count is not None] + [1.0])
    body = []
    for i, s in enumerate(steps):
        y = top + i * row_h
        body.append(f'<text x="{label_w - 10}" y="{y + 22}" text-anchor="end">'
                    f'{esc(_clip(s.label, 32))}<title>{esc(s.label)}</title></text>')
        body.append(f'<rect x="{left}" y="{y + 6}" width="{right - left}" height="24" '
                    f'fill="#f2f2f2" rx="3"/>')
        if s.count is not None and s.count > 0:
            w = max(2.0, (right - left) * float(s.count) / biggest)
            body.append(f'<rect x="{left}" y="{y + 6}" width="{w:.1f}" height="24" '
                        f'fill="{BLUE}" rx="3"/>')
        value = fmt_count(s.count)
        if s.rate is not None:
            value += f"  ({fmt_share(s.rate)})"
        body.append(f'<text x="{right + 10}" y="{y + 23}" font-weight="600">{esc(value)}</text>')
    return svg_root(chart_id, title, f"{title}: {len(steps)} steps; exact numbers in the table.",
                width, height, body)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def line_chart(chart_id: str, title: str, labels: Sequence[tuple[str, str]],
               series: Sequence[Series], value_label: Callable[[float], str],
               y_max: float | None = None, width: int = 720, height: int = 260) -> Markup:
    """Lines with dots per category; a None value breaks the line (nothing is drawn there)."""
    n = len(labels)
    known = [float(v) for s in series for v in s.values if v is not None]
    if n == 0 or not known:
        return empty_chart(chart_id, title)
    left, right, top, bottom = 64, width - 16, 40, height - 46
    ticks = nice_ticks(y_max if y_max is not None else max(known))
    scale = (bottom - top) / ticks[-1]

    def y_of(v: float) -> float:
        return bottom - v * scale

    slot = (right - left) / n
    centers = [left + slot * (i + 0.5) for i in range(n)]
    body = [*legend(series, left, 18, line=True)]
    body += y_axis(ticks, left, right, y_of, value_label)
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        run: list[str] = []
        for i, v in enumerate([*s.values, None]):
            if v is not None:
                run.append(f"{centers[i]:.1f},{y_of(float(v)):.1f}")
                continue
            if len(run) > 1:
                body.append(f'<polyline points="{" ".join(run)}" fill="none" '
                            f'stroke="{s.color}" stroke-width="2.5"{dash}/>')
            run = []
        for i, v in enumerate(s.values):
            if v is None:
                continue
            body.append(f'<circle cx="{centers[i]:.1f}" cy="{y_of(float(v)):.1f}" r="4" '
                        f'fill="{s.color}"><title>{esc(labels[i][0])} {esc(labels[i][1])}: '
                        f'{esc(s.name)} {esc(value_label(float(v)))}</title></circle>')
    for i, cx in enumerate(centers):
        if all(s.values[i] is None for s in series):
            body.append(f'<text x="{cx:.1f}" y="{bottom - 8}" text-anchor="middle" '
                        f'fill="{GREY}" font-size="11">not published</text>')
    body += x_labels(labels, centers, bottom + 18)
    return svg_root(chart_id, title, f"{title}: exact numbers in the table below.", width, height,
                body)


@dataclass(frozen=True)
class Interval:
    label: str
    rate: Number | None
    low: Number | None
    high: Number | None
    n: Number | None
    baseline: bool = False
    missing: str = SUPPRESSED_VALUE  # what a NULL rate reads


def intervals(chart_id: str, title: str, rows: Sequence[Interval], width: int = 720) -> Markup:
    """Dot-and-whisker rows (rate with its 95% CI), the baseline cohort as a dashed reference."""
    if not rows:
        return empty_chart(chart_id, title)
    row_h, top, axis_h = 36, 34, 30
    height = top + row_h * len(rows) + axis_h
    label_w, value_w = 250, 130
    left, right = label_w, width - value_w
    highest = max([float(v) for r in rows for v in (r.high, r.rate) if v is not None] + [0.05])
    ticks = nice_ticks(min(1.0, highest * 1.1))
    span = ticks[-1]

    def x_of(v: float) -> float:
        return left + (right - left) * float(v) / span

    bottom = top + row_h * len(rows)
    body = [f'<text x="{left}" y="16" fill="{GREY}" font-size="12">'
            f'Dot: repeat rate · whisker: 95% confidence interval · n: index calls</text>']
    for t in ticks:
        x = x_of(t)
        body.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" '
                    f'stroke="{LIGHT}"/>')
        body.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" fill="{GREY}" '
                    f'font-size="12">{esc(f"{t * 100:.0f}%")}</text>')
    for r in rows:
        if r.baseline and r.rate is not None:
            x = x_of(r.rate)
            body.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" '
                        f'stroke="{GREY}" stroke-width="1.5" stroke-dasharray="5 4"/>')
            break
    for i, r in enumerate(rows):
        cy = top + i * row_h + row_h / 2
        color = GREY if r.baseline else BLUE
        weight = ' font-weight="700"' if r.baseline else ""
        label = r.label if "baseline" in r.label.lower() or not r.baseline else (
            r.label + " (baseline)")
        body.append(f'<text x="{label_w - 10}" y="{cy - 2:.1f}" text-anchor="end"{weight}>'
                    f'{esc(_clip(label, 30))}<title>{esc(label)}</title></text>')
        body.append(f'<text x="{label_w - 10}" y="{cy + 12:.1f}" text-anchor="end" '
                    f'fill="{GREY}" font-size="11">n = {esc(fmt_count(r.n))}</text>')
        if r.low is not None and r.high is not None:
            x1, x2 = x_of(r.low), x_of(r.high)
            body.append(f'<line x1="{x1:.1f}" y1="{cy:.1f}" x2="{x2:.1f}" y2="{cy:.1f}" '
                        f'stroke="{color}" stroke-width="2"/>')
            for x in (x1, x2):
                body.append(f'<line x1="{x:.1f}" y1="{cy - 7:.1f}" x2="{x:.1f}" '
                            f'y2="{cy + 7:.1f}" stroke="{color}" stroke-width="2"/>')
        if r.rate is not None:
            shape = (f'<rect x="{x_of(r.rate) - 6:.1f}" y="{cy - 6:.1f}" width="12" height="12" '
                     f'fill="{color}"/>' if r.baseline else
                     f'<circle cx="{x_of(r.rate):.1f}" cy="{cy:.1f}" r="6" fill="{color}"/>')
            body.append(shape)
        value = r.missing if r.rate is None else fmt_share(r.rate)
        if r.low is not None and r.high is not None:
            value += f" ({float(r.low) * 100:.0f}–{float(r.high) * 100:.0f}%)"
        body.append(f'<text x="{right + 10}" y="{cy + 4:.1f}" font-weight="600">'
                    f'{esc(value)}</text>')
    return svg_root(chart_id, title, f"{title}: {len(rows)} cohorts; exact numbers in the table.",
                width, height, body)


@dataclass(frozen=True)
class Curve:
    """A Kaplan-Meier curve at its published days: (day, survival, ci_low, ci_high)."""

    name: str
    color: str
    points: Sequence[tuple[int, Number | None, Number | None, Number | None]]
    dashed: bool = False


def survival_chart(chart_id: str, title: str, curves: Sequence[Curve], days: int = 365,
                   width: int = 720, height: int = 320) -> Markup:
    """Step curves of the share without a repeat call by day since the index call, each with
    its 95% band (shaded). A point whose estimate is not published ends its curve there."""
    known = [float(v) for c in curves for p in c.points for v in (p[1], p[2])
             if v is not None]
    if not curves or not known:
        return empty_chart(chart_id, title)
    per_row = 3   # legend entries per line: cohort names are long
    rows = math.ceil(len(curves) / per_row)
    left, right, top, bottom = 64, width - 16, 26 + 20 * rows, height - 40
    # the y axis starts at a round share below every estimate, at most 50%
    floor = max(0.0, min(0.5, math.floor(min(known) * 10) / 10))
    span = 1.0 - floor

    def x_of(d: float) -> float:
        return left + (right - left) * d / days

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * (float(v) - floor) / span

    body = []
    for i in range(rows):
        body += legend(curves[i * per_row:(i + 1) * per_row], left, 18 + 20 * i, line=True)
    ticks = [floor + span * i / 5 for i in range(6)]
    body += y_axis(ticks, left, right, y_of, lambda t: f"{t * 100:.0f}%")
    for d in (0, 30, 60, 90, 120, 150, 182, 210, 240, 270, 300, 330, 365):
        if d <= days:
            body.append(f'<text x="{x_of(d):.1f}" y="{bottom + 16}" text-anchor="middle" '
                        f'fill="{GREY}" font-size="11">{d}</text>')
    body.append(f'<text x="{right}" y="{height - 6}" text-anchor="end" fill="{GREY}" '
                f'font-size="12">days since the index call</text>')
    for c in curves:
        shown = []
        for day, s, lo, hi in sorted(c.points, key=lambda p: p[0]):
            if s is None:
                break
            shown.append((day, float(s), lo, hi))
        if not shown:
            continue
        band_top, band_bottom, line = [], [], []
        for i, (day, s, lo, hi) in enumerate(shown):
            end = shown[i + 1][0] if i + 1 < len(shown) else day
            line += [f"{x_of(day):.1f},{y_of(s):.1f}", f"{x_of(end):.1f},{y_of(s):.1f}"]
            if lo is not None and hi is not None:
                band_top += [f"{x_of(day):.1f},{y_of(hi):.1f}", f"{x_of(end):.1f},{y_of(hi):.1f}"]
                band_bottom += [f"{x_of(day):.1f},{y_of(lo):.1f}",
                                f"{x_of(end):.1f},{y_of(lo):.1f}"]
        if band_top:
            body.append(f'<polygon points="{" ".join(band_top + band_bottom[::-1])}" '
                        f'fill="{c.color}" fill-opacity="0.15" stroke="none"/>')
        dash = ' stroke-dasharray="6 4"' if c.dashed else ""
        body.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{c.color}" '
                    f'stroke-width="2.5"{dash}><title>{esc(c.name)}: '
                    f'{esc(fmt_share(shown[-1][1]))} without a repeat call at day '
                    f'{shown[-1][0]}</title></polyline>')
    desc = (f"{title}: share of index calls not yet followed by another call, by day; "
            "shaded: 95% confidence band; numbers at risk in the table.")
    return svg_root(chart_id, title, desc, width, height, body)
