"""Both price stores: idempotent all-or-nothing writes, and identical answers for identical data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from marketdata.models import Instrument, PriceBar
from marketdata.stores.base import normalise_long
from marketdata.stores.database import DatabasePriceStore, UnknownInstrument
from marketdata.stores.parquet import ParquetPriceStore
from marketdata.tests.factories import bars_frame

pytestmark = pytest.mark.django_db


def long_bars(symbol: str, start: date, end: date, **kwargs) -> pd.DataFrame:
    frame = bars_frame(start, end, **kwargs).reset_index()
    frame["symbol"] = symbol
    frame["source"] = "test"
    frame["synthetic"] = False
    return frame


@pytest.fixture(params=["database", "parquet"])
def store(request, tmp_path):
    for symbol in ("SPY", "BND", "GLD"):
        Instrument.objects.create(symbol=symbol)
    if request.param == "database":
        return DatabasePriceStore()
    return ParquetPriceStore(root=tmp_path)


def test_write_then_read_round_trips_every_column(store):
    bars = long_bars("SPY", date(2023, 12, 20), date(2024, 1, 10), first_close=123.456789012)
    bars.loc[3, ["open", "high", "low", "close", "volume"]] = np.nan
    assert store.write_bars(bars) == len(bars)
    read = store.read_bars(["SPY"], None, None)
    expected = normalise_long(bars)
    pd.testing.assert_frame_equal(read, expected)
    assert read["adj_close"].iloc[0] == 123.45678901  # rounded to 8 decimals


def test_rewriting_the_same_bars_writes_nothing_and_changes_nothing(store):
    bars = long_bars("SPY", date(2024, 1, 2), date(2024, 3, 28))
    store.write_bars(bars)
    changed = bars.assign(adj_close=bars["adj_close"] * 2)
    assert store.write_bars(changed) == 0
    assert store.price_frame(["SPY"], date(2024, 1, 2), date(2024, 3, 28))["SPY"].iloc[0] == 100.0


def test_overlapping_write_adds_only_the_new_dates(store):
    store.write_bars(long_bars("SPY", date(2024, 1, 2), date(2024, 1, 31)))
    assert store.write_bars(long_bars("SPY", date(2024, 1, 25), date(2024, 2, 9))) == 7
    assert store.last_dates(["SPY", "BND"]) == {"SPY": date(2024, 2, 9), "BND": None}
    assert len(store.stored_dates(["SPY"], date(2024, 1, 1), date(2024, 12, 31))["SPY"]) == 28


def test_price_frame_is_wide_in_requested_order_with_nan_gaps(store):
    store.write_bars(long_bars("SPY", date(2024, 1, 2), date(2024, 1, 12)))
    store.write_bars(long_bars("BND", date(2024, 1, 8), date(2024, 1, 19), first_close=70.0))
    frame = store.price_frame(["BND", "GLD", "SPY"], date(2024, 1, 5), date(2024, 1, 16))
    assert list(frame.columns) == ["BND", "GLD", "SPY"]
    assert frame.index.name == "date"
    assert [d.date() for d in frame.index] == [
        date(2024, 1, d)
        for d in (5, 8, 9, 10, 11, 12, 16)  # 2024-01-15 was Martin Luther King Jr. Day
    ]
    assert frame["GLD"].isna().all()
    assert frame.loc["2024-01-05", "BND"] != frame.loc["2024-01-05", "BND"]  # NaN before BND's first bar
    assert frame.loc["2024-01-16", "SPY"] != frame.loc["2024-01-16", "SPY"]
    assert frame.dtypes.unique().tolist() == [np.dtype("float64")]


def test_bars_across_years_are_read_back_in_one_frame(store):
    store.write_bars(long_bars("SPY", date(2022, 12, 1), date(2024, 1, 31)))
    frame = store.price_frame(["SPY"], date(2022, 12, 30), date(2024, 1, 3))
    assert frame.index[0].date() == date(2022, 12, 30)
    assert frame.index[-1].date() == date(2024, 1, 3)
    assert store.symbols() == ["SPY"]


def test_stores_give_identical_frames_for_identical_data(tmp_path):
    for symbol in ("SPY", "BND"):
        Instrument.objects.create(symbol=symbol)
    rng = np.random.default_rng(7)
    bars = pd.concat(
        [
            long_bars("SPY", date(2023, 1, 3), date(2024, 6, 28)),
            long_bars("BND", date(2023, 3, 1), date(2024, 6, 28), first_close=71.3),
        ],
        ignore_index=True,
    )
    bars["adj_close"] = bars["adj_close"] * rng.uniform(0.9, 1.1, len(bars))  # awkward decimals
    database, parquet = DatabasePriceStore(), ParquetPriceStore(root=tmp_path)
    assert database.write_bars(bars) == parquet.write_bars(bars) == len(bars)
    args = (["SPY", "BND"], date(2023, 1, 1), date(2024, 12, 31))
    pd.testing.assert_frame_equal(database.price_frame(*args), parquet.price_frame(*args), check_exact=True)
    pd.testing.assert_frame_equal(database.read_bars(*args), parquet.read_bars(*args), check_exact=True)


def test_database_store_refuses_bars_for_unknown_instruments_and_writes_nothing():
    Instrument.objects.create(symbol="SPY")
    bars = pd.concat(
        [long_bars("SPY", date(2024, 1, 2), date(2024, 1, 5)), long_bars("ZZZ", date(2024, 1, 2), date(2024, 1, 5))]
    )
    with pytest.raises(UnknownInstrument, match="ZZZ"):
        DatabasePriceStore().write_bars(bars)
    assert PriceBar.objects.count() == 0


def test_parquet_write_failing_midway_leaves_every_file_as_it_was(tmp_path, monkeypatch):
    store = ParquetPriceStore(root=tmp_path)
    store.write_bars(long_bars("SPY", date(2022, 12, 1), date(2022, 12, 30)))
    before = {p.name: p.read_bytes() for p in store.root.glob("*.parquet")}

    import pyarrow.parquet as pq

    real_write = pq.write_table
    calls = []

    def write_then_crash(table, path, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_write(table, path, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_then_crash)
    with pytest.raises(OSError, match="disk full"):
        store.write_bars(long_bars("SPY", date(2022, 12, 1), date(2024, 1, 31)))
    after = {p.name: p.read_bytes() for p in store.root.glob("*.parquet")}
    assert after == before
    assert list(store.root.glob("*.tmp")) == []


def test_database_store_writes_under_the_debug_cursor_too():
    """DEBUG=true (the demo) wraps cursors in Django's debug wrapper; the bulk path must not depend on either."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Instrument.objects.create(symbol="SPY")
    with CaptureQueriesContext(connection):
        assert DatabasePriceStore().write_bars(long_bars("SPY", date(2024, 1, 2), date(2024, 1, 31))) == 21
    assert PriceBar.objects.count() == 21


def test_synthetic_bars_names_the_symbols_whose_bar_that_day_is_synthetic(store):
    spy = long_bars("SPY", date(2024, 1, 2), date(2024, 1, 5))
    spy.loc[spy["date"] == pd.Timestamp(2024, 1, 5), "synthetic"] = True  # only the last day
    bnd = long_bars("BND", date(2024, 1, 2), date(2024, 1, 5)).assign(synthetic=True)
    store.write_bars(pd.concat([spy, bnd]))
    store.write_bars(long_bars("GLD", date(2024, 1, 2), date(2024, 1, 5)))

    latest = {"SPY": date(2024, 1, 5), "BND": date(2024, 1, 4), "GLD": date(2024, 1, 5)}
    assert store.synthetic_bars(latest) == {"SPY", "BND"}
    assert store.synthetic_bars({"SPY": date(2024, 1, 4), "GLD": date(2024, 1, 5)}) == set()
    assert store.synthetic_bars({"SPY": date(2024, 1, 8)}) == set()  # no bar that day
    assert store.synthetic_bars({}) == set()


def test_latest_closes_take_each_symbols_own_last_bar_within_31_days():
    from marketdata.selectors import latest_closes

    for symbol in ("SPY", "BND", "GLD", "TLT"):
        Instrument.objects.create(symbol=symbol)
    spy = long_bars("SPY", date(2024, 1, 2), date(2024, 1, 4))  # no bar on the 5th: NaN in the frame
    bnd = long_bars("BND", date(2024, 1, 2), date(2024, 1, 5), first_close=80.0)
    old = long_bars("GLD", date(2023, 11, 1), date(2023, 11, 30))  # older than 31 days
    DatabasePriceStore().write_bars(pd.concat([spy, bnd, old]))

    found = latest_closes(symbols=["spy", "BND", "GLD", "TLT"], on_or_before=date(2024, 1, 5))

    assert found["SPY"] == (date(2024, 1, 4), pytest.approx(spy["adj_close"].iloc[-1]))
    assert found["BND"] == (date(2024, 1, 5), pytest.approx(bnd["adj_close"].iloc[-1]))
    assert set(found) == {"SPY", "BND"}  # GLD only too old, TLT never stored
    assert latest_closes(symbols=["BND"], on_or_before=date(2024, 1, 3))["BND"][0] == date(2024, 1, 3)
    assert latest_closes(symbols=[], on_or_before=date(2024, 1, 3)) == {}
