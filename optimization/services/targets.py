"""Compute portfolios' targets and store them: optimizer results are reused by input hash, so
identical price window, asset data and settings on the same day are solved once however many
portfolios share them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
from django.db import IntegrityError, transaction

from marketdata.models import Instrument
from optimization.core.engine import OptimizationResult as CoreResult
from optimization.core.engine import OptimizerSettings, input_hash, optimize, optimize_many
from optimization.core.errors import InsufficientData, OptimizationError

from ..models import OptimizationResult, TargetAllocation, TargetWeight
from .analysis import result_analysis
from .decimals import decimal_or_none, weights_to_decimal
from .inputs import asset_info, portfolio_symbols, price_window, universes_read
from .settings import PORTFOLIO_SETTING_NAMES, optimizer_settings_for


def _settings_json(settings: OptimizerSettings) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(settings), default=_json_default))


def _json_default(value):
    if isinstance(value, frozenset | set):
        return sorted(value)
    return str(value)


def result_store(result: CoreResult, settings: OptimizerSettings) -> tuple[OptimizationResult, bool]:
    """(stored row, created) for a core result; an existing row with the same hash is returned as is.

    A new row also stores `result_analysis` (the frontier is solved here once per universe and
    constraints in a process, or read from a result stored today).
    """
    existing = OptimizationResult.objects.filter(input_hash=result.input_hash).first()
    if existing is not None:
        return existing, False
    analysis = result_analysis(result, settings)
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(result.symbols))}
    missing = [symbol for symbol in result.symbols if symbol not in instruments]
    if missing:
        raise InsufficientData(f"no instrument rows for {', '.join(missing)}")
    as_of = result.as_of.date() if hasattr(result.as_of, "date") else result.as_of
    try:
        with transaction.atomic():
            row = OptimizationResult.objects.create(
                input_hash=result.input_hash,
                as_of=as_of,
                requested_strategy=result.requested_strategy,
                strategy=result.strategy,
                fallbacks=[step.to_dict() for step in result.fallbacks],
                notes=list(result.notes),
                warnings=[warning.to_dict() for warning in result.warnings],
                equity_share=decimal_or_none(result.equity_share, 5),
                expected_return=decimal_or_none(result.metrics.expected_return, 10),
                volatility=decimal_or_none(result.metrics.volatility, 10),
                sharpe=decimal_or_none(result.metrics.sharpe, 10),
                metrics=result.metrics.to_dict(result.universe),
                settings=_settings_json(settings),
                analysis=analysis,
            )
            TargetWeight.objects.bulk_create(
                TargetWeight(result=row, instrument=instruments[symbol], weight=weight)
                for symbol, weight in weights_to_decimal(result.weights_dict()).items()
            )
    except IntegrityError:
        # Another worker stored the same inputs a moment ago: theirs is identical, use it.
        return OptimizationResult.objects.get(input_hash=result.input_hash), False
    return row, True


def _portfolio_inputs(portfolio, as_of: date | None, **overrides):
    settings = optimizer_settings_for(portfolio, on=as_of, **overrides)
    symbols = portfolio_symbols(portfolio)
    prices = price_window(symbols, as_of=as_of, lookback_days=settings.estimators.lookback_days)
    return settings, prices, asset_info(symbols)


@dataclass(frozen=True)
class TargetsComputed:
    """A portfolio's targets and what they were computed from: the price window read (adjusted
    closes of the portfolio's symbols over the lookback) and the optimizer settings."""

    allocation: TargetAllocation
    prices: pd.DataFrame
    settings: OptimizerSettings


def targets_compute_each(
    portfolios: Sequence, *, as_of: date | None = None, universes: Mapping[int, Sequence[str]] | None = None
) -> list[TargetsComputed | OptimizationError]:
    """Each portfolio's targets for ``as_of`` (or the error that stopped them), in order.

    One price read per distinct universe and lookback, one read of the results already stored for
    the inputs, one solve per distinct input not stored yet, one write of the day's allocations.
    ``universes``: each portfolio's symbols by id when the caller has read them.
    """
    answers: list[TargetsComputed | OptimizationError | None] = [None] * len(portfolios)
    universes = universes_read(portfolios) if universes is None else universes
    groups: dict[tuple, list[tuple[int, object, OptimizerSettings]]] = {}
    for position, portfolio in enumerate(portfolios):
        try:
            settings = optimizer_settings_for(portfolio, on=as_of)
            symbols = portfolio_symbols(portfolio, universe=universes[portfolio.pk])
        except OptimizationError as error:
            answers[position] = error
            continue
        key = (tuple(symbols), settings.estimators.lookback_days)
        groups.setdefault(key, []).append((position, portfolio, settings))
    keyed = []
    for (symbols, lookback_days), members in groups.items():
        try:
            prices = price_window(symbols, as_of=as_of, lookback_days=lookback_days)
        except OptimizationError as error:
            for position, _, _ in members:
                answers[position] = error
            continue
        assets = asset_info(symbols)
        keyed.append((prices, assets, [(*member, input_hash(prices, assets, member[2])) for member in members]))
    hashes = {member[3] for _, _, members in keyed for member in members}
    # The report's fields (tens of KB of JSON) are not what a plan needs: left in the database.
    stored = {
        row.input_hash: row
        for row in OptimizationResult.objects.defer("analysis", "metrics", "settings").filter(input_hash__in=hashes)
    }
    allocations = []
    for prices, assets, members in keyed:
        unsolved = [member for member in members if member[3] not in stored]
        results = optimize_many(prices, assets, [settings for _, _, settings, _ in unsolved], PORTFOLIO_SETTING_NAMES)
        solved = {}
        for (position, _, settings, key), result in zip(unsolved, results, strict=True):
            if isinstance(result, OptimizationError):
                answers[position] = result
            elif key not in stored:
                stored[key], created = result_store(result, settings)
                solved[key] = created
        for position, portfolio, settings, key in members:
            if answers[position] is None:
                # Solved here for the first portfolio with these inputs; reused by the others.
                reused = not solved.pop(key, False)
                row = stored[key]
                allocation = TargetAllocation(portfolio=portfolio, as_of=row.as_of, result=row, reused=reused)
                allocations.append(allocation)
                answers[position] = TargetsComputed(allocation, prices, settings)
    _allocations_store(allocations)
    return answers  # type: ignore[return-value]


def targets_compute_with_window(*, portfolio, as_of: date | None = None) -> TargetsComputed:
    """`targets_compute`, also answering the price window and settings it used (the planner
    reuses them for the run's risk figures instead of reading the prices again)."""
    (answer,) = targets_compute_each([portfolio], as_of=as_of)
    if isinstance(answer, OptimizationError):
        raise answer
    return answer


def targets_compute(*, portfolio, as_of: date | None = None) -> TargetAllocation:
    """Compute (or reuse) the portfolio's target weights for ``as_of`` and record them."""
    return targets_compute_with_window(portfolio=portfolio, as_of=as_of).allocation


def portfolio_optimize(*, portfolio, as_of: date | None = None, **overrides) -> tuple[CoreResult, TargetAllocation]:
    """Optimize with the portfolio's policy (``overrides`` replace settings), store and return both."""
    settings, prices, assets = _portfolio_inputs(portfolio, as_of, **overrides)
    result = optimize(prices, assets, settings, names=PORTFOLIO_SETTING_NAMES)
    row, created = result_store(result, settings)
    allocation = TargetAllocation(portfolio=portfolio, as_of=row.as_of, result=row, reused=not created)
    _allocations_store([allocation])
    return result, allocation


def targets_compute_many(
    portfolios: Sequence, *, as_of: date | None = None
) -> list[TargetAllocation | OptimizationError]:
    """Targets for many portfolios: one price read per distinct universe, one solve per distinct input."""
    return [
        answer if isinstance(answer, OptimizationError) else answer.allocation
        for answer in targets_compute_each(portfolios, as_of=as_of)
    ]


def _allocations_store(allocations: list[TargetAllocation]) -> None:
    """Record the portfolios' targets for the day (one upsert for them all)."""
    TargetAllocation.objects.bulk_create(
        allocations,
        update_conflicts=True,
        unique_fields=["portfolio", "as_of"],
        update_fields=["result", "reused", "updated_at"],
    )
