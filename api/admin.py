"""Admin: API tokens (created here with the key shown once, revoked by deleting) and idempotency keys."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from api.models import ApiToken, IdempotencyKey
from api.services import api_token_create


class ApiTokenAddForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at"]
    search_fields = ["name", "user__username", "prefix"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "user"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, key = api_token_create(user=form.cleaned_data["user"], name=form.cleaned_data["name"])
        obj.pk, obj.key_digest, obj.prefix = token.pk, token.key_digest, token.prefix
        obj._state.adding = False
        messages.warning(request, f"The key of {token.name!r} is {key} — copy it now: it is not shown again.")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ["key", "user", "portfolio", "run", "created_at"]
    search_fields = ["key", "user__username"]
    list_select_related = ["user", "portfolio", "run"]
    readonly_fields = ["user", "key", "portfolio", "run", "fingerprint", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
