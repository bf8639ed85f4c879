"""Holdings, cash and manual targets: shapes here, the rules in `portfolios.services.holdings` and
`optimization.services.manual_targets_parse` (the same messages as the pages)."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers.base import DecimalField, StrictSerializer
from portfolios.models.holdings import QUANTITY_PLACES


class HoldingSerializer(StrictSerializer):
    symbol = serializers.CharField(max_length=20)
    quantity = DecimalField(max_digits=24, decimal_places=QUANTITY_PLACES, min_value=0, help_text="Shares, at least 0.")
    cost_basis_usd = DecimalField(
        max_digits=20,
        decimal_places=4,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Total paid for the position (USD); optional.",
    )


def _cash_field(**kwargs) -> DecimalField:
    return DecimalField(max_digits=20, decimal_places=4, min_value=0, help_text="Uninvested USD, at least 0.", **kwargs)


class HoldingsSerializer(StrictSerializer):
    """The whole set (GET, PUT) or the symbols to upsert (PATCH)."""

    holdings = HoldingSerializer(many=True, max_length=500)
    cash_usd = _cash_field(required=False)
    create_missing_instruments = serializers.BooleanField(
        default=False,
        write_only=True,
        help_text="Add instruments the project does not know yet instead of refusing their symbols.",
    )


class CashSerializer(StrictSerializer):
    cash_usd = _cash_field()


class TargetsInputSerializer(StrictSerializer):
    weights = serializers.DictField(
        child=DecimalField(max_digits=12, decimal_places=10, min_value=0, max_value=1),
        allow_null=True,
        allow_empty=False,
        help_text='Manual target weights {"SPY": "0.6", "BND": "0.4"} summing to 1; null to go back to the optimizer.',
    )


class ComputedTargetsSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    strategy = serializers.CharField()
    requested_strategy = serializers.CharField()
    weights = serializers.DictField(child=serializers.CharField())
    expected_return = serializers.CharField()
    volatility = serializers.CharField()
    sharpe = serializers.CharField(allow_null=True)
    equity_share = serializers.CharField(allow_null=True)
    metrics = serializers.JSONField()
    fallbacks = serializers.JSONField()


class TargetsSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["manual", "optimizer"], help_text="What the next plan trades towards.")
    manual_weights = serializers.DictField(child=serializers.CharField(), allow_null=True)
    computed = ComputedTargetsSerializer(allow_null=True, help_text="The latest targets the optimizer computed.")
