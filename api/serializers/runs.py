"""Stored runs (read only): the plan's figures, needs, trades, orders and the report's address."""

from __future__ import annotations

from datetime import date

from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from api.serializers.base import DecimalField, StrictSerializer, password_field
from brokers.models import Order
from brokers.states import OrderState
from portfolios.models import PlannedTrade, RebalanceRun

EARLIEST_AS_OF = date(1990, 1, 2)
SUMMARY = [
    "id",
    "portfolio",
    "trading_date",
    "status",
    "error",
    "trigger",
    "strategy",
    "targets_source",
    "drift_before",
    "drift_after",
    "turnover",
    "total_cost_usd",
    "value_before_usd",
    "cash_flow_usd",
    "deposit_needed_usd",
    "execution_step",
    "execute_after",
    "created_at",
    "updated_at",
    "report_url",
]


class PlannedTradeSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol")

    class Meta:
        model = PlannedTrade
        fields = [
            "sequence",
            "symbol",
            "side",
            "quantity",
            "estimated_price",
            "notional_usd",
            "estimated_cost_usd",
            "reason",
        ]


class OrderSerializer(serializers.ModelSerializer):
    # The states as stored (`Order.State`'s choices carry the labels as values).
    state = serializers.ChoiceField(choices=[state.value for state in OrderState])

    class Meta:
        model = Order
        fields = [
            "id",
            "client_order_id",
            "symbol",
            "side",
            "quantity",
            "notional_usd",
            "order_type",
            "limit_price_usd",
            "state",
            "filled_quantity",
            "filled_avg_price_usd",
            "broker_status",
            "reject_reason",
            "submitted_at",
        ]


class RunSummarySerializer(serializers.ModelSerializer):
    report_url = serializers.SerializerMethodField()

    class Meta:
        model = RebalanceRun
        fields = SUMMARY

    def get_report_url(self, run: RebalanceRun) -> str:
        path = reverse("run_report", args=[run.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class NeedSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    current_weight = serializers.FloatField()
    target_weight = serializers.FloatField()
    deviation = serializers.FloatField()
    band = serializers.FloatField()
    outside = serializers.BooleanField()
    urgency = serializers.FloatField()
    action = serializers.CharField()


class RunSerializer(RunSummarySerializer):
    needs = NeedSerializer(many=True)
    trades = PlannedTradeSerializer(many=True)
    orders = OrderSerializer(many=True)
    targets = serializers.DictField(child=serializers.CharField())

    class Meta:
        model = RebalanceRun
        fields = [
            *SUMMARY,
            "triggers_fired",
            "targets",
            "needs",
            "trades",
            "orders",
            "value_after_usd",
            "cash_before_usd",
            "cash_after_usd",
            "weights_after",
            "notes",
            "execution",
        ]


class RebalanceInputSerializer(StrictSerializer):
    as_of = serializers.DateField(
        required=False, help_text="Trading date whose closes the plan uses; default the last completed session."
    )
    cash_flow_usd = DecimalField(
        max_digits=20,
        decimal_places=4,
        required=False,
        min_value=-(10**15),
        max_value=10**15,
        help_text="A deposit (positive) or withdrawal (negative) to plan for, in USD.",
    )

    def validate_as_of(self, value):
        today = timezone.localdate()
        if value > today:
            raise serializers.ValidationError("must not be in the future: a plan trades on stored closes")
        if value < EARLIEST_AS_OF:
            raise serializers.ValidationError(f"must not be before {EARLIEST_AS_OF}")
        return value


class ApproveInputSerializer(StrictSerializer):
    password = password_field("Your password; needed only when the account trades real money.")


class SyncSerializer(serializers.Serializer):
    broker_account = serializers.IntegerField(source="broker_account_id")
    changes = serializers.JSONField(help_text='[{"symbol", "before", "after"}] of the symbols that changed.')
    cash_before_usd = serializers.DecimalField(max_digits=20, decimal_places=4)
    cash_after_usd = serializers.DecimalField(max_digits=20, decimal_places=4)
    created_at = serializers.DateTimeField()
