"""Prices and share quantities as people read them, the same on every page and in the report.

Stored values keep their full precision (quantities to 9 places, prices to 6); what is shown is
rounded half up: quantities to at most 4 decimals with trailing zeros dropped, prices to cents,
or to at most 4 decimals under $1 where cents would hide the price.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()

QUANTITY_PLACES_SHOWN = 4
PRICE_PLACES_SHOWN = 2
SMALL_PRICE_PLACES_SHOWN = 4  # under $1


def _decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _rounded(number: Decimal, places: int) -> Decimal:
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return rounded.copy_abs() if rounded == 0 else rounded  # no "-0"


def _without_trailing_zeros(text: str, keep: int = 0) -> str:
    """``text`` ("1,234.5000") without the zeros after the first ``keep`` decimals ("1,234.5")."""
    if "." not in text:
        return text
    whole, decimals = text.split(".")
    decimals = decimals.rstrip("0").ljust(keep, "0")
    return f"{whole}.{decimals}" if decimals else whole


@register.filter
def quantity_text(value) -> str:
    """Shares: at most 4 decimals, trailing zeros dropped, thousands separated ("1,016.484");
    a value that is not a number is shown as given."""
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    return _without_trailing_zeros(f"{_rounded(number, QUANTITY_PLACES_SHOWN):,f}")


@register.filter
def price_text(value) -> str:
    """A price per share in USD, without the sign: cents ("1,234.50"), or up to 4 decimals under $1
    ("0.1234", "0.50"); a value that is not a number is shown as given."""
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    if abs(_rounded(number, PRICE_PLACES_SHOWN)) >= 1:
        return f"{_rounded(number, PRICE_PLACES_SHOWN):,f}"
    return _without_trailing_zeros(f"{_rounded(number, SMALL_PRICE_PLACES_SHOWN):,f}", keep=PRICE_PLACES_SHOWN)
