"""Data-quality rules: rejected rows, gaps against the NYSE calendar, suspicious moves, staleness."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from marketdata import quality
from marketdata.tests.factories import bars_frame


def test_clean_bars_pass_untouched():
    bars = bars_frame(date(2024, 1, 2), date(2024, 1, 31))
    result = quality.validate_bars("SPY", bars)
    assert result.findings == ()
    pd.testing.assert_frame_equal(result.bars, bars, check_freq=False)


def test_rejects_nan_zero_and_negative_prices_with_dates_and_reasons():
    bars = bars_frame(date(2024, 1, 2), date(2024, 1, 10))
    bars.loc["2024-01-03", "adj_close"] = np.nan
    bars.loc["2024-01-04", "adj_close"] = -5.0
    bars.loc["2024-01-05", "low"] = 0.0
    bars.loc["2024-01-08", "volume"] = -1.0
    result = quality.validate_bars("SPY", bars)
    rejected = {(f.date, f.kind): f.detail for f in result.findings}
    assert rejected == {
        (date(2024, 1, 3), "rejected_price"): "adj_close is missing",
        (date(2024, 1, 4), "rejected_price"): "adj_close is -5",
        (date(2024, 1, 5), "rejected_price"): "low is 0",
        (date(2024, 1, 8), "rejected_price"): "volume is -1",
    }
    assert [d.date() for d in result.bars.index] == [date(2024, 1, 2), date(2024, 1, 9), date(2024, 1, 10)]
    assert result.rejected == 4


def test_rows_with_every_value_missing_are_dropped_silently():
    bars = bars_frame(date(2024, 1, 2), date(2024, 1, 5))
    bars.loc["2024-01-03"] = np.nan
    result = quality.validate_bars("SPY", bars)
    assert result.findings == ()
    assert len(result.bars) == 3


def test_duplicates_that_agree_merge_and_fill_each_others_missing_columns():
    bars = bars_frame(date(2024, 1, 2), date(2024, 1, 5))
    adj_only = bars[["adj_close"]].reindex(columns=bars.columns)  # a wide table's row: no OHLC
    result = quality.validate_bars("SPY", pd.concat([adj_only, bars]))
    assert result.findings == ()
    pd.testing.assert_frame_equal(result.bars, bars, check_freq=False)


def test_duplicate_dates_with_different_values_are_both_rejected_identical_ones_collapse():
    bars = bars_frame(date(2024, 1, 2), date(2024, 1, 5))
    twin = bars.loc[["2024-01-03"]]
    conflict = bars.loc[["2024-01-04"]].assign(adj_close=999.0)
    result = quality.validate_bars("SPY", pd.concat([bars, twin, conflict]))
    assert [(f.date, f.kind) for f in result.findings] == [(date(2024, 1, 4), "duplicate_date")]
    assert [d.date() for d in result.bars.index] == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 5)]


def test_weekend_and_holiday_rows_are_rejected():
    bars = bars_frame(date(2024, 12, 20), date(2024, 12, 27))
    extra = bars.iloc[[0]].set_axis(pd.DatetimeIndex(["2024-12-25"], name="date"))
    weekend = bars.iloc[[0]].set_axis(pd.DatetimeIndex(["2024-12-21"], name="date"))
    result = quality.validate_bars("SPY", pd.concat([bars, extra, weekend]))
    assert sorted((f.date, f.kind) for f in result.findings) == [
        (date(2024, 12, 21), "non_session"),
        (date(2024, 12, 25), "non_session"),
    ]
    assert len(result.bars) == len(bars)


def test_gaps_are_sessions_without_bars_holidays_are_not_gaps():
    bars = bars_frame(date(2024, 12, 20), date(2025, 1, 10)).drop(pd.Timestamp("2024-12-30"))
    gaps = quality.find_gaps("SPY", bars.index, date(2024, 12, 20), date(2025, 1, 10))
    # 2024-12-25 and 2025-01-01 are holidays, 2025-01-09 the national day of mourning: not gaps.
    assert [(g.date, g.detail) for g in gaps] == [(date(2024, 12, 30), "no bar for session 2024-12-30")]
    assert quality.count_gaps(gaps) == 1


def test_many_gaps_are_summarised_but_counted():
    present = pd.DatetimeIndex(["2020-01-02", "2020-12-31"])
    gaps = quality.find_gaps("SPY", present, date(2020, 1, 2), date(2020, 12, 31))
    assert len(gaps) == quality.MAX_GAP_FINDINGS_PER_SYMBOL + 1
    assert quality.count_gaps(gaps) == 253 - 2  # 2020 had 253 sessions


def test_suspicious_moves_flag_more_than_the_threshold_including_the_seam():
    closes = pd.Series([100.0, 101.0, 160.0, 158.0, 60.0], index=pd.bdate_range("2024-01-02", periods=5))
    found = quality.find_suspicious_moves("X", closes, threshold_pct=50.0, previous=40.0)
    assert [(f.date, f.detail.split(" in ")[0]) for f in found] == [
        (date(2024, 1, 2), "adjusted close moved +150.0%"),
        (date(2024, 1, 4), "adjusted close moved +58.4%"),
        (date(2024, 1, 8), "adjusted close moved -62.0%"),
    ]
    assert len(quality.find_suspicious_moves("X", closes, threshold_pct=50.0)) == 2


def test_stale_means_last_bar_older_than_the_expected_session():
    found = quality.find_stale(
        {"SPY": date(2024, 1, 5), "BND": date(2024, 1, 4), "NEW": None}, expected_last=date(2024, 1, 5)
    )
    assert [(f.symbol, f.kind, f.date) for f in found] == [
        ("BND", "stale", date(2024, 1, 4)),
        ("NEW", "stale", None),
    ]
