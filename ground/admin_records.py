"""The admin of records the app writes itself (runs, syncs, audit entries, heartbeats...): staff
look, nobody adds or edits, so the record stays what the code wrote."""

from __future__ import annotations

from django.contrib import admin


class RecordAdmin(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The change page still opens (to view, with inlines); no POST ever saves it.
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)
