"""Built-in receivers of `portfolios.events`: an audit entry for every event, and e-mails to the
owner for what needs their attention. Connected in `PortfoliosConfig.ready`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.dispatch import receiver

from portfolios import events
from portfolios.models import AuditEntry
from portfolios.services.notify import notify_owner

_together: ContextVar[list[AuditEntry] | None] = ContextVar("audit_entries_together", default=None)


@contextmanager
def audit_entries_together() -> Iterator[None]:
    """The audit entries of the events sent inside are stored together on the way out, in one
    statement (a batch's events: one insert instead of one per portfolio)."""
    entries: list[AuditEntry] = []
    token = _together.set(entries)
    try:
        yield
    finally:
        _together.reset(token)
        AuditEntry.objects.bulk_create(entries)


def _audit(event: str, portfolio, run, message: str, **data) -> None:
    entry = AuditEntry(
        event=event, portfolio=portfolio, run=run, user_id=portfolio.owner_id, message=message[:2000], data=data
    )
    entries = _together.get()
    if entries is None:
        entry.save()
    else:
        entries.append(entry)


@receiver(events.rebalancing_started)
def on_started(*, portfolio, trading_date, **kwargs) -> None:
    _audit("rebalancing_started", portfolio, None, f"daily run of {trading_date}", trading_date=str(trading_date))


@receiver(events.rebalancing_completed)
def on_completed(*, portfolio, run, **kwargs) -> None:
    _audit("rebalancing_completed", portfolio, run, f"run {run.pk}: {run.get_status_display()}", status=run.status)
    reconciliation = run.execution.get("reconciliation", {})
    if reconciliation.get("not_filled") or reconciliation.get("differences"):
        lines = [f"not filled: {line}" for line in reconciliation.get("not_filled", [])]
        lines += [
            f"{d['symbol']}: planned {d['planned']}, broker {d['broker']}"
            for d in reconciliation.get("differences", [])
        ]
        notify_owner(
            portfolio, subject=f"Rebalance of {portfolio.name} executed with differences", body="\n".join(lines)
        )


@receiver(events.rebalancing_failed)
def on_failed(*, portfolio, trading_date, run, reason, **kwargs) -> None:
    _audit("rebalancing_failed", portfolio, run, reason, trading_date=str(trading_date))
    traded = run is not None and run.orders.filter(filled_quantity__gt=0).exists()  # a run stopped midway
    notify_owner(
        portfolio,
        subject=f"Rebalance of {portfolio.name} failed ({trading_date})",
        body=reason if traded else f"Nothing was traded for this reason:\n{reason}",
    )


@receiver(events.orders_unknown)
def on_orders_unknown(*, portfolio, run, client_order_ids, **kwargs) -> None:
    _audit("orders_unknown", portfolio, run, ", ".join(client_order_ids), client_order_ids=list(client_order_ids))
    notify_owner(
        portfolio,
        subject=f"Orders with an unknown outcome in run {run.pk}",
        body=f"The broker has not confirmed {', '.join(client_order_ids)}. They are looked up again when the run "
        "resumes; nothing is sent twice.",
    )


@receiver(events.drift_alert)
def on_drift_alert(*, portfolio, run, drift, threshold, **kwargs) -> None:
    """Recorded only: the owner is told in a digest of all their portfolios (`drift_digests_send`)."""
    message = f"drift {drift:.1%} at or above the {threshold:.1%} alert threshold"
    _audit("drift_alert", portfolio, run, message, drift=float(drift), threshold=float(threshold))
