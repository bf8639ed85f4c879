"""Orders sent (or about to be sent) to a broker, and the append-only log of every request and
answer about them.

An `Order` row is written before any broker call, with a deterministic client order id, so a
crash at any point leaves a row that says what may have happened; `OrderEvent` rows are never
changed or deleted.
"""

from __future__ import annotations

from django.db import models

from brokers.base import CLIENT_ORDER_ID_MAX_LENGTH, OrderState

QUANTITY = {"max_digits": 24, "decimal_places": 9}
USD = {"max_digits": 20, "decimal_places": 4}
PRICE = {"max_digits": 20, "decimal_places": 6}


class AppendOnlyError(Exception):
    """An order event was about to be changed or deleted."""


class Order(models.Model):
    """One intended order of a rebalance run, at one broker account.

    State only moves forward (`brokers.states`); ``filled_quantity`` never decreases. Rows are
    changed through `brokers.services.orders` only, each write conditional on ``version``.
    """

    State = models.TextChoices("State", [(s.value, s.value.replace("_", " ").capitalize()) for s in OrderState])

    class Side(models.TextChoices):
        BUY = "buy", "Buy"
        SELL = "sell", "Sell"

    class Type(models.TextChoices):
        MARKET = "market", "Market"
        LIMIT = "limit", "Limit"

    account = models.ForeignKey("brokers.BrokerAccount", on_delete=models.PROTECT, related_name="orders")
    run = models.ForeignKey("portfolios.RebalanceRun", on_delete=models.PROTECT, related_name="orders")
    planned_trade = models.OneToOneField(
        "portfolios.PlannedTrade", on_delete=models.PROTECT, related_name="order", null=True, blank=True
    )
    client_order_id = models.CharField(max_length=CLIENT_ORDER_ID_MAX_LENGTH)
    symbol = models.CharField(max_length=20)
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    notional_usd = models.DecimalField(**USD, null=True, blank=True)
    order_type = models.CharField(max_length=10, choices=Type.choices, default=Type.MARKET)
    limit_price_usd = models.DecimalField(**PRICE, null=True, blank=True)
    time_in_force = models.CharField(max_length=4, default="day")
    estimated_price_usd = models.DecimalField(**PRICE)

    state = models.CharField(max_length=20, choices=State.choices, default=OrderState.PLANNED.value)
    filled_quantity = models.DecimalField(**QUANTITY, default=0)
    filled_avg_price_usd = models.DecimalField(**PRICE, null=True, blank=True)
    broker_order_id = models.CharField(max_length=100, blank=True)
    broker_status = models.CharField(max_length=40, blank=True)
    reject_reason = models.TextField(blank=True)
    submit_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Sends whose outcome was not known at once (a broker's refusal before taking it is none)."
    )
    submission_id = models.CharField(
        max_length=64, blank=True, help_text="The id the broker refuses twice, reserved before the first send."
    )
    # Every write of the row increments it, and is made only if the row still has the version the
    # writer read: a decision taken on a stale copy is never stored.
    version = models.PositiveIntegerField(default=0, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "client_order_id"], name="order_client_id_unique_per_account"),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0, notional_usd__isnull=True)
                | models.Q(quantity__isnull=True, notional_usd__gt=0),
                name="order_quantity_or_notional",
            ),
            models.CheckConstraint(condition=models.Q(filled_quantity__gte=0), name="order_filled_not_negative"),
        ]
        indexes = [models.Index(fields=["state"], name="order_state_idx")]

    def __str__(self) -> str:
        amount = f"{self.quantity.normalize():f}" if self.quantity is not None else f"${self.notional_usd}"
        return f"{self.side} {amount} {self.symbol} [{self.state}] {self.client_order_id}"

    @property
    def terminal(self) -> bool:
        return OrderState(self.state).terminal


class OrderEvent(models.Model):
    """One broker request or answer about an order, or a state change; never changed or deleted.

    ``payload`` holds what was sent or received with secrets redacted.
    """

    class Kind(models.TextChoices):
        REQUEST = "request", "Request"
        RESPONSE = "response", "Response"
        ERROR = "error", "Error"
        LOOKUP = "lookup", "Lookup"
        CANCEL = "cancel", "Cancel"
        STATE = "state", "State change"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    state_before = models.CharField(max_length=20, blank=True)
    state_after = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order_id", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.state_before}->{self.state_after} {self.message[:60]}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError(f"order event {self.pk} is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"order event {self.pk} is append-only")
