"""Sync a portfolio from its broker: holdings and cash become the broker's positions and cash."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from brokers.base import BrokerError
from brokers.services.accounts import broker_for
from marketdata.models import Instrument
from portfolios.models import Holding, HoldingsSync, Portfolio, RebalanceRun
from portfolios.models.holdings import QUANTITY_PLACES
from portfolios.services.portfolio_lock import PortfolioBusy, portfolio_locked
from rebalancer_site.db import rows_update

logger = logging.getLogger(__name__)


class SyncError(Exception):
    """The broker could not be read, or another request held the portfolio too long; nothing was changed."""


def unreadable(account, error: BrokerError) -> SyncError:
    """The `SyncError` for a broker account that could not be opened or read."""
    return SyncError(f"cannot read positions from {account.label}: {error}")


def sync_from_broker(
    *, portfolio: Portfolio, run: RebalanceRun | None = None, broker=None, read: tuple | None = None
) -> HoldingsSync:
    """Replace the portfolio's holdings and cash with its broker account's, in one transaction,
    and record what changed.

    One broker account backs one portfolio: every position of the account becomes a holding
    (instruments the project does not know yet are added, marked not fractionable until a
    fetch says otherwise). ``broker`` reuses an open adapter; ``read`` is its (positions,
    account) answer just read (an execution's reconciliation compares it first).
    """
    account = portfolio.broker_account
    if account is None:
        raise ValidationError({"broker_account": "this portfolio has no broker account to sync from"})
    try:
        if read is not None:
            positions, info = read
        elif broker is None:
            with broker_for(account) as opened:
                positions, info = opened.positions_and_account()
        else:
            positions, info = broker.positions_and_account()
    except BrokerError as error:
        raise unreadable(account, error) from error
    quantum = Decimal(1).scaleb(-QUANTITY_PLACES)
    after = {p.symbol.upper(): p.quantity.quantize(quantum) for p in positions if p.quantity > 0}
    try:
        sync = _positions_store(portfolio, account, run, after, info)
    except PortfolioBusy as error:
        raise SyncError(f"{error}: try again in {error.retry_after_s} seconds") from error
    portfolio.cash_usd = sync.cash_after_usd
    logger.info(
        "portfolio synced from broker",
        extra={"portfolio_id": portfolio.pk, "broker_account_id": account.pk, "changes": len(sync.changes)},
    )
    return sync


def _positions_store(portfolio: Portfolio, account, run, after: dict[str, Decimal], info) -> HoldingsSync:
    """Make ``after`` ({SYMBOL: quantity}) and ``info.cash_usd`` the holdings and cash, against the
    rows as stored when the portfolio's lock is taken, and record what changed."""
    with portfolio_locked(portfolio.pk) as locked:
        ids = {}  # holding id by symbol
        before = {}
        for pk, symbol, quantity in Holding.objects.filter(portfolio_id=portfolio.pk).values_list(
            "pk", "instrument__symbol", "quantity"
        ):
            ids[symbol], before[symbol] = pk, quantity
        # Only what changed is written: most days a synced portfolio already holds what its broker does.
        gone = [pk for symbol, pk in ids.items() if symbol not in after]
        if gone:
            Holding.objects.filter(pk__in=gone).delete()
        now = timezone.now()
        changed = [
            Holding(pk=ids[s], quantity=q, updated_at=now) for s, q in after.items() if s in ids and before[s] != q
        ]
        if changed:
            rows_update(changed, ["quantity", "updated_at"])
        new = [s for s in after if s not in ids]
        if new:
            known = {i.symbol: i for i in Instrument.objects.filter(symbol__in=new)}
            for symbol in new:
                if symbol not in known:
                    known[symbol] = Instrument.objects.create(symbol=symbol, fractionable=False)
            Holding.objects.bulk_create(
                [Holding(portfolio=locked, instrument=known[s], quantity=after[s]) for s in new]
            )
            locked.instruments.add(*known.values())
        cash_before = locked.cash_usd
        cash_after = info.cash_usd.quantize(Decimal("0.0001"))
        if cash_after != cash_before:
            locked.cash_usd = cash_after
            locked.save(update_fields=["cash_usd", "updated_at"])
        changes = [
            {
                "symbol": symbol,
                "before": str(before.get(symbol, Decimal(0))),
                "after": str(after.get(symbol, Decimal(0))),
            }
            for symbol in sorted(set(before) | set(after))
            if before.get(symbol, Decimal(0)) != after.get(symbol, Decimal(0))
        ]
        return HoldingsSync.objects.create(
            portfolio=locked,
            broker_account=account,
            run=run,
            changes=changes,
            cash_before_usd=cash_before,
            cash_after_usd=locked.cash_usd,
        )
