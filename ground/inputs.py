"""Strict reading of numbers, symbols and text that people and programs send (forms, CSV files,
the API): one grammar everywhere, and a readable reason for everything refused.

Python's own parsers accept more than a person means: ``Decimal("1_000")``, full-width and
Arabic-Indic digits, ``"1e309"``, NaN, and ``"ß".upper() == "SS"``. These functions accept plain
ASCII notation only and check sizes against the database columns before anything is stored.
`InputError` messages name no field: callers attach the field or the line they read.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

from ground.env import SYMBOL_RE

#: An optional minus, ASCII digits, an optional fraction; no exponent, separators or signs elsewhere.
_DECIMAL_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
#: An optional minus and ASCII digits.
_INTEGER_RE = re.compile(r"-?[0-9]+")
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


#: Significant digits a float (SQLite's storage of decimals) keeps exactly.
_FLOAT_DIGITS = 15


def column_maximum(*, max_digits: int, decimal_places: int) -> Decimal:
    """The largest number to let into a ``DecimalField(max_digits, decimal_places)``. A column of more
    than 15 digits gets one digit less than its capacity: SQLite keeps decimals as floats of about 15
    significant digits and would read a value at the column's limit back rounded up past it (an
    error on every later read)."""
    whole_digits = max_digits - decimal_places
    if max_digits <= _FLOAT_DIGITS:
        return Decimal(10) ** whole_digits - Decimal(10) ** -decimal_places
    return Decimal(10) ** (whole_digits - 1)


def integer_parse(
    value: object, *, max_digits: int = 18, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` (text or int; never bool or float) as an int of at most ``max_digits`` digits, within
    ``minimum``..``maximum`` when given."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"must be a whole number written as text or an integer, got {type(value).__name__}")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InputError("is required")
        if len(text) > _LONGEST_NUMBER or not _INTEGER_RE.fullmatch(text):
            raise InputError(f"must be a whole number like 12, got {_shown(text)}")
        value = int(text)
    if len(str(abs(value))) > max_digits:
        raise InputError(f"is too large: at most {max_digits} digits")
    if minimum is not None and value < minimum:
        raise InputError(f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InputError(f"must be at most {maximum}")
    return value


def json_parse(text: object, *, max_length: int, max_depth: int = 20) -> object:
    """``text`` as a JSON value that any column can store: finite numbers only (no NaN or Infinity
    literals, no ``1e309``, integers of at most 100 digits), strings without control characters,
    arrays and objects nested at most ``max_depth`` deep, the text at most ``max_length`` characters."""
    if not isinstance(text, str):
        raise InputError(f"must be JSON text, got {type(text).__name__}")
    if len(text) > max_length:
        raise InputError(f"is too long: at most {max_length} characters, got {len(text)}")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_int=_json_integer, parse_float=_json_float)
    except json.JSONDecodeError as error:
        raise InputError(f"is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise InputError(f"is nested too deeply: at most {max_depth} levels") from None
    _check_json_tree(value, max_depth=max_depth)
    return value


def _refuse_constant(name: str) -> object:
    raise InputError(f"must hold finite numbers only, got {name}")


def _json_integer(text: str) -> int:
    if len(text.lstrip("-")) > _LONGEST_NUMBER:
        raise InputError(f"holds a number of more than {_LONGEST_NUMBER} digits")
    return int(text)


def _json_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InputError(f"must hold finite numbers only, got {_shown(text)}")
    return number


def _check_json_tree(value: object, *, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` and control characters in keys and strings
    (PostgreSQL cannot store NUL in a JSON column); walked without recursion."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if _CONTROL_RE.search(item):
                raise InputError(f"must not contain control characters (such as a NUL byte), got {_shown(item)}")
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise InputError(f"is nested too deeply: at most {max_depth} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


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
