"""What every report chart shares: colours, the base layout, rounding, and the HTML embedding.

Figures carry an empty template (plotly's default one adds ~6 KB of JSON to every figure and
costs a millisecond to validate) and floats rounded to what the eye needs, so a 50-holding
report stays small and quick to build.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

import plotly.graph_objects as go

# The stylesheet's colours (static/css/app.css): ink, muted, accent, good, bad, warn.
INK, MUTED, ACCENT, GOOD, BAD, WARN = "#1b1f24", "#5b6570", "#1f5fbf", "#1c7c3c", "#b3261e", "#8a5c00"
WHITE = "#ffffff"
# Slice and series colours: each takes ink or white text at 4.5:1 or more (`text_colour_on`).
COLORWAY = [ACCENT, "#e08a00", GOOD, "#8e44ad", "#17a2b8", BAD, "#7f8c8d", "#c0a000", "#b04a00", "#2c3e50"]
# Text on a coloured area needs 4.5:1 against it (WCAG AA for normal text).
MIN_TEXT_CONTRAST = 4.5
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


def percent_label(fraction: float | Decimal | None, places: int = 1) -> str:
    """``fraction`` as a percent rounded half up to ``places`` ("88.7%"), "—" for None.

    The one rounding of a share shown both in a chart and in the text around it: float formatting
    rounds 0.8865 down (its binary value is below), Django's floatformat rounds it up.
    """
    if fraction is None:
        return "—"
    percent = (Decimal(str(fraction)) * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{percent}%"


def relative_luminance(colour: str) -> float:
    """WCAG relative luminance of a ``#rrggbb`` colour (0 black to 1 white)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_colour_on(background: str) -> str:
    """Ink or white, whichever reads better on ``background``."""
    return INK if contrast_ratio(INK, background) >= contrast_ratio(WHITE, background) else WHITE


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
