"""The glide path: equity (aggressive) share by age, with the investor's age marked."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from .base import ACCENT, BAD, layout, pct, percent_label, sig


def glide_path_chart(curve: Sequence[Sequence[float]], *, age: float, equity_share: float) -> go.Figure:
    """``curve``: [age, equity share] pairs (share as a fraction, shown in %); the marker sits at
    (``age``, ``equity_share``), labelled as the report's text shows that share (`percent_label`)."""
    return go.Figure(
        [
            dict(
                type="scatter",
                name="Glide path",
                x=[sig(a) for a, _ in curve],
                y=pct(share for _, share in curve),
                mode="lines",
                line={"color": ACCENT, "width": 2},
                hovertemplate="age %{x}: %{y:.1f}% aggressive<extra></extra>",
            ),
            dict(
                type="scatter",
                name=f"Age {age:g}",
                x=[sig(age)],
                y=pct([equity_share]),
                mode="markers+text",
                text=[f"age {age:g}: {percent_label(equity_share)}"],
                textposition="top right",
                marker={"color": BAD, "size": 12},
                hovertemplate="age %{x}: %{y:.1f}% aggressive<extra></extra>",
            ),
        ],
        layout=layout(
            "Glide path (aggressive share by age)",
            xaxis={"title": {"text": "Age"}},
            yaxis={"title": {"text": "Aggressive share"}, "ticksuffix": "%", "range": [0, 105]},
            showlegend=False,
        ),
    )
