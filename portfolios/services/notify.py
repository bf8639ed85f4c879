"""Messages to a portfolio's owner (Django's mail backend: the console in the demo)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


def notify_owner(portfolio, *, subject: str, body: str) -> None:
    """E-mail the portfolio's owner (when they have an address) and log it; never raises."""
    owner = portfolio.owner
    logger.warning("owner notified", extra={"portfolio_id": portfolio.pk, "user_id": owner.pk, "subject": subject})
    if not owner.email:
        return
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [owner.email], fail_silently=False)
    except Exception:  # a mail outage must not stop the pipeline; the log above keeps the message
        logger.exception("could not e-mail the owner", extra={"portfolio_id": portfolio.pk})
