"""The text alternative of each report chart: one plain sentence from the figures it draws, what
a screen reader says instead of the picture and a caption for everyone."""

from __future__ import annotations

from portfolios.charts.base import percent_label
from portfolios.templatetags.numbers import percent

from .rows import RunReport

#: Items a chart's sentence names before it says "and N more".
SUMMARY_ITEMS = 8


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:SUMMARY_ITEMS])
    return shown + (f" and {len(items) - SUMMARY_ITEMS} more" if len(items) > SUMMARY_ITEMS else "")


def _shares_sentence(what: str, parts: list[tuple[str, float]]) -> str:
    """ "<what>: A 60.0%, B 40.0%." from (label, amount) pairs in any unit, largest first."""
    total = sum(amount for _, amount in parts)
    if total <= 0:
        return f"{what}: nothing to show."
    ranked = sorted(parts, key=lambda part: -part[1])
    return f"{what}: {_listed([f'{label} {percent(amount / total, 1)}' for label, amount in ranked])}."


def chart_summaries(report: RunReport) -> dict[str, str]:
    """One plain sentence per chart of ``report`` that has the data for it, by the chart's name
    (the keys of the view's charts: "by_holding", "weights", "frontier", ...)."""
    texts = {
        "by_holding": _shares_sentence("Value by holding, cash included", report.by_holding),
        "by_asset_class": _shares_sentence("Current weight by asset class", report.by_asset_class),
        "by_sector": _shares_sentence("Current weight by sector", report.by_sector),
    }
    needs = [row for row in report.holdings if row.deviation is not None]
    if needs:
        texts["weights"] = (
            f"Current against target weight of {len(needs)} holding{'s' if len(needs) != 1 else ''}: "
            + _listed(
                [f"{row.symbol} {percent(row.current_weight)} (target {percent(row.target_weight)})" for row in needs]
            )
            + "."
        )
        outside = [row for row in needs if row.outside]
        texts["drift"] = (
            f"Deviation from target against the band: {len(outside)} of {len(needs)} outside"
            + (f" ({_listed([f'{row.symbol} {row.deviation * 100:+.2f} pp' for row in outside])})" if outside else "")
            + "; the table below lists every holding."
        )
    construction = report.construction
    if construction is not None and construction.frontier:
        marked = [
            f"{name} at {percent(point[0])} volatility and {percent(point[1])} expected return"
            for name, point in construction.points.items()
            if point is not None
        ]
        volatilities = [float(vol) for vol, _ in construction.frontier]
        texts["frontier"] = (
            f"Efficient frontier from {percent(min(volatilities))} to "
            f"{percent(max(volatilities))} annual volatility; " + "; ".join(marked) + "."
        )
    if construction is not None and construction.glide:
        glide = construction.glide
        texts["glide"] = (
            f"Glide path: the aggressive share is {percent_label(glide['equity_share'])} at age {glide['age']:g}, "
            f"changing with age along the curve."
        )
    risk = report.risk
    if risk is not None and risk.contributions_symbols:

        def largest(contributions: dict[str, float]) -> str:
            ranked = sorted(contributions.items(), key=lambda item: -(item[1] or 0))
            return _listed([f"{symbol} {percent(share or 0, 1)}" for symbol, share in ranked])

        texts["risk_contributions"] = (
            f"Share of risk by holding before the trades: {largest(risk.contributions_before)}; "
            f"after: {largest(risk.contributions_after) or 'none'}."
        )
    if report.correlation is not None and len(report.correlation_symbols) == 1:
        texts["correlation"] = f"Correlation of {report.correlation_symbols[0]} with itself: 1.00."
    elif report.correlation is not None and len(report.correlation_symbols) > 1:
        symbols, matrix = report.correlation_symbols, report.correlation
        pairs = [
            (float(matrix[i][j]), symbols[i], symbols[j])
            for i in range(len(symbols))
            for j in range(i + 1, len(symbols))
        ]
        high, low = max(pairs), min(pairs)
        texts["correlation"] = (
            f"Correlation of the daily returns of {len(symbols)} assets: highest {high[1]} and {high[2]} "
            f"({high[0]:.2f}), lowest {low[1]} and {low[2]} ({low[0]:.2f})."
        )
    return texts
