"""Write a portfolio's holdings, cash and manual targets: validated as a whole, saved all at once or not at all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from marketdata.models import Instrument
from optimization.services import manual_targets_parse
from portfolios.models import Holding, Portfolio
from portfolios.models.holdings import QUANTITY_PLACES


def _decimal(value, *, field: str, places: int, allow_none: bool = False) -> Decimal | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise ValueError(f"{field} is required")
    if isinstance(value, bool) or (isinstance(value, float) and value != value):
        raise ValueError(f"{field} must be a number, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{field} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    if number < 0:
        raise ValueError(f"{field} must not be negative, got {value}")
    if number.as_tuple().exponent < -places:
        raise ValueError(f"{field} has more than {places} decimal places: {value}")
    return number


def cash_parse(value) -> Decimal:
    """Cash in USD (>= 0, at most 4 decimal places); errors name the ``cash_usd`` field."""
    try:
        return _decimal(value, field="cash_usd", places=4)
    except ValueError as error:
        raise ValidationError({"cash_usd": str(error)}) from None


def holdings_replace(
    *, portfolio: Portfolio, rows: Iterable[Mapping], cash_usd=None, add_to_universe: bool = True
) -> list[Holding]:
    """Make ``rows`` ({symbol, quantity, cost_basis_usd?}) the portfolio's whole set of holdings.

    Holdings absent from ``rows`` are removed. Every row is checked before anything is written:
    unknown symbol, duplicate symbol, negative or malformed quantity or cost basis each raise a
    `ValidationError` naming the row and field, and nothing changes. Held instruments join the
    portfolio's universe unless ``add_to_universe`` is False.
    """
    rows = list(rows)
    errors: list[str] = []
    parsed: dict[str, tuple[Decimal, Decimal | None]] = {}
    for number, row in enumerate(rows, start=1):
        symbol = str(row.get("symbol") or "").strip().upper()
        label = f"row {number} ({symbol or 'no symbol'})"
        if not symbol:
            errors.append(f"{label}: symbol is required")
            continue
        if symbol in parsed:
            errors.append(f"{label}: duplicate holding for {symbol}")
            continue
        try:
            quantity = _decimal(row.get("quantity"), field="quantity", places=QUANTITY_PLACES)
            cost_basis = _decimal(row.get("cost_basis_usd"), field="cost_basis_usd", places=4, allow_none=True)
        except ValueError as error:
            errors.append(f"{label}: {error}")
            continue
        parsed[symbol] = (quantity, cost_basis)
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(parsed))}
    unknown = [symbol for symbol in parsed if symbol not in instruments]
    if unknown:
        errors.append(f"unknown symbol {', '.join(unknown)}: add the instrument (fetch_prices) first")
    cash = cash_parse(cash_usd) if cash_usd is not None else None
    if errors:
        raise ValidationError({"holdings": errors})
    with transaction.atomic():
        portfolio.holdings.exclude(instrument__symbol__in=list(parsed)).delete()
        holdings = []
        for symbol, (quantity, cost_basis) in parsed.items():
            holding, _ = Holding.objects.update_or_create(
                portfolio=portfolio,
                instrument=instruments[symbol],
                defaults={"quantity": quantity, "cost_basis_usd": cost_basis},
            )
            holdings.append(holding)
        if add_to_universe and instruments:
            portfolio.instruments.add(*instruments.values())
        if cash is not None:
            portfolio.cash_usd = cash
            portfolio.save(update_fields=["cash_usd", "updated_at"])
    return holdings


def holdings_upsert(*, portfolio: Portfolio, rows: Iterable[Mapping], cash_usd=None) -> list[Holding]:
    """Set the holdings of the symbols in ``rows`` and keep every other holding (validated like
    `holdings_replace`, all or nothing). A symbol given twice is an error."""
    rows = list(rows)
    given = [str(row.get("symbol") or "").strip().upper() for row in rows]
    kept = [
        {"symbol": h.instrument.symbol, "quantity": h.quantity, "cost_basis_usd": h.cost_basis_usd}
        for h in portfolio.holdings.select_related("instrument")
        if h.instrument.symbol not in given
    ]
    return holdings_replace(portfolio=portfolio, rows=[*kept, *rows], cash_usd=cash_usd)


def cash_set(*, portfolio: Portfolio, cash_usd) -> Portfolio:
    """Set the portfolio's uninvested cash (USD, >= 0, at most 4 decimal places)."""
    portfolio.cash_usd = cash_parse(cash_usd)
    portfolio.save(update_fields=["cash_usd", "updated_at"])
    return portfolio


def manual_targets_set(*, portfolio: Portfolio, weights: Mapping | None) -> Portfolio:
    """Fix the target weights ({symbol: weight}, summing to 1) the plans trade towards instead of the
    optimizer's; None (or empty) goes back to the optimizer. Errors name ``manual_targets``."""
    raw = {str(symbol).strip().upper(): float(weight) for symbol, weight in weights.items()} if weights else None
    try:
        manual_targets_parse(raw)
    except ValueError as error:
        raise ValidationError({"manual_targets": str(error)}) from None
    portfolio.manual_targets = raw
    portfolio.save(update_fields=["manual_targets", "updated_at"])
    return portfolio
