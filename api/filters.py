"""List filters and ordering that refuse what their published parameters do not allow (400 naming
the parameter) instead of ignoring it: an unknown ordering, "yes" for a boolean, "" for a choice,
"1_000" for an id, a date not written as YYYY-MM-DD."""

from __future__ import annotations

import re

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters
from rest_framework.exceptions import ValidationError

_ID = re.compile(r"[0-9]{1,18}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StrictFilterSet(django_filters.FilterSet):
    """A filter set whose parameters are checked against their published types first."""


class FilterBackend(DjangoFilterBackend):
    filterset_base = StrictFilterSet

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            errors = _parameter_errors(filterset, request.query_params)
            if errors:
                raise ValidationError(errors)
        return filterset


def _parameter_errors(filterset: django_filters.FilterSet, params) -> dict[str, list[str]]:
    errors = {}
    for name, filter_ in filterset.filters.items():
        if isinstance(filter_, django_filters.DateFromToRangeFilter):
            checks = {f"{name}_after": _DATE, f"{name}_before": _DATE}
        elif isinstance(filter_, django_filters.DateFilter):
            checks = {name: _DATE}
        elif isinstance(filter_, django_filters.BooleanFilter):
            checks = {name: re.compile("true|false")}
        elif isinstance(filter_, django_filters.ModelChoiceFilter | django_filters.NumberFilter):
            checks = {name: _ID}
        elif isinstance(filter_, django_filters.ChoiceFilter):
            checks = {name: re.compile(".+")}
        else:
            continue
        for param, grammar in checks.items():
            value = params.get(param)
            if value is not None and not grammar.fullmatch(value):
                errors[param] = [_expected(grammar, value)]
    return errors


def _expected(grammar: re.Pattern, value: str) -> str:
    wanted = {_DATE: "a date written YYYY-MM-DD", _ID: "an id (a whole number)"}.get(grammar)
    if wanted is None:
        wanted = "true or false" if grammar.pattern == "true|false" else "one of the listed values"
    return f"must be {wanted}, got {value[:40]!r}"


class OrderingFilter(filters.OrderingFilter):
    """``?ordering=field`` or ``?ordering=-field`` (descending), one of the view's ``ordering_fields``."""

    def get_ordering(self, request, queryset, view):
        value = request.query_params.get(self.ordering_param)
        if value is None:
            return self.get_default_ordering(view)
        allowed = _ordering_values(view)
        if value not in allowed:
            raise ValidationError({self.ordering_param: [f"must be one of {', '.join(allowed)}, got {value[:40]!r}"]})
        # The id last: pages stay stable when the chosen field has equal values.
        return [value, "id"] if value.lstrip("-") != "id" else [value]

    def get_schema_operation_parameters(self, view) -> list[dict]:
        default = ", ".join(self.get_default_ordering(view) or [])
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort by this field, descending with a leading '-' (default: {default}).",
                "schema": {"type": "string", "enum": _ordering_values(view)},
            }
        ]


def _ordering_values(view) -> list[str]:
    fields = list(getattr(view, "ordering_fields", []))
    return [*fields, *(f"-{field}" for field in fields)]
