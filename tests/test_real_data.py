"""The real historical price files in ../shared/data, imported as a user would with import_prices.

Row counts and first/last dates are the ones ../shared/data/README.md states.
Every test skips, saying why, when that folder is absent.
"""

from __future__ import annotations

import io
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command

from marketdata.models import FetchLog, Instrument, QualityFinding
from marketdata.stores import get_price_store
from marketdata.stores.database import DatabasePriceStore
from marketdata.stores.parquet import ParquetPriceStore

pytestmark = [pytest.mark.django_db, pytest.mark.realdata]

KATRINA = "portopt_katrinajames_etfs_2016-2021"
AOIFE = "ai_investing_etf_aoifegaughan5_2010-2024"
POOKSOFT = "pooksoft_sp500_alphavantage"
PYPFOPT_TESTS = "pyportfolioopt/pyportfolioopt__tests_resources__stock_prices.csv"


def import_prices(path: Path, **options) -> FetchLog:
    call_command("import_prices", str(path), stdout=io.StringIO(), stderr=io.StringIO(), **options)
    return FetchLog.objects.latest("started_at")


def stored(symbol: str) -> tuple[int, date, date]:
    bars = get_price_store().read_bars([symbol], None, None)
    return len(bars), bars["date"].iloc[0].date(), bars["date"].iloc[-1].date()


def test_katrina_etf_directory_per_ticker_files_and_wide_table(shared_data):
    log = import_prices(shared_data / KATRINA)
    # 30 per-ticker files and the wide table holding the same adjusted closes: they merge.
    assert len(log.symbols) == 30
    assert (log.rows_written, log.rows_rejected, log.gaps_found) == (30 * 1258, 0, 0)
    assert log.status == "success"
    for symbol in ("SPY", "BND", "GLD", "BIL", "^GSPC"):
        assert stored(symbol) == (1258, date(2016, 4, 28), date(2021, 4, 27))
    spy = get_price_store().read_bars(["SPY"], date(2016, 4, 28), date(2016, 4, 28)).iloc[0]
    assert (spy["close"], spy["adj_close"], spy["volume"]) == (207.44999695, 188.70506287, 97216200)
    assert Instrument.objects.get(symbol="BND").asset_class == "bond"


def test_aoife_etf_directory_with_time_zone_dates(shared_data):
    log = import_prices(shared_data / AOIFE)
    assert sorted(log.symbols) == ["BND", "QQQ", "SPY", "VOO", "VTI", "VXUS"]
    assert log.rows_written == 4 * 3574 + 3402 + 3304
    assert stored("VTI") == (3574, date(2010, 1, 4), date(2024, 3, 15))
    assert stored("VOO") == (3402, date(2010, 9, 9), date(2024, 3, 15))
    assert stored("VXUS") == (3304, date(2011, 1, 28), date(2024, 3, 15))
    assert get_price_store().price_frame(["SPY"], date(2010, 1, 4), date(2010, 1, 4))["SPY"].iloc[0] == 86.02645874


@pytest.mark.parametrize(
    ("path", "symbols", "rows", "first", "last"),
    [
        (PYPFOPT_TESTS, 20, None, date(1989, 12, 29), date(2018, 4, 11)),
        (
            "pyportfolioopt/pyportfolioopt__tests_resources__spy_prices.csv",
            1,
            6765,
            date(1993, 1, 29),
            date(2019, 12, 9),
        ),
        (
            "pyportfolioopt/pyportfolioopt__cookbook_data__stock_prices.csv",
            19,
            None,
            date(1990, 1, 2),
            date(2024, 11, 29),
        ),
        ("riskfolio_lib/riskfolio_lib__tests__stock_prices.csv", 11, 11 * 1004, date(2016, 1, 4), date(2019, 12, 27)),
        ("riskfolio_lib/riskfolio_lib__tests__stock_prices_3.csv", 11, 11 * 501, date(2018, 1, 2), date(2019, 12, 27)),
        ("skfolio/skfolio__datasets_data__sp500_dataset.csv.gz", 20, 20 * 8313, date(1990, 1, 2), date(2022, 12, 28)),
        ("skfolio/skfolio__datasets_data__sp500_index.csv.gz", 1, 8313, date(1990, 1, 2), date(2022, 12, 28)),
        ("skfolio/skfolio__datasets_data__factors_dataset.csv.gz", 5, 5 * 2264, date(2014, 1, 2), date(2022, 12, 28)),
    ],
)
def test_wide_tables(shared_data, path, symbols, rows, first, last):
    log = import_prices(shared_data / path)
    assert len(log.symbols) == symbols
    assert (log.start_date, log.end_date) == (first, last)
    assert log.rows_rejected == 0
    if rows is not None:
        assert log.rows_written == rows
    # Each symbol's stored bars are exactly its non-empty cells.
    table = pd.read_csv(shared_data / path)
    expected = int(table.drop(columns=table.columns[0]).notna().sum().sum())
    assert log.rows_written == expected


def test_pyportfolioopt_listing_dates(shared_data):
    import_prices(shared_data / PYPFOPT_TESTS)
    firsts = {symbol: stored(symbol)[1] for symbol in ("FB", "BABA", "GM", "MA")}
    assert firsts == {
        "FB": date(2012, 5, 18),
        "BABA": date(2014, 9, 19),
        "GM": date(2010, 11, 18),
        "MA": date(2006, 5, 25),
    }
    frame = get_price_store().price_frame(
        list(pd.read_csv(shared_data / PYPFOPT_TESTS, nrows=0).columns[1:]), date(1989, 1, 1), date(2018, 12, 31)
    )
    assert len(frame) == 7126
    assert len(frame.dropna()) == 896  # rows complete across all 20 tickers


def test_pooksoft_alphavantage_originals(shared_data, tmp_path):
    folder = tmp_path / "av"
    folder.mkdir()
    for symbol in ("AAPL", "MSFT", "JPM"):
        name = f"pooksoft__daily_adjusted__DA-{symbol}-T-2021-04-21.csv"
        shutil.copy(shared_data / POOKSOFT / name, folder / name)
    log = import_prices(folder)
    assert sorted(log.symbols) == ["AAPL", "JPM", "MSFT"]
    for symbol in ("AAPL", "MSFT", "JPM"):
        assert stored(symbol) == (5402, date(1999, 11, 1), date(2021, 4, 21))
    aapl = get_price_store().read_bars(["AAPL"], date(1999, 11, 1), date(1999, 11, 1)).iloc[0]
    assert (aapl["close"], aapl["adj_close"]) == (77.62, 0.59687874)  # close is not split-adjusted


def test_pooksoft_504_stock_wide_table(shared_data):
    log = import_prices(shared_data / POOKSOFT / "pooksoft_sp500_adjusted_close_wide_2014-01-02_2021-04-21.derived.csv")
    assert len(log.symbols) == 504
    assert (log.start_date, log.end_date) == (date(2014, 1, 2), date(2021, 4, 21))
    assert log.rows_rejected == 0
    assert log.rows_written > 900_000
    frame = get_price_store().price_frame(["AAPL", "MSFT"], date(2014, 1, 2), date(2021, 4, 21))
    assert len(frame) == 1838


def test_pooksoft_directory_reports_the_constituents_file_and_imports_the_rest(shared_data, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(shared_data / POOKSOFT / "pooksoft__data__constituents.csv", folder)
    shutil.copy(shared_data / POOKSOFT / "pooksoft__daily_adjusted__DA-JPM-T-2021-04-21.csv", folder)
    log = import_prices(folder)
    assert log.status == "partial"
    assert log.symbols == ["JPM"]
    assert "pooksoft__data__constituents.csv: no date column" in log.errors[0]["error"]


def test_gap_detection_finds_no_gap_in_the_etf_files_and_finds_a_removed_day(shared_data, tmp_path):
    log = import_prices(shared_data / KATRINA / "QQQ.csv")
    assert log.gaps_found == 0
    lines = (shared_data / KATRINA / "SPY.csv").read_text().splitlines(keepends=True)
    removed = [line for line in lines if not line.startswith("2019-06-14")]
    assert len(removed) == len(lines) - 1
    (tmp_path / "SPY.csv").write_text("".join(removed))
    log = import_prices(tmp_path / "SPY.csv")
    assert log.gaps_found == 1
    gap = QualityFinding.objects.get(fetch_log=log, kind="gap")
    assert (gap.symbol, gap.date) == ("SPY", date(2019, 6, 14))


def test_database_and_parquet_stores_give_identical_frames_for_the_20_stock_file(shared_data, settings, tmp_path):
    import_prices(shared_data / PYPFOPT_TESTS)
    settings.STORAGE_TYPE = "parquet"
    settings.STORAGE_PATH = tmp_path
    import_prices(shared_data / PYPFOPT_TESTS)
    symbols = list(pd.read_csv(shared_data / PYPFOPT_TESTS, nrows=0).columns[1:])
    database = DatabasePriceStore().price_frame(symbols, date(1989, 1, 1), date(2018, 12, 31))
    parquet = ParquetPriceStore().price_frame(symbols, date(1989, 1, 1), date(2018, 12, 31))
    assert database.shape == (7126, 20)
    pd.testing.assert_frame_equal(database, parquet, check_exact=True)
