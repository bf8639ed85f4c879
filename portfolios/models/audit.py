"""The audit trail and the daily pipeline's own record."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One event of the pipeline (`portfolios.events`): what happened to which portfolio and run."""

    event = models.CharField(max_length=40)
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, null=True, blank=True, related_name="audit_entries"
    )
    run = models.ForeignKey(
        "portfolios.RebalanceRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the owner was told of it in a digest (drift alerts); empty: not yet."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["event", "created_at"], name="audit_event_time_idx"),
            models.Index(
                fields=["user", "created_at"],
                condition=models.Q(event="drift_alert", notified_at__isnull=True),
                name="audit_drift_unsent_idx",
            ),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.event}: {self.message[:80]}"


class PipelineDay(models.Model):
    """The daily run of one trading date: when it started, what it fetched and enqueued."""

    trading_date = models.DateField(unique=True)
    started_at = models.DateTimeField()
    fetch_log = models.ForeignKey(
        "marketdata.FetchLog", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    fetch_error = models.TextField(blank=True)
    portfolios = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-trading_date"]

    def __str__(self) -> str:
        return f"daily run of {self.trading_date}: {self.portfolios} portfolio(s)"
