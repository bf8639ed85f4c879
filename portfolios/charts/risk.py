"""Risk contributions before and after the trades."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from .base import ACCENT, MUTED, layout, pct


def risk_contributions_chart(
    symbols: Sequence[str], before: Mapping[str, float], after: Mapping[str, float]
) -> go.Figure:
    """Each symbol's share of portfolio variance (fractions summing to 1 per side, shown in %);
    a symbol missing from a side contributes 0 there."""
    return go.Figure(
        [
            dict(
                type="bar",
                name="Before",
                x=list(symbols),
                y=pct(before.get(symbol, 0.0) for symbol in symbols),
                marker_color=MUTED,
                hovertemplate="%{x} before: %{y:.1f}% of risk<extra></extra>",
            ),
            dict(
                type="bar",
                name="After",
                x=list(symbols),
                y=pct(after.get(symbol, 0.0) for symbol in symbols),
                marker_color=ACCENT,
                hovertemplate="%{x} after: %{y:.1f}% of risk<extra></extra>",
            ),
        ],
        layout=layout("Risk contributions", barmode="group", yaxis={"ticksuffix": "%"}),
    )
