"""Reads for the dashboard and the portfolio page, scoped to the requesting user.

The dashboard reads everything it shows in a fixed number of queries, whatever the number of
portfolios: the portfolios (with the id of their latest run), their holdings, their universes,
the latest runs (with their trade counts), the optimizer's latest targets of those without run or
manual targets, the run values of the last `HISTORY_DAYS` days, the orders whose outcome is
unknown, the kill switch, the daily-run schedule, and the latest stored closes of the union of
their symbols (a price frame and a read of the bars, for the synthetic marker). Values are
holdings at the latest stored close on or before the last completed NYSE session, plus cash.
Drift is that of the holdings now against the latest targets (`drifts_now`), never a stored
run's figure: a sync, an execution or an edit of the holdings changes it at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db.models import Count, F, OuterRef, Subquery
from django.utils import timezone

from brokers.selectors import broker_accounts_for_user, orders_for_user
from brokers.services.controls import trading_halt_reason
from marketdata import calendar
from marketdata.models import Instrument
from marketdata.selectors import latest_closes, price_frame
from marketdata.stores import get_price_store
from optimization.core.errors import OptimizationError
from optimization.core.rebalancing.inputs import PlanContext
from optimization.core.rebalancing.needs import needs as core_needs
from optimization.models import OptimizationResult, TargetAllocation, TargetWeight
from optimization.services import manual_targets_parse, plan_inputs_build, price_decimal, rebalance_policy_for
from portfolios.models import Holding, HoldingsSync, Portfolio, RebalanceRun
from portfolios.selectors import portfolios_for_user, runs_for_user
from portfolios.services.fractionability import share_rules_for, whole_shares_rows

#: Days of stored runs behind each dashboard sparkline.
HISTORY_DAYS = 183
#: Runs listed on a portfolio page.
RUN_HISTORY_LIMIT = 30
#: Days of closes on a portfolio page's price chart.
PRICE_HISTORY_DAYS = 365
DAILY_RUN_SCHEDULE = "daily-run"
FAILED_STATUSES = (RebalanceRun.Status.FAILED, RebalanceRun.Status.EXECUTION_FAILED)
# The columns of a run that the dashboard and the run lists read (the snapshot, policy and report
# data are large and stay in the database).
RUN_SUMMARY_FIELDS = (
    "id",
    "portfolio_id",
    "trading_date",
    "status",
    "error",
    "trigger",
    "strategy",
    "drift_before",
    "drift_after",
    "value_before_usd",
    "execution_step",
    "superseded_by_id",
    "created_at",
)


@dataclass(frozen=True)
class Alert:
    level: str  # "bad" or "warn" (the CSS classes alert-bad / alert-warn)
    text: str
    portfolio: Portfolio | None = None


@dataclass(frozen=True)
class Prices:
    """Latest stored closes on or before ``session``: {symbol: (date, USD)}, and which are synthetic."""

    session: date
    closes: dict[str, tuple[date, Decimal]]
    synthetic: frozenset[str]

    def stale(self, symbols) -> list[str]:
        """Symbols without a close on the last completed session."""
        return sorted(s for s in symbols if s not in self.closes or self.closes[s][0] != self.session)


@dataclass
class Valuation:
    """Holdings at the latest closes plus cash; ``value_usd`` is None when a held symbol has no close."""

    holdings_usd: Decimal
    cash_usd: Decimal
    missing: list[str]

    @property
    def value_usd(self) -> Decimal | None:
        return None if self.missing else self.holdings_usd + self.cash_usd


@dataclass(frozen=True)
class DriftNow:
    """A portfolio's drift as it holds now: holdings at the latest closes plus cash, against its
    latest targets (`targets_latest`) and its cash buffer. ``drift`` (sum |w - t| / 2, the plans'
    measure) is None when it cannot be known, and ``unknown`` says why; ``needs`` are per holding,
    as a run stores them."""

    drift: Decimal | None
    needs: list[dict]
    cash_weight: float | None
    cash_target: float | None
    targets_note: str
    unknown: str = ""


@dataclass
class PortfolioCard:
    portfolio: Portfolio
    valuation: Valuation
    last_run: RebalanceRun | None
    worst: dict | None  # the holding furthest from its target now
    drift_alert: bool
    next_run: datetime | None
    stale: list[str]
    history: list[tuple[date, Decimal]] = field(default_factory=list)
    drift_now: DriftNow | None = None

    @property
    def drift_pct(self) -> Decimal | None:
        drift = self.drift_now.drift if self.drift_now else None
        return None if drift is None else drift * 100


@dataclass
class Dashboard:
    cards: list[PortfolioCard]
    alerts: list[Alert]
    session: date
    next_run: datetime | None
    synthetic: bool
    has_broker_accounts: bool
    drift_alert_threshold: Decimal


def last_session() -> date:
    """The last completed NYSE session: the date whose closes values and plans use."""
    return calendar.last_completed_session(timezone.now())


def prices_latest(*, symbols, session: date) -> Prices:
    """Latest stored closes of ``symbols`` (at most 31 days before ``session``) and the synthetic ones."""
    symbols = sorted(set(symbols))
    found = latest_closes(symbols=symbols, on_or_before=session)
    closes = {s: (day, price_decimal(price)) for s, (day, price) in found.items()}
    synthetic = get_price_store().synthetic_bars({symbol: day for symbol, (day, _) in found.items()})
    return Prices(session=session, closes=closes, synthetic=frozenset(synthetic))


def valuation_of(quantities: dict[str, Decimal], cash_usd: Decimal, prices: Prices) -> Valuation:
    missing = sorted(s for s, q in quantities.items() if q > 0 and s not in prices.closes)
    holdings = sum(
        (q * prices.closes[s][1] for s, q in quantities.items() if s in prices.closes),
        Decimal(0),
    )
    return Valuation(holdings_usd=holdings.quantize(Decimal("0.01")), cash_usd=cash_usd, missing=missing)


def daily_run_next() -> datetime | None:
    """When the daily-run schedule fires next, or None when it is not scheduled."""
    from django_q.models import Schedule

    return (
        Schedule.objects.filter(name=DAILY_RUN_SCHEDULE, next_run__isnull=False)
        .order_by("next_run")
        .values_list("next_run", flat=True)
        .first()
    )


def worst_need(needs: list[dict]) -> dict | None:
    """The holding furthest outside (or nearest to) its band: the need with the highest urgency,
    with its deviation and band in percentage points."""
    need = max(needs or [], key=lambda n: n.get("urgency", 0), default=None)
    if need is None:
        return None
    return {
        "symbol": need["symbol"],
        "deviation_pp": abs(need["deviation"]) * 100,
        "direction": "over" if need["deviation"] > 0 else "under",
        "band_pp": need["band"] * 100,
        "urgency": need["urgency"],
        "outside": bool(need["outside"]),
    }


def _latest_run_id() -> Subquery:
    """The id of a portfolio's latest run, as an annotation of a portfolio queryset."""
    latest = RebalanceRun.objects.filter(portfolio=OuterRef("pk")).order_by("-trading_date", "-created_at")
    return Subquery(latest.values("pk")[:1])


def _quantities(portfolio_ids: Sequence[int]) -> dict[int, dict[str, Decimal]]:
    """Shares held by each portfolio: {portfolio id: {symbol: quantity}}, in one query."""
    quantities: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for portfolio_id, symbol, quantity in Holding.objects.filter(portfolio_id__in=portfolio_ids).values_list(
        "portfolio_id", "instrument__symbol", "quantity"
    ):
        quantities[portfolio_id][symbol] = quantity
    return quantities


def dashboard_for_user(*, user) -> Dashboard:
    """Everything the dashboard shows, in a number of queries that does not depend on the portfolio count."""
    portfolios = list(
        portfolios_for_user(user=user)
        .select_related("broker_account")
        .annotate(latest_run_id=_latest_run_id())
        .order_by("name", "pk")
    )
    session = last_session()
    threshold = Decimal(str(settings.DRIFT_ALERT_THRESHOLD))
    halt = trading_halt_reason(user_id=user.pk)
    alerts: list[Alert] = []
    if halt:
        alerts.append(Alert("bad", f"Trading is halted: {halt}. No order is sent until it is switched off."))
    if not portfolios:
        return Dashboard(
            cards=[],
            alerts=alerts,
            session=session,
            next_run=None,
            synthetic=False,
            has_broker_accounts=broker_accounts_for_user(user=user).exists(),
            drift_alert_threshold=threshold,
        )
    ids = [p.pk for p in portfolios]
    quantities = _quantities(ids)
    universe: dict[int, set[str]] = defaultdict(set)
    for portfolio_id, symbol in Portfolio.instruments.through.objects.filter(portfolio_id__in=ids).values_list(
        "portfolio_id", "instrument__symbol"
    ):
        universe[portfolio_id].add(symbol)
    runs = {
        run.pk: run
        for run in RebalanceRun.objects.filter(pk__in=[p.latest_run_id for p in portfolios if p.latest_run_id])
        .only(*RUN_SUMMARY_FIELDS, "targets", "targets_source", "optimization_result_id")
        .annotate(trades_count=Count("trades"))
    }
    targets = targets_latest(portfolios=portfolios, runs={p.pk: runs.get(p.latest_run_id) for p in portfolios})
    history: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    for portfolio_id, day, value in (
        runs_for_user(user=user)
        .filter(trading_date__gte=session - timedelta(days=HISTORY_DAYS), value_before_usd__isnull=False)
        .order_by("trading_date")
        .values_list("portfolio_id", "trading_date", "value_before_usd")
    ):
        history[portfolio_id].append((day, value))
    unknown_orders: dict[int, list[str]] = defaultdict(list)
    for portfolio_id, side, symbol in (
        orders_for_user(user=user).filter(state="unknown").values_list("run__portfolio_id", "side", "symbol")
    ):
        unknown_orders[portfolio_id].append(f"{side} {symbol}")
    symbols = set().union(*quantities.values(), *universe.values(), *(latest.weights for latest in targets.values()))
    prices = prices_latest(symbols=symbols, session=session)
    drifts = drifts_now(
        portfolios=portfolios,
        quantities=quantities,
        targets=targets,
        closes={symbol: close for symbol, (_, close) in prices.closes.items()},
    )
    next_run = daily_run_next()

    cards = []
    for portfolio in portfolios:
        held = quantities.get(portfolio.pk, {})
        valuation = valuation_of(held, portfolio.cash_usd, prices)
        run = runs.get(portfolio.latest_run_id)
        now = drifts[portfolio.pk]
        drift_alert = now.drift is not None and now.drift >= threshold
        stale = prices.stale(set(held) | universe.get(portfolio.pk, set()))
        points = list(history.get(portfolio.pk, []))
        if valuation.value_usd is not None and (not points or points[-1][0] < session):
            points.append((session, valuation.value_usd))
        cards.append(
            PortfolioCard(
                portfolio=portfolio,
                valuation=valuation,
                last_run=run,
                worst=worst_need(now.needs),
                drift_alert=drift_alert,
                next_run=next_run if portfolio.active else None,
                stale=stale,
                history=points,
                drift_now=now,
            )
        )
        alerts += _card_alerts(portfolio, run, now, threshold, stale, unknown_orders.get(portfolio.pk, []))
    return Dashboard(
        cards=cards,
        alerts=alerts,
        session=session,
        next_run=next_run,
        synthetic=bool(prices.synthetic),
        has_broker_accounts=broker_accounts_for_user(user=user).exists(),
        drift_alert_threshold=threshold,
    )


def _card_alerts(
    portfolio: Portfolio,
    run: RebalanceRun | None,
    now: DriftNow,
    threshold: Decimal,
    stale: list[str],
    unknown: list[str],
) -> list[Alert]:
    alerts = []
    if run is not None and run.status in FAILED_STATUSES:
        alerts.append(Alert("bad", f"{run.get_status_display()} on {run.trading_date}: {run.error}", portfolio))
    if unknown:
        alerts.append(
            Alert(
                "bad",
                f"{len(unknown)} order(s) with an unknown outcome ({', '.join(unknown)}): check the broker; "
                "the next execution looks them up before doing anything else",
                portfolio,
            )
        )
    if now.drift is not None and now.drift >= threshold:
        alerts.append(
            Alert("warn", f"Drift {now.drift:.1%} is at or above the alert threshold {threshold:.1%}", portfolio)
        )
    if stale:
        alerts.append(Alert("warn", f"No close for the last completed session for {', '.join(stale)}", portfolio))
    return alerts


# -- drift of the holdings now -------------------------------------------------------------------


class LatestTargets(NamedTuple):
    """A portfolio's latest known target weights, where they come from (a phrase for the page, ""
    when there are none), and the optimizer result they were made by (None: a run's manual targets)."""

    weights: dict[str, Decimal]
    source: str
    result_id: int | None = None


def targets_latest(
    *, portfolios: Sequence[Portfolio], runs: Mapping[int, RebalanceRun | None]
) -> dict[int, LatestTargets]:
    """The latest target weights known for each portfolio: those of its latest run (``runs``:
    {portfolio id: run or None}), else its manual targets, else the optimizer's last stored
    targets. Two queries read the optimizer's targets of all the portfolios that need them, none
    when no portfolio does."""
    found: dict[int, LatestTargets] = {}
    from_optimizer = []
    for portfolio in portfolios:
        run = runs.get(portfolio.pk)
        try:
            manual = manual_targets_parse(portfolio.manual_targets)
        except ValueError:  # no longer valid: a plan refuses them too
            manual = None
        if run is not None and run.targets:
            found[portfolio.pk] = LatestTargets(
                {s: Decimal(str(w)) for s, w in run.targets.items()},
                f"of the run of {run.trading_date}",
                run.optimization_result_id if run.targets_source == "optimizer" else None,
            )
        elif manual:
            found[portfolio.pk] = LatestTargets(manual, "manual")
        else:
            found[portfolio.pk] = LatestTargets({}, "")
            from_optimizer.append(portfolio.pk)
    if from_optimizer:
        latest = TargetAllocation.objects.filter(portfolio=OuterRef("pk")).order_by("-as_of")
        allocations = list(
            Portfolio.objects.filter(pk__in=from_optimizer)
            .annotate(
                target_result_id=Subquery(latest.values("result_id")[:1]),
                targets_as_of=Subquery(latest.values("as_of")[:1]),
            )
            .filter(target_result_id__isnull=False)
            .values_list("pk", "target_result_id", "targets_as_of")
        )
        weights: dict[int, dict[str, Decimal]] = defaultdict(dict)
        for result_id, symbol, weight in TargetWeight.objects.filter(
            result_id__in={result_id for _, result_id, _ in allocations}
        ).values_list("result_id", "instrument__symbol", "weight"):
            weights[result_id][symbol] = weight
        for portfolio_id, result_id, as_of in allocations:
            found[portfolio_id] = LatestTargets(weights[result_id], f"of the optimizer on {as_of}", result_id)
    return found


def drifts_now(
    *,
    portfolios: Sequence[Portfolio],
    quantities: Mapping[int, dict[str, Decimal]],
    targets: Mapping[int, LatestTargets],
    closes: Mapping[str, Decimal],
) -> dict[int, DriftNow]:
    """Each portfolio's `DriftNow` from its holdings (``quantities``: {portfolio id: {symbol:
    shares}}), its `targets_latest` and the latest closes (USD); no query."""
    found: dict[int, DriftNow] = {}
    for portfolio in portfolios:
        weights, note, _ = targets.get(portfolio.pk, LatestTargets({}, ""))
        if not weights:
            found[portfolio.pk] = DriftNow(
                None, [], None, None, note, "no targets yet: plan a run or set manual targets"
            )
            continue
        context, unknown = _plan_context_now(portfolio, quantities.get(portfolio.pk, {}), weights, closes)
        if context is None:
            found[portfolio.pk] = DriftNow(None, [], None, None, note, unknown)
            continue
        found[portfolio.pk] = DriftNow(
            Decimal(str(context.drift)), _need_rows(context), context.cash_weight, context.cash_target, note
        )
    return found


def portfolio_drifts_now(*, portfolios) -> dict[int, Decimal]:
    """The drift of what each of ``portfolios`` (a queryset) holds now, where it can be known:
    {portfolio id: drift}; a fixed number of queries whatever their count."""
    portfolios = list(portfolios.annotate(latest_run_id=_latest_run_id()))
    quantities = _quantities([p.pk for p in portfolios])
    latest_runs = {
        run.pk: run
        for run in RebalanceRun.objects.filter(pk__in=[p.latest_run_id for p in portfolios if p.latest_run_id]).only(
            "id", "portfolio_id", "trading_date", "targets", "targets_source", "optimization_result_id"
        )
    }
    runs = {p.pk: latest_runs.get(p.latest_run_id) for p in portfolios}
    targets = targets_latest(portfolios=portfolios, runs=runs)
    symbols = set().union(*quantities.values(), *(latest.weights for latest in targets.values()))
    found = latest_closes(symbols=sorted(symbols), on_or_before=last_session())
    closes = {symbol: price_decimal(price) for symbol, (_, price) in found.items()}
    drifts = drifts_now(portfolios=portfolios, quantities=quantities, targets=targets, closes=closes)
    return {pk: now.drift for pk, now in drifts.items() if now.drift is not None}


def _plan_context_now(
    portfolio: Portfolio, quantities: dict[str, Decimal], targets: dict[str, Decimal], closes: Mapping[str, Decimal]
) -> tuple[PlanContext | None, str]:
    """The planner's view of the holdings now (weights, bands, drift), or None and why not."""
    symbols = sorted(set(quantities) | set(targets))
    missing = [s for s in symbols if s not in closes]
    if missing:
        return None, f"no close for {', '.join(missing)}"
    try:
        inputs = plan_inputs_build(
            symbols=symbols,
            quantities=quantities,
            prices={s: closes[s] for s in symbols},
            targets=targets,
            cash_usd=portfolio.cash_usd,
            fractionable={},
        )
        return PlanContext(inputs, rebalance_policy_for(portfolio)), ""
    except (ValueError, OptimizationError) as error:
        return None, str(error)


def _need_rows(context: PlanContext) -> list[dict]:
    """The planner's needs of ``context``, as a run stores them."""
    return [
        {
            "symbol": n.symbol,
            "current_weight": n.current_weight,
            "target_weight": n.target_weight,
            "deviation": n.deviation,
            "band": n.band,
            "outside": n.outside,
            "urgency": n.urgency,
            "action": n.action,
        }
        for n in core_needs(context)
    ]


# -- the portfolio page --------------------------------------------------------------------------


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
    context, _ = _plan_context_now(portfolio, quantities, targets, closes)
    if context is None:
        return None
    return _need_rows(context), context.cash_weight, context.cash_target
