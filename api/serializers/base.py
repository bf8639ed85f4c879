"""Building blocks: unknown fields refused, values read with the shared strict grammar
(`ground.inputs`: the same numbers, symbols and text as the web forms and CSV files),
related fields scoped to the user.

Every field here accepts exactly what its published schema says (`api.schema`), so a client
generated from the schema and the server agree on every value.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Mapping
from decimal import Decimal

from rest_framework import serializers

from ground.inputs import InputError, column_maximum, decimal_parse, symbol_clean, text_clean


class StrictMixin:
    """Refuses fields the serializer does not know (a typo is an error, not a silently ignored setting)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class StrictSerializer(StrictMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictMixin, serializers.ModelSerializer):
    pass


def _refused(error: InputError) -> serializers.ValidationError:
    return serializers.ValidationError(str(error), code="invalid")


class DecimalField(serializers.DecimalField):
    """An exact decimal: text in plain notation ("12.5", no exponent, separators or non-ASCII
    digits) or a JSON number (read exactly, never through a float), within the field's bounds
    (by default the largest its column stores safely). Answered as text with exactly
    ``decimal_places`` places."""

    def __init__(self, *, max_digits, decimal_places, **kwargs):
        if max_digits is not None:
            largest = column_maximum(max_digits=max_digits, decimal_places=decimal_places)
            kwargs["max_value"] = largest if kwargs.get("max_value") is None else kwargs["max_value"]
            kwargs["min_value"] = -largest if kwargs.get("min_value") is None else kwargs["min_value"]
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def to_internal_value(self, data) -> Decimal:
        if isinstance(data, str):
            if data != data.strip():
                raise serializers.ValidationError("must not start or end with spaces", code="invalid")
            if data.startswith("-") and self.min_value is not None and self.min_value >= 0:
                raise serializers.ValidationError(f"must be at least {self.min_value}", code="min_value")
        try:
            return decimal_parse(
                data,
                max_digits=self.max_digits,
                decimal_places=self.decimal_places,
                minimum=self.min_value,
                maximum=self.max_value,
            )
        except InputError as error:
            raise _refused(error) from None

    def quantize(self, value: Decimal) -> Decimal:
        if self.max_digits is not None:
            return super().quantize(value)
        # A figure without a column (an optimizer metric) keeps every whole digit it has.
        context = decimal.getcontext().copy()
        context.prec = max(context.prec, value.adjusted() + self.decimal_places + 2)
        return value.quantize(Decimal(1).scaleb(-self.decimal_places), rounding=self.rounding, context=context)


class FiniteFloatField(serializers.FloatField):
    """A JSON number that is a real number: text, booleans, NaN and infinities are refused."""

    def to_internal_value(self, data) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float | Decimal):
            raise serializers.ValidationError(f"must be a number, got {_json_type(data)}", code="invalid")
        try:
            value = float(data)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise serializers.ValidationError(f"must be a finite number, got {data}", code="invalid")
        return super().to_internal_value(value)


class IntegerField(serializers.IntegerField):
    """A JSON integer (``5`` or ``5.0``): text ("5", "1_000", full-width digits), booleans and
    fractions are refused. Unbounded fields still fit a 32-bit database column."""

    def __init__(self, **kwargs):
        kwargs["min_value"] = -(2**31) if kwargs.get("min_value") is None else kwargs["min_value"]
        kwargs["max_value"] = 2**31 - 1 if kwargs.get("max_value") is None else kwargs["max_value"]
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        if isinstance(data, Decimal) and data.is_finite() and data == data.to_integral_value():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(f"must be an integer, got {_json_type(data)}", code="invalid")
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    """JSON ``true`` or ``false`` only (not "yes", 1 or "on")."""

    def to_internal_value(self, data) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(f"must be true or false, got {_json_type(data)}", code="invalid")
        return data


#: The most characters a text field without a column length of its own reads.
LONGEST_TEXT = 10_000


class CharField(serializers.CharField):
    """Text without control characters (such as a NUL byte), spaces around it removed, at most
    ``max_length`` characters (`LONGEST_TEXT` without one)."""

    @property
    def longest(self) -> int:
        return self.max_length or LONGEST_TEXT

    def run_validation(self, data=serializers.empty):
        # DRF turns numbers into text; a string field takes text only.
        if data is not serializers.empty and data is not None and not isinstance(data, str):
            raise serializers.ValidationError(f"must be text, got {_json_type(data)}", code="invalid")
        return super().run_validation(data)

    def to_internal_value(self, data) -> str:
        try:
            text = text_clean(data, max_length=self.longest)
            text.encode("utf-8")
        except InputError as error:
            raise _refused(error) from None
        except UnicodeEncodeError:
            raise serializers.ValidationError("must be valid Unicode text", code="invalid") from None
        if not text and not self.allow_blank:
            raise serializers.ValidationError("must not be blank", code="blank")
        return text


class DateField(serializers.DateField):
    """A date written YYYY-MM-DD, the only spelling ``format: date`` allows ("2025-1-5" and
    "20250105" are refused)."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            got = repr(value[:40]) if isinstance(value, str) else _json_type(value)
            raise serializers.ValidationError(f"must be a date written YYYY-MM-DD, got {got}", code="invalid")
        return super().to_internal_value(value)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class SymbolField(serializers.CharField):
    """A ticker symbol as typed (``spy`` or ``SPY``), answered upper-cased; checked before
    upper-casing, so ``ß`` is refused rather than becoming ``SS``."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 20)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        if data is not serializers.empty and data is not None and not isinstance(data, str):
            raise serializers.ValidationError(f"must be a ticker symbol as text, got {_json_type(data)}")
        return super().run_validation(data)

    def to_internal_value(self, data) -> str:
        if data != data.strip():
            raise serializers.ValidationError("must not start or end with spaces", code="invalid")
        try:
            return symbol_clean(data)
        except InputError as error:
            raise _refused(error) from None


class SymbolDictField(serializers.DictField):
    """``{symbol: value}``: every key a ticker symbol (upper-cased), each symbol once."""

    def to_internal_value(self, data) -> dict:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(f"must be an object, got {_json_type(data)}", code="not_a_dict")
        errors, symbols = {}, {}
        for key in data:
            if key != key.strip():
                errors[key] = ["must not start or end with spaces"]
                continue
            try:
                symbol = symbol_clean(key)
            except InputError as error:
                errors[key] = [str(error)]
                continue
            if symbol in symbols.values():
                errors[key] = [f"{symbol} is given twice"]
            symbols[key] = symbol
        if errors:
            raise serializers.ValidationError(errors)
        values = super().to_internal_value(data)
        return {symbols[key]: value for key, value in values.items()}


def _json_type(value) -> str:
    """What a JSON value is, in the words of the JSON specification."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float | Decimal):
        return f"the number {value}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


class UserScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related object of the requesting user only: another user's id is "does not exist"."""

    def __init__(self, *, selector, **kwargs):
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.selector(user=None).none()
        return self.selector(user=user)

    def to_internal_value(self, data):
        # An id is a JSON integer: "1_000" or full-width digits would otherwise be read by int().
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


def password_field(help_text: str) -> serializers.CharField:
    """The owner's password, re-entered to confirm a sensitive change (never returned)."""
    return PasswordField(required=False, allow_blank=True, write_only=True, help_text=help_text)


class PasswordField(serializers.CharField):
    """A password as typed (spaces kept), text only."""

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, max_length=4096, **kwargs)

    def run_validation(self, data=serializers.empty):
        if data is not serializers.empty and data is not None and not isinstance(data, str):
            raise serializers.ValidationError(f"must be text, got {_json_type(data)}", code="invalid")
        return super().run_validation(data)


def strict_field_mapping(base: dict) -> dict:
    """``ModelSerializer.serializer_field_mapping`` with the strict fields of this module."""
    from django.db import models

    strict = {
        models.DecimalField: DecimalField,
        models.IntegerField: IntegerField,
        models.PositiveIntegerField: IntegerField,
        models.PositiveSmallIntegerField: IntegerField,
        models.SmallIntegerField: IntegerField,
        models.BigIntegerField: IntegerField,
        models.BooleanField: BooleanField,
        models.CharField: CharField,
        models.TextField: CharField,
    }
    return {**base, **strict}
