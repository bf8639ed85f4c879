"""The rebalancing report's data, read from the stored run and nothing else.

`run_report_build` turns a stored `RebalanceRun` (snapshot, targets, needs, plan figures, the
risk figures stored with the plan, its optimizer result's stored analysis, its trades, orders
and their events) into the rows of `rows`. It never calls a broker, never re-optimizes and never
re-plans; the only other rows it reads are the instruments (asset class, sector) and the stored
price bars of the run's price date (which provider they came from: the synthetic sample provider
is labelled).

Queries are a fixed number whatever the number of holdings, trades or orders: the optimizer
result, the trades with their instruments, the orders, their events, the instruments and the
bars of one day.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation

import numpy as np
from django.db.models import Prefetch

from brokers.models import Order, OrderEvent
from marketdata.models import AssetClass, Instrument, PriceBar, bar_id
from marketdata.stores import get_price_store
from marketdata.stores.database import DatabasePriceStore
from optimization.models import OptimizationResult
from portfolios.models import PlannedTrade, RebalanceRun

from .rows import (
    BuysResized,
    Construction,
    EventRow,
    Execution,
    HoldingRow,
    OrderRow,
    PriceProvenance,
    Risk,
    RiskRow,
    RunReport,
    SleeveWeightRow,
    Strategy,
    TradeRow,
)

NOT_AVAILABLE = "not available for this run"
CASH = "Cash"
STATUS_BADGES = {
    RebalanceRun.Status.PLANNED: "warn",
    RebalanceRun.Status.NO_ACTION: "good",
    RebalanceRun.Status.FAILED: "bad",
    RebalanceRun.Status.EXECUTING: "warn",
    RebalanceRun.Status.EXECUTED: "good",
    RebalanceRun.Status.EXECUTION_FAILED: "bad",
}
ORDER_BADGES = {"filled": "good", "partially_filled": "warn", "canceled": "bad", "rejected": "bad", "expired": "bad"}
# (key in the stored metrics, label, a fraction shown as percent)
RISK_FIGURES = (
    ("expected_return", "Expected return (annual)", True),
    ("volatility", "Volatility (annual)", True),
    ("sharpe", "Sharpe ratio", False),
    ("var_95_1d", "VaR 95% (1 day)", True),
    ("cvar_95_1d", "CVaR 95% (1 day)", True),
    ("var_95_annual", "VaR 95% (annualised)", True),
    ("cvar_95_annual", "CVaR 95% (annualised)", True),
    ("max_drawdown", "Maximum drawdown (lookback)", True),
    ("diversification_ratio", "Diversification ratio", False),
)


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _fraction(value) -> float | None:
    """A stored fraction as a float (None, and anything not finite, is None)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def run_trades(*, run: RebalanceRun) -> list[PlannedTrade]:
    """The run's planned trades in plan order (sells first), with their instruments."""
    return list(run.trades.select_related("instrument").order_by("sequence"))


def _orders(run: RebalanceRun) -> list[Order]:
    if run.pk is None:  # a preview: nothing was sent
        return []
    return list(
        run.orders.order_by("id").prefetch_related(Prefetch("events", queryset=OrderEvent.objects.order_by("id")))
    )


def _result(run: RebalanceRun) -> OptimizationResult | None:
    if run.optimization_result_id is None:
        return None
    return OptimizationResult.objects.filter(pk=run.optimization_result_id).first()


def _provenance(instruments: dict[str, Instrument], price_date: date | None) -> PriceProvenance:
    """Which providers the run's closes came from, and which symbols are synthetic (stored bars)."""
    if not instruments or price_date is None:
        return PriceProvenance(price_date, [], [])
    store = get_price_store()
    if isinstance(store, DatabasePriceStore):
        # A bar's primary key is (instrument, day): one primary-key lookup, where read_bars scans
        # a key range per symbol (40 ms for 50 symbols on SQLite).
        symbol_of = {bar_id(i.pk, price_date): symbol for symbol, i in instruments.items()}
        rows = [
            (symbol_of[pk], source, synthetic)
            for pk, source, synthetic in PriceBar.objects.filter(pk__in=list(symbol_of)).values_list(
                "pk", "source", "synthetic"
            )
        ]
    else:
        bars = store.read_bars(sorted(instruments), price_date, price_date)
        rows = list(zip(bars["symbol"], bars["source"], bars["synthetic"], strict=True))
    sources = sorted({str(source) for _, source, _ in rows if source})
    synthetic = sorted({str(symbol) for symbol, _, flag in rows if flag})
    return PriceProvenance(price_date, sources, synthetic, symbols_priced=len(rows))


def run_report_build(*, run: RebalanceRun, trades: list[PlannedTrade] | None = None) -> RunReport:
    """Everything the report shows, from the stored run (see the module docstring); for a preview,
    the unsaved run with its unsaved ``trades``."""
    snapshot = run.snapshot or {}
    needs = {need["symbol"]: need for need in run.needs or []}
    holdings_json = snapshot.get("holdings", {})
    symbols = sorted(set(needs) | set(holdings_json) | set(run.targets or {}))
    result = _result(run)
    trades = run_trades(run=run) if trades is None else trades
    orders = _orders(run)
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    price_date = date.fromisoformat(snapshot["price_date"]) if snapshot.get("price_date") else None
    prices = _provenance(instruments, price_date)

    holdings = _holdings(run, symbols, needs, instruments)
    cash_before = 1 - sum(row.current_weight or 0.0 for row in holdings) if needs else None
    cash_target = 1 - sum(float(n["target_weight"]) for n in needs.values()) if needs else None
    cash_after = 1 - sum(float(w) for w in (run.weights_after or {}).values()) if run.weights_after else None
    by_holding, by_class, by_sector = _allocation(holdings, run)
    construction, construction_note = _construction(run, result)
    risk, risk_note = _risk(run)
    correlation_symbols, correlation = _correlation(run, result)
    return RunReport(
        run=run,
        status_badge=STATUS_BADGES.get(run.status, ""),
        strategy=_strategy(run, result),
        prices=prices,
        holdings=holdings,
        cash_before_weight=cash_before,
        cash_target_weight=cash_target,
        cash_after_weight=cash_after,
        by_holding=by_holding,
        by_asset_class=by_class,
        by_sector=by_sector,
        construction=construction,
        construction_note=construction_note,
        risk=risk,
        risk_note=risk_note,
        correlation_symbols=correlation_symbols,
        correlation=correlation,
        trades=[
            TradeRow(
                sequence=t.sequence,
                side=t.side,
                symbol=t.instrument.symbol,
                quantity=t.quantity,
                estimated_price=t.estimated_price,
                notional_usd=t.notional_usd,
                estimated_cost_usd=t.estimated_cost_usd,
                reason=t.reason,
            )
            for t in trades
        ],
        execution=_execution(run, orders),
    )


def _strategy(run: RebalanceRun, result: OptimizationResult | None) -> Strategy:
    strategy = Strategy(
        planning=run.strategy, planning_requested=run.requested_strategy, targets_source=run.targets_source
    )
    if result is not None:
        strategy.optimizer = result.strategy
        strategy.optimizer_requested = result.requested_strategy
        strategy.fallbacks = list(result.fallbacks or [])
        strategy.optimizer_notes = list(result.notes or [])
        strategy.optimizer_warnings = [warning["message"] for warning in result.warnings or []]
        strategy.equity_share = None if result.equity_share is None else float(result.equity_share)
    return strategy


def _holdings(run: RebalanceRun, symbols: list[str], needs: dict, instruments: dict) -> list[HoldingRow]:
    snapshot = run.snapshot or {}
    held = snapshot.get("holdings", {})
    prices = snapshot.get("prices", {})
    after = run.weights_after or {}
    classes = dict(AssetClass.choices)
    rows = []
    for symbol in symbols:
        need = needs.get(symbol, {})
        instrument = instruments.get(symbol)
        quantity = _decimal(held.get(symbol, {}).get("quantity")) if symbol in held else Decimal(0)
        price = _decimal(prices.get(symbol))
        rows.append(
            HoldingRow(
                symbol=symbol,
                name=instrument.name if instrument else "",
                asset_class=classes.get(instrument.asset_class, instrument.asset_class) if instrument else "Other",
                sector=(instrument.sector if instrument else "") or "Unclassified",
                quantity=quantity,
                price_usd=price,
                value_usd=(quantity * price).quantize(Decimal("0.01")) if quantity is not None and price else None,
                current_weight=_fraction(need.get("current_weight")),
                target_weight=_fraction(need.get("target_weight", (run.targets or {}).get(symbol))),
                deviation=_fraction(need.get("deviation")),
                band=_fraction(need.get("band")),
                outside=bool(need.get("outside")),
                urgency=need.get("urgency"),
                action=need.get("action", ""),
                weight_after=_fraction(after.get(symbol)),
            )
        )
    return rows


def _allocation(holdings: list[HoldingRow], run: RebalanceRun):
    """(label, USD) by holding with cash, and current weights (in percent) summed by asset class
    and by sector."""
    by_holding = [(row.symbol, float(row.value_usd)) for row in holdings if row.value_usd]
    cash = _decimal((run.snapshot or {}).get("cash_usd"))
    if cash and cash > 0:
        by_holding.append((CASH, float(cash)))
    classes: dict[str, float] = defaultdict(float)
    sectors: dict[str, float] = defaultdict(float)
    for row in holdings:
        if row.current_weight:
            classes[row.asset_class] += row.current_weight * 100
            sectors[row.sector] += row.current_weight * 100
    invested = sum((row.current_weight or 0.0) * 100 for row in holdings)
    if holdings and 100 - invested > 1e-9:
        classes[CASH] += 100 - invested
        sectors[CASH] += 100 - invested
    return by_holding, sorted(classes.items()), sorted(sectors.items())


def _point(figures: dict | None) -> tuple[float, float] | None:
    if not figures or figures.get("volatility") is None or figures.get("expected_return") is None:
        return None
    return (float(figures["volatility"]), float(figures["expected_return"]))


def _construction(run: RebalanceRun, result: OptimizationResult | None) -> tuple[Construction | None, str]:
    if result is None:
        return None, "Targets were set manually for this run: there is no optimizer result to show."
    analysis = result.analysis or {}
    if not analysis:
        return None, (
            f"Efficient frontier, sleeves and glide path: {NOT_AVAILABLE} (its optimizer result predates them)."
        )
    sleeves = analysis.get("sleeves") or {}
    risk = run.risk or {}
    points = {
        "Current": _point(risk.get("before")),
        "Target": (float(result.volatility), float(result.expected_return)),
        "Aggressive": _point(sleeves.get("aggressive")),
        "Safe": _point(sleeves.get("safe")),
    }
    aggressive = (sleeves.get("aggressive") or {}).get("weights", {})
    safe = (sleeves.get("safe") or {}).get("weights", {})
    sleeve_rows = [
        SleeveWeightRow(
            symbol=symbol,
            aggressive_weight=_fraction(aggressive.get(symbol, 0.0)) if aggressive else None,
            safe_weight=_fraction(safe.get(symbol, 0.0)) if safe else None,
            target_weight=_fraction(_decimal((run.targets or {}).get(symbol))),
        )
        for symbol in analysis.get("symbols", [])
    ]
    glide = analysis.get("glide")
    if glide and result.equity_share is not None:
        # The marker shows the share the summary states: the result's, not the analysis's own rounding.
        glide = {**glide, "equity_share": float(result.equity_share)}
    notes = list(analysis.get("notes", []))
    if points["Current"] is None:
        notes.append(f"Current portfolio's risk and return: {NOT_AVAILABLE}.")
    return Construction(
        frontier=analysis.get("frontier"),
        points=points,
        glide=glide,
        sleeve_rows=sleeve_rows,
        notes=notes,
    ), ""


def _risk(run: RebalanceRun) -> tuple[Risk | None, str]:
    risk = run.risk or {}
    if not risk:
        return None, f"Risk before and after: {NOT_AVAILABLE} (the run was stored before risk figures were kept)."
    if risk.get("error"):
        return None, f"Risk before and after: {NOT_AVAILABLE} ({risk['error']})."
    before, target, after = risk.get("before", {}), risk.get("target", {}), risk.get("after", {})
    rows = [
        RiskRow(
            label=label,
            percent=percent,
            before=before.get(key),
            target=target.get(key),
            after=after.get(key),
        )
        for key, label, percent in RISK_FIGURES
    ]
    contributions_before = before.get("risk_contributions", {})
    contributions_after = after.get("risk_contributions", {})
    symbols = [s for s in risk.get("symbols", []) if s in contributions_before or s in contributions_after]
    return Risk(
        rows=rows,
        contributions_symbols=symbols,
        contributions_before=contributions_before,
        contributions_after=contributions_after,
        window=risk.get("window", {}),
        cash_weight={key: _fraction(value) for key, value in risk.get("cash_weight", {}).items()},
    ), ""


def _correlation(run: RebalanceRun, result: OptimizationResult | None) -> tuple[list[str], list[list[float]] | None]:
    """Correlations of the optimizer's universe (from its stored covariance), or the run's own
    (stored with the plan when the targets were manual)."""
    analysis = (result.analysis if result is not None else None) or {}
    if analysis.get("cov"):
        cov = np.array(analysis["cov"], dtype=float)
        volatilities = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        scale = np.outer(volatilities, volatilities)
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.where(scale > 0, cov / scale, 0.0)
        np.fill_diagonal(correlation, 1.0)
        return list(analysis["symbols"]), np.clip(correlation, -1.0, 1.0).tolist()
    risk = run.risk or {}
    if risk.get("correlation"):
        return list(risk["symbols"]), risk["correlation"]
    return [], None


def _execution(run: RebalanceRun, orders: list[Order]) -> Execution | None:
    execution = run.execution or {}
    if not execution and not orders:
        return None
    rows = [
        OrderRow(
            client_order_id=o.client_order_id,
            side=o.side,
            symbol=o.symbol,
            quantity=o.quantity,
            notional_usd=o.notional_usd,
            order_type=o.order_type,
            limit_price_usd=o.limit_price_usd,
            estimated_price_usd=o.estimated_price_usd,
            state=o.state,
            state_label=o.state.replace("_", " ").capitalize(),
            badge=ORDER_BADGES.get(o.state, "warn"),
            filled_quantity=o.filled_quantity,
            filled_avg_price_usd=o.filled_avg_price_usd,
            filled_value_usd=(o.filled_quantity * o.filled_avg_price_usd).quantize(Decimal("0.01"))
            if o.filled_avg_price_usd is not None
            else None,
            broker_status=o.broker_status,
            reject_reason=o.reject_reason,
            submitted_at=o.submitted_at,
            events=[EventRow(e.kind, e.state_before, e.state_after, e.message, e.created_at) for e in o.events.all()],
        )
        for o in orders
    ]
    messages = [
        f"{label}: {execution[key]}"
        for key, label in (("waiting", "Waiting"), ("sync_error", "Sync from the broker failed"))
        if execution.get(key)
    ]
    buys = execution.get("buys")
    return Execution(
        step=run.execution_step,
        checks=list(execution.get("checks", [])),
        buys=None
        if not buys
        else BuysResized(
            available_usd=_decimal(buys.get("available_usd")),
            wanted_usd=_decimal(buys.get("wanted_usd")),
            factor=_decimal(buys.get("factor")),
            dropped=list(buys.get("dropped") or []),
        ),
        reconciliation=execution.get("reconciliation"),
        messages=messages,
        orders=rows,
        filled_orders=sum(1 for row in rows if row.state == "filled"),
        filled_value_usd=sum((row.filled_value_usd or Decimal(0) for row in rows), Decimal(0)),
    )
