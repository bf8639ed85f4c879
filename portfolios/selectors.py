"""Reads of portfolios and their runs for views, commands and other services."""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef

from portfolios.models import PlannedTrade, RebalanceRun

# Runs that count as a rebalance for the cooldown and the calendar: planned (proposed), being
# executed or executed. A run whose execution stopped before trading does not.
REBALANCED_STATUSES = (
    RebalanceRun.Status.PLANNED,
    RebalanceRun.Status.EXECUTING,
    RebalanceRun.Status.EXECUTED,
)


def last_rebalance_date(*, portfolio, before: date) -> date | None:
    """Trading date of the portfolio's last run before ``before`` that planned trades (for cooldown and calendar)."""
    with_trades = Exists(PlannedTrade.objects.filter(run=OuterRef("pk")))
    return (
        RebalanceRun.objects.filter(portfolio=portfolio, trading_date__lt=before, status__in=REBALANCED_STATUSES)
        .filter(with_trades)
        .order_by("-trading_date")
        .values_list("trading_date", flat=True)
        .first()
    )
