"""Drift alerts reach their owner as a digest: on a day when many portfolios drift, one e-mail per
owner lists them all, instead of one e-mail per portfolio.

The daily run records each alert (`AuditEntry`, event "drift_alert") as it plans; the digest
schedule sends an owner's pending alerts once none of theirs has come in for
DRIFT_DIGEST_QUIET_MINUTES, which a day's run of their portfolios takes minutes to pass.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import groupby

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from portfolios.models import AuditEntry
from portfolios.services.notify import notify_user

DRIFT_ALERT = "drift_alert"


def drift_digests_send(*, now: datetime | None = None) -> int:
    """E-mail every owner whose drift alerts have gone quiet one digest of those not told yet, and
    mark them told; the number of owners told.

    The alerts are marked in the transaction that takes them (rows another cluster holds are
    skipped), so two clusters never send the same alert twice; a mail that cannot be sent is
    logged, and the alert stays in the audit trail and on the dashboard.
    """
    now = now or timezone.now()
    pending = AuditEntry.objects.filter(event=DRIFT_ALERT, notified_at__isnull=True, user__isnull=False)
    quiet = (
        pending.order_by()
        .values("user_id")
        .annotate(last=Max("created_at"))
        .filter(last__lte=now - timedelta(minutes=settings.DRIFT_DIGEST_QUIET_MINUTES))
        .values("user_id")
    )
    with transaction.atomic():
        alerts = list(
            pending.filter(user_id__in=quiet)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("user", "portfolio", "run")
            .order_by("user_id", "portfolio__name", "portfolio_id", "created_at")
        )
        AuditEntry.objects.filter(pk__in=[alert.pk for alert in alerts]).update(notified_at=now)
    told = 0
    for _, owned in groupby(alerts, key=lambda alert: alert.user_id):
        owned = _latest_per_portfolio(list(owned))
        subject, body = _digest(owned)
        notify_user(owned[0].user, subject=subject, body=body)
        told += 1
    return told


def _latest_per_portfolio(alerts: list[AuditEntry]) -> list[AuditEntry]:
    """One line per portfolio: its latest alert (a plan superseded the same day alerts again)."""
    latest = {alert.portfolio_id: alert for alert in alerts}
    return [alert for alert in alerts if latest[alert.portfolio_id] is alert]


def _digest(alerts: list[AuditEntry]) -> tuple[str, str]:
    count = len(alerts)
    subject = (
        f"{alerts[0].portfolio.name} has drifted {alerts[0].data['drift']:.1%} from its targets"
        if count == 1
        else f"{count} of your portfolios have drifted from their targets"
    )
    lines = [
        f"{alert.portfolio.name}: drift {alert.data['drift']:.1%}, at or above the "
        f"{alert.data['threshold']:.1%} alert threshold"
        + (f" (plan of {alert.run.trading_date}, run {alert.run_id})" if alert.run is not None else "")
        for alert in alerts
    ]
    return subject, "\n".join(lines)
