"""Messages to a portfolio's owner (Django's mail backend: the console in the demo)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


def notify_owner(portfolio, *, subject: str, body: str) -> None:
    """E-mail the portfolio's owner (when they have an address) and log it; never raises."""
    notify_user(portfolio.owner, subject=subject, body=body, portfolio_id=portfolio.pk)


def notify_user(user, *, subject: str, body: str, portfolio_id: int | None = None) -> None:
    """E-mail ``user`` (when they have an address) and log it; never raises."""
    logger.warning("owner notified", extra={"portfolio_id": portfolio_id, "user_id": user.pk, "subject": subject})
    if not user.email:
        return
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email], fail_silently=False)
    except Exception:  # a mail outage must not stop the pipeline; the log above keeps the message
        logger.exception("could not e-mail the owner", extra={"portfolio_id": portfolio_id, "user_id": user.pk})
