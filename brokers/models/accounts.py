"""Broker accounts users trade through, with their credentials encrypted at rest.

An account names the adapter (`kind`), whether it is meant for real money (`is_live`) and holds
its credentials as one Fernet token (`brokers.crypto`); only the names of the credentials that
are set are stored in clear, so pages can say "set" / "not set" without decrypting anything.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

# Credentials each kind takes; the required ones must be set before the account can trade.
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "paper": (),
    "alpaca": ("api_key", "secret_key"),
    "ib": ("host", "port", "client_id"),
}
REQUIRED_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "paper": (),
    "alpaca": ("api_key", "secret_key"),
    "ib": (),  # IB_HOST / IB_PORT / IB_CLIENT_ID fill what is not set
}
ORDER_PREFIX_LENGTH = 8


def new_order_prefix() -> str:
    """Random letters and digits that make this account's client order ids unique for its life,
    also across reinstalls that restart run ids at 1 against the same brokerage account."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(ORDER_PREFIX_LENGTH))


class BrokerAccount(models.Model):
    """One account at one broker, owned by one user.

    Real money needs three gates: ``ALLOW_LIVE_TRADING`` in the environment, ``is_live`` here,
    and ``live_opt_in_at`` (set when the owner opts in and re-enters the password).
    """

    class Kind(models.TextChoices):
        PAPER = "paper", "Paper (built-in simulator)"
        ALPACA = "alpaca", "Alpaca"
        IB = "ib", "Interactive Brokers"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="broker_accounts")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PAPER)
    label = models.CharField(max_length=100)
    is_live = models.BooleanField(default=False, help_text="Trades real money (paper otherwise).")
    live_opt_in_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the owner opted in to live trading."
    )
    credentials_encrypted = models.TextField(blank=True, editable=False)
    credentials_set = models.JSONField(default=list, blank=True, editable=False)
    order_prefix = models.CharField(
        max_length=ORDER_PREFIX_LENGTH, unique=True, default=new_order_prefix, editable=False
    )
    max_order_notional_usd = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Largest single order for this account (USD); empty = MAX_ORDER_NOTIONAL_USD.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner_id", "label"]
        constraints = [models.UniqueConstraint(fields=["owner", "label"], name="broker_account_unique_label")]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_kind_display()}{', live' if self.is_live else ''})"

    def credential_status(self) -> dict[str, str]:
        """ "set" / "not set" per credential of this kind: all a page, the admin or the API may show."""
        present = set(self.credentials_set)
        return {name: "set" if name in present else "not set" for name in CREDENTIAL_FIELDS.get(self.kind, ())}
