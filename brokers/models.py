"""Broker accounts users trade through.

An account names the adapter (`kind`) and whether it trades real money. Credentials, orders
and their events live beside it once execution is wired in; a portfolio without an account
plans trades but places none.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class BrokerAccount(models.Model):
    """One account at one broker, owned by one user."""

    class Kind(models.TextChoices):
        PAPER = "paper", "Paper (built-in simulator)"
        ALPACA = "alpaca", "Alpaca"
        IB = "ib", "Interactive Brokers"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="broker_accounts")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PAPER)
    label = models.CharField(max_length=100)
    is_live = models.BooleanField(default=False, help_text="Trades real money (paper otherwise).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner_id", "label"]
        constraints = [models.UniqueConstraint(fields=["owner", "label"], name="broker_account_unique_label")]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_kind_display()}{', live' if self.is_live else ''})"
