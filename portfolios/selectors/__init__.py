"""Reads of portfolios and their runs for views, commands and other services.

The pages' reads build on these in the package's modules: `valuation` (latest closes and values),
`drift` (the drift of the holdings now), `dashboard` and `portfolio_page`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.shortcuts import get_object_or_404

from optimization.models import TargetAllocation
from portfolios.models import Holding, PlannedTrade, Portfolio, RebalanceRun

# Runs that count as a rebalance for the cooldown and the calendar: planned (proposed), being
# executed or executed. A run whose execution stopped before trading does not.
REBALANCED_STATUSES = (
    RebalanceRun.Status.PLANNED,
    RebalanceRun.Status.EXECUTING,
    RebalanceRun.Status.EXECUTED,
)
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


def last_rebalance_dates(*, portfolio_ids: Iterable[int], before: date) -> dict[int, date]:
    """Trading date of each portfolio's last run before ``before`` that planned trades (for cooldown
    and calendar), by portfolio id; a portfolio that never rebalanced is absent."""
    dates = (
        PlannedTrade.objects.filter(
            run__portfolio_id__in=list(portfolio_ids), run__trading_date__lt=before, run__status__in=REBALANCED_STATUSES
        )
        .values("run__portfolio_id")
        .annotate(last=Max("run__trading_date"))
        .values_list("run__portfolio_id", "last")
    )
    return dict(dates)


def last_rebalance_date(*, portfolio, before: date) -> date | None:
    """`last_rebalance_dates` of one portfolio."""
    return last_rebalance_dates(portfolio_ids=[portfolio.pk], before=before).get(portfolio.pk)


# -- scoped to the requesting user: another user's object is a 404, never a 403 or its data ----------


def portfolios_for_user(*, user) -> QuerySet[Portfolio]:
    """The user's portfolios (every list and lookup of portfolios starts here)."""
    return Portfolio.objects.filter(owner=user)


def portfolio_symbols_by_id(*, portfolio_ids) -> dict[int, list[str]]:
    """The universe of each portfolio, sorted symbols by portfolio id, in one query (for lists)."""
    symbols: dict[int, list[str]] = {pk: [] for pk in portfolio_ids}
    rows = (
        Portfolio.instruments.through.objects.filter(portfolio_id__in=list(symbols))
        .order_by("instrument__symbol")
        .values_list("portfolio_id", "instrument__symbol")
    )
    for portfolio_id, symbol in rows:
        symbols[portfolio_id].append(symbol)
    return symbols


def portfolio_quantities_by_id(*, portfolio_ids: Sequence[int]) -> dict[int, dict[str, Decimal]]:
    """Shares held by each portfolio: {portfolio id: {symbol: quantity}}, in one query."""
    quantities: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for portfolio_id, symbol, quantity in Holding.objects.filter(portfolio_id__in=portfolio_ids).values_list(
        "portfolio_id", "instrument__symbol", "quantity"
    ):
        quantities[portfolio_id][symbol] = quantity
    return quantities


def latest_run_id_subquery() -> Subquery:
    """The id of a portfolio's latest run, as an annotation of a portfolio queryset."""
    latest = RebalanceRun.objects.filter(portfolio=OuterRef("pk")).order_by("-trading_date", "-created_at")
    return Subquery(latest.values("pk")[:1])


def portfolio_get_for_user(*, user, portfolio_id: int) -> Portfolio:
    """The user's portfolio with that id, or `Http404` (also for another user's portfolio)."""
    return get_object_or_404(portfolios_for_user(user=user).select_related("broker_account"), pk=portfolio_id)


def runs_for_user(*, user) -> QuerySet[RebalanceRun]:
    return RebalanceRun.objects.filter(portfolio__owner=user)


def run_get_for_user(*, user, run_id: int) -> RebalanceRun:
    """The user's run with that id, or `Http404` (also for another user's run)."""
    return get_object_or_404(
        runs_for_user(user=user).select_related("portfolio", "portfolio__broker_account"), pk=run_id
    )


def latest_target_allocation(*, portfolio: Portfolio) -> TargetAllocation | None:
    """The optimizer's most recent targets for the portfolio, with their result (weights, metrics)."""
    return (
        TargetAllocation.objects.filter(portfolio=portfolio)
        .select_related("result")
        .order_by("-as_of", "-updated_at")
        .first()
    )
