"""One writer at a time per portfolio: holdings, cash and targets are read and written under the
portfolio's row lock, so concurrent requests (a client that times out and retries) serialise
instead of mixing their rows or losing each other's updates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection, transaction
from django.shortcuts import get_object_or_404

from portfolios.models import Portfolio

#: How long a writer waits for another one's lock before answering "busy" (PostgreSQL).
LOCK_WAIT_MS = 5_000
#: PostgreSQL's lock_not_available (the wait above ran out) and deadlock_detected.
_BUSY_SQLSTATES = {"55P03", "40P01"}


#: What a page says when it meets `PortfolioBusy`.
BUSY_MESSAGE = (
    "Another change to this portfolio was being saved at the same moment, so nothing of yours was saved. "
    "Check the values below and send them again."
)


class PortfolioBusy(Exception):
    """Another writer held the portfolio too long (or the database found a deadlock): try again
    after ``retry_after_s`` seconds. Nothing of this request was stored."""

    retry_after_s = 2


@contextmanager
def portfolio_locked(portfolio_id: int) -> Iterator[Portfolio]:
    """A transaction holding ``portfolio_id``'s row lock, yielding the portfolio as stored now.

    Every read of the portfolio's holdings, cash or targets that a write depends on belongs inside
    it. Raises `PortfolioBusy` (the block's writes undone) when the lock is not granted within
    `LOCK_WAIT_MS` or the database breaks a deadlock; any other database error goes up unchanged.
    """
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = {int(LOCK_WAIT_MS)}")
            # Deleted since the request read it: "not found", like any other stale id.
            portfolio = get_object_or_404(Portfolio.objects.select_for_update(), pk=portfolio_id)
            if connection.vendor == "postgresql":
                # The wait bounds taking this lock only; the caller's own statements keep the server's.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = DEFAULT")
            yield portfolio
    except OperationalError as error:
        if not _is_busy(error):
            raise
        # The database's own words (kept as the cause, for the logs) name tables and queries.
        raise PortfolioBusy(f"another request is changing portfolio {portfolio_id}") from error


def _is_busy(error: OperationalError) -> bool:
    """Whether ``error`` is another writer's lock (not a lost connection or a full disk)."""
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _BUSY_SQLSTATES
    # SQLite: one writer at a time for the whole file, "database is locked" when the wait runs out.
    return "locked" in str(error)
