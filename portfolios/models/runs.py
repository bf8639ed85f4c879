"""Stored rebalancing runs: what was known, what was decided, frozen once written.

A `RebalanceRun` keeps the snapshot (holdings, cash, prices), the targets, the policy and the
plan's numbers exactly as the planner saw and produced them, with its `PlannedTrade` rows.
Reports and execution read these rows; nothing re-plans a stored run.
"""

from __future__ import annotations

from django.db import models

from .holdings import QUANTITY_PLACES

USD = {"max_digits": 20, "decimal_places": 4}
FRACTION = {"max_digits": 14, "decimal_places": 10}


class FrozenError(Exception):
    """A stored plan was about to change."""


class RunQuerySet(models.QuerySet):
    def active(self) -> RunQuerySet:
        """Runs not superseded by a later planning of their date."""
        return self.filter(superseded_at__isnull=True)


class RebalanceRun(models.Model):
    """One planning of one portfolio for one trading date; at most one per portfolio and date is
    active (not superseded by a later planning of the same date)."""

    class ExecutionStep(models.TextChoices):
        """The last step of a run's execution stored, in order (`portfolios.services.execution.flow`)."""

        NOT_STARTED = "", "not started"
        CHECKED = "checked", "pre-trade checks passed"
        SELLS_SENT = "sells_sent", "sells sent"
        SELLS_DONE = "sells_done", "sells done"
        BUYS_SENT = "buys_sent", "buys sent"
        BUYS_DONE = "buys_done", "buys done"
        RECONCILED = "reconciled", "reconciled"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        NO_ACTION = "no_action", "No action needed"
        FAILED = "failed", "Planning failed"
        EXECUTING = "executing", "Executing"
        EXECUTED = "executed", "Executed"
        EXECUTION_FAILED = "execution_failed", "Execution stopped"

    #: Fields that may change after the plan is written (execution progress, not the plan).
    MUTABLE_FIELDS = frozenset(
        {
            "status",
            "error",
            "timings",
            "updated_at",
            "execution_step",
            "execution",
            "lease_owner",
            "lease_until",
            "report_ready_at",
            "execute_after",
            "superseded_at",
            "superseded_by",
            "approved_at",
        }
    )

    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.CASCADE, related_name="runs")
    trading_date = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices)
    error = models.TextField(blank=True)

    trigger = models.CharField(max_length=500, help_text="The trigger that fired, or why nothing was traded.")
    triggers_fired = models.JSONField(default=list, blank=True)
    requested_strategy = models.CharField(max_length=200, blank=True)
    strategy = models.CharField(max_length=200, blank=True)

    snapshot = models.JSONField(default=dict, help_text="Holdings, cash and prices used, as decimal strings.")
    optimization_result = models.ForeignKey(
        "optimization.OptimizationResult", on_delete=models.PROTECT, null=True, blank=True, related_name="runs"
    )
    targets = models.JSONField(default=dict, help_text="Target weights used {symbol: weight}.")
    targets_source = models.CharField(max_length=20, blank=True, help_text="optimizer or manual.")
    policy = models.JSONField(default=dict, help_text="The rebalancing policy used.")
    inputs_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="SHA-256 of what the plan was made from (holdings, cash, settings, broker account, the request): "
        "asking again with the same inputs answers this run; changed inputs plan afresh until it trades.",
    )
    needs = models.JSONField(default=list, blank=True, help_text="Per holding: weight, target, band, urgency.")

    drift_before = models.DecimalField(**FRACTION, null=True, blank=True)
    drift_after = models.DecimalField(**FRACTION, null=True, blank=True)
    turnover = models.DecimalField(**FRACTION, null=True, blank=True)
    total_cost_usd = models.DecimalField(**USD, null=True, blank=True)
    value_before_usd = models.DecimalField(**USD, null=True, blank=True)
    value_after_usd = models.DecimalField(**USD, null=True, blank=True)
    cash_before_usd = models.DecimalField(**USD, null=True, blank=True)
    cash_flow_usd = models.DecimalField(**USD, default=0)
    cash_after_usd = models.DecimalField(**USD, null=True, blank=True)
    deposit_needed_usd = models.DecimalField(**USD, null=True, blank=True)
    weights_after = models.JSONField(default=dict, blank=True)
    notes = models.JSONField(default=list, blank=True)
    risk = models.JSONField(
        default=dict,
        blank=True,
        help_text="Risk figures of the weights before, at target and after the plan (written with the plan; "
        "empty for runs stored before reports had them).",
    )
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per step.")

    # Execution progress (portfolios.services.execution): the last step stored, what each step
    # found (checks, buys re-sized, reconciliation), and the lease of the process executing it.
    # An `ExecutionStep`; not declared as choices, whose blank first step the API schema would publish as an enum.
    execution_step = models.CharField(max_length=20, blank=True)
    execution = models.JSONField(default=dict, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    report_ready_at = models.DateTimeField(
        null=True, blank=True, help_text="When the run reached its state for the day and its report could be read."
    )
    # Read once a minute by the execute-due schedule (`portfolios.services.execution_queue`).
    execute_after = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the execution of this plan is due (the next open after a plan made while the market "
        "was closed, or a retry); queued then, while the run is planned or executing.",
    )

    # The owner's approval, stored when the market was closed: the execution due at the next open
    # (`execute_after`) carries it out as if the owner pressed the button then.
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)

    # A run that stopped is planned again from what the portfolio then holds: the new run supersedes
    # it (`superseded_at` set first, so that the one-active-run constraint lets the new one in).
    superseded_at = models.DateTimeField(null=True, blank=True, editable=False)
    superseded_by = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="supersedes"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-trading_date", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "trading_date"],
                condition=models.Q(superseded_at__isnull=True),
                name="rebalance_run_one_active_per_day",
            ),
        ]
        indexes = [
            # Only runs still to execute: the table keeps every day's runs.
            models.Index(
                fields=["execute_after"],
                name="rebalance_run_execution_due",
                condition=models.Q(status__in=["planned", "executing"], execute_after__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} on {self.trading_date}: {self.get_status_display()}"

    def save(self, *args, **kwargs) -> None:
        # A written plan is frozen: only execution progress may change afterwards.
        update_fields = kwargs.get("update_fields")
        frozen = self.pk is not None and not self._state.adding
        if frozen and (update_fields is None or not set(update_fields) <= self.MUTABLE_FIELDS):
            raise FrozenError(
                f"run {self.pk} is frozen: save(update_fields=...) with only {sorted(self.MUTABLE_FIELDS)}"
            )
        super().save(*args, **kwargs)

    @property
    def deposit_outweighs_portfolio(self) -> str:
        """When the smallest deposit that puts every holding inside its band is more than the
        portfolio is worth (only diluting the holding furthest above its band that far would), a
        sentence saying that selling it is the practical way; else ""."""
        if (
            self.deposit_needed_usd is None
            or not self.value_before_usd
            or self.deposit_needed_usd <= self.value_before_usd
        ):
            return ""
        above = [need for need in self.needs or [] if need.get("outside") and need.get("deviation", 0) > 0]
        if not above:
            return ""
        symbol = max(above, key=lambda need: need["deviation"] - need["band"])["symbol"]
        return (
            f"More than the portfolio is worth: {symbol} is so far above its band that only selling it "
            "brings it back inside at a sensible cost."
        )


class PlannedTrade(models.Model):
    """One order of a plan: sells come before buys (``sequence``)."""

    class Side(models.TextChoices):
        BUY = "buy", "Buy"
        SELL = "sell", "Sell"

    run = models.ForeignKey(RebalanceRun, on_delete=models.CASCADE, related_name="trades")
    sequence = models.PositiveSmallIntegerField()
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(max_digits=24, decimal_places=QUANTITY_PLACES)
    estimated_price = models.DecimalField(max_digits=20, decimal_places=6)
    notional_usd = models.DecimalField(**USD)
    estimated_cost_usd = models.DecimalField(**USD)
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["run_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["run", "sequence"], name="planned_trade_unique_sequence"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="planned_trade_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity.normalize():f} {self.instrument_id}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise FrozenError(f"planned trade {self.pk} is frozen")
        super().save(*args, **kwargs)
