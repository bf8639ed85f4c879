"""The efficient frontier with the run's portfolios marked on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from .base import ACCENT, BAD, GOOD, HEIGHT, INK, MUTED, WARN, layout, pct

# Marker per named point; other names get the accent colour and a circle.
MARKERS = {
    "Current": (MUTED, "circle"),
    "Target": (ACCENT, "star"),
    "After trades": (INK, "diamond"),
    "Aggressive": (BAD, "triangle-up"),
    "Safe": (GOOD, "square"),
}


def frontier_chart(frontier: Sequence[Sequence[float]], points: Mapping[str, tuple[float, float] | None]) -> go.Figure:
    """``frontier``: [volatility, expected return] pairs (annualised fractions, shown in %);
    ``points``: name -> (volatility, expected return), one marker trace each (None: left out)."""
    traces = [
        dict(
            type="scatter",
            name="Efficient frontier",
            x=pct(vol for vol, _ in frontier),
            y=pct(ret for _, ret in frontier),
            mode="lines",
            line={"color": WARN, "width": 2},
            hovertemplate="volatility %{x:.2f}%, return %{y:.2f}%<extra>frontier</extra>",
        )
    ]
    for name, point in points.items():
        if point is None or None in point:
            continue
        colour, symbol = MARKERS.get(name, (ACCENT, "circle"))
        traces.append(
            dict(
                type="scatter",
                name=name,
                x=pct([point[0]]),
                y=pct([point[1]]),
                mode="markers",
                marker={"color": colour, "symbol": symbol, "size": 12, "line": {"width": 1, "color": "#fff"}},
                hovertemplate=f"{name}: volatility %{{x:.2f}}%, return %{{y:.2f}}%<extra></extra>",
            )
        )
    return go.Figure(
        traces,
        layout=layout(
            "Efficient frontier",
            xaxis={"title": {"text": "Volatility (annual)"}, "ticksuffix": "%"},
            yaxis={"title": {"text": "Expected return (annual)"}, "ticksuffix": "%"},
            height=HEIGHT + 40,
            legend={"orientation": "h", "y": -0.3},
            margin={"l": 60, "r": 20, "t": 40, "b": 90},
        ),
    )
