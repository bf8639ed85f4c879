"""State of the built-in paper broker: its own cash, positions and orders per broker account.

The paper adapter (`brokers.adapters.paper`) is the only writer; it behaves like a cash account
at a real broker (no margin, no shorts).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from .orders import PRICE, QUANTITY, USD


class PaperAccount(models.Model):
    """The simulated brokerage account behind a paper `BrokerAccount`.

    ``session_mode``: "exchange" follows NYSE hours; "always_open" treats every moment as a
    trading session (a simulation for demos and tests, labelled as such).
    """

    class SessionMode(models.TextChoices):
        EXCHANGE = "exchange", "NYSE hours"
        ALWAYS_OPEN = "always_open", "Always open (simulation)"

    account = models.OneToOneField("brokers.BrokerAccount", on_delete=models.CASCADE, related_name="paper")
    cash_usd = models.DecimalField(**USD, default=Decimal(0))
    session_mode = models.CharField(max_length=12, choices=SessionMode.choices, default=SessionMode.EXCHANGE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(cash_usd__gte=0), name="paper_cash_not_negative")]

    def __str__(self) -> str:
        return f"paper account of {self.account_id}: ${self.cash_usd}"


class PaperPosition(models.Model):
    """Shares held in a paper account (> 0; a position sold out is deleted)."""

    paper_account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=20)
    quantity = models.DecimalField(**QUANTITY)
    avg_entry_price_usd = models.DecimalField(**PRICE)

    class Meta:
        ordering = ["paper_account_id", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["paper_account", "symbol"], name="paper_position_unique_symbol"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="paper_position_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity.normalize():f} {self.symbol}"


class PaperOrder(models.Model):
    """An order at the paper broker; ``state`` uses the project's broker states."""

    paper_account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="orders")
    broker_order_id = models.CharField(max_length=40, unique=True)
    client_order_id = models.CharField(max_length=48)
    symbol = models.CharField(max_length=20)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    notional_usd = models.DecimalField(**USD, null=True, blank=True)
    order_type = models.CharField(max_length=10)
    limit_price_usd = models.DecimalField(**PRICE, null=True, blank=True)
    time_in_force = models.CharField(max_length=4)
    state = models.CharField(max_length=20)
    session_date = models.DateField(help_text="The trading session the order is for (day orders expire after it).")
    filled_quantity = models.DecimalField(**QUANTITY, default=Decimal(0))
    filled_avg_price_usd = models.DecimalField(**PRICE, null=True, blank=True)
    commission_usd = models.DecimalField(**USD, default=Decimal(0))
    reject_reason = models.CharField(max_length=300, blank=True)
    submitted_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["paper_account_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["paper_account", "client_order_id"], name="paper_order_client_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.symbol} [{self.state}] {self.client_order_id}"
