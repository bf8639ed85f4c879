"""Admin for optimization results: read-only, written by the optimization services only."""

from __future__ import annotations

from django.contrib import admin

from marketdata.admin import ReadOnlyAdmin
from optimization.models import OptimizationResult, TargetAllocation, TargetWeight


class TargetWeightInline(admin.TabularInline):
    model = TargetWeight
    fields = ["instrument", "weight"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    ordering = ["-weight"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OptimizationResult)
class OptimizationResultAdmin(ReadOnlyAdmin):
    list_display = ["as_of", "strategy", "requested_strategy", "expected_return", "volatility", "sharpe", "created_at"]
    list_filter = ["strategy", "requested_strategy", "as_of"]
    search_fields = ["input_hash"]
    date_hierarchy = "as_of"
    inlines = [TargetWeightInline]


@admin.register(TargetAllocation)
class TargetAllocationAdmin(ReadOnlyAdmin):
    list_display = ["portfolio", "as_of", "result", "reused", "updated_at"]
    list_filter = ["as_of", "reused"]
    search_fields = ["portfolio__name", "portfolio__owner__username"]
    list_select_related = ["portfolio__owner", "result"]


@admin.register(TargetWeight)
class TargetWeightAdmin(ReadOnlyAdmin):
    list_display = ["result", "instrument", "weight"]
    search_fields = ["instrument__symbol", "result__input_hash"]
    list_select_related = ["result", "instrument"]
