"""Holdings, cash and manual targets: shapes here, the rules in `portfolios.services.holdings` and
`optimization.services.manual_targets_parse` (the same messages as the pages)."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers.base import BooleanField, DecimalField, StrictSerializer, SymbolDictField, SymbolField
from optimization.models import WEIGHT_PLACES
from portfolios.models.holdings import QUANTITY_PLACES

#: Fractions of portfolio value as the optimizer stores them.
WEIGHT_DIGITS = WEIGHT_PLACES + 2


def weight_field(**kwargs) -> DecimalField:
    """A weight, a fraction of the portfolio's value answered with 10 places."""
    return DecimalField(max_digits=None, decimal_places=WEIGHT_PLACES, **kwargs)


def metric_field(**kwargs) -> DecimalField:
    """A figure of the optimizer (a fraction, a ratio), null when it could not be computed."""
    return DecimalField(max_digits=None, decimal_places=WEIGHT_PLACES, allow_null=True, **kwargs)


class HoldingSerializer(StrictSerializer):
    symbol = SymbolField()
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
    create_missing_instruments = BooleanField(
        default=False,
        write_only=True,
        help_text="Add instruments the project does not know yet instead of refusing their symbols.",
    )


class CashSerializer(StrictSerializer):
    cash_usd = _cash_field()


class TargetsInputSerializer(StrictSerializer):
    weights = SymbolDictField(
        child=DecimalField(max_digits=WEIGHT_DIGITS, decimal_places=WEIGHT_PLACES, min_value=0, max_value=1),
        allow_null=True,
        allow_empty=False,
        help_text='Manual target weights {"SPY": "0.6", "BND": "0.4"} summing to 1; null to go back to the optimizer.',
    )


class FallbackSerializer(serializers.Serializer):
    strategy = serializers.CharField(help_text="The strategy that failed.")
    reason = serializers.CharField(help_text="Why it failed, in words.")
    error = serializers.CharField(help_text="The failure's class name, e.g. NoAssetBeatsRiskFree.")


class MetricsSerializer(serializers.Serializer):
    """The target portfolio's figures: fractions, not percent; null where history was too short."""

    expected_return = metric_field(help_text="Annualised expected return.")
    volatility = metric_field(help_text="Annualised volatility.")
    sharpe = metric_field()
    var_95_1d = metric_field(help_text="Historical one-day Value at Risk at 95 %, as a positive loss fraction.")
    cvar_95_1d = metric_field(help_text="Historical one-day expected shortfall at 95 %.")
    var_95_annual = metric_field()
    cvar_95_annual = metric_field()
    max_drawdown = metric_field()
    diversification_ratio = metric_field()
    effective_assets = metric_field()
    risk_contributions = SymbolDictField(child=metric_field(), help_text="Each asset's share of the variance.")
    observations = serializers.IntegerField(help_text="Daily returns used for VaR, CVaR and drawdown.")


class ComputedTargetsSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    strategy = serializers.CharField()
    requested_strategy = serializers.CharField()
    weights = SymbolDictField(child=weight_field())
    expected_return = weight_field()
    volatility = weight_field()
    sharpe = metric_field()
    equity_share = metric_field(help_text="The glide path's equity share; null without an age.")
    metrics = MetricsSerializer()
    fallbacks = FallbackSerializer(many=True, help_text="Strategies that failed before the one used, in order.")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="How the weight bounds moved the targets away from what the glide path and optimizer chose.",
    )


class TargetsSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["manual", "optimizer"], help_text="What the next plan trades towards.")
    manual_weights = SymbolDictField(child=weight_field(), allow_null=True)
    computed = ComputedTargetsSerializer(allow_null=True, help_text="The latest targets the optimizer computed.")
