"""Numbers as people read them, the same on every page, in the report and in its chart captions.

Stored values keep their full precision (quantities to 9 places, prices to 6); what is shown is
rounded half up: quantities to at most 4 decimals with trailing zeros dropped, prices to cents,
or to at most 4 decimals under $1 where cents would hide the price. Weights are stored as
fractions and shown as percent (or percentage points) to 2 decimals, never "-0.00%"; amounts in
USD with a $ sign and thousands separators. The report's filters show "—" for a missing value.
Python code that needs the same text (chart captions, messages) calls these functions.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

from portfolios.charts.base import percent_label

register = template.Library()

QUANTITY_PLACES_SHOWN = 4
PRICE_PLACES_SHOWN = 2
SMALL_PRICE_PLACES_SHOWN = 4  # under $1
PERCENT_PLACES_SHOWN = 2
DASH = "—"  # a missing value


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


# The percent and USD filters format with a format string: a 50-holding report shows ~700 numbers,
# and Django's floatformat costs ~20x as much.


def percent_text(value: float | None, places: int = PERCENT_PLACES_SHOWN, unit: str = "%") -> str:
    """``value``, already in percent (or percentage points), to ``places`` decimals followed by
    ``unit``; "—" for None."""
    # "z" drops the sign of a value that rounds to zero: a loss of -0.0001% reads "0.00%", not "-0.00%".
    return DASH if value is None else f"{value:z.{places}f}{unit}"


def _float(value) -> float | None:
    """``value`` as a finite float, or None (None, not a number, infinite or NaN)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_percent(fraction) -> float | None:
    number = _float(fraction)
    return None if number is None else number * 100


@register.filter
def percent(fraction, places: int = PERCENT_PLACES_SHOWN) -> str:
    """A fraction as percent: 0.12345 is "12.35%" (``places`` decimals, 2 unless given); "—" when missing."""
    return percent_text(_as_percent(fraction), places)


@register.filter
def pp(fraction) -> str:
    """A difference of fractions in percentage points: 0.0123 is "1.23 pp"; "—" when missing."""
    return percent_text(_as_percent(fraction), unit=" pp")


@register.filter
def ratio(value) -> str:
    """A figure without a unit (a Sharpe ratio, an urgency) to 2 decimals: "1.23"; "—" when missing."""
    return percent_text(_float(value), unit="")


@register.filter
def usd(value) -> str:
    """An amount in USD to the cent with thousands separators: "$1,234.50"; "—" when missing; a value
    that is not a number is shown as given."""
    if value is None:
        return DASH
    try:
        return f"${value:z,.2f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def shares(value) -> str:
    """A number of shares as `quantity_text` shows it; "—" when missing."""
    return DASH if value is None else quantity_text(value)


@register.filter
def share_price(value) -> str:
    """A price per share as `price_text` shows it, with the $ sign: "$210.39"; "—" when missing."""
    return DASH if value is None else f"${price_text(value)}"


@register.filter
def absolute(value):
    """The size of a signed number (a withdrawal shown as the amount withdrawn); anything else as given."""
    try:
        return abs(value)
    except TypeError:
        return value


# A share shown both in a chart and in the text around it: one rounding, half up ("88.7%").
register.filter("percent_label", percent_label)
