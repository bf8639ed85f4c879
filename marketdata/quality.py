"""Data-quality rules applied to every write of price bars.

Pure functions over bars frames (the shape of `marketdata.providers.base`):
they reject rows that must never be stored (missing or non-positive prices,
duplicate dates, dates that are not NYSE sessions) and find what is kept but
reported (gaps against the NYSE calendar, suspicious daily moves, stale
symbols). Each observation is a `Finding`; the services store them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from marketdata.calendar import sessions_index
from marketdata.providers.base import conform_bars

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
# Larger prices do not fit the database's DecimalField(20, 8).
MAX_PRICE_USD = 1e11
# Gap findings listed one by one per symbol; beyond that, one summary finding.
MAX_GAP_FINDINGS_PER_SYMBOL = 50


@dataclass(frozen=True)
class Finding:
    symbol: str
    kind: str  # a QualityFinding.Kind value
    detail: str
    date: date | None = None


@dataclass(frozen=True)
class Validated:
    """Bars that may be stored, and the findings about rows that may not."""

    bars: pd.DataFrame
    findings: tuple[Finding, ...]
    rejected: int  # rows rejected (a conflicting duplicate date rejects all its rows)


def validate_bars(symbol: str, frame: pd.DataFrame) -> Validated:
    """Rejects rows with a missing, non-positive or oversized price, duplicate dates or non-session dates.

    Rows whose every value is NaN (a source's way of saying "no bar") are
    dropped silently. Duplicate dates with identical values collapse to one
    row; differing duplicates are both rejected, since neither can be trusted.
    """
    bars = conform_bars(frame)
    bars = bars[~bars.isna().all(axis=1)]
    findings: list[Finding] = []

    before = len(bars)
    bars, dup_findings, merged = _drop_duplicate_dates(symbol, bars)
    findings += dup_findings

    bad_adj = ~(bars["adj_close"] > 0) | ~(bars["adj_close"] < MAX_PRICE_USD)
    ohlc = bars[list(PRICE_COLUMNS[:4])]
    bad_ohlc = (ohlc.notna() & ~((ohlc > 0) & (ohlc < MAX_PRICE_USD))).any(axis=1)
    bad_volume = bars["volume"].notna() & ~(bars["volume"] >= 0)
    bad = bad_adj | bad_ohlc | bad_volume
    for day, row in bars[bad].iterrows():
        findings.append(Finding(symbol, "rejected_price", _describe_bad_row(row), day.date()))
    bars = bars[~bad]

    if len(bars):
        sessions = sessions_index(bars.index[0].date(), bars.index[-1].date())
        off_calendar = ~bars.index.isin(sessions)
        for day in bars.index[off_calendar]:
            findings.append(Finding(symbol, "non_session", f"{day.date()} is not an NYSE trading session", day.date()))
        bars = bars[~off_calendar]

    return Validated(bars=bars, findings=tuple(findings), rejected=before - merged - len(bars))


def _drop_duplicate_dates(symbol: str, bars: pd.DataFrame) -> tuple[pd.DataFrame, list[Finding], int]:
    """Merges repeated dates whose values agree; rejects every row of a date whose values conflict.

    Returns the bars, the findings and how many rows merging removed.

    Agreeing repeats are common and harmless: the same series in a per-ticker
    file and in a wide table (which has no OHLC) fill each other's gaps.
    """
    if not bars.index.has_duplicates:
        return bars, [], 0
    repeated = bars.index.duplicated(keep=False)
    groups = bars[repeated].groupby(level=0)
    # nunique skips NaN: a column conflicts when two rows hold different values.
    conflicting = groups.nunique().gt(1).any(axis=1)
    merged = groups.first()[~conflicting]
    findings = []
    for day in conflicting.index[conflicting]:
        values = ", ".join(f"{v:g}" for v in bars.loc[day, "adj_close"])
        findings.append(
            Finding(symbol, "duplicate_date", f"{day.date()} appears more than once (adj_close {values})", day.date())
        )
    out = pd.concat([bars[~repeated], merged]).sort_index()
    out.index.name = "date"
    merged_away = int(groups.size()[~conflicting].sum()) - len(merged)
    return out, findings, merged_away


def _describe_bad_row(row: pd.Series) -> str:
    problems = []
    for column in (*PRICE_COLUMNS, "volume"):
        value = row[column]
        if column == "adj_close" and pd.isna(value):
            problems.append("adj_close is missing")
        elif pd.notna(value) and (value <= 0 if column != "volume" else value < 0):
            problems.append(f"{column} is {value:g}")
        elif pd.notna(value) and column != "volume" and value >= MAX_PRICE_USD:
            problems.append(f"{column} is {value:g}, above {MAX_PRICE_USD:g}")
    return "; ".join(problems) or "invalid values"


def find_gaps(symbol: str, present: pd.DatetimeIndex, start: date, end: date) -> list[Finding]:
    """Sessions from start to end (inclusive) with no bar in `present`."""
    if end < start:
        return []
    expected = sessions_index(start, end)
    missing = expected[~expected.isin(present)]
    findings = [
        Finding(symbol, "gap", f"no bar for session {day.date()}", day.date())
        for day in missing[:MAX_GAP_FINDINGS_PER_SYMBOL]
    ]
    if len(missing) > MAX_GAP_FINDINGS_PER_SYMBOL:
        rest = missing[MAX_GAP_FINDINGS_PER_SYMBOL:]
        findings.append(
            Finding(
                symbol,
                "gap",
                f"{len(rest)} more missing sessions from {rest[0].date()} to {rest[-1].date()}",
                rest[0].date(),
            )
        )
    return findings


def count_gaps(findings: Iterable[Finding]) -> int:
    """Missing sessions behind gap findings (a summary finding stands for several)."""
    total = 0
    for finding in findings:
        if finding.kind == "gap":
            if finding.detail.startswith("no bar"):
                total += 1
            else:
                total += int(finding.detail.split(" ", 1)[0])
    return total


def find_suspicious_moves(
    symbol: str, adj_close: pd.Series, threshold_pct: float, previous: float | None = None
) -> list[Finding]:
    """Daily moves larger than `threshold_pct` percent, up or down; kept but reported.

    `adj_close` is indexed by date and ascending; `previous` is the stored
    close before its first date, so the first new day is checked too.
    """
    values = adj_close.to_numpy(dtype="float64")
    dates = adj_close.index
    if previous is not None:
        values = np.concatenate([[previous], values])
    if len(values) < 2:
        return []
    moves = values[1:] / values[:-1] - 1.0
    findings = []
    for i in np.flatnonzero(np.abs(moves) * 100 > threshold_pct):
        # With `previous`, move i ends on dates[i]; without it, on dates[i + 1].
        day = dates[i] if previous is not None else dates[i + 1]
        findings.append(
            Finding(
                symbol,
                "suspicious_move",
                f"adjusted close moved {moves[i] * 100:+.1f}% in one session (from {values[i]:g} to {values[i + 1]:g})",
                day.date(),
            )
        )
    return findings


def find_stale(last_dates: Mapping[str, date | None], expected_last: date) -> list[Finding]:
    """Symbols whose last stored bar is older than the last completed session."""
    findings = []
    for symbol, last in sorted(last_dates.items()):
        if last is None:
            findings.append(Finding(symbol, "stale", f"no bars stored; expected one for {expected_last}"))
        elif last < expected_last:
            findings.append(Finding(symbol, "stale", f"last bar is {last}; expected {expected_last}", last))
    return findings
