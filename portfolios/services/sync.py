"""Sync a portfolio from its broker: holdings and cash become the broker's positions and cash."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from brokers.base import Asset, BrokerError
from brokers.services.accounts import broker_for
from marketdata.models import Instrument
from marketdata.services import instrument_new
from portfolios.models import BrokerAsset, Holding, HoldingsSync, Portfolio, RebalanceRun
from portfolios.models.holdings import QUANTITY_PLACES
from portfolios.services.fractionability import broker_assets_record
from portfolios.services.portfolio_lock import PortfolioBusy, portfolio_locked
from rebalancer_site.db import rows_update

logger = logging.getLogger(__name__)
#: How long a broker's answer about an asset (tradable, fractionable) stands before a sync asks again.
BROKER_ASSET_ANSWERS_KEPT = timedelta(days=7)


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
    (instruments the project does not know yet are added from the reference table, their
    fractionability not known). A sync that reads the broker itself also asks it about every
    symbol the portfolio holds or targets and records its answers for this account
    (`BrokerAsset`): whether its plans may trade fractions. ``broker`` reuses an open adapter;
    ``read`` is its (positions, account) answer just read (an execution's reconciliation compares
    it first, inside its fence, where no further broker call belongs).
    """
    account = portfolio.broker_account
    if account is None:
        raise ValidationError({"broker_account": "this portfolio has no broker account to sync from"})
    answers: dict = {}
    try:
        if read is not None:
            positions, info = read
        elif broker is None:
            with broker_for(account) as opened:
                positions, info = opened.positions_and_account()
                answers = _assets(opened, portfolio, positions)
        else:
            positions, info = broker.positions_and_account()
            answers = _assets(broker, portfolio, positions)
    except BrokerError as error:
        raise unreadable(account, error) from error
    quantum = Decimal(1).scaleb(-QUANTITY_PLACES)
    after = {p.symbol.upper(): p.quantity.quantize(quantum) for p in positions if p.quantity > 0}
    try:
        sync = _positions_store(portfolio, account, run, after, info, answers)
    except PortfolioBusy as error:
        raise SyncError(f"{error}: try again in {error.retry_after_s} seconds") from error
    portfolio.cash_usd = sync.cash_after_usd
    logger.info(
        "portfolio synced from broker",
        extra={"portfolio_id": portfolio.pk, "broker_account_id": account.pk, "changes": len(sync.changes)},
    )
    return sync


def _assets(broker, portfolio: Portfolio, positions) -> dict[str, Asset | BrokerError]:
    """What the broker says about the symbols the portfolio holds (at the broker or here) or
    targets. A failed lookup keeps the answers stored before: the holdings are synced regardless."""
    symbols = {p.symbol.upper() for p in positions if p.quantity > 0}
    symbols |= set(portfolio.instruments.values_list("symbol", flat=True))
    if isinstance(portfolio.manual_targets, dict):
        symbols |= {str(symbol).upper() for symbol in portfolio.manual_targets}
    # Answers change rarely and cost a request per symbol at Alpaca and IB: asked again once they age.
    fresh = BrokerAsset.objects.filter(
        broker_account_id=portfolio.broker_account_id,
        instrument__symbol__in=symbols,
        checked_at__gte=timezone.now() - BROKER_ASSET_ANSWERS_KEPT,
    ).values_list("instrument__symbol", flat=True)
    symbols -= set(fresh)
    if not symbols:
        return {}
    try:
        return broker.assets(sorted(symbols))
    except BrokerError as error:
        logger.warning(
            "broker assets could not be read; their last answers stand",
            extra={"portfolio_id": portfolio.pk, "error": str(error)},
        )
        return {}


def _positions_store(
    portfolio: Portfolio, account, run, after: dict[str, Decimal], info, answers: dict[str, Asset | BrokerError]
) -> HoldingsSync:
    """Make ``after`` ({SYMBOL: quantity}) and ``info.cash_usd`` the holdings and cash, against the
    rows as stored when the portfolio's lock is taken, record what changed, and store the broker's
    ``answers`` about its assets."""
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
                    known[symbol] = instrument_new(symbol)
                    known[symbol].save()
            Holding.objects.bulk_create(
                [Holding(portfolio=locked, instrument=known[s], quantity=after[s]) for s in new]
            )
            locked.instruments.add(*known.values())
        if answers:
            broker_assets_record(
                account=account,
                instruments={i.symbol: i for i in Instrument.objects.filter(symbol__in=list(answers))},
                answers=answers,
                at=now,
            )
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
