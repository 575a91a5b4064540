"""SVG building blocks for the monitoring charts: palette, escaping, axes, legend, frame.

Every piece of text put into an SVG passes through ``esc``: the result is Markup, which the
page template does not escape again.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from upstream.monitoring.views import SUPPRESSED_COUNT, SUPPRESSED_VALUE

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
VERMILLION = "#D55E00"
SKY = "#56B4E9"
PURPLE = "#CC79A7"
GREY = "#595959"
LIGHT = "#d9d9d9"
INK = "#1a1a1a"

FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""

Number = float | int


def esc(value: object) -> str:
    """Escape text for SVG/HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def chart_id_attr(raw: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return cleaned or "chart"


def fmt_count(value: Number | None) -> str:
    return SUPPRESSED_COUNT if value is None else f"{int(value):,}"


def fmt_share(value: Number | None) -> str:
    return SUPPRESSED_VALUE if value is None else f"{float(value) * 100:.1f}%"


def fmt_hours(value: Number | None) -> str:
    return SUPPRESSED_VALUE if value is None else f"{float(value):,.1f} h"


def nice_ticks(top: float, count: int = 5, whole: bool = False) -> list[float]:
    """0 and round steps up to at least `top` (1, 2, 2.5, 5 x 10^k); `whole`: steps >= 1."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    ticks = [0.0]
    while ticks[-1] < top - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def svg_root(chart_id: str, title: str, desc: str, width: int, height: int, body: list[str]) -> Markup:
    cid = chart_id_attr(chart_id)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{cid}-title {cid}-desc" {FONT} font-size="13" fill="{INK}">'
        f'<title id="{cid}-title">{esc(title)}</title><desc id="{cid}-desc">{esc(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def empty_chart(chart_id: str, title: str, message: str = "No data for this selection",
                width: int = 720, height: int = 120) -> Markup:
    body = [
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#fafafa" '
        f'stroke="{LIGHT}" rx="6"/>',
        f'<text x="{width / 2}" y="{height / 2 + 5}" text-anchor="middle" fill="{GREY}" '
        f'font-size="15">{esc(message)}</text>',
    ]
    return svg_root(chart_id, title, message, width, height, body)


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[Number | None]
    dashed: bool = False


def legend(series: Sequence[Series], x: float, y: float, line: bool = False) -> list[str]:
    out, cursor = [], x
    for s in series:
        if line:
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            out.append(f'<line x1="{cursor}" y1="{y - 4}" x2="{cursor + 22}" y2="{y - 4}" '
                       f'stroke="{s.color}" stroke-width="3"{dash}/>')
            cursor += 28
        else:
            out.append(f'<rect x="{cursor}" y="{y - 11}" width="14" height="14" rx="2" '
                       f'fill="{s.color}"/>')
            cursor += 20
        out.append(f'<text x="{cursor}" y="{y}">{esc(s.name)}</text>')
        cursor += 8 + 7.2 * len(s.name) + 18
    return out


def y_axis(ticks: list[float], left: float, right: float, y_of: Callable[[float], float],
            label: Callable[[float], str]) -> list[str]:
    out = []
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                   f'stroke="{LIGHT if t else GREY}" stroke-width="1"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{GREY}" '
                   f'font-size="12">{esc(label(t))}</text>')
    return out


def x_labels(labels: Sequence[tuple[str, str]], centers: Sequence[float], y: float) -> list[str]:
    """Two-line category labels (e.g. month / year), thinned when crowded."""
    out = []
    step = max(1, math.ceil(len(labels) / 18))
    for i, ((top, bottom), cx) in enumerate(zip(labels, centers, strict=True)):
        if i % step and i != len(labels) - 1:
            continue
        out.append(f'<text x="{cx:.1f}" y="{y}" text-anchor="middle" font-size="12">'
                   f'{esc(top)}</text>')
        if bottom:
            out.append(f'<text x="{cx:.1f}" y="{y + 15}" text-anchor="middle" font-size="12" '
                       f'fill="{GREY}">{esc(bottom)}</text>')
    return out
