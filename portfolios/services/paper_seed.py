"""Seeding a new paper broker account with its portfolio's holdings and cash, so paper trading
starts from what the portfolio holds instead of an empty account."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError

from brokers.models import BrokerAccount, Order, PaperAccount, PaperOrder, PaperPosition
from brokers.services.paper import paper_account_reset
from portfolios.models import AuditEntry, Portfolio
from portfolios.selectors.valuation import last_session, prices_latest
from portfolios.services.portfolio_lock import portfolio_locked

logger = logging.getLogger(__name__)


def paper_seed_refusal(*, account: BrokerAccount, portfolio: Portfolio) -> str:
    """Why ``account`` cannot be seeded with ``portfolio``'s holdings and cash, or "" when it can:
    only a paper account with no positions and no orders yet, backing no other portfolio."""
    if account.kind != BrokerAccount.Kind.PAPER:
        return f"{account.label} is not a paper account: only a paper account can be seeded"
    other = Portfolio.objects.filter(broker_account=account).exclude(pk=portfolio.pk).first()
    if other is not None:
        return f"{account.label} already backs the portfolio {other.name!r}"
    if PaperPosition.objects.filter(paper_account__account=account).exists():
        return f"{account.label} already holds positions: only a new paper account can be seeded"
    if (
        PaperOrder.objects.filter(paper_account__account=account).exists()
        or Order.objects.filter(account=account).exists()
    ):
        return f"{account.label} already has orders: only a new paper account can be seeded"
    return ""


def paper_account_seed(*, portfolio: Portfolio) -> PaperAccount:
    """Make the portfolio's paper account hold its holdings (each at the latest stored close as its
    cost) and its cash, in one transaction, and record it in the audit trail.

    Raises `ValidationError` (nothing changed) when `paper_seed_refusal` refuses the account, when
    the portfolio has nothing to copy, or when a holding has no stored close.
    """
    with portfolio_locked(portfolio.pk) as locked:
        if locked.broker_account_id is None:
            raise ValidationError("this portfolio has no broker account to seed")
        account = BrokerAccount.objects.get(pk=locked.broker_account_id)
        # Taken before the checks, as the paper broker takes it for every order: none lands in between.
        PaperAccount.objects.select_for_update().filter(account=account).first()
        refusal = paper_seed_refusal(account=account, portfolio=locked)
        if refusal:
            raise ValidationError(refusal)
        holdings = {
            symbol: quantity
            for symbol, quantity in locked.holdings.values_list("instrument__symbol", "quantity")
            if quantity > 0
        }
        if not holdings and not locked.cash_usd:
            raise ValidationError("the portfolio has no holdings and no cash to copy: enter them first")
        prices = prices_latest(symbols=list(holdings), session=last_session())
        missing = sorted(set(holdings) - set(prices.closes))
        if missing:
            raise ValidationError(
                f"no stored close for {', '.join(missing)} (the seeded cost is the latest close): fetch its prices "
                "first"
            )
        costs = {symbol: prices.closes[symbol][1] for symbol in holdings}
        paper = paper_account_reset(
            account=account,
            cash_usd=locked.cash_usd,
            positions={symbol: (quantity, costs[symbol]) for symbol, quantity in holdings.items()},
        )
        AuditEntry.objects.create(
            event="paper_account_seeded",
            portfolio=locked,
            user_id=locked.owner_id,
            message=f"{account.label} seeded with {len(holdings)} position(s) and ${locked.cash_usd:,.2f} of cash",
            data={
                "broker_account_id": account.pk,
                "cash_usd": str(locked.cash_usd),
                "positions": {s: {"quantity": str(q), "cost_usd": str(costs[s])} for s, q in sorted(holdings.items())},
            },
        )
    logger.info("paper account seeded", extra={"portfolio_id": portfolio.pk, "broker_account_id": account.pk})
    return paper
