"""Server-rendered SVG bar charts for the dashboard: no script, no build step, no CDN.

A chart is plain markup with a ``<title>`` per bar (the browser shows it on hover), scaled to
its largest value and labelled at both ends of the time axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart"]

_W, _H = 560, 160
_PAD_LEFT, _PAD_BOTTOM, _PAD_TOP = 44, 22, 18


def _number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:g}" if value != int(value) else str(int(value))


def bar_chart(title: str, points: Sequence[tuple[str, float]], *, color: str = "#3b6ea5", chart_id: str = "") -> str:
    """An SVG bar chart of ``points`` (label, value), oldest first."""
    peak = max((v for _, v in points), default=0.0) or 1.0
    plot_w, plot_h = _W - _PAD_LEFT - 6, _H - _PAD_BOTTOM - _PAD_TOP
    step = plot_w / max(1, len(points))
    bars = []
    for i, (label, value) in enumerate(points):
        h = plot_h * value / peak
        x = _PAD_LEFT + i * step
        y = _PAD_TOP + plot_h - h
        bars.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{max(1.0, step - 2):.1f}" height="{h:.1f}" '
            f'fill="{color}"><title>{escape(label)}: {_number(value)}</title></rect>'
        )
    first = escape(points[0][0]) if points else ""
    last = escape(points[-1][0]) if points else ""
    base = _PAD_TOP + plot_h
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    return (
        f'<svg{ident} class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" role="img" aria-label="{escape(title)}">'
        f'<text x="{_PAD_LEFT}" y="12" class="chart-title">{escape(title)}</text>'
        f'<line x1="{_PAD_LEFT}" y1="{base}" x2="{_W - 6}" y2="{base}" stroke="#999"/>'
        f'<line x1="{_PAD_LEFT}" y1="{_PAD_TOP}" x2="{_PAD_LEFT}" y2="{base}" stroke="#999"/>'
        f'<text x="{_PAD_LEFT - 4}" y="{_PAD_TOP + 8}" text-anchor="end" class="axis">{_number(peak)}</text>'
        f'<text x="{_PAD_LEFT - 4}" y="{base}" text-anchor="end" class="axis">0</text>'
        + "".join(bars)
        + f'<text x="{_PAD_LEFT}" y="{_H - 6}" class="axis">{first}</text>'
        f'<text x="{_W - 6}" y="{_H - 6}" text-anchor="end" class="axis">{last}</text>'
        "</svg>"
    )
