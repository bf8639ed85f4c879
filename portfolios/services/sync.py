"""Sync a portfolio from its broker: holdings and cash become the broker's positions and cash.

The system's syncs (the daily run, an execution's reconciliation, the admin, the API) replace at
once; a person's sync from the portfolio page is reviewed first (`sync_review`) and applies only
what was reviewed (`sync_confirm`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from brokers.base import AccountRead, Asset, AssetsAsked, BrokerError
from brokers.models import BrokerAccount
from brokers.services.accounts import accounts_read, broker_for
from marketdata.models import Instrument
from marketdata.services import instrument_new
from portfolios.models import BrokerAsset, Holding, HoldingsSync, Portfolio, RebalanceRun
from portfolios.models.holdings import QUANTITY_PLACES
from portfolios.services.fractionability import broker_assets_record
from portfolios.services.portfolio_lock import PortfolioBusy, portfolio_locked
from portfolios.services.universe import universes_follow_holdings, universes_join_held

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
    return _store(_BrokerSide(portfolio, account, after, cash_after, answers, run=run))


def syncs_from_brokers(portfolios: Sequence[Portfolio]) -> dict[int, HoldingsSync | SyncError]:
    """`sync_from_broker` for many portfolios (each with a broker account), by id (the `SyncError`
    one got instead): their accounts read together (`accounts_read`), then their holdings and cash
    stored in one transaction under their locks. One whose lock another request holds is stored
    on its own afterwards, waiting for the lock as `sync_from_broker` does."""
    asked = _assets_asked(portfolios)
    reads = accounts_read([p.broker_account for p in portfolios], asked=asked)
    results: dict[int, HoldingsSync | SyncError] = {}
    sides = []
    for portfolio in portfolios:
        read = reads[portfolio.broker_account_id]
        if isinstance(read, BrokerError):
            results[portfolio.pk] = unreadable(portfolio.broker_account, read)
        else:
            sides.append(_BrokerSide(portfolio, portfolio.broker_account, *_answer(read)))
    with transaction.atomic():
        free = Portfolio.objects.select_for_update(skip_locked=True).filter(pk__in=[s.portfolio.pk for s in sides])
        locked = {portfolio.pk: portfolio for portfolio in free.order_by("pk")}
        stored = _apply([side for side in sides if side.portfolio.pk in locked], locked)
    for side in sides:
        if side.portfolio.pk in stored:
            results[side.portfolio.pk] = _stored(side.portfolio, side.account, stored[side.portfolio.pk])
        else:
            try:
                results[side.portfolio.pk] = _store(side)
            except SyncError as error:
                results[side.portfolio.pk] = error
    return results


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
    return _store(_BrokerSide(portfolio, account, after, cash_after, answers), reviewed=holdings_fingerprint)


def _account_of(portfolio: Portfolio):
    account = portfolio.broker_account
    if account is None:
        raise ValidationError({"broker_account": "this portfolio has no broker account to sync from"})
    return account


def _broker_read(
    portfolio: Portfolio, account, *, broker=None, read: tuple | None = None, with_assets: bool = True
) -> tuple[dict[str, Decimal], Decimal, Mapping[str, Asset | BrokerError]]:
    """The broker's positions ({SYMBOL: shares}, at the holdings' precision), cash (USD) and, when
    it is asked here, its answers about the portfolio's assets."""
    asked = _assets_asked([portfolio]) if with_assets else (lambda account_id, positions: ())
    try:
        if read is not None:
            answer = AccountRead(positions=read[0], account=read[1], assets={})
        elif broker is None:
            with broker_for(account) as opened:
                answer = opened.account_read(asked)
        else:
            answer = broker.account_read(asked)
    except BrokerError as error:
        raise unreadable(account, error) from error
    return _answer(answer)


def _answer(read: AccountRead) -> tuple[dict[str, Decimal], Decimal, Mapping[str, Asset | BrokerError]]:
    """An account's answer as a sync stores it: {SYMBOL: shares} at the holdings' precision (what
    is held only), cash (USD), and the broker's answers about assets."""
    quantum = Decimal(1).scaleb(-QUANTITY_PLACES)
    after = {p.symbol.upper(): p.quantity.quantize(quantum) for p in read.positions if p.quantity > 0}
    return after, read.account.cash_usd.quantize(CASH_QUANTUM), read.assets


@dataclass
class _BrokerSide:
    """What a sync makes of one portfolio: its broker's shares and cash, and answers about assets."""

    portfolio: Portfolio
    account: BrokerAccount
    after: dict[str, Decimal]
    cash_after: Decimal
    answers: Mapping[str, Asset | BrokerError]
    run: RebalanceRun | None = None


def _store(side: _BrokerSide, *, reviewed: str | None = None) -> HoldingsSync | None:
    try:
        with portfolio_locked(side.portfolio.pk) as locked:
            if reviewed is not None:
                review = _review(side.account, *_holdings_now(locked.pk), side.after, side.cash_after)
                if review.holdings_fingerprint != reviewed:
                    message = "this portfolio's holdings or cash changed since you reviewed them"
                    raise SyncChanged(message, review=review)
                if not review.changes_anything:
                    return None
            sync = _apply([side], {locked.pk: locked})[locked.pk]
    except PortfolioBusy as error:
        raise SyncError(f"{error}: try again in {error.retry_after_s} seconds") from error
    return _stored(side.portfolio, side.account, sync)


def _stored(portfolio: Portfolio, account, sync: HoldingsSync) -> HoldingsSync:
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


def _assets_asked(portfolios: Sequence[Portfolio]) -> AssetsAsked:
    """Which symbols to ask each portfolio's broker about: those it holds (at the broker or here)
    or targets, except those whose answers are fresh. Answers change rarely and cost a request per
    symbol at Alpaca and IB: they are asked again once they age."""
    by_account = {p.broker_account_id: p for p in portfolios}
    targeted: dict[int, set[str]] = {p.pk: set() for p in portfolios}
    universes = Portfolio.instruments.through.objects.filter(portfolio__in=list(portfolios))
    for portfolio_id, symbol in universes.values_list("portfolio_id", "instrument__symbol"):
        targeted[portfolio_id].add(symbol)
    for portfolio in portfolios:
        if isinstance(portfolio.manual_targets, dict):
            targeted[portfolio.pk] |= {str(symbol).upper() for symbol in portfolio.manual_targets}
    fresh: dict[int, set[str]] = {}
    answered = BrokerAsset.objects.filter(
        broker_account_id__in=list(by_account), checked_at__gte=timezone.now() - BROKER_ASSET_ANSWERS_KEPT
    )
    for account_id, symbol in answered.values_list("broker_account_id", "instrument__symbol"):
        fresh.setdefault(account_id, set()).add(symbol)

    def asked(account_id: int, positions) -> set[str]:
        held = {p.symbol.upper() for p in positions if p.quantity > 0}
        return (held | targeted[by_account[account_id].pk]) - fresh.get(account_id, set())

    return asked


def _apply(sides: list[_BrokerSide], locked: Mapping[int, Portfolio]) -> dict[int, HoldingsSync]:
    """Make each side's shares and cash the holdings and cash of its portfolio (``locked``: the
    portfolios as read under their locks, by id), set-wise; record what changed and store the
    brokers' answers about assets. Only what changed is written: most days a synced portfolio
    already holds what its broker does."""
    if not sides:
        return {}
    ids: dict[int, dict[str, int]] = {side.portfolio.pk: {} for side in sides}  # holding ids by symbol
    before: dict[int, dict[str, Decimal]] = {side.portfolio.pk: {} for side in sides}
    rows = Holding.objects.filter(portfolio_id__in=list(ids)).values_list(
        "portfolio_id", "pk", "instrument__symbol", "quantity"
    )
    for portfolio_id, pk, symbol, quantity in rows:
        ids[portfolio_id][symbol], before[portfolio_id][symbol] = pk, quantity
    now = timezone.now()
    gone = {side.portfolio.pk: [s for s in ids[side.portfolio.pk] if s not in side.after] for side in sides}
    Holding.objects.filter(pk__in=[ids[pk][s] for pk, symbols in gone.items() for s in symbols]).delete()
    changed = [
        Holding(pk=ids[side.portfolio.pk][s], quantity=q, updated_at=now)
        for side in sides
        for s, q in side.after.items()
        if s in ids[side.portfolio.pk] and before[side.portfolio.pk][s] != q
    ]
    Holding.objects.bulk_update(changed, ["quantity", "updated_at"])
    new = {side.portfolio.pk: [s for s in side.after if s not in ids[side.portfolio.pk]] for side in sides}
    answered = {s for side in sides for s in side.answers}
    wanted = {s for symbols in new.values() for s in symbols} | answered
    known = {i.symbol: i for i in Instrument.objects.filter(symbol__in=wanted)} if wanted else {}
    for symbol in sorted({s for symbols in new.values() for s in symbols} - set(known)):
        known[symbol] = instrument_new(symbol)
        known[symbol].save()
    Holding.objects.bulk_create(
        [
            Holding(portfolio=locked[side.portfolio.pk], instrument=known[s], quantity=side.after[s])
            for side in sides
            for s in new[side.portfolio.pk]
        ]
    )
    universes_join_held({pk: [known[s] for s in symbols] for pk, symbols in new.items() if symbols})
    universes_follow_holdings([locked[pk] for pk, symbols in gone.items() if symbols])
    broker_assets_record({side.account: side.answers for side in sides}, instruments=known, at=now)
    cash_before = {side.portfolio.pk: locked[side.portfolio.pk].cash_usd for side in sides}
    moved = []
    for side in sides:
        portfolio = locked[side.portfolio.pk]
        if side.cash_after != portfolio.cash_usd:
            portfolio.cash_usd, portfolio.updated_at = side.cash_after, now
            moved.append(portfolio)
    Portfolio.objects.bulk_update(moved, ["cash_usd", "updated_at"])
    syncs = HoldingsSync.objects.bulk_create(
        [
            HoldingsSync(
                portfolio=locked[side.portfolio.pk],
                broker_account=side.account,
                run=side.run,
                changes=_changes(before[side.portfolio.pk], side.after),
                cash_before_usd=cash_before[side.portfolio.pk],
                cash_after_usd=side.cash_after,
            )
            for side in sides
        ]
    )
    return {sync.portfolio_id: sync for sync in syncs}


def _changes(before: Mapping[str, Decimal], after: Mapping[str, Decimal]) -> list[dict[str, str]]:
    """Each symbol whose shares a sync changes: before and after."""
    return [
        {"symbol": symbol, "before": str(before.get(symbol, Decimal(0))), "after": str(after.get(symbol, Decimal(0)))}
        for symbol in sorted(set(before) | set(after))
        if before.get(symbol, Decimal(0)) != after.get(symbol, Decimal(0))
    ]
