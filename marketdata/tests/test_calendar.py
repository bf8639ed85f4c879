"""The market clock to the second: regular and early closes, weekends, remembered per minute."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from marketdata import calendar

NEW_YORK = ZoneInfo("America/New_York")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("now", "is_open", "next_open", "next_close"),
    [
        (at(2025, 7, 1, 9, 29, 59), False, at(2025, 7, 1, 9, 30), at(2025, 7, 1, 16, 0)),
        (at(2025, 7, 1, 9, 30, 0), True, at(2025, 7, 2, 9, 30), at(2025, 7, 1, 16, 0)),
        (at(2025, 7, 1, 15, 59, 59, 999_999), True, at(2025, 7, 2, 9, 30), at(2025, 7, 1, 16, 0)),
        (at(2025, 7, 1, 16, 0, 0), False, at(2025, 7, 2, 9, 30), at(2025, 7, 2, 16, 0)),
        # The day before Independence Day closes at 13:00; the holiday is skipped.
        (at(2025, 7, 3, 12, 59, 30), True, at(2025, 7, 7, 9, 30), at(2025, 7, 3, 13, 0)),
        (at(2025, 7, 3, 13, 0, 1), False, at(2025, 7, 7, 9, 30), at(2025, 7, 7, 16, 0)),
        (at(2025, 7, 5, 11, 0, 0), False, at(2025, 7, 7, 9, 30), at(2025, 7, 7, 16, 0)),
    ],
)
def test_the_clock_at_any_second_of_a_minute(now, is_open, next_open, next_close):
    for asked in (now, now.replace(second=0, microsecond=0), now.astimezone(UTC)):  # the memory's key
        assert calendar.market_clock(asked) == (is_open, next_open, next_close)


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.market_clock(datetime(2025, 7, 1, 10, 0))
