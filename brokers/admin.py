"""Admin for broker accounts."""

from __future__ import annotations

from django.contrib import admin

from brokers.models import BrokerAccount


@admin.register(BrokerAccount)
class BrokerAccountAdmin(admin.ModelAdmin):
    list_display = ["label", "owner", "kind", "is_live", "updated_at"]
    list_filter = ["kind", "is_live"]
    search_fields = ["label", "owner__username"]
    autocomplete_fields = ["owner"]
    list_select_related = ["owner"]
