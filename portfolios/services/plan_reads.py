"""What planning portfolios on one trading date reads, read once for all of them.

A request plans one portfolio and the daily run a batch of hundreds; both read through here, so a
batch takes the same handful of queries as one portfolio. Two stages: `inputs_read` (holdings and
universes: enough to tell from a plan's fingerprint whether it must be planned again), then
`plan_reads` for the portfolios that are planned (targets, instruments, the day's closes, the
brokers' answers about fractions, the last rebalance dates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from marketdata.models import Instrument
from marketdata.selectors import price_frame
from optimization.core.errors import OptimizationError
from optimization.services.inputs import price_window, universes_read, window_dates, window_of
from optimization.services.planning import manual_targets_set
from optimization.services.settings import optimizer_settings_for
from optimization.services.targets import TargetsComputed, targets_compute_each
from portfolios.models import BrokerAsset, Holding, Portfolio
from portfolios.selectors import last_rebalance_dates
from portfolios.services.fractionability import broker_answers_read


@dataclass(frozen=True)
class PlanInputsRead:
    """Each portfolio's holdings (with their instruments) and universe, by portfolio id."""

    as_of: date
    holdings: dict[int, list[Holding]]
    universes: dict[int, list[str]]


@dataclass(frozen=True)
class _Window:
    """A price window read for several portfolios: the symbols asked and the frame answered."""

    symbols: frozenset[str]
    start: date
    end: date
    frame: pd.DataFrame


@dataclass(frozen=True)
class PlanReads:
    """Everything else a plan reads, by portfolio id where it is a portfolio's.

    ``targets``: the optimizer's targets (or the error that stopped them) of the portfolios without
    manual targets; ``closes``: each symbol's close on the date (absent when there is none).
    """

    inputs: PlanInputsRead
    targets: dict[int, TargetsComputed | OptimizationError]
    instruments: dict[str, Instrument]
    closes: dict[str, float]
    broker_answers: dict[int, dict[int, BrokerAsset]]
    last_rebalance: dict[int, date]
    windows: dict[int | None, _Window] = field(default_factory=dict)

    def price_window(self, symbols: Sequence[str], *, as_of: date, lookback_days: int | None) -> pd.DataFrame:
        """`price_window`, from the window read for the batch's manual-target plans when it holds
        ``symbols`` (their risk figures: one read per lookback, not one per portfolio)."""
        window = self.windows.get(lookback_days)
        if window is None or as_of != self.inputs.as_of or not set(symbols) <= window.symbols:
            return price_window(symbols, as_of=as_of, lookback_days=lookback_days)
        return window_of(window.frame, symbols, start=window.start, end=window.end)


def inputs_read(portfolios: Sequence[Portfolio], *, as_of: date) -> PlanInputsRead:
    holdings: dict[int, list[Holding]] = {portfolio.pk: [] for portfolio in portfolios}
    rows = Holding.objects.filter(portfolio_id__in=list(holdings)).select_related("instrument")
    for holding in rows.order_by("portfolio_id", "instrument__symbol"):
        holdings[holding.portfolio_id].append(holding)
    return PlanInputsRead(as_of=as_of, holdings=holdings, universes=universes_read(portfolios))


def plan_reads(portfolios: Sequence[Portfolio], inputs: PlanInputsRead) -> PlanReads:
    as_of = inputs.as_of
    optimized = [p for p in portfolios if not manual_targets_set(p.manual_targets)]
    answers = targets_compute_each(optimized, as_of=as_of, universes=inputs.universes)
    targets = {portfolio.pk: answer for portfolio, answer in zip(optimized, answers, strict=True)}
    symbols = set()
    for portfolio in portfolios:
        symbols.update(inputs.universes[portfolio.pk])
        symbols.update(h.instrument.symbol for h in inputs.holdings[portfolio.pk])
        if isinstance(portfolio.manual_targets, Mapping):
            symbols.update(str(symbol).strip().upper() for symbol in portfolio.manual_targets)
    frame = price_frame(symbols=sorted(symbols), start=as_of, end=as_of) if symbols else None
    closes = {}
    if frame is not None and len(frame) and frame.index[-1].date() == as_of:
        closes = {s: float(v) for s, v in frame.iloc[-1].items() if v is not None and math.isfinite(v) and v > 0}
    return PlanReads(
        inputs=inputs,
        targets=targets,
        instruments={i.symbol: i for i in Instrument.objects.filter(symbol__in=sorted(symbols))},
        closes=closes,
        broker_answers=broker_answers_read(p.broker_account_id for p in portfolios),
        last_rebalance=last_rebalance_dates(portfolio_ids=[p.pk for p in portfolios], before=as_of),
        windows=_manual_windows([p for p in portfolios if p not in optimized], inputs),
    )


def _manual_windows(portfolios: Sequence[Portfolio], inputs: PlanInputsRead) -> dict[int | None, _Window]:
    """The price windows of manual-target plans' risk figures (their targets and holdings), one
    per lookback for all of them."""
    wanted: dict[int | None, set[str]] = {}
    for portfolio in portfolios:
        try:
            lookback_days = optimizer_settings_for(portfolio, on=inputs.as_of).estimators.lookback_days
        except ValueError:  # settings the plan refuses: it reads nothing
            continue
        symbols = wanted.setdefault(lookback_days, set())
        symbols.update(h.instrument.symbol for h in inputs.holdings[portfolio.pk])
        if isinstance(portfolio.manual_targets, Mapping):
            symbols.update(str(symbol).strip().upper() for symbol in portfolio.manual_targets)
    windows = {}
    for lookback_days, symbols in wanted.items():
        start, end = window_dates(as_of=inputs.as_of, lookback_days=lookback_days)
        frame = price_frame(symbols=sorted(symbols), start=start, end=end)
        windows[lookback_days] = _Window(frozenset(symbols), start, end, frame)
    return windows
