"""The CSV price provider: every file layout, the whole-file errors, and the real data files."""

from __future__ import annotations

import csv
import gzip
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from marketdata.providers.base import ProviderError, ProviderNotConfigured
from marketdata.providers.csv_files import (
    LAYOUT_ALPHAVANTAGE,
    LAYOUT_CLOSE,
    LAYOUT_WIDE,
    LAYOUT_YAHOO,
    CsvProvider,
    CsvReadResult,
    symbol_from_file_name,
)
from marketdata.tests.factories import assert_bars_shape


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    if name.lower().endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read(path: Path, **options: object) -> CsvReadResult:
    return CsvProvider(path=str(path), **options).read_all()


def only_bars(path: Path, **options: object) -> tuple[str, pd.DataFrame]:
    result = read(path, **options)
    assert result.problems == []
    assert len(result.bars) == 1
    return next(iter(result.bars.items()))


def only_problem(path: Path, **options: object) -> str:
    result = read(path, **options)
    assert result.bars == {}
    assert len(result.problems) == 1
    return result.problems[0].message


def days(*texts: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(text) for text in texts]


YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2016-04-28 00:00:00,208.4600067138672,209.75999450683594,206.9600067138672,207.4499969482422,188.70506286621094,97216200
2016-04-29 00:00:00,206.72000122070312,207.1300048828125,205.02999877929688,206.3300018310547,187.686279296875,142424100
"""


# --- Layouts -------------------------------------------------------------------


def test_yahoo_file_gives_raw_close_adjusted_close_and_symbol_from_lowercase_stem(tmp_path):
    path = write(tmp_path, "spy.csv", YAHOO)

    symbol, bars = only_bars(path)

    assert symbol == "SPY"
    assert list(bars.index) == days("2016-04-28", "2016-04-29")
    first = bars.iloc[0]
    assert first["open"] == 208.4600067138672
    assert first["high"] == 209.75999450683594
    assert first["low"] == 206.9600067138672
    assert first["close"] == 207.4499969482422
    assert first["adj_close"] == 188.70506286621094
    assert first["volume"] == 97216200.0
    assert_bars_shape(bars)
    assert read(path).files[0].layout == LAYOUT_YAHOO


def test_date_close_file_is_adjusted_close_and_timezone_offsets_give_the_session_date(tmp_path):
    path = write(
        tmp_path,
        "VXUS.csv",
        "Date,Close\n2011-01-28 00:00:00-05:00,32.383975982666016\n2011-01-31 00:00:00-05:00,32.74504470825195\n",
    )

    symbol, bars = only_bars(path)

    assert symbol == "VXUS"
    assert list(bars.index) == days("2011-01-28", "2011-01-31")
    assert list(bars["close"]) == [32.383975982666016, 32.74504470825195]
    assert list(bars["adj_close"]) == list(bars["close"])
    assert bars[["open", "high", "low", "volume"]].isna().all().all()
    assert_bars_shape(bars)
    assert read(path).files[0].layout == LAYOUT_CLOSE


def test_alphavantage_file_takes_symbol_from_name_and_is_sorted_ascending(tmp_path):
    # The AlphaVantage API lists the newest day first.
    path = write(
        tmp_path,
        "pooksoft__daily_adjusted__DA-BRK.B-T-2021-04-21.csv",
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "1999-11-02,78.0,81.69,77.31,80.25,0.617102796721,3564600,0.0,1.0\n"
        "1999-11-01,80.0,80.69,77.37,77.62,0.596878742448,2487300,0.0,1.0\n",
    )

    symbol, bars = only_bars(path)

    assert symbol == "BRK.B"
    assert list(bars.index) == days("1999-11-01", "1999-11-02")
    assert list(bars["close"]) == [77.62, 80.25]
    assert list(bars["adj_close"]) == [0.596878742448, 0.617102796721]
    assert list(bars["volume"]) == [2487300.0, 3564600.0]
    assert_bars_shape(bars)
    assert read(path).files[0].layout == LAYOUT_ALPHAVANTAGE


def test_wide_table_empty_cell_is_no_bar_and_ticker_named_low_is_a_symbol(tmp_path):
    path = write(
        tmp_path,
        "prices.csv",
        "date,SPY,LOW,VOO\n2014-01-02,100.5,50.25,\n2014-01-03,,51.0,\n2014-01-06,101.0,52.0,90.0\n",
    )

    result = read(path)

    assert result.problems == []
    assert result.files[0].layout == LAYOUT_WIDE
    assert result.files[0].symbols == ("SPY", "LOW", "VOO")
    assert result.files[0].rows == 3
    spy, low, voo = (result.bars[s] for s in ("SPY", "LOW", "VOO"))
    assert list(spy.index) == days("2014-01-02", "2014-01-06")
    assert list(spy["adj_close"]) == [100.5, 101.0]
    assert list(low["adj_close"]) == [50.25, 51.0, 52.0]
    assert list(voo.index) == days("2014-01-06")
    assert spy[["open", "high", "low", "close", "volume"]].isna().all().all()
    for frame in (spy, low, voo):
        assert_bars_shape(frame)


def test_wide_table_with_capitalised_date_and_lowercase_tickers(tmp_path):
    path = write(tmp_path, "riskfolio.csv", "Date,amzn,SPY\n2016-01-05,31.68,175.0\n2016-01-04,31.85,174.58\n")

    result = read(path)

    assert sorted(result.bars) == ["AMZN", "SPY"]
    assert list(result.bars["AMZN"].index) == days("2016-01-04", "2016-01-05")
    assert list(result.bars["AMZN"]["adj_close"]) == [31.85, 31.68]


def test_gzipped_per_symbol_and_wide_files(tmp_path):
    write(tmp_path, "QQQ.csv.gz", YAHOO)
    write(tmp_path, "TABLE.CSV.GZ", "Date,AAPL,KO\n1990-01-02,0.263,1.5\n1990-01-03,,1.6\n")

    result = read(tmp_path)

    assert result.problems == []
    assert sorted(result.bars) == ["AAPL", "KO", "QQQ"]
    assert result.bars["QQQ"]["adj_close"].iloc[-1] == 187.686279296875
    assert list(result.bars["AAPL"].index) == days("1990-01-02")
    assert list(result.bars["KO"]["adj_close"]) == [1.5, 1.6]


def test_index_file_name_gives_caret_symbol(tmp_path):
    symbol, bars = only_bars(write(tmp_path, "GSPC_index.csv", YAHOO))

    assert symbol == "^GSPC"
    assert len(bars) == 2


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("SPY.csv", "SPY"),
        ("brk-b.csv", "BRK-B"),
        ("VTI.CSV.GZ", "VTI"),
        ("pooksoft__daily_adjusted__DA-AAPL-T-2021-04-21.csv", "AAPL"),
        ("DA-BF.B-T-2021-04-21.csv.gz", "BF.B"),
        ("GSPC_index.csv", "^GSPC"),
        ("my prices.csv", None),
        ("spy_prices.csv", None),
        ("_index.csv", None),
    ],
)
def test_symbol_from_file_name(name, symbol):
    assert symbol_from_file_name(Path(name)) == symbol


def test_symbol_option_names_a_file_whose_name_does_not(tmp_path):
    path = write(tmp_path, "my prices.csv", YAHOO)

    symbol, bars = only_bars(path, symbol=" vti ")

    assert symbol == "VTI"
    assert len(bars) == 2


def test_symbol_option_overrides_the_file_name_and_a_single_wide_column(tmp_path):
    assert only_bars(write(tmp_path, "SPY.csv", YAHOO), symbol="IVV")[0] == "IVV"
    assert only_bars(write(tmp_path, "export.csv", "date,Price\n2020-01-02,10.0\n"), symbol="VT")[0] == "VT"


def test_symbol_option_is_refused_for_several_wide_columns_and_for_a_directory(tmp_path):
    path = write(tmp_path, "two.csv", "date,SPY,BND\n2020-01-02,1,2\n")

    assert "has 2 symbol columns" in only_problem(path, symbol="SPY")
    with pytest.raises(ProviderError, match="is a directory") as raised:
        read(tmp_path, symbol="SPY")
    assert raised.value.transient is False
    with pytest.raises(ProviderError, match="not a ticker symbol"):
        read(path, symbol="not a symbol")


# --- Whole-file errors -----------------------------------------------------------


def test_underivable_symbol_names_the_file_and_suggests_symbol_option(tmp_path):
    message = only_problem(write(tmp_path, "my prices.csv", YAHOO))

    assert "my prices.csv" in message
    assert "--symbol" in message


@pytest.mark.parametrize(
    ("name", "text", "column"),
    [
        ("SPY.csv", "Date,Open,High,Low,Volume\n2020-01-02,1,2,0.5,100\n", "Close"),
        (
            "DA-SPY-T-2021-04-21.csv",
            "timestamp,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n",
            "adjusted_close",
        ),
    ],
)
def test_missing_required_column_is_named(tmp_path, name, text, column):
    message = only_problem(write(tmp_path, name, text))

    assert message.startswith(f"{name}: missing column {column}")


def test_missing_date_column_is_reported(tmp_path):
    message = only_problem(write(tmp_path, "SPY.csv", "Day,Close\n2020-01-02,1\n"))

    assert message.startswith("SPY.csv: no date column")


def test_bad_date_reports_line_number_counting_header_and_blank_lines(tmp_path):
    path = write(tmp_path, "SPY.csv", "Date,Close\n2020-01-02,1.0\n\n2020-01-03,1.1\n03/01/2020,1.2\n")

    message = only_problem(path)

    assert message == "SPY.csv: line 5: '03/01/2020' is not a date (expected YYYY-MM-DD)"


@pytest.mark.parametrize("cell", ["2020-02-30", "2020-1-2", "yesterday", ""])
def test_unparseable_dates_are_rejected(tmp_path, cell):
    path = write(tmp_path, "wide.csv", f"date,SPY\n2020-01-02,1.0\n{cell},1.1\n")

    assert only_problem(path).startswith("wide.csv: line 3: ")


@pytest.mark.parametrize("cell", ["abc", "12.3.4", '"1,5"', "True"])
def test_non_numeric_price_reports_line_column_and_value(tmp_path, cell):
    path = write(tmp_path, "SPY.csv", f"Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,0.5,1.5,{cell},100\n")

    message = only_problem(path)

    assert message.startswith("SPY.csv: line 2: Adj Close value ")
    assert message.endswith("is not a number")


def test_non_numeric_cell_in_a_wide_table_is_rejected(tmp_path):
    path = write(tmp_path, "wide.csv", "date,SPY,BND\n2020-01-02,1.0,2.0\n2020-01-03,1.1,n/a!\n")

    assert only_problem(path) == "wide.csv: line 3: BND value 'n/a!' is not a number"


def test_wide_column_that_is_not_a_symbol_is_rejected(tmp_path):
    path = write(tmp_path, "wide.csv", "date,SPY,Total Return\n2020-01-02,1.0,2.0\n")

    assert "column 'Total Return' is not a ticker symbol" in only_problem(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("date,SPY,spy\n2020-01-02,1,2\n", "appears more than once"),
        ("Date\n2020-01-02\n", "no price columns"),
        ("Date,Close\n2020-01-02,1.0,7\n", "cannot be parsed as CSV"),
        ("Date,Close\n2020-01-02,1.0\n2020-01-03,1.0,7\n", "Expected 2 fields in line 3, saw 3"),
    ],
)
def test_malformed_files_are_rejected_with_a_reason(tmp_path, text, expected):
    message = only_problem(write(tmp_path, "SPY.csv", text))

    assert message.startswith("SPY.csv: ")
    assert expected in message


def test_header_only_file_gives_an_empty_frame(tmp_path):
    symbol, bars = only_bars(write(tmp_path, "SPY.csv", "Date,Close\n"))

    assert symbol == "SPY"
    assert bars.empty
    assert_bars_shape(bars)


# --- Values passed through -------------------------------------------------------


def test_negative_zero_nan_prices_and_duplicate_dates_pass_through_unchanged(tmp_path):
    path = write(
        tmp_path,
        "SPY.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-01-02,1,2,0.5,1.5,-3.25,100\n"
        "2020-01-02,1,2,0.5,1.5,0,100\n"
        "2020-01-03,1,2,0.5,1.5,NaN,\n",
    )

    _, bars = only_bars(path)

    assert list(bars.index) == days("2020-01-02", "2020-01-02", "2020-01-03")
    assert list(bars["adj_close"][:2]) == [-3.25, 0.0]
    assert np.isnan(bars["adj_close"].iloc[2])
    assert np.isnan(bars["volume"].iloc[2])


def test_same_symbol_in_two_files_is_concatenated_keeping_duplicates(tmp_path):
    write(tmp_path, "SPY.csv", "Date,Close\n2020-01-03,11.0\n2020-01-06,12.0\n")
    write(tmp_path, "wide.csv", "date,SPY\n2020-01-02,10.0\n2020-01-03,11.5\n")

    result = read(tmp_path)

    spy = result.bars["SPY"]
    assert list(spy.index) == days("2020-01-02", "2020-01-03", "2020-01-03", "2020-01-06")
    assert list(spy["adj_close"]) == [10.0, 11.0, 11.5, 12.0]


def test_numbers_are_parsed_exactly(tmp_path):
    cells = ["0.1", "97.96089172363281", "0.596878742448", "1e-7", "123456789.123456789", "4309840000"]
    text = "date,SPY\n" + "".join(f"2020-01-{day:02d},{cell}\n" for day, cell in enumerate(cells, start=2))

    _, bars = only_bars(write(tmp_path, "wide.csv", text))

    assert list(bars["adj_close"]) == [float(cell) for cell in cells]


# --- Directories and fetch_daily_bars -------------------------------------------


def test_directory_reads_csv_files_sorted_non_recursively_and_reports_problems(tmp_path):
    write(tmp_path, "SPY.csv", YAHOO)
    write(tmp_path, "BND.csv", "Date,Close\n2016-04-28,82.91\n")
    write(tmp_path, "broken.csv", "Date,Close\nnot-a-date,1\n")
    write(tmp_path, "notes.txt", "not a price file")
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested", "QQQ.csv", YAHOO)

    result = read(tmp_path)

    assert [summary.path.name for summary in result.files] == ["BND.csv", "SPY.csv"]
    assert [problem.path.name for problem in result.problems] == ["broken.csv"]
    assert str(result.problems[0]).startswith("broken.csv: line 2:")
    assert sorted(result.bars) == ["BND", "SPY"]


def test_fetch_filters_symbols_and_inclusive_dates(tmp_path):
    write(tmp_path, "wide.csv", "date,SPY,BND\n2020-01-02,1,10\n2020-01-03,2,11\n2020-01-06,3,12\n2020-01-07,4,13\n")
    provider = CsvProvider(path=str(tmp_path))

    found = provider.fetch_daily_bars(["SPY", "GLD"], date(2020, 1, 3), date(2020, 1, 6))

    assert list(found) == ["SPY"]
    assert list(found["SPY"].index) == days("2020-01-03", "2020-01-06")
    assert list(found["SPY"]["adj_close"]) == [2.0, 3.0]
    assert_bars_shape(found["SPY"])
    assert found["SPY"].equals(provider.fetch_daily_bars(["SPY"], date(2020, 1, 3), date(2020, 1, 6))["SPY"])


def test_fetch_skips_rejected_files_but_fails_when_none_is_readable(tmp_path, caplog):
    write(tmp_path, "SPY.csv", "Date,Close\n2020-01-02,1\n")
    write(tmp_path, "BND.csv", "Date,Close\n2020-01-02,abc\n")
    provider = CsvProvider(path=str(tmp_path))

    found = provider.fetch_daily_bars(["SPY", "BND"], date(2020, 1, 1), date(2020, 1, 31))

    assert list(found) == ["SPY"]
    assert "BND.csv: line 2: Close value 'abc' is not a number" in caplog.text
    (tmp_path / "SPY.csv").unlink()
    with pytest.raises(ProviderError, match="could be read") as raised:
        provider.fetch_daily_bars(["BND"], date(2020, 1, 1), date(2020, 1, 31))
    assert raised.value.transient is False


def test_unknown_path_and_empty_directory_are_permanent_errors(tmp_path):
    missing = CsvProvider(path=str(tmp_path / "nowhere"))
    with pytest.raises(ProviderError, match="does not exist") as raised:
        missing.fetch_daily_bars(["SPY"], date(2020, 1, 1), date(2020, 1, 31))
    assert raised.value.transient is False
    with pytest.raises(ProviderError, match=r"no \.csv or \.csv\.gz files"):
        CsvProvider(path=str(tmp_path)).read_all()


def test_empty_path_is_not_configured_at_fetch_time_not_construction():
    provider_class = import_string(settings.PRICE_PROVIDER_REGISTRY["csv"])
    provider = provider_class(**{**settings.PRICE_PROVIDER_OPTIONS["csv"], "path": ""})

    assert provider.name == "csv"
    assert provider.synthetic is False
    with pytest.raises(ProviderNotConfigured, match="PRICE_CSV_PATH is not set"):
        provider.fetch_daily_bars(["SPY"], date(2020, 1, 1), date(2020, 1, 31))


def test_unknown_option_is_refused():
    with pytest.raises(TypeError):
        CsvProvider(path="x", colour="blue")


# --- The real data files ----------------------------------------------------------


def bars_of(path: Path) -> dict[str, pd.DataFrame]:
    result = read(path)
    assert result.problems == []
    return result.bars


def span(frame: pd.DataFrame) -> tuple[int, date, date]:
    return len(frame), frame.index[0].date(), frame.index[-1].date()


@pytest.mark.realdata
def test_real_katrina_spy_yahoo_file(shared_data):
    bars = bars_of(shared_data / "portopt_katrinajames_etfs_2016-2021" / "SPY.csv")

    spy = bars["SPY"]
    assert span(spy) == (1258, date(2016, 4, 28), date(2021, 4, 27))
    assert spy["adj_close"].iloc[0] == pytest.approx(188.71, abs=0.01)
    assert spy["close"].iloc[0] == pytest.approx(207.45, abs=0.01)
    assert spy["adj_close"].iloc[-1] == pytest.approx(417.52, abs=0.01)


@pytest.mark.realdata
def test_real_katrina_directory_concatenates_per_ticker_and_wide_rows(shared_data):
    result = read(shared_data / "portopt_katrinajames_etfs_2016-2021")

    assert result.problems == []
    assert len(result.bars) == 30
    assert "^GSPC" in result.bars
    # SPY.csv and the derived wide table both hold SPY: both rows of each date are kept.
    spy = result.bars["SPY"]
    assert len(spy) == 2 * 1258
    assert spy.index.duplicated().sum() == 1258


@pytest.mark.realdata
def test_real_katrina_gspc_index_file(shared_data):
    bars = bars_of(shared_data / "portopt_katrinajames_etfs_2016-2021" / "GSPC_index.csv")

    assert list(bars) == ["^GSPC"]
    assert span(bars["^GSPC"]) == (1258, date(2016, 4, 28), date(2021, 4, 27))
    assert bars["^GSPC"]["close"].iloc[0] == pytest.approx(2075.81, abs=0.01)


@pytest.mark.realdata
def test_real_aoife_vxus_close_only_file(shared_data):
    bars = bars_of(shared_data / "ai_investing_etf_aoifegaughan5_2010-2024" / "VXUS.csv")

    vxus = bars["VXUS"]
    assert span(vxus) == (3304, date(2011, 1, 28), date(2024, 3, 15))
    assert (vxus["close"] == vxus["adj_close"]).all()


@pytest.mark.realdata
def test_real_pyportfolioopt_test_prices(shared_data):
    bars = bars_of(shared_data / "pyportfolioopt" / "pyportfolioopt__tests_resources__stock_prices.csv")

    assert len(bars) == 20
    assert bars["FB"].index[0].date() == date(2012, 5, 18)
    assert bars["BABA"].index[0].date() == date(2014, 9, 19)
    assert span(bars["AAPL"]) == (7126, date(1989, 12, 29), date(2018, 4, 11))


@pytest.mark.realdata
def test_real_pooksoft_alphavantage_aapl(shared_data):
    bars = bars_of(shared_data / "pooksoft_sp500_alphavantage" / "pooksoft__daily_adjusted__DA-AAPL-T-2021-04-21.csv")

    aapl = bars["AAPL"]
    assert span(aapl) == (5402, date(1999, 11, 1), date(2021, 4, 21))
    assert aapl["close"].iloc[0] == 77.62
    assert aapl["adj_close"].iloc[0] == 0.596878742448


@pytest.mark.realdata
def test_real_skfolio_gzipped_sp500_dataset(shared_data):
    bars = bars_of(shared_data / "skfolio" / "skfolio__datasets_data__sp500_dataset.csv.gz")

    assert len(bars) == 20
    assert {span(frame) for frame in bars.values()} == {(8313, date(1990, 1, 2), date(2022, 12, 28))}


@pytest.mark.realdata
def test_real_504_column_wide_table_reads_fast_and_exactly(shared_data):
    path = (
        shared_data
        / "pooksoft_sp500_alphavantage"
        / ("pooksoft_sp500_adjusted_close_wide_2014-01-02_2021-04-21.derived.csv")
    )

    started = time.perf_counter()
    result = read(path)
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0, f"reading the 504-column table took {elapsed:.2f} s"
    assert result.problems == []
    assert result.files[0].rows == 1838
    assert len(result.bars) == 504
    assert "BRK.B" in result.bars
    assert "BF.B" not in result.bars
    dates = pd.DatetimeIndex(sorted(set().union(*(frame.index for frame in result.bars.values()))))
    assert (len(dates), dates[0].date(), dates[-1].date()) == (1838, date(2014, 1, 2), date(2021, 4, 21))
    assert sum(len(frame) == 1838 for frame in result.bars.values()) == 471
    # Every parsed value equals Python's own (correctly rounded) parse of the text.
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for column in range(1, len(header), 50):
        expected = {pd.Timestamp(row[0]): float(row[column]) for row in rows[1:] if row[column]}
        assert result.bars[header[column]]["adj_close"].to_dict() == expected
