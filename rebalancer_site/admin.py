"""Admin for the operations records: q-cluster heartbeats (what /ready checks)."""

from __future__ import annotations

from django.contrib import admin

from ground.admin_records import RecordAdmin
from rebalancer_site.models import ClusterHeartbeat


@admin.register(ClusterHeartbeat)
class ClusterHeartbeatAdmin(RecordAdmin):
    list_display = ["cluster_name", "last_seen", "host", "pid"]
    search_fields = ["cluster_name", "host"]
