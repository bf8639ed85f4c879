"""The report's chart builders: plain data in, a plotly Figure out, with the numbers drawn as given."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import plotly.graph_objects as go
import pytest

from portfolios import charts
from portfolios.charts.base import sig
from portfolios.charts.pages import figure_data, sparkline_data, value_sparkline


def test_allocation_pie_leaves_out_empty_slices() -> None:
    figure = charts.allocation_pie(["SPY", "BND", "Cash", "GLD"], [6000.0, 3000.0, 1000.0, 0.0], title="By holding")
    assert isinstance(figure, go.Figure)
    (pie,) = figure.data
    assert pie.type == "pie"
    assert list(pie.labels) == ["SPY", "BND", "Cash"]
    assert list(pie.values) == [6000.0, 3000.0, 1000.0]
    assert figure.layout.title.text == "By holding"


def test_weights_bars_show_current_and_target_in_percent() -> None:
    figure = charts.weights_bars(["SPY", "BND"], [0.8, 0.2], [0.6, 0.4])
    current, target = figure.data
    assert (current.name, target.name) == ("Current", "Target")
    assert list(current.x) == ["SPY", "BND"]
    assert list(current.y) == [80.0, 20.0] and list(target.y) == [60.0, 40.0]


def test_frontier_marks_the_current_target_aggressive_and_safe_portfolios() -> None:
    frontier = [[0.05, 0.03], [0.08, 0.05], [0.12, 0.07], [0.2, 0.09]]
    points = {"Current": (0.15, 0.06), "Target": (0.1, 0.06), "Aggressive": (0.16, 0.08), "Safe": (0.06, 0.035)}
    figure = charts.frontier_chart(frontier, points)
    line, *marked = figure.data
    assert line.mode == "lines"
    assert list(line.x) == [5.0, 8.0, 12.0, 20.0] and list(line.y) == [3.0, 5.0, 7.0, 9.0]
    assert [trace.name for trace in marked] == ["Current", "Target", "Aggressive", "Safe"]
    assert {trace.name: (trace.x[0], trace.y[0]) for trace in marked} == {
        "Current": (15.0, 6.0),
        "Target": (10.0, 6.0),
        "Aggressive": (16.0, 8.0),
        "Safe": (6.0, 3.5),
    }
    assert all(trace.mode == "markers" for trace in marked)


def test_frontier_leaves_out_points_it_does_not_have() -> None:
    figure = charts.frontier_chart([[0.05, 0.03], [0.2, 0.09]], {"Current": None, "Target": (0.1, 0.06)})
    assert [trace.name for trace in figure.data] == ["Efficient frontier", "Target"]


def test_glide_path_marks_the_owners_age() -> None:
    curve = [[20, 0.9], [40, 0.9], [65, 0.5], [72, 0.3], [90, 0.3]]
    figure = charts.glide_path_chart(curve, age=55, equity_share=0.69)
    path, marker = figure.data
    assert list(path.x) == [20, 40, 65, 72, 90] and list(path.y) == [90.0, 90.0, 50.0, 30.0, 30.0]
    assert (marker.x[0], marker.y[0]) == (55, 69.0)
    assert "age 55" in marker.text[0] and "69.0%" in marker.text[0]


def test_drift_bars_are_the_deviations_in_pp_with_the_bands_as_whiskers() -> None:
    figure = charts.drift_chart(["SPY", "BND", "QQQ"], [0.072, -0.031, 0.004], [0.05, 0.025, 0.05], [True, True, False])
    bars, bands = figure.data
    assert bars.type == "bar"
    assert list(bars.y) == pytest.approx([7.2, -3.1, 0.4])
    assert list(bands.y) == [0, 0, 0]
    assert list(bands.error_y.array) == pytest.approx([5.0, 2.5, 5.0])
    # Outside the band is drawn in the "bad" colour, inside in the "good" one.
    assert list(bars.marker.color) == [charts.base.BAD, charts.base.BAD, charts.base.GOOD]


def test_risk_contributions_before_and_after_with_missing_symbols_at_zero() -> None:
    figure = charts.risk_contributions_chart(["SPY", "BND"], {"SPY": 0.9, "BND": 0.1}, {"SPY": 1.0})
    before, after = figure.data
    assert list(before.y) == [90.0, 10.0] and list(after.y) == [100.0, 0.0]


def test_correlation_heatmap_is_symmetric_with_ones_on_the_diagonal() -> None:
    matrix = [[1.0, 0.8312, -0.2], [0.8312, 1.0, 0.1], [-0.2, 0.1, 1.0]]
    figure = charts.correlation_heatmap(["SPY", "QQQ", "BND"], matrix)
    (heatmap,) = figure.data
    z = np.asarray(heatmap.z, dtype=float)
    assert z.shape == (3, 3)
    np.testing.assert_array_equal(z, z.T)
    np.testing.assert_array_equal(np.diag(z), [1, 1, 1])
    assert z[0, 1] == pytest.approx(0.83, abs=1e-6)
    assert list(heatmap.x) == list(heatmap.y) == ["SPY", "QQQ", "BND"]
    assert (heatmap.zmin, heatmap.zmax) == (-1, 1)


def test_a_fifty_asset_heatmap_stays_small() -> None:
    rng = np.random.default_rng(3)
    factors = rng.standard_normal((50, 60))
    correlation = np.corrcoef(factors)
    html = charts.chart_html(charts.correlation_heatmap([f"S{i:02d}" for i in range(50)], correlation))
    assert len(html) < 25_000


def test_figures_round_to_four_significant_digits() -> None:
    assert sig(0.123456789) == 0.1235 and sig(1234567.0) == 1235000.0 and sig(None) is None
    figure = charts.weights_bars(["A"], [0.123456789], [0.5])
    assert figure.data[0].y[0] == 12.35


ALL = [
    charts.allocation_pie(["A", "B"], [1.0, 2.0], title="t"),
    charts.weights_bars(["A"], [0.5], [0.4]),
    charts.frontier_chart([[0.1, 0.05], [0.2, 0.08]], {"Target": (0.15, 0.06)}),
    charts.glide_path_chart([[20, 0.9], [80, 0.3]], age=40, equity_share=0.9),
    charts.drift_chart(["A"], [0.01], [0.05], [False]),
    charts.risk_contributions_chart(["A"], {"A": 1.0}, {"A": 1.0}),
    charts.correlation_heatmap(["A", "B"], [[1, 0.5], [0.5, 1]]),
]


@pytest.mark.parametrize("figure", ALL, ids=lambda figure: figure.layout.title.text)
def test_every_figure_is_valid_embeds_without_plotly_js_and_carries_no_default_template(figure) -> None:
    assert isinstance(figure, go.Figure)
    # What the figure holds passes plotly's validation again.
    go.Figure(figure.to_plotly_json())
    html = charts.chart_html(figure)
    assert "Plotly.newPlot(" in html and '"displaylogo": false' in html and '"responsive": true' in html
    assert "<script src" not in html and "cdn" not in html.lower()
    layout = json.loads(figure.to_json())["layout"]
    assert "colorway" not in layout["template"].get("layout", {})  # not plotly's ~6 KB default template
    assert len(html) < 5_000


@pytest.mark.parametrize("count", [2, 3, 30])
def test_the_dashboards_sparkline_data_is_the_figure_it_stands_for(count):
    points = [(date(2026, 1, 5) + timedelta(days=i), Decimal("1000.5") + i * 7) for i in range(count)]

    assert sparkline_data(points) == figure_data(value_sparkline(points))


# -- colours, contrast and layout ------------------------------------------------------------------

CSS_COLOUR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|rgba?\([0-9., ]+\)|[a-z]+)$")


def colour_values(node, key: str = ""):
    """Every value stored under a key naming a colour (color, colors, bgcolor, ...) in figure JSON."""
    naming_colour = key.lower().endswith(("color", "colors"))
    if isinstance(node, list | tuple):
        for value in node:
            yield from colour_values(value, key)
    elif naming_colour:
        yield node  # a number, or an array plotly encoded as {"dtype", "bdata"}, is not a colour
    elif isinstance(node, dict):
        for name, value in node.items():
            yield from colour_values(value, name)


def test_every_colour_of_every_chart_is_a_colour_plotly_js_can_read() -> None:
    """plotly.js logs "Invalid color specifier" for a number where a colour goes (the drift bars had one)."""
    figures = [*ALL, charts.drift_chart(["A", "B"], [0.1, 0.0], [0.05, 0.05], [True, False])]
    for figure in figures:
        values = list(colour_values(json.loads(figure.to_json())))
        assert values, figure.layout.title.text
        for value in values:
            assert isinstance(value, str) and CSS_COLOUR.match(value), (figure.layout.title.text, value)


def test_pie_labels_meet_the_contrast_minimum_on_every_slice() -> None:
    labels = [f"S{i}" for i in range(len(charts.base.COLORWAY) + 2)]
    (pie,) = charts.allocation_pie(labels, [1.0] * len(labels), title="t").data
    for slice_colour, text_colour in zip(pie.marker.colors, pie.insidetextfont.color, strict=True):
        assert charts.base.contrast_ratio(slice_colour, text_colour) >= 4.5, slice_colour


def test_contrast_ratio_matches_the_wcag_reference_values() -> None:
    assert charts.base.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert charts.base.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_the_heatmaps_labels_stay_on_their_rows_and_columns() -> None:
    figure = charts.correlation_heatmap(["SPY", "BND", "A_LONG_NAME"], np.eye(3))
    for axis in (figure.layout.xaxis, figure.layout.yaxis):
        assert axis.automargin is True and axis.type == "category"
        # A square-cell constraint shrank one axis and left the other's labels away from the cells.
        assert axis.scaleanchor is None


def test_the_glide_marker_rounds_the_share_as_the_report_text_does() -> None:
    # 0.8865 is a hair below 88.65% in binary: float formatting said 88.6%, the summary 88.7%.
    figure = charts.glide_path_chart([[20, 0.9], [80, 0.3]], age=45, equity_share=0.8865)
    assert figure.data[1].text[0] == "age 45: 88.7%"
    assert charts.base.percent_label(0.8865) == "88.7%" and charts.base.percent_label(None) == "—"
