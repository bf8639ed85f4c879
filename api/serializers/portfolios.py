"""Portfolios and every policy setting. The web form (`PortfolioForm`) is the validator: a value
is checked for its JSON type here, then the form applies the same rules (model ranges,
`Portfolio.clean()`, the universe, the constraints' feasibility) with the same messages."""

from __future__ import annotations

import json
from decimal import Decimal

from django import forms
from rest_framework import serializers

from api.serializers.base import (
    CharField,
    DecimalField,
    FiniteFloatField,
    StrictModelSerializer,
    SymbolDictField,
    SymbolField,
    UserScopedPrimaryKeyRelatedField,
    strict_field_mapping,
)
from brokers.selectors import broker_accounts_for_user
from optimization.core.rebalancing.policy import CALENDARS
from portfolios.forms import PairsField, PortfolioForm, TextListField
from portfolios.models import Portfolio

READ_ONLY = ["id", "cash_usd", "created_at", "updated_at"]


def _symbol_list(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=SymbolField(), required=False, max_length=500, help_text=help_text)


class BlankAsNullChoiceField(serializers.ChoiceField):
    """A choice that may be unset: null in the API, blank in the database and the web form."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value):
        return None if value == "" else super().to_representation(value)


class PortfolioSerializer(StrictModelSerializer):
    serializer_field_mapping = strict_field_mapping(StrictModelSerializer.serializer_field_mapping)
    symbols = _symbol_list('The universe the optimizer allocates over, e.g. ["SPY", "BND"]; holdings join it.')
    calendar = BlankAsNullChoiceField(
        choices=CALENDARS,
        required=False,
        help_text="Also rebalance on the first trading day of each period; null for no calendar.",
    )
    fallbacks = serializers.ListField(
        child=CharField(max_length=200),
        required=False,
        max_length=20,
        help_text="Strategies tried in order when the chosen one fails.",
    )
    group_limits = serializers.ListField(
        child=CharField(max_length=200),
        required=False,
        max_length=100,
        help_text='e.g. ["technology <= 30%", "bonds >= 20%"].',
    )
    excluded_symbols = _symbol_list("Never held.")
    do_not_trade = _symbol_list("Never traded.")
    glide_path_knots = serializers.ListField(
        child=serializers.ListField(child=FiniteFloatField(), min_length=2, max_length=2),
        required=False,
        allow_null=True,
        max_length=50,
        help_text="Custom glide path [[age, equity share], ...]; null for the default curve.",
    )
    weight_overrides = SymbolDictField(
        child=serializers.ListField(child=FiniteFloatField(allow_null=True), min_length=2, max_length=2),
        required=False,
        help_text='Per-asset bounds {"AAPL": [min or null, max or null]}.',
    )
    manual_targets = SymbolDictField(
        child=DecimalField(max_digits=12, decimal_places=10, min_value=0, max_value=1),
        required=False,
        allow_null=True,
        help_text='Fixed target weights {"VTI": "0.6", "BND": "0.4"} summing to 1; null to optimize.',
    )
    broker_account = UserScopedPrimaryKeyRelatedField(
        selector=broker_accounts_for_user,
        required=False,
        allow_null=True,
        help_text="One of your broker accounts (each backs one portfolio); null = plans only.",
    )

    class Meta:
        model = Portfolio
        fields = [*READ_ONLY, *PortfolioForm._meta.fields, "symbols"]
        read_only_fields = READ_ONLY

    def to_representation(self, instance: Portfolio) -> dict:
        data = super().to_representation(instance)
        known = self.context.get("symbols_by_id") or {}
        data["symbols"] = (
            known[instance.pk]
            if instance.pk in known
            else sorted(instance.instruments.values_list("symbol", flat=True))
        )
        return data

    def validate(self, attrs: dict) -> dict:
        user = self.context["request"].user
        blank = PortfolioForm(instance=self.instance, user=user)
        data = {}
        for name, field in blank.fields.items():
            value = attrs[name] if name in attrs else blank.initial.get(name, field.initial)
            data[name] = _as_form_text(field, value)
        self.form = PortfolioForm(data, instance=self.instance, user=user)
        if not self.form.is_valid():
            raise serializers.ValidationError(
                {("non_field_errors" if k == "__all__" else k): v for k, v in self.form.errors.items()}
            )
        return attrs

    def create(self, validated_data: dict) -> Portfolio:
        return self.form.save()

    def update(self, instance: Portfolio, validated_data: dict) -> Portfolio:
        return self.form.save()


def _as_form_text(field: forms.Field, value) -> str:
    """A JSON value as the text the web form would receive for it."""
    if value is None:
        return ""
    if isinstance(field, TextListField):
        return field.joiner.join(str(item) for item in value)
    if isinstance(field, PairsField | forms.JSONField):
        return json.dumps(value, default=float)
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "pk"):
        return str(value.pk)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
