"""Strict reading of numbers, symbols and text that people and programs send (forms, CSV files,
the API): one grammar everywhere, and a readable reason for everything refused.

Python's own parsers accept more than a person means: ``Decimal("1_000")``, full-width and
Arabic-Indic digits, ``"1e309"``, NaN, and ``"ß".upper() == "SS"``. These functions accept plain
ASCII notation only and check sizes against the database columns before anything is stored.
`InputError` messages name no field: callers attach the field or the line they read.
"""

from __future__ import annotations

import re
from decimal import Decimal

from rebalancer_site.env import SYMBOL_RE

#: An optional minus, ASCII digits, an optional fraction; no exponent, separators or signs elsewhere.
_DECIMAL_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
#: Longer text is refused unread (no column holds more than 40 digits).
_LONGEST_NUMBER = 100
#: Characters no stored text may hold: NUL (PostgreSQL refuses it) and the other C0 controls but
#: tab, line feed and carriage return.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InputError(ValueError):
    """A value was refused; the message says why, without naming the field."""


def decimal_parse(
    value: object,
    *,
    max_digits: int,
    decimal_places: int,
    minimum: Decimal | int | None = None,
    maximum: Decimal | int | None = None,
) -> Decimal:
    """``value`` (text, int or Decimal; never bool or float) as a Decimal that fits a
    ``DecimalField(max_digits, decimal_places)``, within ``minimum``..``maximum`` when given."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InputError(f"must be a number written as text or an integer, got {type(value).__name__}")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InputError("is required")
        if len(text) > _LONGEST_NUMBER or not _DECIMAL_RE.fullmatch(text):
            raise InputError(f"must be a plain decimal number like 12.5, got {_shown(text)}")
        number = Decimal(text)
    else:
        number = Decimal(value)
        if not number.is_finite():
            raise InputError(f"must be a finite number, got {number}")
    _, digits, exponent = number.as_tuple()
    places = max(0, -exponent)
    if places > decimal_places:
        raise InputError(f"has more than {decimal_places} decimal places")
    whole_digits = len(digits) + exponent
    if number != 0 and whole_digits > max_digits - decimal_places:
        raise InputError(f"is too large: at most {max_digits - decimal_places} digits before the decimal point")
    if minimum is not None and number < minimum:
        raise InputError(f"must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise InputError(f"must be at most {maximum}")
    return number + 0  # -0 becomes 0


def text_clean(value: object, *, max_length: int, allow_blank: bool = True) -> str:
    """``value`` as stripped text without control characters, at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise InputError(f"must be text, got {type(value).__name__}")
    text = value.strip()
    if _CONTROL_RE.search(text):
        raise InputError("must not contain control characters (such as a NUL byte)")
    if len(text) > max_length:
        raise InputError(f"is too long: at most {max_length} characters, got {len(text)}")
    if not text and not allow_blank:
        raise InputError("is required")
    return text


def symbol_clean(value: object) -> str:
    """A ticker symbol, upper-cased: ASCII letters, digits, '.', '-' or '=', optionally after '^',
    at most 20 characters."""
    if not isinstance(value, str):
        raise InputError(f"must be a ticker symbol as text, got {type(value).__name__}")
    text = value.strip()
    # Checked before upper-casing: "ß".upper() is "SS", a different symbol than the one typed.
    if not text.isascii() or not SYMBOL_RE.fullmatch(text.upper()):
        raise InputError(f"must be a ticker symbol like SPY or BRK.B, got {_shown(text)}")
    return text.upper()


def _shown(text: str) -> str:
    """``text`` quoted for a message: control characters escaped, long text cut."""
    shown = text if len(text) <= 40 else text[:37] + "..."
    return repr(shown)

