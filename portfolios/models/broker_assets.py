"""What a portfolio's broker account said about the instruments it plans with."""

from __future__ import annotations

from django.db import models


class BrokerAsset(models.Model):
    """One broker account's answer about one instrument: tradable there, and in fractions or not.

    Written by every sync that reads the broker itself (the daily run's, the page's, the API's),
    for the symbols the portfolio holds or targets. Kept per broker account, not on the shared
    instrument: brokers answer differently (Alpaca per asset, IB whole shares only through its API,
    the paper broker from the instrument's own setting) and an account's permissions are its own,
    so one user's broker never decides how another user's plans round. Each plan copies the answer
    it used, with its source and time, into its run's snapshot: the report says why a holding
    traded in whole shares without asking the broker again.

    ``fractionable`` None: the broker did not say (the paper broker for an instrument whose
    fractionability is not known); the instrument's setting then applies.
    """

    broker_account = models.ForeignKey("brokers.BrokerAccount", on_delete=models.CASCADE, related_name="+")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.CASCADE, related_name="+")
    tradable = models.BooleanField()
    fractionable = models.BooleanField(null=True, blank=True)
    checked_at = models.DateTimeField(help_text="When the broker answered.")

    class Meta:
        ordering = ["broker_account_id", "instrument__symbol"]
        constraints = [
            models.UniqueConstraint(fields=["broker_account", "instrument"], name="broker_asset_one_per_instrument")
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} at {self.broker_account_id}: fractionable={self.fractionable}"
