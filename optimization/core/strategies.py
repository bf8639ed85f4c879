"""Allocation strategies: one function each, found by name or dotted path.

A strategy takes `StrategyInputs` (estimates over the investable universe, compiled
constraints, parameters) and returns weights that sum to 1 and satisfy the constraints.
Plug-ins follow the same signature and are named by dotted path, e.g.
``OPTIMIZATION_STRATEGY=mypackage.strategies.max_diversification``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import problems
from .constraints import CompiledConstraints
from .errors import ConfigurationError, InfeasibleConstraints, NoAssetBeatsRiskFree, SolverFailed
from .estimators import Estimates
from .names import STRATEGY_NAMES


@dataclass(frozen=True)
class StrategyParams:
    """Numbers a strategy may need; each strategy validates the ones it uses."""

    risk_free_rate: float = 0.02
    target_volatility: float | None = None
    target_return: float | None = None
    risk_aversion: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.risk_free_rate) or not -0.5 < self.risk_free_rate < 1:
            raise ConfigurationError(f"risk_free_rate: {self.risk_free_rate} is outside (-0.5, 1)")
        if self.target_volatility is not None and not (
            math.isfinite(self.target_volatility) and self.target_volatility > 0
        ):
            raise ConfigurationError(f"target_volatility: must be a positive number, got {self.target_volatility}")
        if self.target_return is not None and not math.isfinite(self.target_return):
            raise ConfigurationError(f"target_return: must be a finite number, got {self.target_return}")
        if not (math.isfinite(self.risk_aversion) and self.risk_aversion > 0):
            raise ConfigurationError(f"risk_aversion: must be a positive number, got {self.risk_aversion}")


@dataclass(frozen=True, eq=False)
class StrategyInputs:
    estimates: Estimates
    constraints: CompiledConstraints
    params: StrategyParams


Strategy = Callable[[StrategyInputs], np.ndarray]


def _solve(kind: str, inputs: StrategyInputs, **data) -> np.ndarray:
    try:
        return problems.solve(kind, inputs.constraints, **data)
    except problems.Infeasible as error:
        raise InfeasibleConstraints(
            f"the {kind.replace('_', ' ')} problem has no solution under the constraints"
        ) from error


def _extreme_return(inputs: StrategyInputs, kind: str) -> tuple[float, np.ndarray]:
    weights = _solve(kind, inputs, mu=inputs.estimates.mu)
    return float(weights @ inputs.estimates.mu), weights


def min_volatility(inputs: StrategyInputs) -> np.ndarray:
    """The lowest-volatility portfolio the constraints allow."""
    return _solve("min_risk", inputs, factor=inputs.estimates.risk_factor())


def max_sharpe(inputs: StrategyInputs) -> np.ndarray:
    """The tangency portfolio: highest (return - rf) / volatility."""
    estimates, rf = inputs.estimates, inputs.params.risk_free_rate
    if float(np.max(estimates.mu)) > rf:
        try:
            return problems.solve(
                "max_sharpe", inputs.constraints, factor=estimates.risk_factor(), mu=estimates.mu - rf
            )
        except problems.Infeasible:
            pass  # no feasible portfolio earns more than rf: explained below
    best_return, _ = _extreme_return(inputs, "max_return")
    best_asset = estimates.symbols[int(np.argmax(estimates.mu))]
    raise NoAssetBeatsRiskFree(
        f"no portfolio beats the risk-free rate {rf:.2%}: the best expected return the constraints allow is "
        f"{best_return:.2%} (best asset {best_asset} at {float(np.max(estimates.mu)):.2%}); max-Sharpe is undefined"
    )


def efficient_risk(inputs: StrategyInputs) -> np.ndarray:
    """Highest expected return with volatility at most ``target_volatility``."""
    target = inputs.params.target_volatility
    if target is None:
        raise ConfigurationError("target_volatility: efficient_risk needs a target volatility")
    lowest = min_volatility(inputs)
    lowest_vol = _volatility(lowest, inputs.estimates.cov)
    if target < lowest_vol - 1e-9:
        raise InfeasibleConstraints(
            f"target volatility {target:.2%} is below {lowest_vol:.2%}, the lowest volatility the constraints "
            "allow; raise the target"
        )
    return _solve(
        "efficient_risk",
        inputs,
        factor=inputs.estimates.risk_factor(),
        mu=inputs.estimates.mu,
        target_variance=max(target, lowest_vol) ** 2,
    )


def efficient_return(inputs: StrategyInputs) -> np.ndarray:
    """Lowest volatility with expected return at least ``target_return`` (the Markowitz portfolio)."""
    target = inputs.params.target_return
    if target is None:
        raise ConfigurationError("target_return: efficient_return needs a target return")
    highest, _ = _extreme_return(inputs, "max_return")
    if target > highest + 1e-9:
        raise InfeasibleConstraints(
            f"target return {target:.2%} is above {highest:.2%}, the highest expected return the constraints "
            "allow; lower the target"
        )
    return _solve(
        "efficient_return",
        inputs,
        factor=inputs.estimates.risk_factor(),
        mu=inputs.estimates.mu,
        target_return=min(target, highest),
    )


def max_quadratic_utility(inputs: StrategyInputs) -> np.ndarray:
    """Maximise w'mu - (risk_aversion / 2) w'Sw (solved as w'mu/d - w'Sw/2, the same maximiser)."""
    aversion = inputs.params.risk_aversion
    return _solve(
        "utility",
        inputs,
        factor=inputs.estimates.risk_factor(),
        mu=inputs.estimates.mu / aversion,
        gamma=inputs.constraints.l2_gamma / aversion,
    )


def risk_parity(inputs: StrategyInputs) -> np.ndarray:
    """Equal risk contribution (Spinu's convex form); with binding bounds, the closest budget-feasible one."""
    size = inputs.estimates.size
    if size == 1:
        return np.ones(1)
    held = np.flatnonzero(inputs.constraints.upper > 0)
    if 0 < len(held) < size:
        # An asset capped at 0 (an override) cannot take a risk budget (log 0): parity among the others.
        symbols = tuple(inputs.estimates.symbols[i] for i in held)
        sub = StrategyInputs(
            estimates=inputs.estimates.subset(symbols),
            constraints=inputs.constraints.subset(symbols, keep_minimums=True, keep_groups=True),
            params=inputs.params,
        )
        weights = np.zeros(size)
        weights[held] = risk_parity(sub)
        return weights
    return _solve("risk_parity", inputs, factor=inputs.estimates.risk_factor(), budget=np.full(size, 1.0 / size))


def inverse_volatility(inputs: StrategyInputs) -> np.ndarray:
    """Weights proportional to 1 / volatility, moved to the nearest weights the constraints allow."""
    volatility = np.sqrt(np.diag(inputs.estimates.cov))
    if np.any(volatility <= 0):
        flat = [s for s, v in zip(inputs.estimates.symbols, volatility, strict=True) if v <= 0]
        raise SolverFailed(f"inverse volatility is undefined for assets with zero volatility: {', '.join(flat)}")
    raw = (1 / volatility) / np.sum(1 / volatility)
    return nearest_feasible(raw, inputs.constraints)


def equal_weight(inputs: StrategyInputs) -> np.ndarray:
    """1/N each, moved to the nearest weights the constraints allow (the last-resort fallback)."""
    size = inputs.constraints.size
    return nearest_feasible(np.full(size, 1.0 / size), inputs.constraints)


def nearest_feasible(weights: np.ndarray, compiled: CompiledConstraints) -> np.ndarray:
    """``weights`` if they satisfy every constraint, else the closest vector (least squares) that does."""
    if not compiled.violations(weights, tolerance=1e-12):
        return weights
    try:
        scale = 1.0 / np.sqrt(np.maximum(np.abs(weights), 1e-3))
        return problems.solve("nearest", compiled, target=scale * weights, scale=scale)
    except problems.Infeasible as error:
        raise InfeasibleConstraints("no weights satisfy the constraints") from error


def _volatility(weights: np.ndarray, cov: np.ndarray) -> float:
    return float(np.sqrt(max(weights @ cov @ weights, 0.0)))


#: Built-in strategies by name; any other name is imported as a dotted path.
STRATEGIES: dict[str, str] = {name: f"{__name__}.{name}" for name in STRATEGY_NAMES}


def resolve_strategy(name: str) -> Strategy:
    """A strategy function by registry name or dotted path; `ConfigurationError` names what is wrong."""
    path = STRATEGIES.get(name, name)
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ConfigurationError(f"strategy: {name!r} is not one of {', '.join(STRATEGIES)} and is not a dotted path")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"strategy: cannot import {path!r} ({error})") from error
    if not callable(function):
        raise ConfigurationError(f"strategy: {path!r} is not callable")
    return function
