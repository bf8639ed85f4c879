"""fetch_prices, import_prices and export_prices as a user runs them: summaries, exit codes, round trips."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from marketdata.models import FetchLog, PriceBar, QualityFinding
from marketdata.stores.database import DatabasePriceStore
from marketdata.stores.parquet import ParquetPriceStore

pytestmark = pytest.mark.django_db


def run(*args: str, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def test_fetch_prices_from_the_sample_provider_then_again_writes_nothing():
    first = run("fetch_prices", "--tickers", "spy,bnd", "--provider", "sample", "--backfill-days", "10")
    assert "rows written:   20" in first
    assert "sample (SYNTHETIC prices, not market data)" in first
    assert PriceBar.objects.count() == 20
    second = run("fetch_prices", "--tickers", "SPY,BND", "--provider", "sample", "--backfill-days", "10")
    assert "rows written:   0" in second
    assert PriceBar.objects.count() == 20


def test_fetch_prices_for_a_past_range():
    out = run(
        "fetch_prices", "--tickers", "VTI", "--provider", "sample", "--start", "2024-01-02", "--end", "2024-01-31"
    )
    assert "rows written:   21" in out
    assert "date range:     2024-01-02 .. 2024-01-31" in out
    assert PriceBar.objects.order_by("date").last().date == date(2024, 1, 31)


def test_fetch_prices_exits_non_zero_when_nothing_could_be_fetched(settings):
    settings.PRICE_PROVIDER_OPTIONS = {**settings.PRICE_PROVIDER_OPTIONS, "csv": {"path": ""}}
    with pytest.raises(CommandError, match="nothing could be fetched for SPY"):
        run("fetch_prices", "--tickers", "SPY", "--provider", "csv")
    log = FetchLog.objects.get()
    assert log.status == "failed"
    assert log.errors[0]["error"] == "PRICE_CSV_PATH is not set"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tickers", "SPY,b@d"], "--tickers='SPY,b@d' is invalid"),
        (["--provider", "bloomberg"], "--provider='bloomberg' is invalid: expected names from yfinance, alpaca"),
        (["--start", "2024-13-01"], "--start='2024-13-01' is invalid: expected a date as YYYY-MM-DD"),
        (["--start", "2024-02-01", "--end", "2024-01-01"], "--start=2024-02-01 is after --end=2024-01-01"),
        (["--backfill-days", "0"], "--backfill-days=0 is invalid"),
    ],
)
def test_fetch_prices_rejects_bad_arguments_before_doing_anything(args, message):
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("(", r"\(")):
        run("fetch_prices", *args)
    assert FetchLog.objects.count() == 0


def test_import_prices_reports_rejected_rows_and_duplicate_dates(tmp_path):
    (tmp_path / "SPY.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,10,11,9,10,10,100\n"
        "2024-01-03,10,11,9,10,-3,100\n"
        "2024-01-04,10,11,9,10,10.5,100\n"
        "2024-01-04,10,11,9,10,10.7,100\n"
        "2024-01-05,10,11,9,10,10.6,100\n"
    )
    out = run("import_prices", str(tmp_path / "SPY.csv"))
    assert "rows written:   2" in out
    assert "rows rejected:  3" in out
    assert "gaps:           2 missing sessions" in out
    kinds = sorted(QualityFinding.objects.values_list("kind", "date"))
    assert kinds == [
        ("duplicate_date", date(2024, 1, 4)),
        ("gap", date(2024, 1, 3)),
        ("gap", date(2024, 1, 4)),
        ("rejected_price", date(2024, 1, 3)),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Date,Open,High\n2024-01-02,1,2\n", "SPY.csv: missing column Close (or Adj Close)"),
        ("Date,Close\n2024-01-02,1\n2024-02-30,2\n", "SPY.csv: line 3: '2024-02-30' is not a date"),
        ("Date,Close\n2024-01-02,1\n2024-01-03,abc\n", "SPY.csv: line 3: Close value 'abc' is not a number"),
    ],
)
def test_import_prices_rejects_a_broken_file_whole_and_exits_non_zero(tmp_path, content, message):
    (tmp_path / "SPY.csv").write_text(content)
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_prices", str(tmp_path / "SPY.csv"), stdout=out)
    assert message in out.getvalue()
    assert PriceBar.objects.count() == 0


def test_import_prices_of_a_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run("import_prices", str(tmp_path / "nope"))


def test_export_then_import_into_the_parquet_store_gives_the_same_prices(tmp_path, settings):
    run(
        "fetch_prices",
        "--tickers",
        "SPY,BND,GLD",
        "--provider",
        "sample",
        "--start",
        "2023-06-01",
        "--end",
        "2024-02-29",
    )
    exported = tmp_path / "prices.csv"
    out = run("export_prices", "--format", "csv", "--output", str(exported))
    assert f"exported {3 * 188} bars of 3 symbols to {exported}" in out

    settings.STORAGE_TYPE = "parquet"
    settings.STORAGE_PATH = tmp_path / "store"
    run("import_prices", str(exported))
    args = (["SPY", "BND", "GLD"], date(2023, 1, 1), date(2024, 12, 31))
    pd.testing.assert_frame_equal(
        DatabasePriceStore().price_frame(*args), ParquetPriceStore().price_frame(*args), check_exact=True
    )

    parquet_file = tmp_path / "prices.parquet"
    run("export_prices", "--format", "parquet", "--output", str(parquet_file), "--tickers", "GLD")
    frame = pd.read_parquet(parquet_file)
    assert list(frame.columns) == [
        "symbol",
        "date",
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        "volume",
        "source",
        "synthetic",
    ]
    assert set(frame["symbol"]) == {"GLD"}
    assert len(frame) == 188
