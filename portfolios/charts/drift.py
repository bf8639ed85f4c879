"""Drift per holding: deviation from target in percentage points, against its band."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from .base import BAD, GOOD, INK, layout, pct


def drift_chart(
    symbols: Sequence[str], deviations: Sequence[float], bands: Sequence[float], outside: Sequence[bool]
) -> go.Figure:
    """Bars of ``deviations`` (current minus target weight, fractions shown in pp), red when
    ``outside`` the band; whiskers from -band to +band around zero show each holding's band."""
    band_pp = pct(bands)
    return go.Figure(
        [
            dict(
                type="bar",
                name="Deviation",
                x=list(symbols),
                y=pct(deviations),
                # Colour strings: plotly.js reads numbers on a colour scale for the bars, but its
                # hover label takes the raw number as a colour ("Invalid color specifier").
                marker={"color": [BAD if out else GOOD for out in outside]},
                hovertemplate="%{x}: %{y:+.2f} pp<extra></extra>",
            ),
            dict(
                type="scatter",
                name="Band",
                x=list(symbols),
                y=[0] * len(symbols),
                mode="markers",
                marker={"color": INK, "size": 4, "symbol": "line-ew-open"},
                error_y={"type": "data", "array": band_pp, "color": INK, "thickness": 1.5, "width": 8},
                customdata=band_pp,
                hovertemplate="%{x}: band ±%{customdata:.2f} pp<extra></extra>",
            ),
        ],
        layout=layout(
            "Deviation from target (bars, red outside the band) and band (whiskers)",
            yaxis={"ticksuffix": " pp"},
            showlegend=False,
        ),
    )
