"""Setting up the paper broker's simulated account (the demo, tests, a user's sandbox)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from brokers.models import BrokerAccount, PaperAccount, PaperPosition


@transaction.atomic
def paper_account_reset(
    *,
    account: BrokerAccount,
    cash_usd: Decimal,
    positions: Mapping[str, tuple[Decimal, Decimal]],
    session_mode: str | None = None,
) -> PaperAccount:
    """Make the paper account hold exactly ``cash_usd`` and ``positions`` ({symbol: (shares,
    average entry price)}); open paper orders are canceled. Only for paper accounts."""
    if account.kind != BrokerAccount.Kind.PAPER:
        raise ValidationError({"kind": "only a paper account can be reset"})
    if cash_usd < 0:
        raise ValidationError({"cash_usd": "must not be negative"})
    bad = [symbol for symbol, (quantity, price) in positions.items() if quantity <= 0 or price <= 0]
    if bad:
        raise ValidationError({"positions": f"quantities and prices must be positive: {', '.join(sorted(bad))}"})
    paper, _ = PaperAccount.objects.select_for_update().get_or_create(account=account)
    paper.cash_usd = cash_usd
    if session_mode:
        paper.session_mode = session_mode
    paper.save()
    paper.orders.filter(state__in=["new", "partially_filled"]).update(state="canceled")
    paper.positions.all().delete()
    PaperPosition.objects.bulk_create(
        PaperPosition(paper_account=paper, symbol=symbol.upper(), quantity=quantity, avg_entry_price_usd=price)
        for symbol, (quantity, price) in sorted(positions.items())
    )
    return paper
