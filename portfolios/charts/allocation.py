"""Allocation charts: shares of a whole (pie) and current against target weights (bars)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from .base import ACCENT, COLORWAY, MUTED, SMALL_HEIGHT, layout, pct, sigs, text_colour_on

PIE_LABELS_MAX = 12


def allocation_pie(labels: Sequence[str], values: Sequence[float], *, title: str) -> go.Figure:
    """Shares of ``values`` (any unit, e.g. USD or weights) by label; zero and negative values are left out."""
    kept = [(label, value) for label, value in zip(labels, values, strict=True) if value and value > 0]
    # Each slice's colour is set here so that its label can take the ink or white that reads on it.
    colours = [COLORWAY[i % len(COLORWAY)] for i in range(len(kept))]
    return go.Figure(
        dict(
            type="pie",
            labels=[label for label, _ in kept],
            values=sigs(value for _, value in kept),
            hole=0.45,
            sort=False,
            # Past a dozen slices the labels only collide: the legend and the hover say it all.
            textinfo="percent" if len(kept) <= PIE_LABELS_MAX else "none",
            textposition="inside",
            marker={"colors": colours, "line": {"color": "#ffffff", "width": 1}},
            insidetextfont={"color": [text_colour_on(colour) for colour in colours]},
            hovertemplate="%{label}: %{percent}<extra></extra>",
        ),
        layout=layout(title, height=SMALL_HEIGHT, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={}),
    )


def weights_bars(symbols: Sequence[str], current: Sequence[float], target: Sequence[float]) -> go.Figure:
    """Current and target weight (fractions, shown in %) side by side per symbol."""
    return go.Figure(
        [
            dict(
                type="bar",
                name="Current",
                x=list(symbols),
                y=pct(current),
                marker_color=MUTED,
                hovertemplate="%{x} current: %{y:.2f}%<extra></extra>",
            ),
            dict(
                type="bar",
                name="Target",
                x=list(symbols),
                y=pct(target),
                marker_color=ACCENT,
                hovertemplate="%{x} target: %{y:.2f}%<extra></extra>",
            ),
        ],
        layout=layout("Current vs target weight", barmode="group", yaxis={"ticksuffix": "%"}),
    )
