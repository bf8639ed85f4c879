"""The rebalancing report's data, read from the stored run and nothing else.

`run_report_build` turns a stored `RebalanceRun` (snapshot, targets, needs, plan figures, the
risk figures stored with the plan, its optimizer result's stored analysis, its trades, orders
and their events) into plain data for the page and its charts. It never calls a broker,
never re-optimizes and never re-plans; the only other rows it reads are the instruments
(asset class, sector) and the stored price bars of the run's price date (which provider they
came from: the synthetic sample provider is labelled).

Queries are a fixed number whatever the number of holdings, trades or orders: the optimizer
result, the trades with their instruments, the orders, their events, the instruments and the
bars of one day.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cached_property

import numpy as np
from django.db.models import Prefetch

from brokers.models import Order, OrderEvent
from marketdata.models import AssetClass, Instrument, PriceBar, bar_id
from marketdata.stores import get_price_store
from marketdata.stores.database import DatabasePriceStore
from optimization.models import OptimizationResult
from portfolios.charts.base import percent_label
from portfolios.models import PlannedTrade, RebalanceRun
from portfolios.templatetags.numbers import price_text, quantity_text

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
# (key in the stored metrics, label, shown as percent)
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


def _pct(value) -> float | None:
    """A fraction as percent for people (None stays None)."""
    if value is None:
        return None
    number = float(value)
    return number * 100 if math.isfinite(number) else None


# Text for people, made here once: a 50-holding page shows ~700 numbers, and Django's floatformat
# filter costs ~20x a format string.
DASH = "—"


def percent_text(value: float | None, places: int = 2, unit: str = "%") -> str:
    # "z" drops the sign of a value that rounds to zero: a loss of -0.0001% reads "0.00%", not "-0.00%".
    return DASH if value is None else f"{value:z.{places}f}{unit}"


def usd_text(value) -> str:
    return DASH if value is None else f"${value:,.2f}"


def shares_text(value: Decimal | None) -> str:
    """Shares as every page shows them (`quantity_text`: at most 4 decimals)."""
    return DASH if value is None else quantity_text(value)


def share_price_text(value: Decimal | None) -> str:
    """A price per share as every page shows it (`price_text`: cents, up to 4 decimals under $1)."""
    return DASH if value is None else f"${price_text(value)}"


# -- rows ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldingRow:
    """One symbol of the run: what was held, its target and where the plan leaves it (weights in %)."""

    symbol: str
    name: str
    asset_class: str
    sector: str
    quantity: Decimal | None
    price_usd: Decimal | None
    value_usd: Decimal | None
    current_pct: float | None
    target_pct: float | None
    deviation_pp: float | None
    band_pp: float | None
    outside: bool
    urgency: float | None
    action: str
    after_pct: float | None

    @property
    def quantity_text(self) -> str:
        return shares_text(self.quantity)

    @property
    def price_text(self) -> str:
        return share_price_text(self.price_usd)

    @property
    def value_text(self) -> str:
        return usd_text(self.value_usd)

    @property
    def current_text(self) -> str:
        return percent_text(self.current_pct)

    @property
    def target_text(self) -> str:
        return percent_text(self.target_pct)

    @property
    def after_text(self) -> str:
        return percent_text(self.after_pct)

    @property
    def deviation_text(self) -> str:
        return percent_text(self.deviation_pp, unit=" pp")

    @property
    def band_text(self) -> str:
        return "±" + percent_text(self.band_pp, unit=" pp")

    @property
    def urgency_text(self) -> str:
        return percent_text(self.urgency, unit="")


@dataclass(frozen=True)
class TradeRow:
    sequence: int
    side: str
    symbol: str
    quantity: Decimal
    estimated_price: Decimal
    notional_usd: Decimal
    estimated_cost_usd: Decimal
    reason: str

    @property
    def quantity_text(self) -> str:
        return shares_text(self.quantity)

    @property
    def price_text(self) -> str:
        return share_price_text(self.estimated_price)

    @property
    def notional_text(self) -> str:
        return usd_text(self.notional_usd)

    @property
    def cost_text(self) -> str:
        return usd_text(self.estimated_cost_usd)


@dataclass(frozen=True)
class EventRow:
    kind: str
    state_before: str
    state_after: str
    message: str
    created_at: object


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    side: str
    symbol: str
    quantity: Decimal | None
    notional_usd: Decimal | None
    order_type: str
    limit_price_usd: Decimal | None
    estimated_price_usd: Decimal
    state: str
    state_label: str
    badge: str
    filled_quantity: Decimal
    filled_avg_price_usd: Decimal | None
    filled_value_usd: Decimal | None
    broker_status: str
    reject_reason: str
    submitted_at: object
    events: list[EventRow]

    @property
    def amount_text(self) -> str:
        return shares_text(self.quantity) if self.quantity is not None else usd_text(self.notional_usd)

    @property
    def filled_text(self) -> str:
        return shares_text(self.filled_quantity)

    @property
    def fill_price_text(self) -> str:
        return share_price_text(self.filled_avg_price_usd)

    @property
    def estimated_price_text(self) -> str:
        return share_price_text(self.estimated_price_usd)

    @property
    def limit_price_text(self) -> str:
        return share_price_text(self.limit_price_usd) if self.limit_price_usd is not None else ""

    @property
    def filled_value_text(self) -> str:
        return usd_text(self.filled_value_usd)


@dataclass(frozen=True)
class RiskRow:
    label: str
    percent: bool
    before: float | None
    target: float | None
    after: float | None

    def _text(self, value: float | None) -> str:
        return percent_text(value, unit="%" if self.percent else "")

    @property
    def before_text(self) -> str:
        return self._text(self.before)

    @property
    def target_text(self) -> str:
        return self._text(self.target)

    @property
    def after_text(self) -> str:
        return self._text(self.after)


@dataclass(frozen=True)
class SleeveWeightRow:
    symbol: str
    aggressive_pct: float | None
    safe_pct: float | None
    target_pct: float | None

    @property
    def aggressive_text(self) -> str:
        return percent_text(self.aggressive_pct)

    @property
    def safe_text(self) -> str:
        return percent_text(self.safe_pct)

    @property
    def target_text(self) -> str:
        return percent_text(self.target_pct)


# -- sections --------------------------------------------------------------------------------------


@dataclass
class Strategy:
    planning: str
    planning_requested: str
    targets_source: str
    optimizer: str = ""
    optimizer_requested: str = ""
    fallbacks: list[dict] = field(default_factory=list)
    optimizer_notes: list[str] = field(default_factory=list)
    optimizer_warnings: list[str] = field(default_factory=list)  # what the weight bounds changed in the targets
    equity_share: float | None = None  # the glide path's aggressive share, a fraction

    @property
    def equity_share_text(self) -> str:
        return percent_label(self.equity_share)


@dataclass
class PriceProvenance:
    price_date: date | None
    sources: list[str]
    synthetic_symbols: list[str]
    symbols_priced: int = 0

    @property
    def synthetic(self) -> bool:
        return bool(self.synthetic_symbols)

    @property
    def all_synthetic(self) -> bool:
        return self.synthetic and len(self.synthetic_symbols) == self.symbols_priced


@dataclass
class Construction:
    """Target construction: the frontier with the run's portfolios, the glide path, the sleeves."""

    frontier: list | None
    points: dict[str, tuple[float, float] | None]
    glide: dict | None
    sleeve_rows: list[SleeveWeightRow]
    notes: list[str]


@dataclass
class Risk:
    rows: list[RiskRow]
    contributions_symbols: list[str]
    contributions_before: dict[str, float]
    contributions_after: dict[str, float]
    window: dict
    cash_weight: dict
    error: str = ""


@dataclass
class Execution:
    step: str
    checks: list[dict]
    buys: dict | None
    reconciliation: dict | None
    messages: list[str]
    orders: list[OrderRow]
    filled_orders: int
    filled_value_usd: Decimal


@dataclass
class RunReport:
    run: RebalanceRun
    status_badge: str
    strategy: Strategy
    prices: PriceProvenance
    holdings: list[HoldingRow]
    cash_before_pct: float | None
    cash_target_pct: float | None
    cash_after_pct: float | None
    by_holding: list[tuple[str, float]]
    by_asset_class: list[tuple[str, float]]
    by_sector: list[tuple[str, float]]
    construction: Construction | None
    construction_note: str
    risk: Risk | None
    risk_note: str
    correlation_symbols: list[str]
    correlation: list[list[float]] | None
    trades: list[TradeRow]
    execution: Execution | None

    @property
    def drift_before_text(self) -> str:
        return percent_text(_pct(self.run.drift_before))

    @property
    def drift_after_text(self) -> str:
        return percent_text(_pct(self.run.drift_after))

    @property
    def turnover_text(self) -> str:
        return percent_text(_pct(self.run.turnover))

    @property
    def cash_before_text(self) -> str:
        return percent_text(self.cash_before_pct)

    @property
    def cash_target_text(self) -> str:
        return percent_text(self.cash_target_pct)

    @property
    def cash_after_text(self) -> str:
        return percent_text(self.cash_after_pct)

    @property
    def value_before_text(self) -> str:
        return usd_text(self.run.value_before_usd)

    @property
    def value_after_text(self) -> str:
        return usd_text(self.run.value_after_usd)

    @property
    def cash_before_usd_text(self) -> str:
        return usd_text(self.run.cash_before_usd)

    @property
    def cash_after_usd_text(self) -> str:
        return usd_text(self.run.cash_after_usd)

    @property
    def total_cost_text(self) -> str:
        return usd_text(self.run.total_cost_usd)

    @property
    def cash_flow_text(self) -> str:
        flow = self.run.cash_flow_usd or Decimal(0)
        if flow == 0:
            return "none"
        return f"{'deposit' if flow > 0 else 'withdrawal'} of {usd_text(abs(flow))}"

    @cached_property
    def chart_texts(self) -> dict[str, str]:
        """A sentence per chart saying what it shows, its text alternative (`chart_summaries`)."""
        return chart_summaries(self)


# -- text alternatives of the charts ----------------------------------------------------------------

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
    return f"{what}: {_listed([f'{label} {percent_text(amount / total * 100, 1)}' for label, amount in ranked])}."


def chart_summaries(report: RunReport) -> dict[str, str]:
    """One plain sentence per chart of ``report``, from the same figures the chart draws: what a
    screen reader says instead of the picture, and a caption for everyone."""
    texts = {
        "by_holding": _shares_sentence("Value by holding, cash included", report.by_holding),
        "by_asset_class": _shares_sentence("Current weight by asset class", report.by_asset_class),
        "by_sector": _shares_sentence("Current weight by sector", report.by_sector),
    }
    needs = [row for row in report.holdings if row.deviation_pp is not None]
    if needs:
        texts["weights"] = (
            f"Current against target weight of {len(needs)} holding{'s' if len(needs) != 1 else ''}: "
            + _listed([f"{row.symbol} {row.current_text} (target {row.target_text})" for row in needs])
            + "."
        )
        outside = [row for row in needs if row.outside]
        texts["drift"] = (
            f"Deviation from target against the band: {len(outside)} of {len(needs)} outside"
            + (f" ({_listed([f'{row.symbol} {row.deviation_pp:+.2f} pp' for row in outside])})" if outside else "")
            + "; the table below lists every holding."
        )
    construction = report.construction
    if construction is not None and construction.frontier:
        marked = [
            f"{name} at {percent_text(point[0] * 100)} volatility and {percent_text(point[1] * 100)} expected return"
            for name, point in construction.points.items()
            if point is not None
        ]
        volatilities = [float(vol) for vol, _ in construction.frontier]
        texts["frontier"] = (
            f"Efficient frontier from {percent_text(min(volatilities) * 100)} to "
            f"{percent_text(max(volatilities) * 100)} annual volatility; " + "; ".join(marked) + "."
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
            return _listed([f"{symbol} {percent_text((share or 0) * 100, 1)}" for symbol, share in ranked])

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


# -- reading ---------------------------------------------------------------------------------------


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
    current = {row.symbol: (row.current_pct or 0.0) / 100 for row in holdings}
    cash_before = _pct(1 - sum(current.values())) if needs else None
    cash_target = _pct(1 - sum(float(n["target_weight"]) for n in needs.values())) if needs else None
    cash_after = _pct(1 - sum(float(w) for w in (run.weights_after or {}).values())) if run.weights_after else None
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
        cash_before_pct=cash_before,
        cash_target_pct=cash_target,
        cash_after_pct=cash_after,
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
                current_pct=_pct(need.get("current_weight")),
                target_pct=_pct(need.get("target_weight", (run.targets or {}).get(symbol))),
                deviation_pp=_pct(need.get("deviation")),
                band_pp=_pct(need.get("band")),
                outside=bool(need.get("outside")),
                urgency=need.get("urgency"),
                action=need.get("action", ""),
                after_pct=_pct(after.get(symbol)),
            )
        )
    return rows


def _allocation(holdings: list[HoldingRow], run: RebalanceRun):
    """(label, USD) by holding with cash, and current weights summed by asset class and by sector."""
    by_holding = [(row.symbol, float(row.value_usd)) for row in holdings if row.value_usd]
    cash = _decimal((run.snapshot or {}).get("cash_usd"))
    if cash and cash > 0:
        by_holding.append((CASH, float(cash)))
    classes: dict[str, float] = defaultdict(float)
    sectors: dict[str, float] = defaultdict(float)
    for row in holdings:
        if row.current_pct:
            classes[row.asset_class] += row.current_pct
            sectors[row.sector] += row.current_pct
    invested = sum(row.current_pct or 0.0 for row in holdings)
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
            aggressive_pct=_pct(aggressive.get(symbol, 0.0)) if aggressive else None,
            safe_pct=_pct(safe.get(symbol, 0.0)) if safe else None,
            target_pct=_pct(_decimal((run.targets or {}).get(symbol))),
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
            before=_pct(before.get(key)) if percent else before.get(key),
            target=_pct(target.get(key)) if percent else target.get(key),
            after=_pct(after.get(key)) if percent else after.get(key),
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
        cash_weight={key: _pct(value) for key, value in risk.get("cash_weight", {}).items()},
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
        else {
            "available": usd_text(_decimal(buys.get("available_usd"))),
            "wanted": usd_text(_decimal(buys.get("wanted_usd"))),
            "factor": percent_text(_pct(_decimal(buys.get("factor"))), 1),
            "dropped": list(buys.get("dropped") or []),
        },
        reconciliation=execution.get("reconciliation"),
        messages=messages,
        orders=rows,
        filled_orders=sum(1 for row in rows if row.state == "filled"),
        filled_value_usd=sum((row.filled_value_usd or Decimal(0) for row in rows), Decimal(0)),
    )
