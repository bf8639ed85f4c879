"""Writes of the API app: tokens (created, revoked, authenticated) and idempotent rebalance requests."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import TOKEN_PREFIX_LENGTH, ApiToken, IdempotencyKey
from portfolios.models import Portfolio
from portfolios.services.rebalancing import (
    InputsChanged,
    PlannedRun,
    RebalanceError,
    RunExecuting,
    rebalance_run_create,
)

# `last_used_at` is written at most this often per token: a busy client does not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token and its key; the key is not stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "give the token a name (what it is for)"})
    if len(name) > 100:
        raise ValidationError({"name": "at most 100 characters"})
    if ApiToken.objects.filter(user=user, name__iexact=name).exists():
        raise ValidationError({"name": f"you already have a token named {name!r}"})
    key = "rb_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_digest=_digest(key), prefix=key[:TOKEN_PREFIX_LENGTH])
    return token, key


def api_token_revoke(*, token: ApiToken) -> None:
    token.delete()


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active user's token with this key, or None."""
    token = ApiToken.objects.select_related("user").filter(key_digest=_digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


@dataclass(frozen=True)
class RebalanceAnswer:
    planned: PlannedRun
    replayed: bool  # the key was seen before: this is the run that request created


def rebalance_request(
    *,
    user,
    portfolio: Portfolio,
    idempotency_key: str | None,
    fingerprint: str,
    as_of: date | None = None,
    cash_flow_usd: Decimal = Decimal(0),
    strategy: str | None = None,
    inputs_fingerprint: str | None = None,
) -> RebalanceAnswer:
    """Plan the portfolio's run as a manual request ("rebalance now"), at most once per idempotency key.

    The key's row is inserted in the same transaction as the run: a concurrent request with the
    same key waits on the unique index (PostgreSQL), then finds the key taken and answers the
    first request's run. A planning failure frees the key (the failed run is kept, as the pages
    keep it) and raises `RebalanceError`.
    """

    def plan() -> PlannedRun:
        return rebalance_run_create(
            portfolio=portfolio,
            as_of=as_of,
            manual=True,
            cash_flow_usd=cash_flow_usd,
            strategy=strategy,
            expected_fingerprint=inputs_fingerprint,
        )

    if not idempotency_key:
        return RebalanceAnswer(plan(), replayed=False)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    user=user, key=idempotency_key, portfolio=portfolio, fingerprint=fingerprint
                )
        except IntegrityError:
            record = IdempotencyKey.objects.select_related("run").get(user=user, key=idempotency_key)
            if record.fingerprint != fingerprint or record.portfolio_id != portfolio.pk:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used for a different request; send a new key for a new request"
                ) from None
            run = record.run
            return RebalanceAnswer(
                PlannedRun(run=run, trades=list(run.trades.select_related("instrument")), stored=True, existing=True),
                replayed=True,
            )
        try:
            planned = plan()
        except (RebalanceError, RunExecuting, InputsChanged) as error:
            record.delete()
            failure = error
        else:
            failure = None
            record.run = planned.run
            record.save(update_fields=["run"])
    if failure is not None:
        raise failure
    return RebalanceAnswer(planned, replayed=False)
