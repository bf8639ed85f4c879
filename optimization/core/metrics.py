"""Risk and return figures for any weight vector, and random feasible portfolios to compare against.

`portfolio_metrics` combines two views of the same portfolio: the model view
(annualised expected returns `mu` and covariance `cov`, as the optimiser sees
them) for return, volatility, Sharpe, diversification and risk contributions,
and the historical view (the daily returns of the lookback) for Value at Risk,
expected shortfall and maximum drawdown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields

import numpy as np
import pandas as pd

TRADING_DAYS_PER_YEAR = 252
TAIL_PROBABILITY = 0.05  # the 5 % tail of 95 % VaR and CVaR
# Fewer portfolio days than this leave the historical measures undefined (nan).
MIN_OBSERVATIONS = 2
# A variance w' S w below -this x (|w|' |S| |w|) is not rounding noise: `cov` is not positive semi-definite.
PSD_RELATIVE_TOLERANCE = 1e-10
# Bounds whose sums miss 1 by this little are feasible: 0.1 + 0.2 + 0.7 sums to 1.0000000000000002.
BOUNDS_SUM_TOLERANCE = 1e-12


@dataclass(frozen=True)
class PortfolioMetrics:
    """One portfolio's figures; fractions, not percent. Historical figures are nan without enough data.

    The annual VaR and CVaR scale the one-day figures by sqrt(frequency), the
    square-root-of-time rule: exact only for independent, identically
    distributed daily returns, so read them as a rough yearly order of
    magnitude, not as a historical yearly quantile.
    """

    expected_return: float  # annualised, w @ mu
    volatility: float  # annualised, sqrt(w' S w)
    sharpe: float  # (expected_return - risk_free_rate) / volatility; nan if volatility == 0
    var_95_1d: float  # historical Value at Risk at 95 %, one day, as a positive loss fraction
    cvar_95_1d: float  # historical expected shortfall at 95 %, one day, as a positive loss fraction
    var_95_annual: float  # var_95_1d x sqrt(frequency)
    cvar_95_annual: float  # cvar_95_1d x sqrt(frequency)
    max_drawdown: float  # over the returns given, as a positive fraction; 0 if never below the peak
    diversification_ratio: float  # (w @ sigma_i) / volatility; nan if volatility == 0
    effective_assets: float  # 1 / sum(w_i^2), the inverse Herfindahl index
    risk_contributions: tuple[float, ...]  # w_i (S w)_i / (w' S w), summing to 1; all 0 if the variance is 0
    observations: int  # daily rows used for VaR, CVaR and drawdown

    def to_dict(self, symbols: Sequence[str] | None = None) -> dict[str, object]:
        """JSON-ready: plain floats and None for nan; risk contributions keyed by symbol when `symbols` is given."""
        result: dict[str, object] = {}
        for field, value in zip(fields(self), astuple(self), strict=True):
            if field.name == "risk_contributions":
                result[field.name] = self._contributions_json(symbols)
            elif field.name == "observations":
                result[field.name] = int(value)
            else:
                result[field.name] = _json_float(value)
        return result

    def _contributions_json(self, symbols: Sequence[str] | None) -> list[float | None] | dict[str, float | None]:
        values = [_json_float(value) for value in self.risk_contributions]
        if symbols is None:
            return values
        if len(symbols) != len(values):
            raise ValueError(f"symbols: expected {len(values)} symbols, got {len(symbols)}")
        return dict(zip(symbols, values, strict=True))


def portfolio_metrics(
    weights: np.ndarray | Sequence[float],
    mu: np.ndarray | Sequence[float],
    cov: np.ndarray | pd.DataFrame,
    returns: np.ndarray | pd.DataFrame,
    *,
    risk_free_rate: float,
    frequency: int = TRADING_DAYS_PER_YEAR,
) -> PortfolioMetrics:
    """The metrics of `weights` (N,) given annualised `mu` (N,) and `cov` (N, N) and DAILY simple `returns` (T, N).

    `returns` columns follow the order of `weights`; NaN marks a day without a
    value (an asset with a shorter history). The historical measures use the
    days on which every held asset (non-zero weight) has a value, so a
    young asset the portfolio does not hold cannot shorten the lookback.
    `risk_free_rate` is annualised, like `mu`; `frequency` is periods per year.
    """
    weights_arr, mu_arr, cov_arr, returns_arr = _validated_inputs(weights, mu, cov, returns)
    if not math.isfinite(risk_free_rate):
        raise ValueError(f"risk_free_rate: {risk_free_rate!r} is not a finite number")
    if frequency < 1:
        raise ValueError(f"frequency: {frequency!r} is not a positive number of periods per year")

    expected_return = float(weights_arr @ mu_arr)
    volatility = math.sqrt(_variance(weights_arr, cov_arr))
    daily = portfolio_daily_returns(weights_arr, returns_arr)
    var_1d, cvar_1d = historical_var_cvar(daily)
    annual_scale = math.sqrt(frequency)
    return PortfolioMetrics(
        expected_return=expected_return,
        volatility=volatility,
        sharpe=(expected_return - risk_free_rate) / volatility if volatility > 0 else math.nan,
        var_95_1d=var_1d,
        cvar_95_1d=cvar_1d,
        var_95_annual=var_1d * annual_scale,
        cvar_95_annual=cvar_1d * annual_scale,
        max_drawdown=max_drawdown(daily),
        diversification_ratio=_diversification_ratio(weights_arr, cov_arr, volatility),
        effective_assets=effective_assets(weights_arr),
        risk_contributions=tuple(float(value) for value in risk_contributions(weights_arr, cov_arr)),
        observations=len(daily),
    )


def risk_contributions(weights: np.ndarray | Sequence[float], cov: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Each asset's share of the portfolio variance, w_i (S w)_i / (w' S w); all zeros when the variance is 0.

    The shares sum to 1; one can be negative (a hedge) or above 1.
    """
    weights_arr = np.asarray(weights, dtype=float)
    cov_arr = np.asarray(cov, dtype=float)
    marginal = cov_arr @ weights_arr
    variance = float(weights_arr @ marginal)
    if variance <= 0:
        return np.zeros_like(weights_arr)
    return weights_arr * marginal / variance


def effective_assets(weights: np.ndarray | Sequence[float]) -> float:
    """1 / sum(w_i^2): N for N equal weights, 1 for a single holding; nan for all-zero weights."""
    concentration = float(np.sum(np.square(np.asarray(weights, dtype=float))))
    return 1.0 / concentration if concentration > 0 else math.nan


def portfolio_daily_returns(weights: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """The portfolio's daily returns on the rows where every held asset has a value (rebalanced daily to `weights`)."""
    held = weights != 0
    held_returns = returns[:, held]
    complete_rows = np.isfinite(held_returns).all(axis=1)
    return held_returns[complete_rows] @ weights[held]


def historical_var_cvar(daily_returns: np.ndarray) -> tuple[float, float]:
    """(VaR, CVaR) at 95 % as positive loss fractions: minus the 5th percentile, minus the mean at or below it.

    The percentile uses numpy's default linear interpolation. nan for both
    with fewer than two days. A portfolio whose worst 5 % of days still gained
    gets negative figures.
    """
    if len(daily_returns) < MIN_OBSERVATIONS:
        return math.nan, math.nan
    cutoff = float(np.quantile(daily_returns, TAIL_PROBABILITY))
    # Never empty: the smallest return is at or below any quantile.
    tail = daily_returns[daily_returns <= cutoff]
    return -cutoff, -float(tail.mean())


def max_drawdown(daily_returns: np.ndarray) -> float:
    """Largest fall from a running peak of wealth cumprod(1 + r), the starting wealth 1 being the first peak.

    A positive fraction (0.2 for a 20 % fall); 0 when wealth never dips below
    its peak; nan with fewer than two days.
    """
    if len(daily_returns) < MIN_OBSERVATIONS:
        return math.nan
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + daily_returns)))
    peaks = np.maximum.accumulate(wealth)
    return float(np.max(1.0 - wealth / peaks))


def random_feasible_portfolios(
    lower: np.ndarray | Sequence[float],
    upper: np.ndarray | Sequence[float],
    count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """`count` random long-only weight vectors (rows) summing to 1 with lower <= w <= upper.

    Each row starts as `lower` plus a uniform Dirichlet draw of the free
    budget 1 - sum(lower), so lower bounds hold; weights above `upper` are
    clipped, and the clipped excess goes to the assets with room, in
    proportion to their room, which fills no asset past its bound. Not uniform
    over the feasible set, but spread across it: good enough to check that an
    optimiser's answer beats (or matches) any feasible portfolio.
    """
    lower_arr, upper_arr = _validated_bounds(lower, upper)
    if count < 0:
        raise ValueError(f"count: {count!r} is negative")
    free_budget = max(0.0, 1.0 - float(lower_arr.sum()))
    draws = rng.dirichlet(np.ones(len(lower_arr)), size=count)
    weights = np.minimum(lower_arr + free_budget * draws, upper_arr)
    room = upper_arr - weights
    room_total = room.sum(axis=1, keepdims=True)
    excess = 1.0 - weights.sum(axis=1, keepdims=True)
    share_of_excess = np.divide(room, room_total, out=np.zeros_like(room), where=room_total > 0)
    weights = weights + np.clip(excess, 0.0, None) * share_of_excess
    # Rounding can leave a weight one unit in the last place outside its bounds.
    return np.clip(weights, lower_arr, upper_arr)


def _validated_inputs(
    weights: object, mu: object, cov: object, returns: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    weights_arr = _finite_array("weights", weights)
    if weights_arr.ndim != 1:
        raise ValueError(f"weights: expected a 1-D array, got shape {weights_arr.shape}")
    assets = len(weights_arr)
    mu_arr = _finite_array("mu", mu)
    _check_shape("mu", mu_arr, (assets,))
    cov_arr = _finite_array("cov", cov)
    _check_shape("cov", cov_arr, (assets, assets))
    if (np.diag(cov_arr) < 0).any():
        raise ValueError("cov: negative variance on the diagonal")
    returns_arr = np.asarray(returns, dtype=float)
    if returns_arr.ndim != 2 or returns_arr.shape[1] != assets:
        raise ValueError(f"returns: expected shape (T, {assets}), got {returns_arr.shape}")
    if np.isinf(returns_arr).any():
        raise ValueError("returns: contains infinite values (NaN marks a missing day)")
    return weights_arr, mu_arr, cov_arr, returns_arr


def _finite_array(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise ValueError(f"{name}: expected shape {expected}, got {array.shape}")


def _validated_bounds(lower: object, upper: object) -> tuple[np.ndarray, np.ndarray]:
    lower_arr = _finite_array("lower", lower)
    upper_arr = _finite_array("upper", upper)
    if lower_arr.ndim != 1 or len(lower_arr) == 0:
        raise ValueError(f"lower: expected a non-empty 1-D array, got shape {lower_arr.shape}")
    _check_shape("upper", upper_arr, lower_arr.shape)
    if (lower_arr < 0).any() or (lower_arr > upper_arr).any():
        raise ValueError("lower, upper: expected 0 <= lower <= upper for every asset")
    if not lower_arr.sum() - BOUNDS_SUM_TOLERANCE <= 1.0 <= upper_arr.sum() + BOUNDS_SUM_TOLERANCE:
        raise ValueError(
            f"lower, upper: no portfolio sums to 1 (lower sums to {lower_arr.sum():g}, upper to {upper_arr.sum():g})"
        )
    return lower_arr, upper_arr


def _variance(weights: np.ndarray, cov: np.ndarray) -> float:
    """w' S w, with rounding noise below zero clamped to 0; clearly negative means `cov` is not PSD."""
    variance = float(weights @ cov @ weights)
    if variance >= 0:
        return variance
    scale = float(np.abs(weights) @ np.abs(cov) @ np.abs(weights))
    if variance < -PSD_RELATIVE_TOLERANCE * scale:
        raise ValueError(f"cov: not positive semi-definite (portfolio variance {variance:g})")
    return 0.0


def _diversification_ratio(weights: np.ndarray, cov: np.ndarray, volatility: float) -> float:
    """Weighted average asset volatility over portfolio volatility: 1 with no diversification benefit."""
    if volatility <= 0:
        return math.nan
    return float(weights @ np.sqrt(np.diag(cov))) / volatility


def _json_float(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
