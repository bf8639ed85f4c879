"""Reads of portfolios and their runs for views, commands and other services."""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef

from portfolios.models import PlannedTrade, RebalanceRun


def last_rebalance_date(*, portfolio, before: date) -> date | None:
    """Trading date of the portfolio's last run before ``before`` that planned trades (for cooldown and calendar)."""
    with_trades = Exists(PlannedTrade.objects.filter(run=OuterRef("pk")))
    return (
        RebalanceRun.objects.filter(portfolio=portfolio, trading_date__lt=before, status=RebalanceRun.Status.PLANNED)
        .filter(with_trades)
        .order_by("-trading_date")
        .values_list("trading_date", flat=True)
        .first()
    )
