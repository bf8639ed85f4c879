"""Small charts of the dashboard and the portfolio page: pure functions, data in, plotly Figure out.

Pages embed a figure as JSON (`figure_data`) and draw it with the one shared static
plotly.min.js. The report's charts are the package's other modules.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import pandas as pd
import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder

from portfolios.charts.base import ACCENT, BAD, FONT, GOOD, MUTED

# The page charts keep plotly's default colours for text (the report's FONT sets its own ink).
_FONT = {key: FONT[key] for key in ("family", "size")}


def figure_data(figure: go.Figure) -> dict:
    """The figure as plain JSON data ({"data": [...], "layout": {...}}) for `json_script`."""
    # to_plotly_json() skips the validated copy that to_json() makes (a third of a sparkline's cost);
    # plotly's encoder turns numpy arrays and dates into JSON.
    return json.loads(json.dumps(figure.to_plotly_json(), cls=PlotlyJSONEncoder))


def value_sparkline(points: Sequence[tuple[date, Decimal]]) -> go.Figure:
    """Portfolio value (USD) by trading date, as a bare line without axes (the dashboard's cards)."""
    # The layout goes to the constructor: update_layout() costs ~4x more, and the dashboard
    # draws one sparkline per portfolio.
    return go.Figure(
        go.Scatter(
            x=[day.isoformat() for day, _ in points],
            y=[float(value) for _, value in points],
            mode="lines+markers" if len(points) < 3 else "lines",
            line={"color": ACCENT, "width": 2},
            hovertemplate="%{x}: $%{y:,.0f}<extra></extra>",
        ),
        layout={
            # No theme: axes are hidden, and the default theme adds 7 kB of JSON per sparkline.
            "template": "none",
            "height": 140,
            "margin": {"l": 4, "r": 4, "t": 4, "b": 4},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "showlegend": False,
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": _FONT,
        },
    )


@functools.cache
def _sparkline_skeleton() -> dict:
    """A validated sparkline as JSON data, built once: plotly's validation is most of a figure's cost."""
    return figure_data(value_sparkline([(date(2000, 1, 3), Decimal(1)), (date(2000, 1, 4), Decimal(2))]))


def sparkline_data(points: Sequence[tuple[date, Decimal]]) -> dict:
    """``figure_data(value_sparkline(points))``, the same JSON, without building a Figure per call:
    the dashboard draws one sparkline per portfolio, and plotly validates ~2 ms per figure."""
    skeleton = _sparkline_skeleton()
    trace = {
        **skeleton["data"][0],
        "x": [day.isoformat() for day, _ in points],
        "y": [float(value) for _, value in points],
        "mode": "lines+markers" if len(points) < 3 else "lines",
    }
    return {"data": [trace], "layout": json.loads(json.dumps(skeleton["layout"]))}


def weights_chart(
    symbols: Sequence[str],
    current: Sequence[float | None],
    target: Sequence[float | None],
    *,
    cash_weight: float | None = None,
    cash_target: float | None = None,
) -> go.Figure:
    """Current against target weight per holding (fractions of value, cash included), grouped bars."""
    labels = [*symbols, "cash"] if cash_weight is not None else list(symbols)
    now = [*current, cash_weight] if cash_weight is not None else list(current)
    goal = [*target, cash_target] if cash_weight is not None else list(target)
    figure = go.Figure(
        [
            go.Bar(name="current", x=labels, y=_numbers(now), marker_color=ACCENT, hovertemplate="%{x}: %{y:.2%}"),
            go.Bar(name="target", x=labels, y=_numbers(goal), marker_color=MUTED, hovertemplate="%{x}: %{y:.2%}"),
        ]
    )
    figure.update_layout(
        barmode="group",
        height=320,
        margin={"l": 50, "r": 10, "t": 30, "b": 40},
        yaxis={"tickformat": ".0%", "title": "weight"},
        legend={"orientation": "h", "y": 1.1},
        font=_FONT,
    )
    return figure


def bands_chart(
    symbols: Sequence[str], deviation: Sequence[float], band: Sequence[float], outside: Sequence[bool]
) -> go.Figure:
    """Each holding's deviation from target (percentage points) inside its tolerance band (grey range)."""
    pp = [d * 100 for d in deviation]
    width = [b * 100 for b in band]
    figure = go.Figure(
        [
            go.Bar(
                name="band",
                x=list(symbols),
                y=[2 * w for w in width],
                base=[-w for w in width],
                marker_color="rgba(91,101,112,0.18)",
                hovertemplate="%{x}: band ±%{customdata:.2f} pp<extra></extra>",
                customdata=width,
            ),
            go.Scatter(
                name="deviation",
                x=list(symbols),
                y=pp,
                mode="markers",
                marker={"size": 11, "color": [BAD if o else GOOD for o in outside]},
                hovertemplate="%{x}: %{y:+.2f} pp<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 10, "t": 30, "b": 40},
        yaxis={"title": "deviation (pp)", "zeroline": True, "zerolinecolor": MUTED},
        showlegend=False,
        font=_FONT,
    )
    return figure


def price_history_chart(closes: pd.DataFrame, *, synthetic: bool = False) -> go.Figure:
    """Each symbol's adjusted close rebased to 100 at its first close in ``closes`` (wide frame, date index)."""
    figure = go.Figure()
    for symbol in closes.columns:
        column = closes[symbol].dropna()
        if column.empty:
            continue
        figure.add_trace(
            go.Scatter(
                name=symbol,
                x=[stamp.date().isoformat() for stamp in column.index],
                y=(column / column.iloc[0] * 100).round(3).tolist(),
                mode="lines",
                hovertemplate=f"{symbol} %{{x}}: %{{y:.1f}}<extra></extra>",
            )
        )
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 10, "t": 30 if not synthetic else 50, "b": 40},
        yaxis={"title": "growth of 100"},
        legend={"orientation": "h", "y": 1.12},
        title={"text": "SYNTHETIC prices (sample provider)", "font": {"color": "#9a6700"}} if synthetic else None,
        font=_FONT,
    )
    return figure


def _numbers(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]
