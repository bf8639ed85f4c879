"""The NYSE trading calendar (exchange_calendars XNYS): sessions, closes, the last completed session.

Trading dates are plain `datetime.date`s in the exchange's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

from marketdata.recent import Memo

EXCHANGE = "XNYS"
# Early enough for every history this project imports (PyPortfolioOpt's file starts 1989).
CALENDAR_START = "1985-01-01"


class CalendarRangeError(ValueError):
    """A date lies outside the calendar's data (before 1985 or past its last session)."""


@lru_cache(maxsize=1)
def nyse() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(EXCHANGE, start=CALENDAR_START)


def calendar_last_session() -> date:
    return nyse().last_session.date()


def _clamp(day: date) -> pd.Timestamp:
    cal = nyse()
    if day < cal.first_session.date():
        return cal.first_session
    if day > cal.last_session.date():
        raise CalendarRangeError(f"{day} is past the trading calendar's data (ends {cal.last_session.date()})")
    return pd.Timestamp(day)


def sessions_between(start: date, end: date) -> list[date]:
    """Every NYSE session from start to end, both inclusive."""
    if end < start:
        return []
    index = nyse().sessions_in_range(_clamp(start), _clamp(end))
    return [ts.date() for ts in index]


def sessions_index(start: date, end: date) -> pd.DatetimeIndex:
    """The same sessions as a DatetimeIndex (vectorised set operations)."""
    if end < start:
        return pd.DatetimeIndex([])
    return nyse().sessions_in_range(_clamp(start), _clamp(end))


def is_session(day: date) -> bool:
    return nyse().is_session(_clamp(day)) if day >= nyse().first_session.date() else False


def session_close(day: date) -> datetime:
    """The (timezone-aware, UTC) close of a session, early closes included."""
    return nyse().session_close(pd.Timestamp(day)).to_pydatetime()


def last_completed_session(now: datetime) -> date:
    """The latest session whose close is at or before `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Closes fall on whole minutes, so the answer is the same for every instant of a minute:
    # worked out once per minute (every execution asks it).
    return _last_completed_session(now.astimezone(UTC).replace(second=0, microsecond=0))


@lru_cache(maxsize=64)
def _last_completed_session(now: datetime) -> date:
    cal = nyse()
    today = pd.Timestamp(now).tz_convert(cal.tz).date()
    candidates = cal.sessions_in_range(cal.first_session, _clamp(today))
    for ts in reversed(candidates[-3:]):
        if cal.session_close(ts) <= pd.Timestamp(now):
            return ts.date()
    raise CalendarRangeError(f"no completed session before {now}")


def sessions_back(end: date, count: int) -> date:
    """The session `count - 1` sessions before `end` (so [result, end] holds `count` sessions)."""
    cal = nyse()
    index = cal.sessions_in_range(cal.first_session, _clamp(end))
    if len(index) == 0:
        raise CalendarRangeError(f"no session on or before {end}")
    return index[max(0, len(index) - count)].date()


def previous_session(day: date) -> date:
    """The last session strictly before `day`."""
    cal = nyse()
    index = cal.sessions_in_range(cal.first_session, _clamp(day))
    earlier = index[index < pd.Timestamp(day)]
    if len(earlier) == 0:
        raise CalendarRangeError(f"no session before {day}")
    return earlier[-1].date()


def market_clock(now: datetime) -> tuple[bool, datetime, datetime]:
    """(open at ``now``, next open, next close) of the regular NYSE session, early closes
    included; times timezone-aware (UTC). ``now`` must be timezone-aware.

    Open means within [open, close) of a session. The next open is the coming session's open
    when the market is open or already past today's open; the next close is the close of the
    session in progress, or of the next one.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Sessions open and close on whole minutes, so the answer is the same all minute long
    # (execution asks for every order; the calendar's lookups cost about a millisecond).
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return _CLOCKS.get_or_compute(minute, lambda: _market_clock_at(minute))


_CLOCKS = Memo(max_entries=64)


def _market_clock_at(minute: datetime) -> tuple[bool, datetime, datetime]:
    cal = nyse()
    stamp = pd.Timestamp(minute)
    is_open = bool(cal.is_open_on_minute(stamp)) and stamp < _session_close_at(stamp)
    return is_open, cal.next_open(stamp).to_pydatetime(), cal.next_close(stamp).to_pydatetime()


def _session_close_at(stamp: pd.Timestamp) -> pd.Timestamp:
    """The close of the session trading at minute ``stamp`` (or +inf when none is)."""
    cal = nyse()
    try:
        session = cal.minute_to_session(stamp.floor("min"), direction="none")
    except ValueError:
        return pd.Timestamp.max.tz_localize("UTC")
    return cal.session_close(session)
