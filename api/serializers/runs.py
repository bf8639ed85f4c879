"""Stored runs (read only): the plan's figures, needs, trades, orders and the report's address."""

from __future__ import annotations

from datetime import date

from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from api.serializers.base import (
    DateField,
    DecimalField,
    StrictSerializer,
    SymbolDictField,
    password_field,
    strict_field_mapping,
)
from api.serializers.holdings import weight_field
from brokers.models import Order
from brokers.states import OrderState
from optimization.core.names import PLANNING_STRATEGY_NAMES
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
    "approved_at",
    "execute_after",
    "created_at",
    "updated_at",
    "report_url",
]


class PlannedTradeSerializer(serializers.ModelSerializer):
    serializer_field_mapping = strict_field_mapping(serializers.ModelSerializer.serializer_field_mapping)
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
    serializer_field_mapping = strict_field_mapping(serializers.ModelSerializer.serializer_field_mapping)
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
    serializer_field_mapping = strict_field_mapping(serializers.ModelSerializer.serializer_field_mapping)
    report_url = serializers.SerializerMethodField(help_text="The run's HTML report.")

    class Meta:
        model = RebalanceRun
        fields = SUMMARY

    def get_report_url(self, run: RebalanceRun) -> str:
        path = reverse("run_report", args=[run.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class NeedSerializer(serializers.Serializer):
    """One holding's position against its target: weights are fractions of the portfolio's value."""

    symbol = serializers.CharField()
    current_weight = weight_field()
    target_weight = weight_field()
    deviation = weight_field(help_text="current_weight - target_weight.")
    band = weight_field(help_text="How far the weight may drift before the holding is outside its band.")
    outside = serializers.BooleanField()
    urgency = DecimalField(max_digits=None, decimal_places=6, help_text="Deviation in bands; above 1 is outside.")
    action = serializers.CharField()


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class BuysResizedSerializer(serializers.Serializer):
    """The buys re-sized to the cash the sells left (factor 1: nothing changed)."""

    available_usd = DecimalField(max_digits=None, decimal_places=4)
    wanted_usd = DecimalField(max_digits=None, decimal_places=4)
    factor = DecimalField(max_digits=None, decimal_places=6)
    quantities = SymbolDictField(child=DecimalField(max_digits=None, decimal_places=9))
    dropped = serializers.ListField(child=serializers.CharField(), help_text="Symbols whose buy fell to 0.")


class DifferenceSerializer(serializers.Serializer):
    """A symbol whose broker position differs from the plan or its fills (shares)."""

    symbol = serializers.CharField()
    planned = DecimalField(max_digits=None, decimal_places=9)
    filled = DecimalField(max_digits=None, decimal_places=9)
    broker = DecimalField(max_digits=None, decimal_places=9)


class ReconciliationSerializer(serializers.Serializer):
    differences = DifferenceSerializer(many=True)
    not_filled = serializers.ListField(child=serializers.CharField())
    buys_resized = serializers.BooleanField()


class ExecutionSerializer(serializers.Serializer):
    """What each execution step found; a key is present once its step has run."""

    optional_fields = (
        "checks",
        "started_at",
        "stopped_at",
        "finished_at",
        "waiting",
        "unknown_notified",
        "unresolved",
        "buys",
        "reconciliation",
        "sync_error",
    )
    checks = CheckSerializer(many=True, required=False, help_text="The pre-trade checks.")
    started_at = serializers.DateTimeField(required=False)
    stopped_at = serializers.DateTimeField(required=False)
    finished_at = serializers.DateTimeField(required=False)
    waiting = serializers.CharField(required=False, help_text="Why the execution waits (e.g. for fills).")
    unknown_notified = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Client order ids of unknown outcome."
    )
    unresolved = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Orders left open when the run stopped."
    )
    buys = BuysResizedSerializer(required=False)
    reconciliation = ReconciliationSerializer(required=False)
    sync_error = serializers.CharField(required=False)


class PreviewSerializer(serializers.ModelSerializer):
    """A plan computed now and not stored: what the rebalance endpoint would store for the same body."""

    serializer_field_mapping = strict_field_mapping(serializers.ModelSerializer.serializer_field_mapping)
    triggers_fired = serializers.ListField(child=serializers.CharField(), help_text="Every trigger that fired.")
    needs = NeedSerializer(many=True)
    trades = PlannedTradeSerializer(many=True, source="preview_trades")
    targets = SymbolDictField(child=weight_field(), help_text="The target weights the plan used.")
    weights_after = SymbolDictField(child=weight_field(), help_text="The weights once the trades are done.")
    notes = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = RebalanceRun
        fields = [
            "trading_date",
            "status",
            "trigger",
            "triggers_fired",
            "strategy",
            "targets_source",
            "targets",
            "needs",
            "trades",
            "drift_before",
            "drift_after",
            "turnover",
            "total_cost_usd",
            "value_before_usd",
            "value_after_usd",
            "cash_before_usd",
            "cash_flow_usd",
            "cash_after_usd",
            "deposit_needed_usd",
            "weights_after",
            "notes",
            "inputs_fingerprint",
        ]


class RunSerializer(RunSummarySerializer):
    triggers_fired = serializers.ListField(child=serializers.CharField(), help_text="Every trigger that fired.")
    needs = NeedSerializer(many=True)
    trades = PlannedTradeSerializer(many=True)
    orders = OrderSerializer(many=True)
    targets = SymbolDictField(child=weight_field(), help_text="The target weights the plan used.")
    weights_after = SymbolDictField(child=weight_field(), help_text="The weights once the trades are done.")
    notes = serializers.ListField(child=serializers.CharField())
    execution = ExecutionSerializer()

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
            "inputs_fingerprint",
        ]


class PlanRequestSerializer(StrictSerializer):
    """What a plan or a preview is asked for; every field optional."""

    as_of = DateField(
        required=False, help_text="Trading date whose closes the plan uses; default the last completed session."
    )
    cash_flow_usd = DecimalField(
        max_digits=19,
        decimal_places=4,
        required=False,
        help_text="A deposit (positive) or withdrawal (negative) to plan for, in USD.",
    )
    strategy = serializers.ChoiceField(
        choices=PLANNING_STRATEGY_NAMES,
        required=False,
        help_text="The planning strategy for this plan; default the portfolio's rebalancing_strategy.",
    )

    def validate_as_of(self, value):
        today = timezone.localdate()
        if value > today:
            raise serializers.ValidationError("must not be in the future: a plan trades on stored closes")
        if value < EARLIEST_AS_OF:
            raise serializers.ValidationError(f"must not be before {EARLIEST_AS_OF}")
        return value


class RebalanceInputSerializer(PlanRequestSerializer):
    inputs_fingerprint = serializers.RegexField(
        r"^[0-9a-f]{64}$",
        required=False,
        max_length=64,
        help_text="A preview's inputs_fingerprint: the plan is stored only if nothing it is made from changed since "
        "that preview (409 otherwise), so the stored plan is the one previewed.",
    )


class ApproveInputSerializer(StrictSerializer):
    password = password_field("Your password; needed only when the account trades real money.")


class ChangeSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    before = DecimalField(max_digits=None, decimal_places=9, help_text="Shares held before the sync.")
    after = DecimalField(max_digits=None, decimal_places=9, help_text="Shares held after it.")


class SyncSerializer(serializers.Serializer):
    broker_account = serializers.IntegerField(source="broker_account_id")
    changes = ChangeSerializer(many=True, help_text="The symbols whose quantity changed.")
    cash_before_usd = DecimalField(max_digits=20, decimal_places=4)
    cash_after_usd = DecimalField(max_digits=20, decimal_places=4)
    created_at = serializers.DateTimeField()


class SyncDifferenceSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    held_qty = DecimalField(max_digits=None, decimal_places=9, help_text="Shares the portfolio holds now.")
    broker_qty = DecimalField(max_digits=None, decimal_places=9, help_text="Shares the broker account holds.")
    change = serializers.ChoiceField(
        choices=["added", "removed", "changed", "unchanged"], help_text="What a sync does to this holding."
    )


class SyncReviewSerializer(serializers.Serializer):
    broker_account_label = serializers.CharField(source="account_label")
    differences = SyncDifferenceSerializer(many=True)
    cash_before_usd = DecimalField(max_digits=20, decimal_places=4)
    cash_after_usd = DecimalField(max_digits=20, decimal_places=4)
    changes_anything = serializers.BooleanField()
    broker_fingerprint = serializers.CharField(help_text="Send it back to apply exactly this sync.")
    holdings_fingerprint = serializers.CharField(help_text="Send it back to apply exactly this sync.")


class SyncConfirmSerializer(StrictSerializer):
    broker_fingerprint = serializers.RegexField(r"^[0-9a-f]{64}$", max_length=64, help_text="From the review.")
    holdings_fingerprint = serializers.RegexField(r"^[0-9a-f]{64}$", max_length=64, help_text="From the review.")
