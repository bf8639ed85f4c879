"""A lock per (portfolio, trading date) around the daily work, across processes and machines.

On PostgreSQL a session-level advisory lock (`pg_try_advisory_lock`), released at the end or
when the connection dies with its process. Elsewhere (SQLite: one writer at a time, one machine)
none is taken; the unique run per portfolio and date and the execution lease still guarantee one
run and one executor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from django.db import connection

# Advisory-lock namespace of the daily work (the first of the two int4 keys is the portfolio).
_NAMESPACE = 0x5EBA


def _key(portfolio_id: int, trading_date: date) -> int:
    # One bigint: the portfolio in the high 32 bits, namespace and day in the low 32.
    return ((portfolio_id & 0x7FFFFFFF) << 32) | ((_NAMESPACE << 20) ^ trading_date.toordinal())


@contextmanager
def portfolio_day_lock(portfolio_id: int, trading_date: date) -> Iterator[bool]:
    """Yields True when this process holds the portfolio's lock for the day, False when another does."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = _key(portfolio_id, trading_date)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
