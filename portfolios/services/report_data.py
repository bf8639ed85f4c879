"""Risk figures stored with a plan, so that the run's report reads them instead of recomputing.

`run_risk_build` runs inside `rebalance_run_plan`, on the price window the targets were computed
from (read once more only for symbols outside it, or for portfolios with manual targets). It
costs no solver call: one estimate of mu and the covariance over the run's symbols and three
`portfolio_metrics` (before, at target, after), about a millisecond for 50 holdings.

Weights are fractions of the total value, cash included; cash is riskless with zero return, so
its weight adds nothing to return, volatility or the daily returns behind VaR and drawdown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date

import numpy as np
import pandas as pd

from optimization.core.errors import OptimizationError
from optimization.core.estimators import EstimatorSettings, estimate
from optimization.core.metrics import PortfolioMetrics, portfolio_metrics
from optimization.core.rebalancing.results import Plan
from optimization.services.inputs import price_window
from optimization.services.settings import optimizer_settings_for

RISK_VERSION = 1
FIGURE_DIGITS = 6  # significant digits of return, volatility, VaR, ...
CONTRIBUTION_DIGITS = 4  # risk contributions only feed a chart
CORRELATION_DECIMALS = 3


def _sig(value: float | None, digits: int = FIGURE_DIGITS) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{float(value):.{digits}g}")


_FIGURES = tuple(f.name for f in fields(PortfolioMetrics) if f.name not in ("risk_contributions", "observations"))


def _metrics_json(metrics: PortfolioMetrics, symbols: Sequence[str], weights: np.ndarray) -> dict:
    """The metrics as JSON; risk contributions only for the symbols held (others are 0)."""
    # Field by field: PortfolioMetrics.to_dict goes through dataclasses.astuple, 10x slower.
    data: dict = {name: _sig(getattr(metrics, name)) for name in _FIGURES}
    data["observations"] = metrics.observations
    data["risk_contributions"] = {
        symbol: _sig(contribution, CONTRIBUTION_DIGITS)
        for symbol, weight, contribution in zip(symbols, weights, metrics.risk_contributions, strict=True)
        if weight != 0
    }
    return data


def run_risk_compute(
    *,
    symbols: Sequence[str],
    weights: Mapping[str, Mapping[str, float]],
    prices: pd.DataFrame,
    estimators: EstimatorSettings,
    risk_free_rate: float,
    with_correlation: bool = False,
) -> dict:
    """Risk figures of each weight set in ``weights`` ({"before": {symbol: weight}, ...}).

    ``prices``: adjusted closes (rows = days ascending) with a column per symbol. Answers
    ``symbols``, ``risk_free_rate``, the ``window`` (first and last price date, daily returns
    used, estimators), ``cash_weight`` per set, one `portfolio_metrics` dict per set, and the
    correlation matrix of ``symbols`` when ``with_correlation`` (rounded to 3 decimals).
    Raises `OptimizationError` (too little history) or `ValueError` (bad weights).
    """
    symbols = list(symbols)
    window = prices if list(prices.columns) == symbols else prices.reindex(columns=symbols)
    estimates = estimate(window, estimators)
    risk: dict = {
        "version": RISK_VERSION,
        "symbols": symbols,
        "risk_free_rate": risk_free_rate,
        "window": {
            "start": _day(_window_start(window, estimators)),
            "end": _day(window.index[-1]),
            "returns": len(estimates.returns),
            "returns_method": estimators.returns_method,
            "cov_method": estimators.cov_method,
        },
        "cash_weight": {},
    }
    for name, by_symbol in weights.items():
        vector = np.array([float(by_symbol.get(symbol, 0.0)) for symbol in symbols])
        metrics = portfolio_metrics(
            vector, estimates.mu, estimates.cov, estimates.returns, risk_free_rate=risk_free_rate
        )
        risk[name] = _metrics_json(metrics, symbols, vector)
        risk["cash_weight"][name] = _sig(1.0 - float(vector.sum()))
    if with_correlation:
        volatilities = np.sqrt(np.clip(np.diag(estimates.cov), 0.0, None))
        scale = np.outer(volatilities, volatilities)
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.where(scale > 0, estimates.cov / scale, 0.0)
        np.fill_diagonal(correlation, 1.0)
        risk["correlation"] = np.round(np.clip(correlation, -1.0, 1.0), CORRELATION_DECIMALS).tolist()
    return risk


def _window_start(window: pd.DataFrame, estimators: EstimatorSettings):
    """The first price date the estimates use (the lookback keeps the last ``lookback_days + 1`` rows)."""
    rows = len(window) if estimators.lookback_days is None else min(len(window), estimators.lookback_days + 1)
    return window.index[-rows]


def _day(value) -> str:
    return value.date().isoformat() if hasattr(value, "date") else str(value)


def run_risk_build(
    *,
    portfolio,
    plan: Plan,
    as_of: date,
    prices: pd.DataFrame | None = None,
    settings=None,
    with_correlation: bool = False,
    read_window=price_window,
) -> dict:
    """`run_risk_compute` for a plan: before (current weights), target and after (post-trade).

    ``prices`` and ``settings``: the window and optimizer settings the targets were computed with
    (None for manual targets: the window is read here, by ``read_window``, `price_window`'s
    signature). A failure never stops the plan: the answer is then ``{"error": reason}`` and the
    report says the figures are not available.
    """
    symbols = [need.symbol for need in plan.needs]
    weights = {
        "before": {need.symbol: need.current_weight for need in plan.needs},
        "target": {need.symbol: need.target_weight for need in plan.needs},
        "after": dict(plan.weights_after),
    }
    try:
        settings = settings or optimizer_settings_for(portfolio, on=as_of)
        lookback_days = settings.estimators.lookback_days
        missing = symbols if prices is None else [s for s in symbols if s not in prices.columns]
        if missing:
            extra = read_window(missing, as_of=as_of, lookback_days=lookback_days)
            prices = extra if prices is None else prices.join(extra, how="outer")
        return run_risk_compute(
            symbols=symbols,
            weights=weights,
            prices=prices,
            estimators=settings.estimators,
            risk_free_rate=settings.params.risk_free_rate,
            with_correlation=with_correlation,
        )
    except (OptimizationError, ValueError) as error:
        return {"version": RISK_VERSION, "error": str(error)}
