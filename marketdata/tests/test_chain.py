"""The provider chain: fallback order, retries with exponential backoff, timeouts, rate limits, validation."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from marketdata.providers.base import ProviderError, ProviderNotConfigured
from marketdata.providers.chain import ProviderChain, RateLimiter
from marketdata.tests.factories import ScriptedProvider, bars_frame, transient

START, END = date(2024, 1, 2), date(2024, 1, 31)
LAST = date(2024, 1, 31)


class FakeClock:
    """Time that moves only when something sleeps: backoff and rate limits are measured exactly."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def make_chain(*providers, retries=3, backoff_s=2.0, timeout_s=5.0, clock=None):
    clock = clock or FakeClock()
    return (
        ProviderChain(
            providers,
            retries=retries,
            backoff_s=backoff_s,
            timeout_s=timeout_s,
            sleep=clock.sleep,
            clock=clock,
            limiters={},
        ),
        clock,
    )


def test_each_symbol_comes_from_the_first_provider_that_has_it():
    first = ScriptedProvider("first", {"SPY": bars_frame(START, END)})
    second = ScriptedProvider("second", {"SPY": bars_frame(START, END, first_close=1), "BND": bars_frame(START, END)})
    chain, _ = make_chain(first, second)
    result = chain.fetch(["SPY", "BND"], START, END, LAST)
    assert result.sources == {"SPY": "first", "BND": "second"}
    assert result.bars["SPY"]["adj_close"].iloc[0] == 100.0
    assert [c[0] for c in second.calls] == [("BND",)]
    assert [(f.provider, f.symbol, f.error) for f in result.failures] == [
        ("first", "BND", "symbol missing from the answer")
    ]


def test_unknown_symbol_at_every_provider_is_reported_per_provider():
    chain, _ = make_chain(ScriptedProvider("a", {}), ScriptedProvider("b", {}))
    result = chain.fetch(["NOPE"], START, END, LAST)
    assert result.bars == {}
    assert result.missing(["NOPE"]) == ["NOPE"]
    assert [(f.provider, f.symbol) for f in result.failures] == [("a", "NOPE"), ("b", "NOPE")]


@pytest.mark.parametrize(
    ("frame_factory", "reason"),
    [
        (lambda: bars_frame(START, END).iloc[0:0], "no rows returned"),
        (lambda: bars_frame(START, END).assign(adj_close=np.nan), "every price is missing (NaN)"),
        (lambda: bars_frame(START, date(2024, 1, 29)), "last bar is 2024-01-29, expected 2024-01-31"),
    ],
)
def test_incomplete_answers_fall_through_to_the_next_provider(frame_factory, reason):
    bad = ScriptedProvider("bad", {"SPY": frame_factory()})
    good = ScriptedProvider("good", {"SPY": bars_frame(START, END)})
    chain, _ = make_chain(bad, good)
    result = chain.fetch(["SPY"], START, END, LAST)
    assert result.sources == {"SPY": "good"}
    assert [(f.provider, f.error) for f in result.failures] == [("bad", reason)]


def test_transient_failures_are_retried_with_exponential_backoff_then_succeed():
    flaky = ScriptedProvider("flaky", {"SPY": bars_frame(START, END)}, failures=[transient(), transient()])
    chain, clock = make_chain(flaky, backoff_s=2.0)
    result = chain.fetch(["SPY"], START, END, LAST)
    assert result.sources == {"SPY": "flaky"}
    assert len(result.bars["SPY"]) == 21
    assert clock.sleeps == [2.0, 4.0]
    assert len(flaky.calls) == 3
    assert result.failures == []


def test_retries_are_bounded_and_the_chain_moves_on():
    down = ScriptedProvider("down", {"SPY": bars_frame(START, END)}, failures=[transient()] * 10)
    backup = ScriptedProvider("backup", {"SPY": bars_frame(START, END)})
    chain, clock = make_chain(down, backup, retries=2, backoff_s=1.0)
    result = chain.fetch(["SPY"], START, END, LAST)
    assert result.sources == {"SPY": "backup"}
    assert len(down.calls) == 3
    assert clock.sleeps == [1.0, 2.0]
    assert result.failures[0].symbol is None
    assert "HTTP 503" in result.failures[0].error


def test_permanent_errors_and_missing_configuration_are_not_retried():
    broken = ScriptedProvider("broken", {}, failures=[ProviderError("credentials rejected", transient=False)])
    unset = ScriptedProvider("unset", {}, failures=[ProviderNotConfigured("ALPACA_API_KEY is not set")])
    chain, clock = make_chain(broken, unset)
    result = chain.fetch(["SPY"], START, END, LAST)
    assert len(broken.calls) == len(unset.calls) == 1
    assert clock.sleeps == []
    assert [(f.provider, f.symbol, f.error) for f in result.failures if f.symbol is None] == [
        ("broken", None, "credentials rejected"),
        ("unset", None, "ALPACA_API_KEY is not set"),
    ]


def test_unexpected_exceptions_become_transient_provider_errors():
    buggy = ScriptedProvider("buggy", {}, failures=[KeyError("Close"), KeyError("Close")])
    chain, _ = make_chain(buggy, retries=1, backoff_s=0.0)
    result = chain.fetch(["SPY"], START, END, LAST)
    assert len(buggy.calls) == 2
    assert result.failures[0].error == "buggy raised KeyError: 'Close'"


def test_a_provider_that_hangs_times_out_and_the_next_one_answers():
    slow = ScriptedProvider("slow", {"SPY": bars_frame(START, END)}, delay_s=2.0)
    fast = ScriptedProvider("fast", {"SPY": bars_frame(START, END)})
    chain, _ = make_chain(slow, fast, retries=0, timeout_s=0.2)
    result = chain.fetch(["SPY"], START, END, LAST)
    assert result.sources == {"SPY": "fast"}
    assert result.failures[0].error == "slow timed out after 0.2 s"


def test_long_symbol_lists_are_split_into_batches():
    many = {f"S{i}": bars_frame(START, END) for i in range(5)}
    provider = ScriptedProvider("batched", many)
    provider.max_symbols_per_request = 2
    chain, _ = make_chain(provider)
    result = chain.fetch(sorted(many), START, END, LAST)
    assert len(result.bars) == 5
    assert [len(call[0]) for call in provider.calls] == [2, 2, 1]


def test_rate_limit_spaces_calls_to_one_provider():
    provider = ScriptedProvider("limited", {"A": bars_frame(START, END)}, rate_limit_per_minute=30)
    provider.max_symbols_per_request = 1
    chain, clock = make_chain(provider)
    chain.fetch(["A", "B", "C"], START, END, LAST)
    assert clock.sleeps == [2.0, 2.0]


def test_rate_limiter_does_not_sleep_when_calls_are_already_spaced():
    clock = FakeClock()
    limiter = RateLimiter(60, sleep=clock.sleep, clock=clock)
    limiter.wait()
    clock.now += 5
    limiter.wait()
    assert clock.sleeps == []


def test_when_no_provider_reaches_the_last_session_the_first_usable_answer_is_kept_as_incomplete():
    short = ScriptedProvider("short", {"SPY": bars_frame(START, date(2024, 1, 29))})
    shorter = ScriptedProvider("shorter", {"SPY": bars_frame(START, date(2024, 1, 25))})
    chain, _ = make_chain(short, shorter)
    result = chain.fetch(["SPY"], START, END, LAST)
    assert result.sources == {"SPY": "short"}
    assert result.incomplete == ["SPY"]
    assert result.bars["SPY"].index[-1].date() == date(2024, 1, 29)
    assert [f.provider for f in result.failures] == ["short", "shorter"]
