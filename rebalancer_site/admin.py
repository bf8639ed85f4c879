"""Admin for the operations records: q-cluster heartbeats (what /ready checks)."""

from __future__ import annotations

from django.contrib import admin

from rebalancer_site.models import ClusterHeartbeat


@admin.register(ClusterHeartbeat)
class ClusterHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["cluster_name", "last_seen", "host", "pid"]
    search_fields = ["cluster_name", "host"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
