"""What a portfolio holds: one row per instrument, quantities in shares as Decimals."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

QUANTITY_PLACES = 9


class Holding(models.Model):
    """A position: ``quantity`` shares of one instrument, with an optional total cost basis (USD)."""

    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.CASCADE, related_name="holdings")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="holdings")
    quantity = models.DecimalField(
        max_digits=24, decimal_places=QUANTITY_PLACES, validators=[MinValueValidator(Decimal(0))]
    )
    cost_basis_usd = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Total paid for the position (for reports; optional).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["portfolio_id", "instrument__symbol"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "instrument"], name="holding_one_per_instrument"),
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="holding_quantity_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity.normalize():f} {self.instrument_id}"


class HoldingsSync(models.Model):
    """One replacement of a portfolio's holdings and cash by its broker's positions, with what changed.

    ``changes``: [{"symbol", "before", "after"}] as decimal strings, only symbols that changed.
    """

    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.CASCADE, related_name="syncs")
    broker_account = models.ForeignKey("brokers.BrokerAccount", on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(
        "portfolios.RebalanceRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="syncs"
    )
    changes = models.JSONField(default=list, blank=True)
    cash_before_usd = models.DecimalField(max_digits=20, decimal_places=4)
    cash_after_usd = models.DecimalField(max_digits=20, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"sync of {self.portfolio_id} at {self.created_at:%Y-%m-%d %H:%M}: {len(self.changes)} change(s)"
