"""Write a portfolio's holdings, cash and manual targets: everything is validated first, then written
at once under the portfolio's lock (`portfolio_locked`), so concurrent writers serialise instead of
mixing their rows or writing back what another one just changed.

Numbers and symbols are read with the shared grammar of `ground.inputs` (the pages, the
CSV files and the API accept the same ones), sized to the columns that store them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from ground.inputs import InputError, column_maximum, decimal_parse, symbol_clean
from marketdata.models import Instrument
from optimization.services import manual_targets_parse
from portfolios.models import Holding, Portfolio
from portfolios.services.portfolio_lock import portfolio_locked
from portfolios.services.universe import universe_follow_holdings, universe_join_held

QUANTITY = Holding._meta.get_field("quantity")
COST_BASIS = Holding._meta.get_field("cost_basis_usd")
CASH = Portfolio._meta.get_field("cash_usd")
#: Parsed rows: {SYMBOL: (quantity, cost basis or None)}.
Rows = dict[str, tuple[Decimal, Decimal | None]]


def _amount(value, *, column: models.DecimalField, required: bool = True) -> Decimal | None:
    """``value`` as a Decimal of at least 0 that ``column`` stores; `InputError` messages start
    with the column's name."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(f"{column.name} is required")
        return None
    size = {"max_digits": column.max_digits, "decimal_places": column.decimal_places}
    try:
        number = decimal_parse(value, **size, maximum=column_maximum(**size))
    except InputError as error:
        raise InputError(f"{column.name} {error}") from None
    if number < 0:
        raise InputError(f"{column.name} must not be negative, got {number}")
    return number


def cash_parse(value) -> Decimal:
    """Cash in USD (>= 0, sized to the ``cash_usd`` column); errors name the ``cash_usd`` field."""
    try:
        return _amount(value, column=CASH)
    except InputError as error:
        raise ValidationError({"cash_usd": str(error)}) from None


def holdings_rows_check(rows: Iterable[Mapping]) -> tuple[Rows, dict[str, Instrument]]:
    """``rows`` ({symbol, quantity, cost_basis_usd?}) read and checked, with their instruments.

    Unknown, duplicate or malformed symbols and negative, malformed or oversized numbers raise a
    `ValidationError` ({"holdings": [...]}) naming each row ("row 2 (BND): ...") and field.
    Reads instruments only; writes nothing.
    """
    errors: list[str] = []
    parsed: Rows = {}
    first_row: dict[str, int] = {}  # a duplicate is named even when its first row was refused
    for number, row in enumerate(rows, start=1):
        raw = row.get("symbol")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            errors.append(f"row {number} (no symbol): symbol is required")
            continue
        try:
            symbol = symbol_clean(raw)
        except InputError as error:
            errors.append(f"row {number} (not a symbol): symbol {error}")
            continue
        label = f"row {number} ({symbol})"
        if symbol in first_row:
            errors.append(f"{label}: duplicate holding for {symbol} (first in row {first_row[symbol]})")
            continue
        first_row[symbol] = number
        try:
            quantity = _amount(row.get("quantity"), column=QUANTITY)
            cost_basis = _amount(row.get("cost_basis_usd"), column=COST_BASIS, required=False)
        except InputError as error:
            errors.append(f"{label}: {error}")
            continue
        parsed[symbol] = (quantity, cost_basis)
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(parsed))}
    unknown = [symbol for symbol in parsed if symbol not in instruments]
    if unknown:
        errors.append(f"unknown symbol {', '.join(unknown)}: add the instrument (fetch_prices) first")
    if errors:
        raise ValidationError({"holdings": errors})
    return parsed, instruments


def _checked(rows: Iterable[Mapping], cash_usd) -> tuple[Rows, dict[str, Instrument], Decimal | None]:
    """The rows, their instruments and the cash (None: keep it), or one `ValidationError` naming
    every bad row and the cash at once."""
    errors: dict[str, list[str]] = {}
    parsed, instruments, cash = {}, {}, None
    try:
        parsed, instruments = holdings_rows_check(rows)
    except ValidationError as error:
        errors.update(error.message_dict)
    if cash_usd is not None:
        try:
            cash = cash_parse(cash_usd)
        except ValidationError as error:
            errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    return parsed, instruments, cash


def _write(
    locked: Portfolio,
    parsed: Rows,
    instruments: dict[str, Instrument],
    cash: Decimal | None,
    *,
    remove_others: bool,
    add_to_universe: bool = True,
) -> None:
    """Store ``parsed`` against the holdings as stored now; the caller holds the portfolio's lock."""
    stored = {h.instrument_id: h for h in Holding.objects.filter(portfolio=locked)}
    if remove_others:
        wanted = {instrument.pk for instrument in instruments.values()}
        gone = [h.pk for instrument_id, h in stored.items() if instrument_id not in wanted]
        if gone:
            Holding.objects.filter(pk__in=gone).delete()
    changed, new = [], []
    for symbol, (quantity, cost_basis) in parsed.items():
        instrument = instruments[symbol]
        holding = stored.get(instrument.pk)
        if holding is None:
            new.append(Holding(portfolio=locked, instrument=instrument, quantity=quantity, cost_basis_usd=cost_basis))
        elif (holding.quantity, holding.cost_basis_usd) != (quantity, cost_basis):
            holding.quantity, holding.cost_basis_usd, holding.updated_at = quantity, cost_basis, timezone.now()
            changed.append(holding)
    Holding.objects.bulk_update(changed, ["quantity", "cost_basis_usd", "updated_at"])
    Holding.objects.bulk_create(new)
    if add_to_universe and instruments:
        universe_join_held(portfolio=locked, instruments=instruments.values())
    if remove_others:
        universe_follow_holdings(portfolio=locked)
    if cash is not None:
        locked.cash_usd = cash
        locked.save(update_fields=["cash_usd", "updated_at"])


def _held(portfolio: Portfolio) -> list[Holding]:
    return list(portfolio.holdings.select_related("instrument").order_by("instrument__symbol"))


def holdings_replace(
    *, portfolio: Portfolio, rows: Iterable[Mapping], cash_usd=None, add_to_universe: bool = True
) -> list[Holding]:
    """Make ``rows`` ({symbol, quantity, cost_basis_usd?}) the portfolio's whole set of holdings,
    and ``cash_usd`` its cash when given; the holdings as stored afterwards.

    Holdings absent from ``rows`` are removed. Every row and the cash are checked before anything
    is written (`holdings_rows_check`, `cash_parse`): a `ValidationError` names every bad row and
    field, and nothing changes. Held instruments join the portfolio's universe unless
    ``add_to_universe`` is False; those that only joined with a holding leave it with the holding,
    unless targeted (`universe_follow_holdings`). Raises `PortfolioBusy` when another writer holds
    the portfolio.
    """
    parsed, instruments, cash = _checked(list(rows), cash_usd)
    with portfolio_locked(portfolio.pk) as locked:
        _write(locked, parsed, instruments, cash, remove_others=True, add_to_universe=add_to_universe)
        holdings = _held(locked)
    portfolio.cash_usd = locked.cash_usd
    return holdings


def holdings_upsert(*, portfolio: Portfolio, rows: Iterable[Mapping], cash_usd=None) -> list[Holding]:
    """Set the holdings of the symbols in ``rows`` and keep every other holding as stored when the
    lock is taken (validated like `holdings_replace`, all or nothing; a symbol given twice is an
    error); the whole set of holdings afterwards."""
    parsed, instruments, cash = _checked(list(rows), cash_usd)
    with portfolio_locked(portfolio.pk) as locked:
        _write(locked, parsed, instruments, cash, remove_others=False)
        holdings = _held(locked)
    portfolio.cash_usd = locked.cash_usd
    return holdings


def cash_set(*, portfolio: Portfolio, cash_usd) -> Portfolio:
    """Set the portfolio's uninvested cash (USD, >= 0, sized to its column)."""
    cash = cash_parse(cash_usd)
    with portfolio_locked(portfolio.pk) as locked:
        locked.cash_usd = cash
        locked.save(update_fields=["cash_usd", "updated_at"])
    portfolio.cash_usd = cash
    return portfolio


#: Manual weights are fractions of value, read like the API's: at most 10 decimal places.
WEIGHT_DIGITS, WEIGHT_PLACES = 12, 10


def manual_targets_set(*, portfolio: Portfolio, weights: Mapping | None) -> Portfolio:
    """Fix the target weights ({symbol: weight}, summing to 1) the plans trade towards instead of the
    optimizer's; None (or empty) goes back to the optimizer. Errors name ``manual_targets``."""
    raw = None
    if weights:
        raw = {}
        for key, weight in weights.items():
            try:
                symbol = symbol_clean(key)
            except InputError as error:
                raise ValidationError({"manual_targets": f"manual_targets: the symbol {error}"}) from None
            if symbol in raw:
                raise ValidationError({"manual_targets": f"manual_targets: {symbol} is given twice"})
            try:
                number = decimal_parse(weight, max_digits=WEIGHT_DIGITS, decimal_places=WEIGHT_PLACES)
            except InputError as error:
                raise ValidationError({"manual_targets": f"manual_targets: the weight of {symbol} {error}"}) from None
            raw[symbol] = float(number)
    try:
        manual_targets_parse(raw)
    except ValueError as error:
        raise ValidationError({"manual_targets": str(error)}) from None
    with portfolio_locked(portfolio.pk) as locked:
        locked.manual_targets = raw
        locked.save(update_fields=["manual_targets", "updated_at"])
    portfolio.manual_targets = raw
    return portfolio
