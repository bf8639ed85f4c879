"""The kill switch: a global or per-user halt on sending orders."""

from __future__ import annotations

from django.conf import settings
from django.db import models

GLOBAL_SCOPE = "global"


class KillSwitch(models.Model):
    """While ``active``, no order is sent for its scope: every user (``scope`` "global") or one
    user ("user:<id>"). Read before each submit; setting it also cancels open orders, and every
    execution running or waiting at that moment ends stopped (`brokers.services.controls`)."""

    scope = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="kill_switches"
    )
    active = models.BooleanField(default=False)
    # An execution that was running while the switch was on ends stopped even if the switch is off
    # again when it looks: its open orders were canceled under it.
    activated_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="When it was last turned on.")
    reason = models.CharField(max_length=300, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope"]
        verbose_name_plural = "kill switches"

    def __str__(self) -> str:
        return f"{self.scope}: {'ACTIVE' if self.active else 'off'}"

    @staticmethod
    def scope_for(user_id: int | None) -> str:
        return GLOBAL_SCOPE if user_id is None else f"user:{user_id}"
