"""The strict grammar of `ground.inputs` as Django form fields, so the pages refuse exactly
what the CSV files and the API refuse, each message next to its field.

Django's own fields read more than a person means (``int("١٢")``, ``Decimal("1_000")``, JSON's
``NaN``) and pass text with control characters on to the database.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.forms.fields import InvalidJSONInput, JSONString

from ground.inputs import (
    InputError,
    column_maximum,
    decimal_parse,
    integer_parse,
    json_parse,
    text_clean,
)

#: Text fields without a column limit of their own (lists and pairs typed in one box, JSON).
LONGEST_TEXT = 10_000


def _refused(error: InputError) -> ValidationError:
    return ValidationError(str(error), code="invalid")


class PlainTextField(forms.CharField):
    """Stripped text without control characters, at most ``max_length`` characters."""

    def __init__(self, *, max_length: int | None = LONGEST_TEXT, **kwargs):
        super().__init__(max_length=max_length or LONGEST_TEXT, **kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return text
        try:
            return text_clean(text, max_length=self.max_length)
        except InputError as error:
            raise _refused(error) from None


class PlainDecimalField(forms.DecimalField):
    """A plain ASCII decimal (``12.5``) that fits ``max_digits`` and ``decimal_places``, within
    ``min_value``..``max_value`` and at most `column_maximum` either side of 0."""

    def __init__(self, *, max_digits: int, decimal_places: int, **kwargs):
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        largest = column_maximum(max_digits=self.max_digits, decimal_places=self.decimal_places)
        minimum = -largest if self.min_value is None else max(-largest, self.min_value)
        maximum = largest if self.max_value is None else min(largest, self.max_value)
        try:
            return decimal_parse(
                value,
                max_digits=self.max_digits,
                decimal_places=self.decimal_places,
                minimum=minimum,
                maximum=maximum,
            )
        except InputError as error:
            raise _refused(error) from None


class PlainIntegerField(forms.IntegerField):
    """A plain ASCII whole number (``12``) of at most 18 digits, within ``min_value``..``max_value``."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return integer_parse(value, minimum=self.min_value, maximum=self.max_value)
        except InputError as error:
            raise _refused(error) from None


class PlainJSONField(forms.JSONField):
    """JSON that any column can store (`json_parse`), at most ``max_length`` characters."""

    def __init__(self, *, max_length: int = LONGEST_TEXT, **kwargs):
        super().__init__(max_length=max_length, **kwargs)

    def to_python(self, value):
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, list | dict | int | float | JSONString):
            return value
        try:
            converted = json_parse(value, max_length=self.max_length)
        except InputError as error:
            raise _refused(error) from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data, initial):
        # Django's own re-reads the text with json.loads, which a deeply nested text overflows.
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return json_parse(data, max_length=self.max_length)
        except InputError:
            return InvalidJSONInput(data)


def plain_formfield(model_field: models.Field, **kwargs) -> forms.Field | None:
    """A model form's field for ``model_field`` that reads its input with the strict grammar, its
    bounds the model's own validators (a `ModelForm` ``Meta.formfield_callback``)."""
    if isinstance(model_field, models.DecimalField):
        return model_field.formfield(form_class=PlainDecimalField, **_bounds(model_field), **kwargs)
    if isinstance(model_field, models.IntegerField) and not model_field.choices:
        return model_field.formfield(form_class=PlainIntegerField, **_bounds(model_field), **kwargs)
    if isinstance(model_field, models.JSONField):
        return model_field.formfield(form_class=PlainJSONField, **kwargs)
    if isinstance(model_field, models.CharField) and not model_field.choices:
        return model_field.formfield(form_class=PlainTextField, **kwargs)
    return model_field.formfield(**kwargs)


def _bounds(model_field: models.Field) -> dict:
    """``min_value`` and ``max_value`` from the field's validators (the tightest of each), so a value
    out of range gets the grammar's message, as in the API, before the model's own check."""
    bounds: dict = {}
    for validator in model_field.validators:
        if isinstance(validator, MinValueValidator | MaxValueValidator):
            limit = validator.limit_value() if callable(validator.limit_value) else validator.limit_value
            if isinstance(validator, MinValueValidator):
                bounds["min_value"] = max(limit, bounds.get("min_value", limit))
            else:
                bounds["max_value"] = min(limit, bounds.get("max_value", limit))
    return bounds
