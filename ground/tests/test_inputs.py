"""The strict input grammar: what a person means by a number, a symbol, text or JSON, and nothing a
column cannot store."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ground.inputs import (
    InputError,
    column_maximum,
    decimal_parse,
    integer_parse,
    json_parse,
    symbol_clean,
    text_clean,
)

QUANTITY = {"max_digits": 24, "decimal_places": 9}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.5", Decimal("12.5")),
        (" 0.000000001 ", Decimal("1E-9")),
        ("-0", Decimal(0)),
        (7, Decimal(7)),
        (".5", Decimal("0.5")),
    ],
)
def test_plain_decimals_are_read(value, expected):
    assert decimal_parse(value, **QUANTITY) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1e309", "plain decimal number"),
        ("1_000", "plain decimal number"),
        ("\uff11\uff12", "plain decimal number"),
        ("\u0661\u0662", "plain decimal number"),
        ("NaN", "plain decimal number"),
        ("+1", "plain decimal number"),
        ("1\x00", "plain decimal number"),
        ("9" * 16, "too large"),
        ("1.0000000001", "more than 9 decimal places"),
        (1.5, "got float"),
        (True, "got bool"),
        (Decimal("Infinity"), "finite"),
        ("", "is required"),
    ],
)
def test_anything_else_is_refused_with_a_reason(value, text):
    with pytest.raises(InputError, match=text):
        decimal_parse(value, **QUANTITY)


def test_the_largest_number_leaves_a_digit_only_where_a_float_cannot_hold_the_column():
    assert column_maximum(max_digits=24, decimal_places=9) == Decimal(10) ** 14
    assert column_maximum(max_digits=20, decimal_places=4) == Decimal(10) ** 15
    assert column_maximum(max_digits=5, decimal_places=4) == Decimal("9.9999")


@pytest.mark.parametrize(("value", "expected"), [("12", 12), (" -3 ", -3), (40, 40)])
def test_whole_numbers_are_read(value, expected):
    assert integer_parse(value) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1_000", "whole number"),
        ("\uff12\uff15\uff12", "whole number"),
        ("\u0664\u0660", "whole number"),
        ("252.0", "whole number"),
        ("1e3", "whole number"),
        ("9" * 19, "too large"),
        (2.0, "got float"),
        (False, "got bool"),
    ],
)
def test_other_whole_numbers_are_refused(value, text):
    with pytest.raises(InputError, match=text):
        integer_parse(value)


def test_whole_number_bounds():
    with pytest.raises(InputError, match="must be at least 18"):
        integer_parse("17", minimum=18)
    with pytest.raises(InputError, match="must be at most 110"):
        integer_parse("111", maximum=110)


def test_symbols_are_checked_before_upper_casing():
    assert symbol_clean(" brk.b ") == "BRK.B"
    for bad in ("\u00df", "\uff33\uff30\uff39", "SP\x00Y", "S" * 21, "SP Y"):
        with pytest.raises(InputError, match="ticker symbol"):
            symbol_clean(bad)


def test_text_without_control_characters_within_its_length():
    assert text_clean("  Core\tgrowth ", max_length=20) == "Core\tgrowth"
    with pytest.raises(InputError, match="control characters"):
        text_clean("Core\x00", max_length=20)
    with pytest.raises(InputError, match="at most 20 characters"):
        text_clean("x" * 131_073, max_length=20)


def test_json_any_column_can_store_is_read():
    assert json_parse('{"SPY": [0.1, null], "BND": [1e-5, 1]}', max_length=100) == {
        "SPY": [0.1, None],
        "BND": [1e-05, 1],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"SPY": NaN}', "finite numbers only, got NaN"),
        ("[Infinity]", "finite numbers only"),
        ("[1e309]", "finite numbers only"),
        ("[1" + "0" * 200 + "]", "more than 100 digits"),
        ('{"SPY\\u0000": 1}', "control characters"),
        ('["\\u001b[31m"]', "control characters"),
        ("[" * 21 + "]" * 21, "nested too deeply"),
        ("[" * 100_000, "nested too deeply"),
        ('{"SPY": 0.6,', "not valid JSON"),
        (b"[]", "must be JSON text"),
    ],
)
def test_json_no_column_can_store_is_refused(text, message):
    with pytest.raises(InputError, match=message):
        json_parse(text, max_length=1_000_000)


def test_json_longer_than_its_field_is_refused_unread():
    with pytest.raises(InputError, match="at most 10000 characters, got 10001"):
        json_parse("[" + "1," * 4999 + "1]", max_length=10_000)
