"""A lock per (portfolio, trading date) around the daily work, across processes and machines.

On PostgreSQL a session-level advisory lock (`pg_try_advisory_lock`), released at the end or
when the connection dies with its process. Elsewhere (SQLite: one writer at a time, one machine)
none is taken; the unique run per portfolio and date and the execution lease still guarantee one
run and one executor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date

from django.db import connection

# The daily work's advisory-lock keys carry this tag in their top bits, apart from other locks.
_NAMESPACE = 0x3EB
_PORTFOLIO_BITS, _DAY_BITS = 31, 20


def lock_key(portfolio_id: int, trading_date: date) -> int:
    """One signed bigint per (portfolio, day): namespace (11 bits) | portfolio id (31) | day (20)."""
    if not 0 < portfolio_id < 2**_PORTFOLIO_BITS:
        raise ValueError(f"portfolio id {portfolio_id} does not fit an advisory-lock key")
    day = trading_date.toordinal() & (2**_DAY_BITS - 1)  # unique for 2,800 years
    return (_NAMESPACE << (_PORTFOLIO_BITS + _DAY_BITS)) | (portfolio_id << _DAY_BITS) | day


@contextmanager
def portfolio_day_locks(portfolio_ids: Iterable[int], trading_date: date) -> Iterator[set[int]]:
    """Yields the ids of the portfolios whose lock for the day this process now holds (another
    process holds the others'). One statement takes a batch's locks, one releases them."""
    ids = set(portfolio_ids)
    if connection.vendor != "postgresql":
        yield ids
        return
    keys = {lock_key(portfolio_id, trading_date): portfolio_id for portfolio_id in ids}
    # Advisory locks have no ORM form; one statement for the batch instead of one per portfolio.
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM unnest(%s::bigint[]) AS key WHERE pg_try_advisory_lock(key)", [list(keys)])
        held = [row[0] for row in cursor.fetchall()]
    try:
        yield {keys[key] for key in held}
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(key) FROM unnest(%s::bigint[]) AS key", [held])


@contextmanager
def portfolio_day_lock(portfolio_id: int, trading_date: date) -> Iterator[bool]:
    """Yields True when this process holds the portfolio's lock for the day, False when another does."""
    with portfolio_day_locks([portfolio_id], trading_date) as held:
        yield portfolio_id in held
