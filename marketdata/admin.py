"""Admin for instruments (editable), price bars and fetch logs (read-only: written by services only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from marketdata.models import FetchLog, Instrument, PriceBar, QualityFinding


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the market-data services: viewable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    """Instruments are shared by every user: here staff say whether fractions of one trade when no
    broker account does (an empty "fractionable" is "not known", planned in whole shares)."""

    list_display = ["symbol", "name", "asset_class", "sector", "region", "esg_score", "fractional_shares"]
    list_filter = ["asset_class", "region", "fractionable", "sector"]
    search_fields = ["symbol", "name", "sector"]

    @admin.display(description="fractional shares", ordering="fractionable")
    def fractional_shares(self, obj: Instrument) -> str:
        return {True: "yes", False: "no: whole shares only", None: "not known"}[obj.fractionable]


@admin.register(PriceBar)
class PriceBarAdmin(ReadOnlyAdmin):
    list_display = ["instrument", "date", "open", "high", "low", "close", "adj_close", "volume", "source", "synthetic"]
    list_filter = ["synthetic", "source", "date", "instrument__asset_class"]
    search_fields = ["instrument__symbol"]
    date_hierarchy = "date"
    list_select_related = ["instrument"]
    show_full_result_count = False  # COUNT(*) over millions of bars on every page is slow


class QualityFindingInline(admin.TabularInline):
    model = QualityFinding
    fields = ["symbol", "date", "kind", "detail"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


@admin.register(FetchLog)
class FetchLogAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "kind",
        "status",
        "store",
        "rows_written",
        "rows_rejected",
        "gaps_found",
        "stale_count",
        "failed_count",
    ]
    list_filter = ["kind", "status", "store"]
    date_hierarchy = "started_at"
    inlines = [QualityFindingInline]

    @admin.display(description="stale")
    def stale_count(self, obj: FetchLog) -> int:
        return len(obj.stale_symbols)

    @admin.display(description="failed")
    def failed_count(self, obj: FetchLog) -> int:
        return len(obj.failed_symbols)


@admin.register(QualityFinding)
class QualityFindingAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "date", "kind", "detail", "fetch_log"]
    list_filter = ["kind"]
    search_fields = ["symbol", "detail"]
    list_select_related = ["fetch_log"]
