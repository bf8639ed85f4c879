"""Sync a portfolio from its broker: holdings and cash become the broker's positions and cash.

The system's syncs (the daily run, an execution's reconciliation, the admin, the API) replace at
once; a person's sync from the portfolio page is reviewed first (`sync_review`) and applies only
what was reviewed (`sync_confirm`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
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
from portfolios.services.universe import universe_follow_holdings, universe_join_held

logger = logging.getLogger(__name__)
#: How long a broker's answer about an asset (tradable, fractionable) stands before a sync asks again.
BROKER_ASSET_ANSWERS_KEPT = timedelta(days=7)


CASH_QUANTUM = Decimal("0.0001")


class SyncError(Exception):
    """The broker could not be read, or another request held the portfolio too long; nothing was changed."""


class SyncChanged(SyncError):
    """The broker's answer or the portfolio's holdings changed after they were reviewed; nothing was
    changed. ``review`` shows the differences as they are now."""

    def __init__(self, message: str, *, review: SyncReview):
        super().__init__(message)
        self.review = review


@dataclass(frozen=True)
class SyncDifference:
    """One symbol held here or at the broker: shares held now and at the broker, and what a sync
    does to it ("added", "removed", "changed" or "unchanged")."""

    symbol: str
    held_qty: Decimal
    broker_qty: Decimal
    change: str


@dataclass(frozen=True)
class SyncReview:
    """What a sync would change, and fingerprints of the two answers it compares: the broker's
    positions and cash, and the portfolio's holdings and cash as they were read."""

    account_label: str
    differences: tuple[SyncDifference, ...]
    cash_before_usd: Decimal
    cash_after_usd: Decimal
    broker_fingerprint: str
    holdings_fingerprint: str

    @property
    def changes_anything(self) -> bool:
        return self.cash_before_usd != self.cash_after_usd or any(d.change != "unchanged" for d in self.differences)


def unreadable(account, error: BrokerError) -> SyncError:
    """The `SyncError` for a broker account that could not be opened or read: a sentence its owner
    understands; the adapter's own message (an SDK's exception text) goes to the log only."""
    from brokers.error_text import broker_error_text

    logger.warning("broker account could not be read", extra={"broker_account_id": account.pk, "error": str(error)})
    return SyncError(f"cannot read positions from {account.label}: {broker_error_text(error, account=account)}")


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
    account = _account_of(portfolio)
    after, cash_after, answers = _broker_read(portfolio, account, broker=broker, read=read)
    return _store(portfolio, account, run, after, cash_after, answers)


def sync_review(*, portfolio: Portfolio) -> SyncReview:
    """What a sync from the broker would change now: the broker is read, nothing is written."""
    account = _account_of(portfolio)
    after, cash_after, _ = _broker_read(portfolio, account, with_assets=False)
    return _review(account, *_holdings_now(portfolio.pk), after, cash_after)


def sync_confirm(*, portfolio: Portfolio, broker_fingerprint: str, holdings_fingerprint: str) -> HoldingsSync | None:
    """Apply the sync a person reviewed: the broker is read again, and its answer and the holdings
    (under the portfolio's lock) must still be the ones whose fingerprints the review showed.

    Returns None, writing nothing, when the sync would change nothing. Raises `SyncChanged` with the
    new differences when either answer changed since the review.
    """
    account = _account_of(portfolio)
    after, cash_after, answers = _broker_read(portfolio, account)
    if _fingerprint(account.pk, after, cash_after) != broker_fingerprint:
        review = _review(account, *_holdings_now(portfolio.pk), after, cash_after)
        raise SyncChanged(f"the positions or cash at {account.label} changed since you reviewed them", review=review)
    return _store(portfolio, account, None, after, cash_after, answers, reviewed=holdings_fingerprint)


def _account_of(portfolio: Portfolio):
    account = portfolio.broker_account
    if account is None:
        raise ValidationError({"broker_account": "this portfolio has no broker account to sync from"})
    return account


def _broker_read(
    portfolio: Portfolio, account, *, broker=None, read: tuple | None = None, with_assets: bool = True
) -> tuple[dict[str, Decimal], Decimal, dict[str, Asset | BrokerError]]:
    """The broker's positions ({SYMBOL: shares}, at the holdings' precision), cash (USD) and, when
    it is asked here, its answers about the portfolio's assets."""
    answers: dict = {}
    try:
        if read is not None:
            positions, info = read
        elif broker is None:
            with broker_for(account) as opened:
                positions, info = opened.positions_and_account()
                if with_assets:
                    answers = _assets(opened, portfolio, positions)
        else:
            positions, info = broker.positions_and_account()
            if with_assets:
                answers = _assets(broker, portfolio, positions)
    except BrokerError as error:
        raise unreadable(account, error) from error
    quantum = Decimal(1).scaleb(-QUANTITY_PLACES)
    after = {p.symbol.upper(): p.quantity.quantize(quantum) for p in positions if p.quantity > 0}
    return after, info.cash_usd.quantize(CASH_QUANTUM), answers


def _store(portfolio, account, run, after, cash_after, answers, *, reviewed: str | None = None) -> HoldingsSync | None:
    try:
        sync = _positions_store(portfolio, account, run, after, cash_after, answers, reviewed=reviewed)
    except PortfolioBusy as error:
        raise SyncError(f"{error}: try again in {error.retry_after_s} seconds") from error
    if sync is None:
        return None
    portfolio.cash_usd = sync.cash_after_usd
    logger.info(
        "portfolio synced from broker",
        extra={"portfolio_id": portfolio.pk, "broker_account_id": account.pk, "changes": len(sync.changes)},
    )
    return sync


def _holdings_now(portfolio_id: int) -> tuple[dict[str, Decimal], Decimal]:
    """The portfolio's holdings ({SYMBOL: shares}) and cash (USD) as stored now."""
    held = Holding.objects.filter(portfolio_id=portfolio_id).values_list("instrument__symbol", "quantity")
    return dict(held), Portfolio.objects.values_list("cash_usd", flat=True).get(pk=portfolio_id)


def _fingerprint(key, quantities: dict[str, Decimal], cash_usd: Decimal) -> str:
    """A digest of one side of a sync (``key`` names whose side), the same for the same shares and cash."""
    quantum = Decimal(1).scaleb(-QUANTITY_PLACES)
    text = ";".join(f"{symbol}={quantity.quantize(quantum):f}" for symbol, quantity in sorted(quantities.items()))
    return hashlib.sha256(f"{key}|{text}|cash={cash_usd.quantize(CASH_QUANTUM):f}".encode()).hexdigest()


def _review(
    account, before: dict[str, Decimal], cash_before: Decimal, after: dict[str, Decimal], cash_after: Decimal
) -> SyncReview:
    """The differences between the holdings and cash ``before`` and the broker's ``after``."""
    differences = []
    for symbol in sorted(set(before) | set(after)):
        held, broker = before.get(symbol, Decimal(0)), after.get(symbol, Decimal(0))
        if held == broker:
            change = "unchanged"
        elif symbol not in before:
            change = "added"
        elif symbol not in after:
            change = "removed"
        else:
            change = "changed"
        differences.append(SyncDifference(symbol=symbol, held_qty=held, broker_qty=broker, change=change))
    return SyncReview(
        account_label=account.label,
        differences=tuple(differences),
        cash_before_usd=cash_before,
        cash_after_usd=cash_after,
        broker_fingerprint=_fingerprint(account.pk, after, cash_after),
        holdings_fingerprint=_fingerprint("holdings", before, cash_before),
    )


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
    portfolio: Portfolio,
    account,
    run,
    after: dict[str, Decimal],
    cash_after: Decimal,
    answers: dict[str, Asset | BrokerError],
    *,
    reviewed: str | None = None,
) -> HoldingsSync | None:
    """Make ``after`` ({SYMBOL: quantity}) and ``cash_after`` the holdings and cash, against the
    rows as stored when the portfolio's lock is taken, record what changed, and store the broker's
    ``answers`` about its assets.

    ``reviewed``: the holdings fingerprint a person confirmed; the holdings must still match it
    (else `SyncChanged`), and a sync that changes nothing then writes nothing (None).
    """
    with portfolio_locked(portfolio.pk) as locked:
        ids = {}  # holding id by symbol
        before = {}
        for pk, symbol, quantity in Holding.objects.filter(portfolio_id=portfolio.pk).values_list(
            "pk", "instrument__symbol", "quantity"
        ):
            ids[symbol], before[symbol] = pk, quantity
        if reviewed is not None:
            review = _review(account, before, locked.cash_usd, after, cash_after)
            if review.holdings_fingerprint != reviewed:
                raise SyncChanged("this portfolio's holdings or cash changed since you reviewed them", review=review)
            if not review.changes_anything:
                return None
        # Only what changed is written: most days a synced portfolio already holds what its broker does.
        gone = [pk for symbol, pk in ids.items() if symbol not in after]
        if gone:
            Holding.objects.filter(pk__in=gone).delete()
        now = timezone.now()
        changed = [
            Holding(pk=ids[s], quantity=q, updated_at=now) for s, q in after.items() if s in ids and before[s] != q
        ]
        if changed:
            Holding.objects.bulk_update(changed, ["quantity", "updated_at"])
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
            universe_join_held(portfolio=locked, instruments=known.values())
        if gone:
            universe_follow_holdings(portfolio=locked)
        if answers:
            broker_assets_record(
                account=account,
                instruments={i.symbol: i for i in Instrument.objects.filter(symbol__in=list(answers))},
                answers=answers,
                at=now,
            )
        cash_before = locked.cash_usd
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
