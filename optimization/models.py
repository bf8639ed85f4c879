"""Stored optimization results and the targets they give portfolios.

An `OptimizationResult` is keyed by the hash of everything that went into it (price window,
asset data, settings), so portfolios with identical inputs on the same day share one solve.
A `TargetAllocation` says "portfolio P's targets on date D are result R".
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

WEIGHT_PLACES = 10


class OptimizationResult(models.Model):
    input_hash = models.CharField(max_length=64, unique=True)
    as_of = models.DateField(help_text="Last price date in the estimation window.")
    requested_strategy = models.CharField(max_length=200)
    strategy = models.CharField(max_length=200, help_text="The strategy that produced the weights.")
    fallbacks = models.JSONField(default=list, blank=True, help_text="[{strategy, reason, error}] per failed step.")
    notes = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(
        default=list,
        blank=True,
        help_text="[{subject, setting, weight, asked, message}]: each weight bound that moved an asset or group "
        "away from what the glide path and optimizer chose (weights as fractions).",
    )
    equity_share = models.DecimalField(max_digits=6, decimal_places=5, null=True, blank=True)
    expected_return = models.DecimalField(max_digits=14, decimal_places=10)
    volatility = models.DecimalField(max_digits=14, decimal_places=10)
    sharpe = models.DecimalField(max_digits=16, decimal_places=10, null=True, blank=True)
    metrics = models.JSONField(default=dict, help_text="VaR, CVaR, drawdown, risk contributions, ...")
    settings = models.JSONField(default=dict, help_text="The optimizer settings used (canonical form).")
    analysis = models.JSONField(
        default=dict,
        blank=True,
        help_text="For reports: the universe's mu and covariance, the efficient frontier, the glide path's "
        "sleeves and curve (empty for results stored before reports had them).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "-created_at"]
        indexes = [models.Index(fields=["as_of"])]

    def __str__(self) -> str:
        return f"{self.strategy} as of {self.as_of} ({self.input_hash[:8]})"

    def weights(self) -> dict[str, Decimal]:
        """{symbol: weight}; read once per instance (a stored result's weights never change)."""
        memo = self.__dict__.get("_weights")
        if memo is None:
            memo = dict(self.target_weights.values_list("instrument__symbol", "weight"))
            self.__dict__["_weights"] = memo
        return dict(memo)


class TargetWeight(models.Model):
    result = models.ForeignKey(OptimizationResult, on_delete=models.CASCADE, related_name="target_weights")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    weight = models.DecimalField(max_digits=WEIGHT_PLACES + 1, decimal_places=WEIGHT_PLACES)

    class Meta:
        ordering = ["result_id", "instrument__symbol"]
        constraints = [
            models.UniqueConstraint(fields=["result", "instrument"], name="target_weight_unique_instrument"),
            models.CheckConstraint(
                condition=models.Q(weight__gte=-1, weight__lte=1), name="target_weight_between_minus_one_and_one"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id}: {self.weight}"


class TargetAllocation(models.Model):
    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.CASCADE, related_name="target_allocations")
    as_of = models.DateField()
    result = models.ForeignKey(OptimizationResult, on_delete=models.PROTECT, related_name="allocations")
    reused = models.BooleanField(
        default=False, help_text="True when the result was computed for identical inputs before."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["portfolio_id", "-as_of"]
        constraints = [models.UniqueConstraint(fields=["portfolio", "as_of"], name="target_allocation_one_per_day")]

    def __str__(self) -> str:
        return f"{self.portfolio_id} targets as of {self.as_of}"
