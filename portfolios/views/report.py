"""The report of a stored rebalancing run (/runs/<id>/) and its planned trades as CSV.

Both read the run through `run_get_for_user` (another user's run is a 404) and only what was
stored: the report never calls a broker, re-plans or re-optimizes.
"""

from __future__ import annotations

import csv

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from portfolios import charts
from portfolios.selectors import run_get_for_user
from portfolios.services.report.build import run_report_build, run_trades
from portfolios.services.report.captions import chart_summaries
from portfolios.services.report.rows import RunReport

CSV_HEADER = [
    "run_id",
    "trading_date",
    "sequence",
    "side",
    "symbol",
    "quantity",
    "estimated_price",
    "notional_usd",
    "estimated_cost_usd",
    "reason",
]


@require_GET
def run_report(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, run_id=run_id)
    report = run_report_build(run=run)
    context = {"report": report, "run": run, "charts": _charts(report), "chart_texts": chart_summaries(report)}
    return render(request, "portfolios/run_report.html", context)


@require_GET
def run_trades_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    """One row per planned trade, decimals exactly as stored."""
    run = run_get_for_user(user=request.user, run_id=run_id)
    name = slugify(run.portfolio.name) or "portfolio"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="rebalance-{name}-{run.trading_date.isoformat()}-run-{run.pk}-trades.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for trade in run_trades(run=run):
        writer.writerow(
            [
                run.pk,
                run.trading_date.isoformat(),
                trade.sequence,
                trade.side,
                trade.instrument.symbol,
                trade.quantity,
                trade.estimated_price,
                trade.notional_usd,
                trade.estimated_cost_usd,
                trade.reason,
            ]
        )
    return response


def _charts(report: RunReport) -> dict[str, str | None]:
    """Each chart's HTML, or None where the run has no data for it (the page says so)."""
    holdings = report.holdings
    html: dict[str, str | None] = dict.fromkeys(
        (
            "by_holding",
            "by_asset_class",
            "by_sector",
            "weights",
            "frontier",
            "glide",
            "drift",
            "risk_contributions",
            "correlation",
        )
    )
    if report.by_holding:
        labels, values = zip(*report.by_holding, strict=True)
        html["by_holding"] = charts.chart_html(charts.allocation_pie(labels, values, title="By holding (value)"))
    if report.by_asset_class:
        labels, values = zip(*report.by_asset_class, strict=True)
        html["by_asset_class"] = charts.chart_html(charts.allocation_pie(labels, values, title="By asset class"))
    if report.by_sector:
        labels, values = zip(*report.by_sector, strict=True)
        html["by_sector"] = charts.chart_html(charts.allocation_pie(labels, values, title="By sector"))
    needs = [row for row in holdings if row.deviation is not None]
    if needs:
        symbols = [row.symbol for row in needs]
        html["weights"] = charts.chart_html(
            charts.weights_bars(symbols, [row.current_weight for row in needs], [row.target_weight for row in needs])
        )
        html["drift"] = charts.chart_html(
            charts.drift_chart(
                symbols,
                [row.deviation for row in needs],
                [row.band for row in needs],
                [row.outside for row in needs],
            )
        )
    construction = report.construction
    if construction is not None and construction.frontier:
        html["frontier"] = charts.chart_html(charts.frontier_chart(construction.frontier, construction.points))
    if construction is not None and construction.glide:
        glide = construction.glide
        html["glide"] = charts.chart_html(
            charts.glide_path_chart(glide["curve"], age=glide["age"], equity_share=glide["equity_share"])
        )
    if report.risk is not None and report.risk.contributions_symbols:
        risk = report.risk
        html["risk_contributions"] = charts.chart_html(
            charts.risk_contributions_chart(
                risk.contributions_symbols, risk.contributions_before, risk.contributions_after
            )
        )
    if report.correlation:
        html["correlation"] = charts.chart_html(
            charts.correlation_heatmap(report.correlation_symbols, report.correlation)
        )
    return html
