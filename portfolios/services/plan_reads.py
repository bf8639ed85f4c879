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
from dataclasses import dataclass
from datetime import date

from marketdata.models import Instrument
from marketdata.selectors import price_frame
from optimization.core.errors import OptimizationError
from optimization.services.inputs import universes_read
from optimization.services.planning import manual_targets_set
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
    )
