"""The pipeline's events (the seed's event bus), as Django signals.

Sent by `portfolios.services.pipeline` and `portfolios.services.execution`; built-in subscribers
(`portfolios.subscribers`) write an `AuditEntry` for each and e-mail the owner on failures,
orders whose outcome is unknown, and drift above `DRIFT_ALERT_THRESHOLD`. Receivers get keyword
arguments only:

- ``rebalancing_started``: portfolio, trading_date
- ``rebalancing_completed``: portfolio, run
- ``rebalancing_failed``: portfolio, trading_date, run (or None), reason
- ``orders_unknown``: portfolio, run, client_order_ids
- ``drift_alert``: portfolio, run, drift, threshold

A receiver that raises is logged and does not stop the pipeline (signals are sent robustly).
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

rebalancing_started = Signal()
rebalancing_completed = Signal()
rebalancing_failed = Signal()
orders_unknown = Signal()
drift_alert = Signal()


def emit(signal: Signal, **kwargs) -> None:
    """Send ``signal``; a failing receiver is logged, never raised into the pipeline."""
    for receiver, response in signal.send_robust(sender=signal, **kwargs):
        if isinstance(response, Exception):
            logger.error(
                "event receiver failed",
                exc_info=(type(response), response, response.__traceback__),
                extra={"receiver": getattr(receiver, "__qualname__", repr(receiver))},
            )
