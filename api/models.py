"""API tokens (stored as SHA-256 digests) and the idempotency keys of rebalance requests."""

from __future__ import annotations

from django.conf import settings
from django.db import models

TOKEN_PREFIX_LENGTH = 8


class ApiToken(models.Model):
    """A named bearer token of one user. Only the SHA-256 digest of the key is stored; the key
    itself is shown once, when the token is created. A user may hold several tokens."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the tool that uses it.")
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=TOKEN_PREFIX_LENGTH, editable=False, help_text="The key's first characters, to tell tokens apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user_id", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="api_token_unique_name_per_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.user})"


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` a user sent with a rebalance request, and the run it produced.

    ``fingerprint`` is the SHA-256 of the request (portfolio and body): the same key with a
    different request is refused instead of answered with a run the caller did not ask for.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(
        "portfolios.RebalanceRun", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.key} -> run {self.run_id}"
