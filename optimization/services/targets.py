"""Compute a portfolio's targets and store them: optimizer results are reused by input hash, so
identical price window, asset data and settings on the same day are solved once however many
portfolios share them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
from django.db import IntegrityError, transaction

from marketdata.models import Instrument
from marketdata.recent import RecentReads
from optimization.core.engine import OptimizationResult as CoreResult
from optimization.core.engine import OptimizerSettings, input_hash, optimize, optimize_many
from optimization.core.errors import InsufficientData, OptimizationError

from ..models import OptimizationResult, TargetAllocation, TargetWeight
from .analysis import result_analysis
from .decimals import decimal_or_none, weights_to_decimal
from .inputs import asset_info, portfolio_symbols, price_window
from .settings import PORTFOLIO_SETTING_NAMES, optimizer_settings_for

# Stored results by input hash, which the daily run asks for again and again (see `marketdata.recent`).
_recent_results = RecentReads(max_entries=2048)


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


def targets_compute_with_window(*, portfolio, as_of: date | None = None) -> TargetsComputed:
    """`targets_compute`, also answering the price window and settings it used (the planner
    reuses them for the run's risk figures instead of reading the prices again)."""
    settings, prices, assets = _portfolio_inputs(portfolio, as_of)
    key = input_hash(prices, assets, settings)
    # Thousands of portfolios share a few hundred inputs; a stored result never changes (its
    # weights, read once, go with it). The report's fields (tens of KB of JSON) are not what a
    # plan needs: left in the database.
    row = _recent_results.get_or_read(
        key,
        lambda: OptimizationResult.objects.defer("analysis", "metrics", "settings").filter(input_hash=key).first(),
        keep=lambda found: found is not None,
    )
    if row is not None:
        return TargetsComputed(_allocate(portfolio, row, reused=True), prices, settings)
    _, allocation = _optimize_and_store(portfolio, prices, assets, settings)
    return TargetsComputed(allocation, prices, settings)


def targets_compute(*, portfolio, as_of: date | None = None) -> TargetAllocation:
    """Compute (or reuse) the portfolio's target weights for ``as_of`` and record them."""
    return targets_compute_with_window(portfolio=portfolio, as_of=as_of).allocation


def portfolio_optimize(*, portfolio, as_of: date | None = None, **overrides) -> tuple[CoreResult, TargetAllocation]:
    """Optimize with the portfolio's policy (``overrides`` replace settings), store and return both."""
    settings, prices, assets = _portfolio_inputs(portfolio, as_of, **overrides)
    return _optimize_and_store(portfolio, prices, assets, settings)


def _optimize_and_store(portfolio, prices, assets, settings) -> tuple[CoreResult, TargetAllocation]:
    result = optimize(prices, assets, settings, names=PORTFOLIO_SETTING_NAMES)
    row, created = result_store(result, settings)
    return result, _allocate(portfolio, row, reused=not created)


def targets_compute_many(
    portfolios: Sequence, *, as_of: date | None = None
) -> list[TargetAllocation | OptimizationError]:
    """Targets for many portfolios: one price read per distinct universe, one solve per distinct input."""
    answers: list[TargetAllocation | OptimizationError] = []
    groups: dict[tuple, list[tuple[int, object, OptimizerSettings]]] = {}
    for position, portfolio in enumerate(portfolios):
        answers.append(None)  # type: ignore[arg-type]
        try:
            settings = optimizer_settings_for(portfolio, on=as_of)
            key = (tuple(portfolio_symbols(portfolio)), settings.estimators.lookback_days)
        except OptimizationError as error:
            answers[position] = error
            continue
        groups.setdefault(key, []).append((position, portfolio, settings))
    for (symbols, lookback_days), members in groups.items():
        try:
            prices = price_window(symbols, as_of=as_of, lookback_days=lookback_days)
        except OptimizationError as error:
            for position, _, _ in members:
                answers[position] = error
            continue
        assets = asset_info(symbols)
        results = optimize_many(prices, assets, [settings for _, _, settings in members], PORTFOLIO_SETTING_NAMES)
        for (position, portfolio, settings), result in zip(members, results, strict=True):
            if isinstance(result, OptimizationError):
                answers[position] = result
                continue
            row, created = result_store(result, settings)
            answers[position] = _allocate(portfolio, row, not created)
    return answers


def _allocate(portfolio, row: OptimizationResult, reused: bool) -> TargetAllocation:
    """Record the portfolio's targets for the day: one upsert (the daily run does it per portfolio)."""
    allocation = TargetAllocation(portfolio=portfolio, as_of=row.as_of, result=row, reused=reused)
    TargetAllocation.objects.bulk_create(
        [allocation],
        update_conflicts=True,
        unique_fields=["portfolio", "as_of"],
        update_fields=["result", "reused", "updated_at"],
    )
    return allocation
