"""Messages to a portfolio's owner (Django's mail backend: the console in the demo)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


def notify_owner(run, *, subject: str, body: str) -> None:
    """E-mail the run's owner (when they have an address) and log it; never raises."""
    owner = run.portfolio.owner
    logger.warning("owner notified", extra={"run_id": run.pk, "portfolio_id": run.portfolio_id, "subject": subject})
    if not owner.email:
        return
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [owner.email], fail_silently=False)
    except Exception:  # a mail outage must not stop execution; the log above keeps the message
        logger.exception("could not e-mail the owner", extra={"run_id": run.pk})
