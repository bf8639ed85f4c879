"""Admin for broker accounts (write-only credentials), orders and their events (read-only),
the kill switch (actions that also cancel open orders) and paper accounts."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from brokers.models import (
    CREDENTIAL_FIELDS,
    BrokerAccount,
    KillSwitch,
    Order,
    OrderEvent,
    PaperAccount,
    PaperOrder,
    PaperPosition,
)
from brokers.services.accounts import broker_account_set_credentials
from brokers.services.controls import kill_switch_set
from ground.admin_records import RecordAdmin

_CREDENTIAL_NAMES = sorted({name for names in CREDENTIAL_FIELDS.values() for name in names})


class BrokerAccountForm(forms.ModelForm):
    """Credentials are entered, never shown: blank keeps what is stored."""

    class Meta:
        model = BrokerAccount
        fields = ["owner", "kind", "label", "is_live", "max_order_notional_usd"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["max_order_notional_usd"].help_text = (
            "Largest single order for this account (USD); empty = the server's limit, "
            f"${settings.MAX_ORDER_NOTIONAL_USD:,.2f}."
        )
        status = self.instance.credential_status() if self.instance.pk else {}
        for name in _CREDENTIAL_NAMES:
            self.fields[name] = forms.CharField(
                required=False,
                widget=forms.PasswordInput(render_value=False),
                help_text=f"{status.get(name, 'not set')}; leave blank to keep",
                label=name.replace("_", " "),
            )

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind") or self.instance.kind
        for name in _CREDENTIAL_NAMES:
            if cleaned.get(name) and name not in CREDENTIAL_FIELDS.get(kind, ()):
                self.add_error(name, f"not a credential of a {kind} account")
        return cleaned


@admin.register(BrokerAccount)
class BrokerAccountAdmin(admin.ModelAdmin):
    form = BrokerAccountForm
    list_display = ["label", "owner", "kind", "is_live", "live_opt_in_at", "credentials", "updated_at"]
    list_filter = ["kind", "is_live"]
    search_fields = ["label", "owner__username"]
    autocomplete_fields = ["owner"]
    list_select_related = ["owner"]
    readonly_fields = ["order_prefix", "live_opt_in_at", "credentials"]

    @admin.display(description="credentials")
    def credentials(self, obj: BrokerAccount) -> str:
        return ", ".join(f"{name}: {state}" for name, state in obj.credential_status().items()) or "none needed"

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if obj.kind == BrokerAccount.Kind.PAPER and not PaperAccount.objects.filter(account=obj).exists():
            PaperAccount.objects.create(account=obj)
        entered = {name: form.cleaned_data.get(name) for name in CREDENTIAL_FIELDS.get(obj.kind, ())}
        try:
            broker_account_set_credentials(account=obj, credentials=entered)
        except ValidationError as error:
            self.message_user(request, f"credentials not saved: {'; '.join(error.messages)}", messages.ERROR)


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "state_before", "state_after", "message", "payload"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(RecordAdmin):
    """Order records are never deleted either: they are the audit trail of money sent."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "client_order_id",
        "account",
        "run",
        "side",
        "symbol",
        "quantity",
        "filled_quantity",
        "state",
        "updated_at",
    ]
    list_filter = ["state", "side", "account__kind"]
    search_fields = ["client_order_id", "broker_order_id", "symbol", "account__owner__username"]
    list_select_related = ["account"]
    inlines = [OrderEventInline]


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdmin):
    list_display = ["order", "kind", "state_before", "state_after", "message", "created_at"]
    list_filter = ["kind"]
    search_fields = ["order__client_order_id", "message"]
    list_select_related = ["order"]


@admin.register(KillSwitch)
class KillSwitchAdmin(admin.ModelAdmin):
    list_display = ["scope", "user", "active", "reason", "changed_by", "changed_at"]
    list_filter = ["active"]
    readonly_fields = ["scope", "user", "active", "changed_by", "changed_at"]
    fields = ["scope", "user", "active", "reason", "changed_by", "changed_at"]
    actions = ["turn_on", "turn_off"]
    search_fields = ["scope", "user__username"]

    def has_add_permission(self, request) -> bool:
        return False  # created by the actions and `manage.py kill_switch`

    def changelist_view(self, request, extra_context=None):
        # The global switch always has a row, so "turn on" is one click away.
        KillSwitch.objects.get_or_create(scope=KillSwitch.scope_for(None))
        return super().changelist_view(request, extra_context)

    def _set(self, request, queryset, active: bool) -> None:
        for switch in queryset:
            reason = switch.reason or f"set by {request.user.get_username()} in the admin"
            _, problems = kill_switch_set(user=switch.user, active=active, reason=reason, changed_by=request.user)
            for line in problems:
                self.message_user(request, f"could not cancel {line}", messages.ERROR)
        state = "on: open orders were canceled" if active else "off"
        self.message_user(request, f"{queryset.count()} kill switch(es) {state}")

    @admin.action(description="Turn on (halt orders, cancel open orders)")
    def turn_on(self, request, queryset) -> None:
        self._set(request, queryset, True)

    @admin.action(description="Turn off (allow orders again)")
    def turn_off(self, request, queryset) -> None:
        self._set(request, queryset, False)


class PaperPositionInline(admin.TabularInline):
    model = PaperPosition
    extra = 0
    fields = ["symbol", "quantity", "avg_entry_price_usd"]


@admin.register(PaperAccount)
class PaperAccountAdmin(admin.ModelAdmin):
    list_display = ["account", "cash_usd", "session_mode", "updated_at"]
    list_filter = ["session_mode"]
    readonly_fields = ["account"]
    inlines = [PaperPositionInline]


@admin.register(PaperPosition)
class PaperPositionAdmin(admin.ModelAdmin):
    list_display = ["paper_account", "symbol", "quantity", "avg_entry_price_usd"]
    search_fields = ["symbol", "paper_account__account__label"]
    list_select_related = ["paper_account__account"]


@admin.register(PaperOrder)
class PaperOrderAdmin(ReadOnlyAdmin):
    list_display = ["client_order_id", "paper_account", "side", "symbol", "quantity", "filled_quantity", "state"]
    list_filter = ["state", "side"]
    search_fields = ["client_order_id", "symbol"]
    list_select_related = ["paper_account__account"]
