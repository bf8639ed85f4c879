"""From prices and settings to target weights: the fallback chain, the glide-path blend, metrics.

`optimize` is the one entry point; `optimize_many` shares estimates and solves among many
portfolios with the same inputs (same universe, settings and prices give the same answer, so
it is computed once).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import problems
from .bound_warnings import BoundWarning, bound_warnings, bounds_are_free, without_bounds
from .constraints import (
    DEFENSIVE_ASSET_CLASSES,
    AssetInfo,
    CompiledConstraints,
    Constraints,
    SettingNames,
    compile_constraints,
)
from .errors import ConfigurationError, InfeasibleConstraints, OptimizationError
from .estimators import Estimates, EstimatorSettings, estimate, lookback_window
from .feasibility import check_feasibility
from .glidepath import DEFAULT_RETIREMENT_AGE, blend_shares, load_glide_path
from .metrics import PortfolioMetrics, portfolio_metrics
from .strategies import STRATEGIES, StrategyInputs, StrategyParams, nearest_feasible, resolve_strategy

DEFAULT_FALLBACKS = ("min_volatility", "equal_weight")
SAFE_SLEEVE_CHAIN = ("min_volatility", "equal_weight")


@dataclass(frozen=True)
class GlidePathSettings:
    """Age-based blend of an aggressive (MPT) and a safe (bond-heavy, min-volatility) portfolio."""

    age: float | None = None
    retirement_age: float = DEFAULT_RETIREMENT_AGE
    knots: tuple[tuple[float, float], ...] | None = None
    plugin: str | None = None  # dotted path of a class with get_allocation_blend(age)
    safe_bond_share: float = 0.8

    def __post_init__(self) -> None:
        if self.age is not None and not (math.isfinite(self.age) and 0 <= self.age <= 120):
            raise ConfigurationError(f"age: {self.age} is outside 0..120")
        if not (math.isfinite(self.safe_bond_share) and 0 <= self.safe_bond_share <= 1):
            raise ConfigurationError(f"safe_bond_share: {self.safe_bond_share} is outside [0, 1]")
        # Build the glide path once now so bad knots or a bad plug-in path fail when configured.
        load_glide_path(self.plugin, knots=self.knots, retirement_age=self.retirement_age)


@dataclass(frozen=True)
class OptimizerSettings:
    strategy: str = "max_sharpe"
    fallbacks: tuple[str, ...] = DEFAULT_FALLBACKS
    estimators: EstimatorSettings = field(default_factory=EstimatorSettings)
    params: StrategyParams = field(default_factory=StrategyParams)
    constraints: Constraints = field(default_factory=Constraints)
    glide: GlidePathSettings = field(default_factory=GlidePathSettings)

    def __post_init__(self) -> None:
        if self.strategy == "efficient_risk" and self.params.target_volatility is None:
            raise ConfigurationError("target_volatility: the efficient_risk strategy needs a target volatility")
        if self.strategy == "efficient_return" and self.params.target_return is None:
            raise ConfigurationError("target_return: the efficient_return strategy needs a target return")
        for name in (self.strategy, *self.fallbacks):
            if name not in STRATEGIES and "." not in name:
                raise ConfigurationError(f"strategy: {name!r} is not one of {', '.join(STRATEGIES)}")

    def fingerprint(self) -> str:
        """Stable digest of every setting: equal settings, equal digest (across processes).

        Memoised on the instance (settings are immutable); the daily job asks once per portfolio.
        """
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = hashlib.sha256(_canonical(dataclasses.asdict(self)).encode()).hexdigest()
            self.__dict__["_fingerprint"] = cached  # not a field: equality and asdict ignore it
        return cached


def _canonical(value) -> str:
    def convert(item):
        if isinstance(item, Mapping):
            return {str(key): convert(item[key]) for key in sorted(item, key=str)}
        if isinstance(item, frozenset | set):
            return sorted(convert(element) for element in item)
        if isinstance(item, list | tuple):
            return [convert(element) for element in item]
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            # Equal settings, equal digest: 0 == 0.0 == np.float64(0.0), but their reprs differ.
            return repr(float(item))
        return item

    return json.dumps(convert(value), sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class FallbackStep:
    strategy: str
    reason: str
    error: str  # class name of the failure, e.g. "NoAssetBeatsRiskFree"

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "reason": self.reason, "error": self.error}


@dataclass(frozen=True, eq=False)
class Sleeve:
    """One side of a glide-path blend: its share of the portfolio and its own weights (summing to 1).

    ``weights`` (N,) follow the universe (`OptimizationResult.universe`); assets outside the
    sleeve hold 0. The blend is sum(share x weights) over the sleeves, before the polish or the
    projection that makes it satisfy every constraint.
    """

    name: str  # "aggressive" or "safe"
    share: float
    weights: np.ndarray


@dataclass(frozen=True, eq=False)
class OptimizationResult:
    symbols: tuple[str, ...]
    weights: np.ndarray  # aligned with symbols; excluded assets hold 0
    strategy: str  # the strategy that produced the (aggressive) weights
    requested_strategy: str
    fallbacks: tuple[FallbackStep, ...]
    metrics: PortfolioMetrics
    risk_free_rate: float
    equity_share: float | None = None
    notes: tuple[str, ...] = ()
    as_of: object = None
    input_hash: str = ""
    universe: tuple[str, ...] = ()  # symbols that could be held (metrics' risk contributions follow it)
    # What the result was computed from and of, for reports (not part of to_dict): the universe's
    # estimates, its compiled constraints, and the glide path's sleeves (empty without an age).
    estimates: Estimates | None = field(default=None, repr=False)
    constraints: CompiledConstraints | None = field(default=None, repr=False)
    sleeves: tuple[Sleeve, ...] = ()
    # Each weight bound that moved the targets away from what the glide path and strategy chose.
    warnings: tuple[BoundWarning, ...] = ()

    def weights_dict(self) -> dict[str, float]:
        return {symbol: float(weight) for symbol, weight in zip(self.symbols, self.weights, strict=True)}

    @property
    def performance(self) -> dict[str, float]:
        return {
            "expected_return": self.metrics.expected_return,
            "volatility": self.metrics.volatility,
            "sharpe": self.metrics.sharpe,
        }

    def to_dict(self) -> dict:
        """The CLI's JSON shape: strategy, weights, performance, fallbacks (+ context)."""
        return {
            "strategy": self.strategy,
            "weights": self.weights_dict(),
            "performance": {key: _json_float(value) for key, value in self.performance.items()},
            "fallbacks": [step.to_dict() for step in self.fallbacks],
            "requested_strategy": self.requested_strategy,
            "risk_free_rate": self.risk_free_rate,
            "equity_share": self.equity_share,
            "notes": list(self.notes),
            "warnings": [warning.to_dict() for warning in self.warnings],
            "metrics": self.metrics.to_dict(self.universe),
            "as_of": str(self.as_of.date() if hasattr(self.as_of, "date") else self.as_of) if self.as_of else None,
            "input_hash": self.input_hash,
        }


def _json_float(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# -- the chain -----------------------------------------------------------------------------------


def run_chain(
    chain: Sequence[str], estimates: Estimates, compiled: CompiledConstraints, params: StrategyParams, label: str = ""
) -> tuple[np.ndarray, str, list[FallbackStep]]:
    """Try each strategy in turn; the first good answer wins, each failure is recorded with its reason."""
    failures: list[FallbackStep] = []
    last_error: Exception | None = None
    for name in dict.fromkeys(chain):
        inputs = StrategyInputs(estimates=estimates, constraints=compiled, params=params)
        try:
            weights = _checked(resolve_strategy(name)(inputs), compiled, name)
        except OptimizationError as error:
            last_error = error
        except Exception as error:  # a plug-in's bug must not stop the daily run: fall back, say why
            if name in STRATEGIES:
                raise
            last_error = error
        else:
            return weights, name, failures
        failures.append(FallbackStep(f"{label}{name}", str(last_error), type(last_error).__name__))
    reasons = "; ".join(f"{step.strategy}: {step.reason}" for step in failures)
    error_type = type(last_error) if isinstance(last_error, OptimizationError) else OptimizationError
    raise error_type(f"every strategy failed ({reasons})")


def _checked(weights, compiled: CompiledConstraints, name: str) -> np.ndarray:
    weights = np.asarray(weights, dtype=float).reshape(-1)
    if weights.shape != (compiled.size,) or not np.isfinite(weights).all():
        raise OptimizationError(f"{name} returned {weights.shape[0]} weights for {compiled.size} assets or non-finite")
    problems_found = compiled.violations(weights, tolerance=1e-7)
    if problems_found:
        raise OptimizationError(f"{name} returned weights that break the constraints: {'; '.join(problems_found[:3])}")
    return weights


# -- glide path ----------------------------------------------------------------------------------


def _sleeve(compiled: CompiledConstraints, symbols: tuple[str, ...], exposure: dict[str, float]) -> CompiledConstraints:
    """Per-asset bounds for one sleeve of a blend.

    An asset held by sleeves whose shares add up to ``exposure`` gets lo / exposure and
    hi / exposure inside each of them, so whatever each sleeve chooses, the blend respects the
    asset's bounds exactly. When that makes the sleeve infeasible (many minimums on a small
    sleeve), it falls back to caps only and the blend is projected afterwards.
    """
    sub = compiled.subset(symbols)
    scale = np.array([exposure[symbol] for symbol in symbols])
    lower = np.minimum(1.0, compiled.subset(symbols, keep_minimums=True).lower / scale)
    upper = np.minimum(1.0, sub.upper / scale)
    if lower.sum() <= 1 + 1e-12 and upper.sum() >= 1 - 1e-12 and np.all(lower <= upper):
        return dataclasses.replace(sub, lower=lower, upper=upper)
    return dataclasses.replace(sub, upper=upper if upper.sum() >= 1 else np.ones(len(symbols)))


def _nearest_keeping_sides(blended: np.ndarray, compiled: CompiledConstraints, growth: np.ndarray) -> np.ndarray:
    """The allowed weights nearest ``blended`` whose growth side (``growth``: (N,) bools) holds the
    glide path's share, or as close to it as the per-asset bounds allow.

    Plain nearest weights would move the excess of a capped fund to whichever assets already hold
    the most, across sides: 40% caps on two equity funds would put the overflow in bonds beyond the
    20% the caps force there. When the group limits rule the pinned share out, plain nearest weights.
    """
    if growth.all() or not growth.any():
        return nearest_feasible(blended, compiled)
    lo, hi = compiled.lower, compiled.upper
    highest = min(hi[growth].sum(), 1.0 - lo[~growth].sum())
    lowest = max(lo[growth].sum(), 1.0 - hi[~growth].sum())
    share = min(max(float(blended[growth].sum()), lowest), highest)
    row = growth.astype(float).reshape(1, -1)
    pinned = dataclasses.replace(
        compiled,
        a_min=np.vstack([compiled.a_min, row]),
        b_min=np.append(compiled.b_min, share),
        a_max=np.vstack([compiled.a_max, row]),
        b_max=np.append(compiled.b_max, share),
        min_labels=(*compiled.min_labels, "growth side"),
        max_labels=(*compiled.max_labels, "growth side"),
    )
    try:
        return nearest_feasible(blended, pinned)
    except InfeasibleConstraints:
        return nearest_feasible(blended, compiled)


def _glide_blend(
    estimates: Estimates,
    compiled: CompiledConstraints,
    assets: Mapping[str, AssetInfo],
    settings: OptimizerSettings,
) -> tuple[np.ndarray, str, list[FallbackStep], float, list[str], tuple[Sleeve, ...]]:
    glide = settings.glide
    plugin = load_glide_path(glide.plugin, knots=glide.knots, retirement_age=glide.retirement_age)
    aggressive_share, safe_share = blend_shares(plugin, glide.age)
    symbols = estimates.symbols
    defensive = tuple(s for s in symbols if assets.get(s, AssetInfo()).asset_class in DEFENSIVE_ASSET_CLASSES)
    growth = tuple(s for s in symbols if s not in defensive)
    notes = [f"glide path at age {glide.age:g}: {aggressive_share:.1%} aggressive, {safe_share:.1%} safe"]
    bond_share = glide.safe_bond_share

    # (chain, members, share of the whole portfolio, label) per sleeve.
    aggressive_plan = ((settings.strategy, *settings.fallbacks), growth or defensive, aggressive_share, "")
    if not growth:
        notes.append("no growth assets in the universe: the aggressive side uses the bond and cash assets")
    if defensive and growth:
        safe_plans = [
            (SAFE_SLEEVE_CHAIN, defensive, safe_share * bond_share, "safe bonds: "),
            (SAFE_SLEEVE_CHAIN, growth, safe_share * (1 - bond_share), "safe equities: "),
        ]
    else:
        if not defensive:
            notes.append("no bond or cash assets in the universe: the safe side is min-volatility over equities")
        safe_plans = [(SAFE_SLEEVE_CHAIN, defensive or growth, safe_share, "safe: ")]
    plans = [plan for plan in (aggressive_plan, *safe_plans) if plan[2] > 0]
    exposure = dict.fromkeys(symbols, 0.0)
    for _, members, share, _ in plans:
        for symbol in members:
            exposure[symbol] += share
    exposure = {symbol: value if value > 0 else 1.0 for symbol, value in exposure.items()}

    position = {symbol: i for i, symbol in enumerate(symbols)}
    blended = np.zeros(len(symbols))
    sides = {"aggressive": np.zeros(len(symbols)), "safe": np.zeros(len(symbols))}
    used, failures = settings.strategy, []
    for chain, members, share, label in plans:
        sub = _sleeve(compiled, members, exposure)
        weights, name, steps = run_chain(chain, estimates.subset(members), sub, settings.params, label)
        blended[[position[s] for s in members]] += share * weights
        sides["aggressive" if label == "" else "safe"][[position[s] for s in members]] += share * weights
        failures += steps
        if label == "":
            used = name
    side_shares = {"aggressive": aggressive_share, "safe": safe_share}
    sleeves = tuple(
        Sleeve(name, side_shares[name], sides[name] / side_shares[name]) for name in sides if side_shares[name] > 0
    )
    broken = compiled.violations(blended, tolerance=1e-7)
    if not broken:
        blended = problems.polish(blended, compiled, "glide-path blend")  # solver-tolerance crumbs only
    else:
        growth_mask = np.array([symbol in growth for symbol in symbols])
        projected = _nearest_keeping_sides(blended, compiled, growth_mask)
        notes.append(
            f"the straight blend broke {len(broken)} constraint(s) ({broken[0]}); moved to the nearest allowed "
            f"weights (total change {np.abs(projected - blended).sum() / 2:.2%})"
        )
        blended = projected
    return blended, used, failures, aggressive_share, notes, sleeves


# -- entry points --------------------------------------------------------------------------------


def prepare(
    prices: pd.DataFrame,
    assets: Mapping[str, AssetInfo] | None,
    settings: OptimizerSettings,
    estimates_cache: dict[tuple, Estimates] | None = None,
    names: SettingNames | None = None,
) -> tuple[tuple[str, ...], list[str], Estimates, CompiledConstraints]:
    """Universe, estimates and checked constraints; ``estimates_cache`` shares estimates between settings.

    ``names`` are what an infeasibility message calls the settings (the environment's variables
    by default).
    """
    assets = assets or {}
    symbols = tuple(str(column) for column in prices.columns)
    universe, notes = settings.constraints.universe(symbols, assets)
    cache = {} if estimates_cache is None else estimates_cache
    key = (universe, settings.estimators)
    if key not in cache:
        cache[key] = estimate(prices[list(universe)], settings.estimators)
    compiled = compile_constraints(universe, assets, settings.constraints)
    check_feasibility(compiled, names)
    return universe, notes, cache[key], compiled


def _solve(
    estimates: Estimates, compiled: CompiledConstraints, assets: Mapping[str, AssetInfo], settings: OptimizerSettings
) -> tuple[np.ndarray, str, list[FallbackStep], float | None, list[str], tuple[Sleeve, ...]]:
    """(weights, strategy used, fallbacks, equity share, notes, sleeves) under ``compiled``."""
    if settings.glide.age is None:
        chain = (settings.strategy, *settings.fallbacks)
        weights, used, failures = run_chain(chain, estimates, compiled, settings.params)
        return weights, used, failures, None, [], ()
    return _glide_blend(estimates, compiled, assets, settings)


def _asked_weights(
    estimates: Estimates,
    assets: Mapping[str, AssetInfo],
    settings: OptimizerSettings,
    cache: dict[tuple, np.ndarray | str],
) -> np.ndarray | str:
    """The weights the glide path and strategy choose without per-asset bounds and group limits,
    or why they could not be computed; shared by settings that differ only in those bounds."""
    free = dataclasses.replace(settings, constraints=without_bounds(settings.constraints))
    key = (estimates.symbols, free.fingerprint())
    if key not in cache:
        compiled = compile_constraints(estimates.symbols, assets, free.constraints)
        try:
            cache[key] = _solve(estimates, compiled, assets, free)[0]
        except OptimizationError as error:
            cache[key] = str(error)
    return cache[key]


def optimize(
    prices: pd.DataFrame,
    assets: Mapping[str, AssetInfo] | None = None,
    settings: OptimizerSettings | None = None,
    *,
    estimates_cache: dict[tuple, Estimates] | None = None,
    names: SettingNames | None = None,
    asked_cache: dict[tuple, np.ndarray | str] | None = None,
) -> OptimizationResult:
    """Target weights for the columns of ``prices`` (rows = days, ascending).

    When per-asset bounds or group limits could bind, the weights are also solved without them
    and each bound that moved an asset is reported in the result's ``warnings``.
    """
    settings = settings or OptimizerSettings()
    assets = assets or {}
    universe, notes, estimates, compiled = prepare(prices, assets, settings, estimates_cache, names)
    notes = list(notes)
    weights, used, failures, equity_share, solve_notes, sleeves = _solve(estimates, compiled, assets, settings)
    notes += solve_notes
    warnings: tuple[BoundWarning, ...] = ()
    if not bounds_are_free(compiled):
        asked = _asked_weights(estimates, assets, settings, {} if asked_cache is None else asked_cache)
        if isinstance(asked, str):
            notes.append(f"the weights without the bounds could not be computed ({asked}): no bound warnings")
        else:
            warnings = bound_warnings(weights, asked, compiled, settings.constraints, assets)
    metrics = portfolio_metrics(
        weights, estimates.mu, estimates.cov, estimates.returns, risk_free_rate=settings.params.risk_free_rate
    )
    symbols = tuple(str(column) for column in prices.columns)
    full = np.zeros(len(symbols))
    index = {symbol: i for i, symbol in enumerate(symbols)}
    full[[index[s] for s in universe]] = weights
    return OptimizationResult(
        symbols=symbols,
        weights=full,
        strategy=used,
        requested_strategy=settings.strategy,
        fallbacks=tuple(failures),
        metrics=metrics,
        risk_free_rate=settings.params.risk_free_rate,
        equity_share=equity_share,
        notes=tuple(notes),
        as_of=estimates.last_date,
        input_hash=input_hash(prices, assets, settings),
        universe=universe,
        estimates=estimates,
        constraints=compiled,
        sleeves=sleeves,
        warnings=warnings,
    )


def prices_digest(prices: pd.DataFrame, lookback_days: int | None) -> str:
    """Digest of the price window an optimization reads (dates, symbols and every value)."""
    window = lookback_window(prices, lookback_days)
    digest = hashlib.sha256()
    digest.update(_canonical([str(c) for c in window.columns]).encode())
    digest.update(np.asarray(window.index.values).astype("datetime64[ns]").view("int64").tobytes())
    digest.update(np.ascontiguousarray(window.to_numpy(dtype=float)).tobytes())
    return digest.hexdigest()


def input_hash(prices: pd.DataFrame, assets: Mapping[str, AssetInfo], settings: OptimizerSettings) -> str:
    """Same prices window, asset data and settings -> same hash -> the stored result can be reused."""
    default = AssetInfo()
    relevant_assets = {
        str(c): [info.asset_class, info.sector, info.esg_score]
        for c in prices.columns
        for info in (assets.get(str(c), default),)
    }
    digest = hashlib.sha256()
    digest.update(prices_digest(prices, settings.estimators.lookback_days).encode())
    digest.update(_canonical(relevant_assets).encode())
    digest.update(settings.fingerprint().encode())
    return digest.hexdigest()


def optimize_many(
    prices: pd.DataFrame,
    assets: Mapping[str, AssetInfo] | None,
    settings_list: Sequence[OptimizerSettings],
    names: SettingNames | None = None,
) -> list[OptimizationResult | OptimizationError]:
    """One result (or the error) per settings, computing each distinct settings once.

    Estimates are shared by every settings with the same universe and estimator settings, the
    weights without bounds by settings that differ only in their bounds, and problems of the same
    shape reuse one compiled cvxpy problem.
    """
    assets = assets or {}
    by_fingerprint: dict[str, OptimizationResult | OptimizationError] = {}
    estimates_cache: dict[tuple, Estimates] = {}
    # Scoped to this call, like the estimates: settings that differ only in their bounds share one unbounded solve.
    asked_cache: dict[tuple, np.ndarray | str] = {}
    answers = []
    for settings in settings_list:
        key = settings.fingerprint()
        if key not in by_fingerprint:
            try:
                by_fingerprint[key] = optimize(
                    prices, assets, settings, estimates_cache=estimates_cache, names=names, asked_cache=asked_cache
                )
            except OptimizationError as error:
                by_fingerprint[key] = error
        answers.append(by_fingerprint[key])
    return answers


@dataclass(frozen=True)
class FrontierPoint:
    expected_return: float
    volatility: float
    sharpe: float


def efficient_frontier(
    prices: pd.DataFrame,
    assets: Mapping[str, AssetInfo] | None = None,
    settings: OptimizerSettings | None = None,
    points: int = 30,
) -> list[FrontierPoint]:
    """``points`` portfolios from minimum volatility to maximum return, under the same constraints."""
    settings = settings or OptimizerSettings()
    if points < 2:
        raise ConfigurationError(f"points: at least 2, got {points}")
    _, _, estimates, compiled = prepare(prices, assets, settings)
    return frontier_points(estimates, compiled, settings.params.risk_free_rate, points)


def frontier_points(
    estimates: Estimates, compiled: CompiledConstraints, risk_free_rate: float, points: int = 30
) -> list[FrontierPoint]:
    """`efficient_frontier` from estimates and compiled constraints already at hand (a result's own)."""
    if points < 2:
        raise ConfigurationError(f"points: at least 2, got {points}")
    rf = risk_free_rate
    factor = estimates.risk_factor()
    lowest = problems.solve("min_risk", compiled, factor=factor)
    highest = problems.solve("max_return", compiled, mu=estimates.mu)
    low_return, high_return = float(lowest @ estimates.mu), float(highest @ estimates.mu)
    frontier = []
    for target in np.linspace(low_return, high_return, points):
        if target <= low_return:
            weights = lowest
        else:
            try:
                weights = problems.solve(
                    "efficient_return", compiled, factor=factor, mu=estimates.mu, target_return=float(target)
                )
            except (problems.Infeasible, OptimizationError):
                weights = highest  # the top end can be a hair beyond the solver's tolerance
        volatility = float(np.sqrt(max(weights @ estimates.cov @ weights, 0.0)))
        expected = float(weights @ estimates.mu)
        frontier.append(FrontierPoint(expected, volatility, (expected - rf) / volatility if volatility else math.nan))
    return frontier
