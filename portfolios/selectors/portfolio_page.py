"""Reads for a portfolio's page: its holdings table against the latest targets, its runs and the
closes behind its price chart."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, F

from marketdata.models import Instrument
from marketdata.selectors import price_frame
from optimization.models import OptimizationResult
from portfolios.models import HoldingsSync, Portfolio, RebalanceRun
from portfolios.selectors import RUN_SUMMARY_FIELDS
from portfolios.selectors.drift import LatestTargets, drifts_now, targets_latest
from portfolios.selectors.valuation import Prices, Valuation, last_session, prices_latest, valuation_of
from portfolios.services.fractionability import share_rules_for, whole_shares_rows

#: Runs listed on a portfolio page.
RUN_HISTORY_LIMIT = 30
#: Days of closes on a portfolio page's price chart.
PRICE_HISTORY_DAYS = 365


@dataclass
class HoldingRow:
    symbol: str
    quantity: Decimal | None
    price_usd: Decimal | None
    price_date: date | None
    value_usd: Decimal | None
    weight: float | None = None
    target: float | None = None
    deviation: float | None = None
    band: float | None = None
    urgency: float | None = None
    outside: bool = False
    action: str = ""

    @property
    def weight_pct(self) -> float | None:
        return None if self.weight is None else self.weight * 100

    @property
    def target_pct(self) -> float | None:
        return None if self.target is None else self.target * 100

    @property
    def deviation_pp(self) -> float | None:
        return None if self.deviation is None else self.deviation * 100

    @property
    def band_pp(self) -> float | None:
        return None if self.band is None else self.band * 100


@dataclass
class PortfolioDetail:
    portfolio: Portfolio
    rows: list[HoldingRow]
    valuation: Valuation
    prices: Prices
    source: str  # "run" (the latest run's needs), "computed" or "" (no targets to compare with)
    source_note: str
    latest_run: RebalanceRun | None
    runs: list[RebalanceRun]
    last_sync: HoldingsSync | None
    cash_weight: float | None
    cash_target: float | None
    stale: list[str]
    whole_shares: list[dict[str, str]] = field(default_factory=list)  # `whole_shares_rows` of the rows' symbols
    target_warnings: list[str] = field(default_factory=list)  # how the weight bounds moved the targets

    @property
    def cash_weight_pct(self) -> float | None:
        return None if self.cash_weight is None else self.cash_weight * 100

    @property
    def cash_target_pct(self) -> float | None:
        return None if self.cash_target is None else self.cash_target * 100


def portfolio_detail(*, portfolio: Portfolio) -> PortfolioDetail:
    """The holdings table of a portfolio already fetched for its owner (`portfolio_get_for_user`).

    Weights, targets, bands and urgencies come from the latest run's needs when that run was
    planned on the holdings the portfolio still has; otherwise they are computed now from the
    holdings, the latest closes and the latest targets (the run's, the manual targets, or the
    last stored optimizer targets). The symbols plans trade in whole shares are listed with why.
    """
    holdings = {h.instrument.symbol: h for h in portfolio.holdings.select_related("instrument")}
    universe = set(portfolio.instruments.values_list("symbol", flat=True))
    runs = list(
        RebalanceRun.objects.filter(portfolio=portfolio)
        .only(*RUN_SUMMARY_FIELDS)
        .annotate(trades_count=Count("trades"), drift_pct=F("drift_before") * 100)
        .order_by("-trading_date", "-created_at")[:RUN_HISTORY_LIMIT]
    )
    latest = RebalanceRun.objects.get(pk=runs[0].pk) if runs else None
    targets, target_note, target_warnings = _targets(portfolio, latest)
    session = last_session()
    symbols = set(holdings) | universe | set(targets)
    prices = prices_latest(symbols=symbols, session=session)
    quantities = {s: h.quantity for s, h in holdings.items()}
    valuation = valuation_of(quantities, portfolio.cash_usd, prices)
    rows = {
        s: HoldingRow(
            symbol=s,
            quantity=quantities.get(s),
            price_usd=prices.closes[s][1] if s in prices.closes else None,
            price_date=prices.closes[s][0] if s in prices.closes else None,
            value_usd=(quantities[s] * prices.closes[s][1]).quantize(Decimal("0.01"))
            if s in quantities and s in prices.closes
            else None,
        )
        for s in sorted(set(holdings) | set(targets))
    }
    for symbol, weight in targets.items():  # the stored targets, whatever else can be known
        rows[symbol].target = float(weight)
    source, note, cash_weight, cash_target = "", "no targets yet: plan a run or set manual targets", None, None
    if latest is not None and latest.needs and _run_matches(latest, quantities, portfolio.cash_usd):
        for need in latest.needs:
            row = rows.setdefault(need["symbol"], HoldingRow(need["symbol"], None, None, None, None))
            _fill(row, need)
        source, note = "run", f"from the run of {latest.trading_date} (planned on the holdings shown)"
        cash_target = float(latest.policy.get("trading", {}).get("cash_buffer_weight", 0) or 0)
        if latest.value_before_usd:
            cash_weight = float(latest.cash_before_usd or 0) / float(latest.value_before_usd)
    elif targets and valuation.value_usd:
        computed = _compute_needs(portfolio, quantities, targets, prices)
        if computed is not None:
            needs, cash_weight, cash_target = computed
            for need in needs:
                _fill(rows[need["symbol"]], need)
            source, note = "computed", f"computed now from the holdings and the latest closes; targets {target_note}"
    priced_usd = valuation.holdings_usd + portfolio.cash_usd
    if source == "" and priced_usd:
        total = float(priced_usd)
        for row in rows.values():
            if row.value_usd is not None:
                row.weight = float(row.value_usd) / total
        cash_weight = float(portfolio.cash_usd) / total
        if valuation.missing:
            note = (
                f"weights are of the priced holdings and cash: no close for {', '.join(valuation.missing)}, whose "
                "value is unknown" + (f"; targets {target_note}" if targets else "")
            )
    instruments = {symbol: holding.instrument for symbol, holding in holdings.items()}
    if unheld := [symbol for symbol in rows if symbol not in instruments]:
        instruments.update({i.symbol: i for i in Instrument.objects.filter(symbol__in=unheld)})
    return PortfolioDetail(
        portfolio=portfolio,
        rows=list(rows.values()),
        valuation=valuation,
        prices=prices,
        source=source,
        source_note=note,
        latest_run=latest,
        runs=runs,
        last_sync=portfolio.syncs.select_related("broker_account").first(),
        cash_weight=cash_weight,
        cash_target=cash_target,
        stale=prices.stale(set(holdings) | universe),
        whole_shares=whole_shares_rows(share_rules_for(portfolio=portfolio, instruments=instruments)),
        target_warnings=target_warnings,
    )


def price_history(*, symbols, session: date, days: int = PRICE_HISTORY_DAYS):
    """Adjusted closes of ``symbols`` over the ``days`` before ``session`` (a wide frame, NaN gaps)."""
    return price_frame(symbols=sorted(symbols), start=session - timedelta(days=days), end=session)


def _fill(row: HoldingRow, need: dict) -> None:
    row.weight = need["current_weight"]
    row.target = need["target_weight"]
    row.deviation = need["deviation"]
    row.band = need["band"]
    row.urgency = need["urgency"]
    row.outside = bool(need["outside"])
    row.action = need["action"]


def _run_matches(run: RebalanceRun, quantities: dict[str, Decimal], cash_usd: Decimal) -> bool:
    """Whether ``run`` was planned on exactly these holdings and cash (nothing traded or edited since)."""
    snapshot = run.snapshot or {}
    planned = {s: Decimal(h["quantity"]) for s, h in snapshot.get("holdings", {}).items()}
    held = {s: q for s, q in quantities.items()}
    return planned == held and Decimal(snapshot.get("cash_usd", "-1")) == cash_usd


def _targets(portfolio: Portfolio, run: RebalanceRun | None) -> tuple[dict[str, Decimal], str, list[str]]:
    """The latest target weights known for the portfolio, where they come from, and the warnings
    stored with the optimizer result they come from."""
    latest = targets_latest(portfolios=[portfolio], runs={portfolio.pk: run})[portfolio.pk]
    stored = OptimizationResult.objects.filter(pk=latest.result_id).values_list("warnings", flat=True).first()
    return latest.weights, latest.source, [warning["message"] for warning in stored or []]


def _compute_needs(portfolio: Portfolio, quantities, targets, prices: Prices):
    """(needs as stored on a run, cash weight, cash target) for the current holdings, or None."""
    closes = {symbol: close for symbol, (_, close) in prices.closes.items()}
    now = drifts_now(
        portfolios=[portfolio],
        quantities={portfolio.pk: quantities},
        targets={portfolio.pk: LatestTargets(targets, "")},
        closes=closes,
    )[portfolio.pk]
    if now.drift is None:
        return None
    return now.needs, now.cash_weight, now.cash_target
