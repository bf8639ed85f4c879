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
from marketdata.providers.base import BAR_COLUMNS, conform_bars

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
    """`validate_long` for one symbol's bars frame; returns a bars frame indexed by date."""
    long = conform_bars(frame).reset_index().assign(symbol=symbol)
    result = validate_long(long)
    return Validated(
        bars=result.bars.set_index("date")[list(BAR_COLUMNS)], findings=result.findings, rejected=result.rejected
    )


def validate_long(bars: pd.DataFrame) -> Validated:
    """Rejects rows with a missing, non-positive or oversized price, conflicting duplicates or non-session dates.

    `bars` is a long frame: `symbol`, `date` (datetime64) and `BAR_COLUMNS`.
    Rows whose every value is NaN (a source's way of saying "no bar") are
    dropped silently. Repeated (symbol, date) rows whose values agree merge into
    one (each column's first non-missing value); rows of a date whose values
    conflict are all rejected, since none can be trusted. The result is sorted
    by symbol and date. Vectorised over all symbols at once: imports validate a
    million rows.
    """
    values = list(BAR_COLUMNS)
    bars = bars[~bars[values].isna().all(axis=1)].sort_values(["symbol", "date"], kind="stable")
    before = len(bars)
    findings: list[Finding] = []

    bars, merged_away = _merge_duplicates(bars, findings)

    prices = bars[list(PRICE_COLUMNS)]
    in_range = (prices > 0) & (prices < MAX_PRICE_USD)
    bad = ~in_range["adj_close"] | (prices.notna() & ~in_range).any(axis=1) | (bars["volume"] < 0)
    for row in bars[bad].itertuples(index=False):
        findings.append(Finding(row.symbol, "rejected_price", _describe_bad_row(row), row.date.date()))
    bars = bars[~bad]

    if len(bars):
        sessions = sessions_index(bars["date"].min().date(), bars["date"].max().date())
        off_calendar = ~bars["date"].isin(sessions)
        for row in bars[off_calendar].itertuples(index=False):
            day = row.date.date()
            findings.append(Finding(row.symbol, "non_session", f"{day} is not an NYSE trading session", day))
        bars = bars[~off_calendar]

    rejected = before - merged_away - len(bars)
    return Validated(bars=bars.reset_index(drop=True), findings=tuple(findings), rejected=rejected)


def _merge_duplicates(bars: pd.DataFrame, findings: list[Finding]) -> tuple[pd.DataFrame, int]:
    """Bars with agreeing repeats merged and conflicting ones removed; how many rows merging removed.

    Agreeing repeats are common and harmless: the same series in a per-ticker
    file and in a wide table (which has no OHLC) fill each other's gaps.
    """
    repeated = bars.duplicated(["symbol", "date"], keep=False)
    if not repeated.any():
        return bars, 0
    groups = bars[repeated].groupby(["symbol", "date"], sort=True)
    # nunique skips NaN: a column conflicts when two rows hold different values.
    conflicting = groups[list(BAR_COLUMNS)].nunique().gt(1).any(axis=1)
    merged = groups.first()[~conflicting].reset_index()
    for symbol, day in conflicting.index[conflicting]:
        closes = bars.loc[repeated & (bars["symbol"] == symbol) & (bars["date"] == day), "adj_close"]
        shown = ", ".join(f"{v:g}" for v in closes)
        findings.append(
            Finding(symbol, "duplicate_date", f"{day.date()} appears more than once (adj_close {shown})", day.date())
        )
    merged_away = int(groups.size()[~conflicting].sum()) - len(merged)
    out = pd.concat([bars[~repeated], merged[bars.columns]]).sort_values(["symbol", "date"], kind="stable")
    return out, merged_away


def _describe_bad_row(row: object) -> str:
    problems = []
    for column in (*PRICE_COLUMNS, "volume"):
        value = getattr(row, column)
        if column == "adj_close" and pd.isna(value):
            problems.append("adj_close is missing")
        elif pd.notna(value) and (value <= 0 if column != "volume" else value < 0):
            problems.append(f"{column} is {value:g}")
        elif pd.notna(value) and column != "volume" and value >= MAX_PRICE_USD:
            problems.append(f"{column} is {value:g}, above {MAX_PRICE_USD:g}")
    return "; ".join(problems) or "invalid values"


def find_gaps(
    symbol: str, present: pd.DatetimeIndex, start: date, end: date, sessions: pd.DatetimeIndex | None = None
) -> list[Finding]:
    """Sessions from start to end (inclusive) with no bar in `present`.

    `sessions`, when given, is a precomputed NYSE session index covering
    start..end (callers checking many symbols slice the calendar once).
    """
    if end < start:
        return []
    if sessions is None:
        sessions = sessions_index(start, end)
    expected = sessions[(sessions >= pd.Timestamp(start)) & (sessions <= pd.Timestamp(end))]
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
    """Daily moves of one symbol larger than `threshold_pct` percent (see `find_suspicious_moves_long`)."""
    long = pd.DataFrame({"symbol": symbol, "date": adj_close.index, "adj_close": adj_close.to_numpy()})
    return find_suspicious_moves_long(long, threshold_pct, {} if previous is None else {symbol: previous})


def find_suspicious_moves_long(
    bars: pd.DataFrame, threshold_pct: float, previous: Mapping[str, float]
) -> list[Finding]:
    """Daily moves larger than `threshold_pct` percent, up or down; kept but reported.

    `bars`: long frame sorted by symbol then date with `symbol`, `date`,
    `adj_close`. `previous`: each symbol's stored close before its first row
    here, so the seam between stored and new bars is checked too.
    """
    closes = bars["adj_close"].to_numpy(dtype="float64")
    symbols = bars["symbol"].to_numpy()
    before = np.roll(closes, 1)
    first_of_symbol = np.ones(len(bars), dtype=bool)
    first_of_symbol[1:] = symbols[1:] != symbols[:-1]
    seam = pd.Series(symbols[first_of_symbol]).map(previous).to_numpy(dtype="float64")
    before[first_of_symbol] = seam
    with np.errstate(invalid="ignore", divide="ignore"):
        moves = closes / before - 1.0
    findings = []
    for i in np.flatnonzero(np.abs(moves) * 100 > threshold_pct):
        day = bars["date"].iloc[i].date()
        findings.append(
            Finding(
                symbols[i],
                "suspicious_move",
                f"adjusted close moved {moves[i] * 100:+.1f}% in one session (from {before[i]:g} to {closes[i]:g})",
                day,
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
