"""Admin for portfolios: staff configure every policy setting here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from brokers.models import Order
from ground.admin_records import RecordAdmin
from portfolios.models import (
    AuditEntry,
    BrokerAsset,
    Holding,
    HoldingsSync,
    PipelineDay,
    PlannedTrade,
    Portfolio,
    PortfolioInstrument,
    RebalanceRun,
)
from portfolios.models.policy_fields import (
    BAND_FIELDS,
    CONSTRAINT_FIELDS,
    ESTIMATOR_FIELDS,
    EXECUTION_FIELDS,
    GLIDE_PATH_FIELDS,
    PLANNING_FIELDS,
)
from portfolios.services.execution import ExecutionBusy, ExecutionRefused, execute_run
from portfolios.services.rebalancing import RebalanceError, RunExecuting, rebalance_run_create
from portfolios.services.sync import SyncError, sync_from_broker
from two_factor.services import real_money_refusal


class HoldingInline(admin.TabularInline):
    model = Holding
    extra = 0
    autocomplete_fields = ["instrument"]
    fields = ["instrument", "quantity", "cost_basis_usd", "updated_at"]
    readonly_fields = ["updated_at"]


class UniverseInline(admin.TabularInline):
    """The portfolio's universe; an instrument added here is the owner's choice."""

    model = PortfolioInstrument
    verbose_name = "universe instrument"
    extra = 0
    autocomplete_fields = ["instrument"]
    fields = ["instrument", "joined_with_holding"]
    readonly_fields = ["joined_with_holding"]


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "owner",
        "mode",
        "strategy",
        "rebalancing_strategy",
        "band_mode",
        "cash_usd",
        "age",
        "updated_at",
    ]
    list_filter = ["mode", "strategy", "rebalancing_strategy", "band_mode", "use_glide_path"]
    search_fields = ["name", "owner__username"]
    autocomplete_fields = ["owner", "broker_account"]
    list_select_related = ["owner"]
    inlines = [UniverseInline, HoldingInline]
    actions = ["run_now", "resync"]
    fieldsets = [
        (None, {"fields": ["owner", "name", "base_currency", "cash_usd", "manual_targets"]}),
        ("Profile and glide path", {"fields": GLIDE_PATH_FIELDS}),
        ("Optimization", {"fields": ESTIMATOR_FIELDS}),
        ("Constraints", {"fields": CONSTRAINT_FIELDS}),
        ("Bands and triggers", {"fields": BAND_FIELDS}),
        ("Trade planning and costs", {"fields": PLANNING_FIELDS}),
        ("Execution", {"fields": EXECUTION_FIELDS}),
    ]

    @admin.action(description="Run now: plan today's rebalance (a manual request)")
    def run_now(self, request, queryset) -> None:
        for portfolio in queryset:
            try:
                planned = rebalance_run_create(portfolio=portfolio, manual=True)
            except (RebalanceError, RunExecuting) as error:
                self.message_user(request, f"{portfolio.name}: {error}", messages.ERROR)
                continue
            what = "already planned" if planned.existing else "planned"
            if planned.superseded is not None:
                what = f"planned again, superseding run {planned.superseded.pk}"
            self.message_user(request, f"{portfolio.name}: run {planned.run.pk} {what} ({planned.run.trigger})")

    @admin.action(description="Resync holdings and cash from the broker")
    def resync(self, request, queryset) -> None:
        for portfolio in queryset:
            try:
                sync = sync_from_broker(portfolio=portfolio)
            except (SyncError, ValidationError) as error:
                message = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
                self.message_user(request, f"{portfolio.name}: {message}", messages.ERROR)
                continue
            self.message_user(request, f"{portfolio.name}: {len(sync.changes)} change(s) from the broker")


@admin.register(PortfolioInstrument)
class PortfolioInstrumentAdmin(admin.ModelAdmin):
    list_display = ["portfolio", "instrument", "joined_with_holding"]
    list_filter = ["joined_with_holding"]
    search_fields = ["portfolio__name", "instrument__symbol"]
    autocomplete_fields = ["portfolio", "instrument"]
    list_select_related = ["portfolio", "instrument"]


class PlannedTradeInline(admin.TabularInline):
    model = PlannedTrade
    extra = 0
    can_delete = False
    fields = [
        "sequence",
        "side",
        "instrument",
        "quantity",
        "estimated_price",
        "notional_usd",
        "estimated_cost_usd",
        "reason",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OrderInline(admin.TabularInline):
    model = Order
    extra = 0
    can_delete = False
    fields = ["client_order_id", "side", "symbol", "quantity", "filled_quantity", "filled_avg_price_usd", "state"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HoldingsSync)
class HoldingsSyncAdmin(RecordAdmin):
    list_display = ["portfolio", "broker_account", "run", "created_at", "cash_before_usd", "cash_after_usd"]
    search_fields = ["portfolio__name", "portfolio__owner__username"]
    list_select_related = ["portfolio", "broker_account", "run"]


@admin.register(BrokerAsset)
class BrokerAssetAdmin(RecordAdmin):
    """What each broker account answered at its last sync: whether its plans trade fractions."""

    list_display = ["broker_account", "instrument", "tradable", "fractionable", "checked_at"]
    list_filter = ["fractionable", "tradable", "broker_account__kind"]
    search_fields = ["instrument__symbol", "broker_account__label", "broker_account__owner__username"]
    list_select_related = ["broker_account", "instrument"]


@admin.register(RebalanceRun)
class RebalanceRunAdmin(RecordAdmin):
    """Runs are records: read-only, trades and orders inline."""

    list_display = [
        "portfolio",
        "trading_date",
        "status",
        "superseded_by_run",
        "strategy",
        "trigger",
        "drift_before",
        "drift_after",
    ]
    list_filter = ["status", "strategy", "trading_date", ("superseded_at", admin.EmptyFieldListFilter)]
    search_fields = ["portfolio__name", "portfolio__owner__username"]
    list_select_related = ["portfolio", "portfolio__owner"]
    date_hierarchy = "trading_date"
    inlines = [PlannedTradeInline, OrderInline]
    actions = ["execute_approved"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        # The change page names the successor as the list does.
        return [
            "superseded_by_run" if name == "superseded_by" else name
            for name in super().get_readonly_fields(request, obj)
        ]

    @admin.display(description="superseded by", ordering="superseded_by_id")
    def superseded_by_run(self, run: RebalanceRun) -> str:
        """The run planned again in its place, by its number: its name ("portfolio on date: status")
        would read like the superseded run's own."""
        if run.superseded_by_id is None:
            return self.get_empty_value_display()  # None would read "None" on the change page
        url = reverse("admin:portfolios_rebalancerun_change", args=[run.superseded_by_id])
        return format_html('<a href="{}">run {}</a>', url, run.superseded_by_id)

    @admin.action(description="Approve and execute at the broker (pre-trade checks apply)")
    def execute_approved(self, request, queryset) -> None:
        for run in queryset:
            account = run.portfolio.broker_account
            if account is not None and account.is_live and (refusal := real_money_refusal(request.user)):
                self.message_user(request, f"run {run.pk}: not executed: {refusal}", messages.ERROR)
                continue
            try:
                result = execute_run(run=run, submit=True, approved=True)
            except (ExecutionRefused, ExecutionBusy) as error:
                self.message_user(request, f"run {run.pk}: {error}", messages.ERROR)
                continue
            level = messages.ERROR if result.run.status == RebalanceRun.Status.EXECUTION_FAILED else messages.INFO
            detail = result.run.error or result.message
            self.message_user(request, f"run {run.pk}: {result.run.get_status_display()} ({detail})", level)


@admin.register(AuditEntry)
class AuditEntryAdmin(RecordAdmin):
    list_display = ["created_at", "event", "portfolio", "run", "user", "message"]
    list_filter = ["event"]
    search_fields = ["message", "portfolio__name", "user__username"]
    list_select_related = ["portfolio", "run", "user"]
    date_hierarchy = "created_at"


@admin.register(PipelineDay)
class PipelineDayAdmin(RecordAdmin):
    list_display = ["trading_date", "started_at", "portfolios", "fetch_error"]
    date_hierarchy = "trading_date"


@admin.register(Holding)
class HoldingAdmin(admin.ModelAdmin):
    list_display = ["portfolio", "instrument", "quantity", "cost_basis_usd", "updated_at"]
    search_fields = ["portfolio__name", "portfolio__owner__username", "instrument__symbol"]
    list_select_related = ["portfolio", "instrument"]
    autocomplete_fields = ["instrument"]


@admin.register(PlannedTrade)
class PlannedTradeAdmin(RecordAdmin):
    list_display = ["run", "sequence", "side", "instrument", "quantity", "notional_usd", "reason"]
    list_filter = ["side"]
    search_fields = ["instrument__symbol", "run__portfolio__name"]
    list_select_related = ["run", "instrument"]
