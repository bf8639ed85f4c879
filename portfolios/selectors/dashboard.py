"""Reads for the dashboard, scoped to the requesting user.

The dashboard reads everything it shows in a fixed number of queries, whatever the number of
portfolios: the portfolios (with the id of their latest run), their holdings, their universes,
the latest runs (with their trade counts), the optimizer's latest targets of those without run or
manual targets, the run values of the last `HISTORY_DAYS` days, the orders whose outcome is
unknown, the kill switch, the daily-run schedule, and the latest stored closes of the union of
their symbols (a price frame and a read of the bars, for the synthetic marker). Values and drift
are those of the holdings now (`valuation`, `drift`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count

from brokers.selectors import broker_accounts_for_user, orders_for_user
from brokers.services.controls import trading_halt_reason
from portfolios.models import Portfolio, RebalanceRun
from portfolios.selectors import (
    RUN_SUMMARY_FIELDS,
    latest_run_id_subquery,
    portfolio_quantities_by_id,
    portfolios_for_user,
    runs_for_user,
)
from portfolios.selectors.drift import DriftNow, drifts_now, targets_latest
from portfolios.selectors.valuation import Valuation, last_session, prices_latest, valuation_of

#: Days of stored runs behind each dashboard sparkline.
HISTORY_DAYS = 183
DAILY_RUN_SCHEDULE = "daily-run"
FAILED_STATUSES = (RebalanceRun.Status.FAILED, RebalanceRun.Status.EXECUTION_FAILED)


@dataclass(frozen=True)
class Alert:
    level: str  # "bad" or "warn" (the CSS classes alert-bad / alert-warn)
    text: str
    portfolio: Portfolio | None = None


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


def dashboard_for_user(*, user) -> Dashboard:
    """Everything the dashboard shows, in a number of queries that does not depend on the portfolio count."""
    portfolios = list(
        portfolios_for_user(user=user)
        .select_related("broker_account")
        .annotate(latest_run_id=latest_run_id_subquery())
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
    quantities = portfolio_quantities_by_id(portfolio_ids=ids)
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
