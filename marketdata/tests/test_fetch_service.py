"""prices_fetch and prices_import end to end: incremental writes, retries, quality findings, atomicity."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from marketdata.models import FetchLog, PriceBar, QualityFinding
from marketdata.providers.chain import ProviderChain
from marketdata.services import NothingFetched, prices_fetch, prices_import
from marketdata.stores.database import DatabasePriceStore
from marketdata.tests.factories import ScriptedProvider, bars_frame, transient

pytestmark = pytest.mark.django_db

# Thursday 2024-02-01 at 17:00 New York: that day's session has closed.
NOW = datetime(2024, 2, 1, 22, 0, tzinfo=UTC)
HISTORY = {
    "SPY": bars_frame(date(2023, 1, 3), date(2024, 3, 28)),
    "BND": bars_frame(date(2023, 1, 3), date(2024, 3, 28), first_close=70),
}


def chain_of(*providers, retries=3):
    return ProviderChain(providers, retries=retries, backoff_s=0.0, timeout_s=10.0, sleep=lambda s: None, limiters={})


def fetch(provider_or_chain, **kwargs):
    chain = provider_or_chain if isinstance(provider_or_chain, ProviderChain) else chain_of(provider_or_chain)
    kwargs.setdefault("symbols", ["SPY", "BND"])
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("backfill_days", 20)
    return prices_fetch(chain=chain, store=DatabasePriceStore(), **kwargs)


def test_first_fetch_backfills_and_a_rerun_writes_nothing():
    provider = ScriptedProvider("source", HISTORY)
    log = fetch(provider)
    assert (log.status, log.rows_written, log.rows_rejected, log.gaps_found) == ("success", 40, 0, 0)
    assert log.start_date == date(2024, 1, 4)  # 20 sessions ending 2024-02-01
    assert log.symbol_sources == {"SPY": "source", "BND": "source"}
    assert PriceBar.objects.count() == 40
    assert PriceBar.objects.order_by("date").last().date == date(2024, 2, 1)

    again = fetch(provider)
    assert (again.status, again.rows_written) == ("success", 0)
    assert PriceBar.objects.count() == 40
    assert len(provider.calls) == 1  # nothing was missing, so no provider was asked


def test_later_fetch_asks_only_for_sessions_after_the_last_stored_bar():
    provider = ScriptedProvider("source", HISTORY)
    fetch(provider)
    log = fetch(provider, now=datetime(2024, 2, 8, 22, 0, tzinfo=UTC))
    assert provider.calls[-1][1:] == (date(2024, 2, 2), date(2024, 2, 8))
    assert log.rows_written == 2 * 5
    assert PriceBar.objects.filter(instrument__symbol="SPY").count() == 25


def test_provider_failing_twice_then_succeeding_writes_each_bar_once():
    flaky = ScriptedProvider("flaky", HISTORY, failures=[transient(), transient()])
    log = fetch(flaky)
    assert log.status == "success"
    assert len(flaky.calls) == 3
    assert PriceBar.objects.count() == 40
    assert PriceBar.objects.values("instrument", "date").distinct().count() == 40


def test_symbol_unknown_everywhere_fails_alone_and_is_logged():
    log = fetch(chain_of(ScriptedProvider("a", HISTORY), ScriptedProvider("b", {})), symbols=["SPY", "NOPE"])
    assert log.status == "partial"
    assert log.failed_symbols == ["NOPE"]
    assert {(e["provider"], e["symbol"]) for e in log.errors} == {("a", "NOPE"), ("b", "NOPE")}
    finding = QualityFinding.objects.get(kind="provider_failed", symbol="NOPE", detail__startswith="b:")
    assert "symbol missing" in finding.detail
    assert log.stale_symbols == ["NOPE"]


def test_nothing_fetched_raises_with_a_stored_failed_log():
    with pytest.raises(NothingFetched) as info:
        fetch(ScriptedProvider("down", {}, failures=[transient()] * 20), symbols=["SPY"])
    log = FetchLog.objects.get(pk=info.value.log.pk)
    assert log.status == "failed"
    assert log.rows_written == 0
    assert "HTTP 503" in log.errors[0]["error"]


def test_answer_missing_the_last_session_is_stored_and_reported_stale():
    short = {"SPY": bars_frame(date(2023, 1, 3), date(2024, 1, 30))}
    log = fetch(ScriptedProvider("short", short), symbols=["SPY"])
    assert log.rows_written == 18
    assert log.stale_symbols == ["SPY"]
    stale = QualityFinding.objects.get(kind="stale")
    assert stale.detail == "last bar is 2024-01-30; expected 2024-02-01"


def test_gaps_and_suspicious_moves_are_found_and_bad_rows_rejected():
    spy = bars_frame(date(2023, 1, 3), date(2024, 3, 28))
    spy = spy.drop(spy.index[spy.index == "2024-01-10"])
    spy.loc["2024-01-17", "adj_close"] = -1.0
    spy.loc["2024-01-24":, "adj_close"] *= 1.8
    log = fetch(ScriptedProvider("source", {"SPY": spy}), symbols=["SPY"])
    assert (log.rows_written, log.rows_rejected, log.gaps_found) == (18, 1, 2)
    found = sorted((f.kind, f.date) for f in QualityFinding.objects.all())
    assert found == [
        ("gap", date(2024, 1, 10)),
        ("gap", date(2024, 1, 17)),
        ("rejected_price", date(2024, 1, 17)),
        ("suspicious_move", date(2024, 1, 24)),
    ]


def test_a_jump_between_the_stored_bar_and_the_next_fetch_is_flagged():
    provider = ScriptedProvider("source", {"SPY": bars_frame(date(2023, 1, 3), date(2024, 3, 28))})
    fetch(provider, symbols=["SPY"])
    provider.bars["SPY"] = provider.bars["SPY"].copy()
    provider.bars["SPY"].loc["2024-02-02":, "adj_close"] *= 0.4  # an unadjusted split, say
    log = fetch(provider, symbols=["SPY"], now=datetime(2024, 2, 5, 22, 0, tzinfo=UTC))
    moves = list(log.findings.filter(kind="suspicious_move").values_list("date", flat=True))
    assert moves == [date(2024, 2, 2)]
    assert log.gaps_found == 0


def test_explicit_start_fetches_a_stored_range_again_without_duplicates():
    provider = ScriptedProvider("source", HISTORY)
    fetch(provider)
    log = fetch(provider, start=date(2023, 12, 1))
    assert provider.calls[-1][1] == date(2023, 12, 1)
    assert log.rows_written == 2 * 22  # only 2023-12-01..2024-01-03 was new (Dec 25 a holiday)
    assert PriceBar.objects.count() == 84


def test_sample_provider_bars_are_stored_as_synthetic(settings):
    log = prices_fetch(symbols=["SPY"], provider_names=["sample"], backfill_days=5, now=NOW, store=DatabasePriceStore())
    assert log.symbol_sources == {"SPY": "sample"}
    assert set(PriceBar.objects.values_list("synthetic", "source")) == {(True, "sample")}


def test_interrupted_import_leaves_no_bar_and_no_finding(tmp_path, monkeypatch):
    (tmp_path / "SPY.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,1,1,1,1,1,10\n2024-01-03,1,1,1,1,-1,10\n2024-01-04,1,1,1,1,1,10\n"
    )
    real_write = DatabasePriceStore.write_bars

    def write_then_die(self, bars):
        real_write(self, bars)
        raise KeyboardInterrupt  # the process is stopped after the rows went in

    monkeypatch.setattr(DatabasePriceStore, "write_bars", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        prices_import(path=tmp_path, store=DatabasePriceStore())
    assert PriceBar.objects.count() == 0
    assert QualityFinding.objects.count() == 0
    assert FetchLog.objects.get().status == "running"
