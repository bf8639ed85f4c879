"""Turn a portfolio's rows into planner inputs, and the planner's floats back into Decimals.

Together with `decimals.py` this is the one place where model Decimals become core floats and
back: quantities keep 9 decimal places, money 4, weights and ratios 10.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from decimal import ROUND_DOWN, Decimal, InvalidOperation

import numpy as np

from marketdata.models import Instrument
from optimization.core.errors import ConfigurationError
from optimization.core.estimators import estimate
from optimization.core.rebalancing.inputs import TARGET_SUM_TOLERANCE, PlanInputs
from optimization.core.rebalancing.policy import (
    BandPolicy,
    CostModel,
    RebalancePolicy,
    TradingPolicy,
    TriggerPolicy,
)

from .decimals import float_or_none
from .inputs import price_window
from .settings import optimizer_settings_for, string_list

QUANTITY_QUANTUM = Decimal("0.000000001")
USD_QUANTUM = Decimal("0.0001")
PRICE_QUANTUM = Decimal("0.000001")
RATIO_QUANTUM = Decimal("0.0000000001")


def rebalance_policy_for(portfolio, *, strategy: str | None = None) -> RebalancePolicy:
    """The planner's policy from a portfolio's settings (validated by the core's dataclasses)."""
    return RebalancePolicy(
        bands=BandPolicy(
            band_mode=portfolio.band_mode,
            band_abs=float_or_none(portfolio.band_abs),
            band_rel=float_or_none(portfolio.band_rel),
            unheld_outside_band=portfolio.unheld_outside_band,
        ),
        triggers=TriggerPolicy(
            band_trigger=portfolio.band_trigger,
            drift_threshold=float_or_none(portfolio.drift_threshold),
            calendar=portfolio.calendar or None,
            cooldown_days=int(portfolio.cooldown_days),
            cash_trigger_weight=float_or_none(portfolio.cash_trigger_weight),
            cash_trigger_usd=float_or_none(portfolio.cash_trigger_usd),
        ),
        costs=CostModel(
            commission_per_trade_usd=float_or_none(portfolio.commission_per_trade_usd),
            spread_bps=float_or_none(portfolio.spread_bps),
            impact_bps=float_or_none(portfolio.impact_bps),
        ),
        trading=TradingPolicy(
            strategy=strategy or portfolio.rebalancing_strategy,
            threshold_to=portfolio.threshold_to,
            cash_flow_to=portfolio.cash_flow_to,
            min_trade_usd=float_or_none(portfolio.min_trade_usd),
            fractional_shares=portfolio.fractional_shares,
            cash_buffer_weight=float_or_none(portfolio.cash_buffer_weight),
            max_turnover=float_or_none(portfolio.max_turnover),
            do_not_trade=frozenset(string_list("do_not_trade", portfolio.do_not_trade, upper=True)),
            drift_cost_bps=float_or_none(portfolio.drift_cost_bps),
            tracking_error_aversion=float_or_none(portfolio.tracking_error_aversion),
        ),
    )


def manual_targets_set(raw) -> bool:
    """Whether a portfolio's manual targets field holds targets (valid or not)."""
    return raw not in (None, {}, "")


def manual_targets_parse(raw, *, known: Collection[str] | None = None) -> dict[str, Decimal] | None:
    """Validated manual target weights {SYMBOL: Decimal}, or None when none are set.

    Weights are numbers (or numeric strings) in [0, 1] summing to 1 within 1e-6; symbols must
    be known instruments (``known``: the symbols of those the caller read, else they are read
    here). Errors start with ``manual_targets:``.
    """
    if not manual_targets_set(raw):
        return None
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f'manual_targets: expected {{"SYMBOL": weight, ...}}, got {raw!r}')
    weights: dict[str, Decimal] = {}
    for symbol, value in raw.items():
        key = str(symbol).strip().upper()
        if key in weights:
            raise ConfigurationError(f"manual_targets: {key} is given twice")
        try:
            weight = Decimal(str(value)) if not isinstance(value, bool) else None
        except InvalidOperation:
            weight = None
        if weight is None or not weight.is_finite() or not 0 <= weight <= 1:
            raise ConfigurationError(f"manual_targets: the weight of {key} must be a number from 0 to 1, got {value!r}")
        weights[key] = weight
    total = sum(weights.values(), Decimal(0))
    if abs(total - 1) > Decimal(str(TARGET_SUM_TOLERANCE)):
        raise ConfigurationError(f"manual_targets: weights sum to {total}, not 1")
    if known is None:
        known = set(Instrument.objects.filter(symbol__in=list(weights)).values_list("symbol", flat=True))
    unknown = sorted(set(weights) - set(known))
    if unknown:
        raise ConfigurationError(f"manual_targets: unknown symbol {', '.join(unknown)}; add the instrument first")
    return weights


def plan_inputs_build(
    *,
    symbols: Sequence[str],
    quantities: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    targets: Mapping[str, Decimal],
    cash_usd: Decimal,
    fractionable: Mapping[str, bool],
    cash_flow_usd: Decimal = Decimal(0),
    cov: np.ndarray | None = None,
) -> PlanInputs:
    """Core inputs over ``symbols`` (missing quantities and targets are 0)."""
    return PlanInputs(
        symbols=tuple(symbols),
        quantities=np.array([float(quantities.get(s, 0)) for s in symbols]),
        prices=np.array([float(prices[s]) for s in symbols]),
        targets=np.array([float(targets.get(s, 0)) for s in symbols]),
        cash_usd=float(cash_usd),
        fractionable=np.array([bool(fractionable.get(s, True)) for s in symbols]),
        cash_flow_usd=float(cash_flow_usd),
        cov=cov,
    )


def plan_covariance(portfolio, *, symbols: Sequence[str], as_of: date) -> np.ndarray:
    """Annualised covariance of ``symbols`` (in that order) with the portfolio's estimator settings."""
    settings = optimizer_settings_for(portfolio, on=as_of)
    prices = price_window(list(symbols), as_of=as_of, lookback_days=settings.estimators.lookback_days)
    estimates = estimate(prices, settings.estimators)
    order = [estimates.symbols.index(s) for s in symbols]
    return estimates.cov[np.ix_(order, order)]


def quantity_decimal(value: float, *, at_most: Decimal | None = None) -> Decimal:
    """Shares as a Decimal with 9 places (rounded down), never above ``at_most`` (a sell's holding)."""
    quantity = Decimal(repr(float(value))).quantize(QUANTITY_QUANTUM, rounding=ROUND_DOWN)
    if at_most is not None and quantity > at_most:
        quantity = at_most
    return quantity


def usd_decimal(value: float | None) -> Decimal | None:
    return _quantize(value, USD_QUANTUM)


def price_decimal(value: float) -> Decimal:
    return _quantize(value, PRICE_QUANTUM)


def ratio_decimal(value: float | None) -> Decimal | None:
    return _quantize(value, RATIO_QUANTUM)


def _quantize(value: float | None, quantum: Decimal) -> Decimal | None:
    if value is None or not math.isfinite(value):
        return None
    return Decimal(repr(float(value))).quantize(quantum)
