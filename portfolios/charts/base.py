"""What every report chart shares: colours, the base layout, rounding, and the HTML embedding.

Figures carry an empty template (plotly's default one adds ~6 KB of JSON to every figure and
costs a millisecond to validate) and floats rounded to what the eye needs, so a 50-holding
report stays small and quick to build.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import plotly.graph_objects as go

# The stylesheet's colours (static/css/app.css): ink, muted, accent, good, bad, warn.
INK, MUTED, ACCENT, GOOD, BAD, WARN = "#1b1f24", "#5b6570", "#1f5fbf", "#1c7c3c", "#b3261e", "#9a6700"
COLORWAY = [ACCENT, "#e08a00", GOOD, "#8e44ad", "#17a2b8", BAD, "#7f8c8d", "#c0a000", "#d35400", "#2c3e50"]
FIGURE_DIGITS = 4
HEIGHT = 340
SMALL_HEIGHT = 300

FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": INK}
CONFIG = {"displaylogo": False, "responsive": True}


def sig(value: float | None, digits: int = FIGURE_DIGITS) -> float | None:
    """``value`` rounded to ``digits`` significant digits (None stays None, NaN becomes None)."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return float(f"{number:.{digits}g}")


def sigs(values: Iterable[float | None], digits: int = FIGURE_DIGITS) -> list[float | None]:
    return [sig(value, digits) for value in values]


def pct(values: Iterable[float | None], digits: int = FIGURE_DIGITS) -> list[float | None]:
    """Fractions as percent (or percentage points), rounded."""
    return [None if value is None else sig(float(value) * 100, digits) for value in values]


def layout(title: str, *, height: int = HEIGHT, **extra) -> dict:
    """The layout every chart starts from (given to the constructor: update_layout costs more)."""
    return {
        "template": {},
        "font": FONT,
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}},
        "height": height,
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.18},
        **extra,
    }


def chart_html(figure: go.Figure) -> str:
    """The figure as a <div> and its script, without plotly.js (the page loads it once)."""
    return figure.to_html(full_html=False, include_plotlyjs=False, config=CONFIG)
