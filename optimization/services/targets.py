"""Turn database rows into optimizer inputs and results back into rows.

This module is the only place where Decimals (models) become floats (optimizer) and back.
Results are reused by input hash: identical price window, asset data and settings on the same
day are solved once however many portfolios share them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketdata import calendar
from marketdata.models import Instrument
from marketdata.recent import Memo, RecentReads
from marketdata.reference import lookup
from marketdata.selectors import price_frame
from optimization.core.constraints import AssetInfo, Constraints, GroupLimit, SettingNames, parse_group_limit
from optimization.core.engine import (
    GlidePathSettings,
    OptimizerSettings,
    frontier_points,
    input_hash,
    optimize,
    optimize_many,
)
from optimization.core.engine import (
    OptimizationResult as CoreResult,
)
from optimization.core.errors import InsufficientData, OptimizationError
from optimization.core.estimators import EstimatorSettings
from optimization.core.glidepath import blend_shares, load_glide_path
from optimization.core.problems import Infeasible
from optimization.core.strategies import StrategyParams

from ..models import WEIGHT_PLACES, OptimizationResult, TargetAllocation, TargetWeight

WEIGHT_QUANTUM = Decimal(1).scaleb(-WEIGHT_PLACES)
# What the core's messages call a portfolio's settings: their labels on its settings page
# (`portfolios.forms.LABELS`; a test keeps the two equal).
PORTFOLIO_SETTING_NAMES = SettingNames(
    min_weight="Minimum weight",
    max_weight="Maximum weight",
    weight_overrides="Weight overrides",
    groups="Group limits",
)


def _float(value) -> float | None:
    return None if value is None else float(value)


def string_list(field: str, raw, *, upper: bool = False) -> list[str]:
    """A JSON list of non-empty strings (symbols upper-cased); anything else names ``field``."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list | tuple) or not all(isinstance(item, str) and item.strip() for item in raw):
        raise ValueError(f'{field}: expected a list of texts like ["VTI", "BND"], got {raw!r}')
    return [item.strip().upper() if upper else item.strip() for item in raw]


def _group_limits(texts: Sequence[str]) -> tuple[GroupLimit, ...]:
    return tuple(parse_group_limit(text) for text in texts or ())


def _bound(symbol: str, value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"weight_overrides: {symbol} bound {value!r} is not a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"weight_overrides: {symbol} bound {value!r} is not a number") from None


def _overrides(raw) -> dict[str, tuple[float | None, float | None]]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f'weight_overrides: expected {{"SYMBOL": [min, max]}}, got {raw!r}')
    overrides = {}
    for symbol, bounds in raw.items():
        if not isinstance(bounds, list | tuple) or len(bounds) != 2:
            raise ValueError(f"weight_overrides: {symbol} needs [min, max] (null for no bound), got {bounds!r}")
        overrides[str(symbol).upper()] = (_bound(symbol, bounds[0]), _bound(symbol, bounds[1]))
    return overrides


def _knots(raw) -> tuple[tuple[float, float], ...] | None:
    if not raw:
        return None
    try:
        if isinstance(raw, str | Mapping):
            raise TypeError
        return tuple((float(age), float(share)) for age, share in raw)
    except (TypeError, ValueError):
        raise ValueError(f"knots: expected [[age, equity share], ...], got {raw!r}") from None


def optimizer_settings_for(portfolio, *, on: date | None = None, **overrides) -> OptimizerSettings:
    """The optimizer settings a portfolio's policy describes (validated by the core's dataclasses)."""
    values = {
        "strategy": portfolio.strategy,
        "fallbacks": tuple(string_list("fallbacks", portfolio.fallbacks)),
        "returns_method": portfolio.returns_method,
        "cov_method": portfolio.cov_method,
        "lookback_days": portfolio.lookback_days,
        "min_observations": portfolio.min_observations,
        "risk_free_rate": _float(portfolio.risk_free_rate),
        "target_volatility": _float(portfolio.target_volatility),
        "target_return": _float(portfolio.target_return),
        "risk_aversion": _float(portfolio.risk_aversion),
        "min_weight": _float(portfolio.min_weight),
        "max_weight": _float(portfolio.max_weight),
        "weight_overrides": _overrides(portfolio.weight_overrides),
        "group_limits": tuple(string_list("group_limits", portfolio.group_limits)),
        "esg_floor": _float(portfolio.esg_floor),
        "esg_mode": portfolio.esg_mode,
        "excluded": frozenset(string_list("excluded_symbols", portfolio.excluded_symbols, upper=True)),
        "l2_gamma": _float(portfolio.l2_gamma),
        "age": portfolio.investor_age(on),
        "retirement_age": portfolio.retirement_age,
        "knots": _knots(portfolio.glide_path_knots),
        "glide_plugin": portfolio.glide_path_class or None,
        "safe_bond_share": _float(portfolio.safe_bond_share),
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return build_settings(**values)


def optimizer_settings_from_defaults(**overrides) -> OptimizerSettings:
    """Settings from the environment (the seed's variables), with ``overrides`` (None = keep default)."""
    s = django_settings
    values = {
        "strategy": s.OPTIMIZATION_STRATEGY,
        "fallbacks": tuple(s.OPTIMIZATION_FALLBACKS),
        "returns_method": s.EXPECTED_RETURNS_METHOD,
        "cov_method": s.COVARIANCE_METHOD,
        "lookback_days": s.LOOKBACK_DAYS,
        "min_observations": s.MIN_OBSERVATIONS,
        "risk_free_rate": s.RISK_FREE_RATE,
        "min_weight": s.MIN_WEIGHT,
        "max_weight": s.MAX_WEIGHT,
        "group_limits": tuple(s.GROUP_LIMITS),
        "retirement_age": s.RETIREMENT_AGE,
        "glide_plugin": s.GLIDE_PATH_CLASS or None,
        "safe_bond_share": s.SAFE_PORTFOLIO_BONDS,
        "age": None,
    }
    values.update({key: value for key, value in overrides.items() if value is not None or key == "lookback_days"})
    return build_settings(**values)


def build_settings(
    *,
    strategy: str,
    fallbacks: tuple[str, ...] = (),
    returns_method: str = "compounded",
    cov_method: str = "sample",
    lookback_days: int | None = 252,
    min_observations: int = 20,
    risk_free_rate: float = 0.02,
    target_volatility: float | None = None,
    target_return: float | None = None,
    risk_aversion: float | None = 1.0,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    weight_overrides: Mapping | None = None,
    group_limits: Sequence[str] = (),
    esg_floor: float | None = None,
    esg_mode: str = "weighted",
    excluded: frozenset[str] = frozenset(),
    l2_gamma: float | None = 0.0,
    age: float | None = None,
    retirement_age: float = 65,
    knots=None,
    glide_plugin: str | None = None,
    safe_bond_share: float = 0.8,
) -> OptimizerSettings:
    return OptimizerSettings(
        strategy=strategy,
        fallbacks=tuple(name for name in fallbacks if name != strategy),
        estimators=EstimatorSettings(
            returns_method=returns_method,
            cov_method=cov_method,
            lookback_days=lookback_days,
            min_observations=min_observations,
        ),
        params=StrategyParams(
            risk_free_rate=risk_free_rate,
            target_volatility=target_volatility,
            target_return=target_return,
            risk_aversion=1.0 if risk_aversion is None else risk_aversion,
        ),
        constraints=Constraints(
            min_weight=min_weight,
            max_weight=max_weight,
            weight_overrides=dict(weight_overrides or {}),
            groups=_group_limits(group_limits),
            esg_floor=esg_floor,
            esg_mode=esg_mode,
            excluded=frozenset(excluded),
            l2_gamma=l2_gamma or 0.0,
        ),
        glide=GlidePathSettings(
            age=age,
            retirement_age=retirement_age,
            knots=knots,
            plugin=glide_plugin,
            safe_bond_share=safe_bond_share,
        ),
    )


# -- inputs ---------------------------------------------------------------------------------------


# Reads the daily run repeats for every portfolio of a universe (see `marketdata.recent`).
_recent_windows = RecentReads(max_entries=512)
_recent_assets = RecentReads(max_entries=512)
_recent_results = RecentReads(max_entries=2048)  # by input hash


def asset_info(symbols: Sequence[str]) -> dict[str, AssetInfo]:
    """Asset class, sector and ESG score per symbol: stored instruments first, then the reference table."""
    return dict(_recent_assets.get_or_read(tuple(symbols), lambda: _asset_info(symbols)))


def _asset_info(symbols: Sequence[str]) -> dict[str, AssetInfo]:
    stored = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(symbols))}
    info = {}
    for symbol in symbols:
        instrument = stored.get(symbol)
        if instrument is not None:
            info[symbol] = AssetInfo(
                asset_class=instrument.asset_class,
                sector=instrument.sector,
                esg_score=_float(instrument.esg_score),
            )
        else:
            known = lookup(symbol)
            info[symbol] = AssetInfo(asset_class=known.asset_class, sector=known.sector)
    return info


def price_window(symbols: Sequence[str], *, as_of: date | None, lookback_days: int | None) -> pd.DataFrame:
    """Adjusted closes for ``symbols`` over the lookback ending at ``as_of`` (default: last completed session)."""
    end = as_of or calendar.last_completed_session(timezone.now())
    start = calendar.sessions_back(end, lookback_days + 1) if lookback_days else date(1900, 1, 1)

    def complete(frame: pd.DataFrame) -> bool:  # every symbol has its close on the last day
        return bool(len(frame)) and frame.index[-1].date() == end and not frame.iloc[-1].isna().any()

    read = _recent_windows.get_or_read(
        (tuple(symbols), start, end),
        lambda: price_frame(symbols=list(symbols), start=start, end=end).reindex(columns=list(symbols)),
        keep=complete,
    )
    frame = read.dropna(how="all")  # a new frame: the remembered one is never handed out
    stored = ~np.isnan(frame.to_numpy(dtype="float64", na_value=np.nan)).all(axis=0)
    missing = [symbol for symbol, has_prices in zip(symbols, stored, strict=True) if not has_prices]
    if missing:
        raise InsufficientData(
            f"no stored prices between {start} and {end} for {', '.join(missing)}; run fetch_prices for them"
        )
    return frame


def portfolio_symbols(portfolio) -> list[str]:
    symbols = sorted(portfolio.instruments.values_list("symbol", flat=True))
    if not symbols:
        raise InsufficientData(f"portfolio {portfolio.name!r} has no instruments; add the assets it may hold")
    return symbols


# -- results --------------------------------------------------------------------------------------


def weights_to_decimal(weights: Mapping[str, float]) -> dict[str, Decimal]:
    """Floats -> Decimals with WEIGHT_PLACES places that add up to exactly 1.

    Largest-remainder rounding: every weight is rounded down to the quantum, then the units
    still missing go to the weights that lost the most. Each stored weight is within one
    quantum of its float and never above its ceiling, so a weight sitting exactly on a cap
    (0.4) or a floor stays on it, and a later "sum to 1" check never trips on representation noise.
    """
    exact = {symbol: Decimal(repr(float(weight))) for symbol, weight in weights.items()}
    units = {
        symbol: (value / WEIGHT_QUANTUM).to_integral_value(rounding=ROUND_FLOOR) for symbol, value in exact.items()
    }
    missing = int(Decimal(1) / WEIGHT_QUANTUM - sum(units.values(), Decimal(0)))
    if not 0 <= missing <= len(units):
        raise ValueError(f"weights add up to {sum(exact.values())}, not 1")
    by_loss = sorted(units, key=lambda symbol: (-(exact[symbol] / WEIGHT_QUANTUM - units[symbol]), symbol))
    for symbol in by_loss[:missing]:
        units[symbol] += 1
    return {symbol: (count * WEIGHT_QUANTUM).quantize(WEIGHT_QUANTUM) for symbol, count in units.items()}


def _settings_json(settings: OptimizerSettings) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(settings), default=_json_default))


def _json_default(value):
    if isinstance(value, frozenset | set):
        return sorted(value)
    return str(value)


def _decimal_or_none(value: float | None, places: int) -> Decimal | None:
    if value is None or not np.isfinite(value):
        return None
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places))


# -- what reports draw, stored once per result ------------------------------------------------------

ANALYSIS_VERSION = 1
FRONTIER_POINTS = 30
# Significant digits kept in the stored analysis: far below estimation error, and a 50-asset
# covariance stays around 30 KB of JSON.
ANALYSIS_DIGITS = 7
GLIDE_CURVE_AGES = range(20, 96)


def _sig(value: float | None, digits: int = ANALYSIS_DIGITS) -> float | None:
    """``value`` rounded to ``digits`` significant digits; None for None, NaN and infinities."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{float(value):.{digits}g}")


def _risk_point(weights: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> dict:
    return {
        "expected_return": _sig(float(weights @ mu)),
        "volatility": _sig(math.sqrt(max(float(weights @ cov @ weights), 0.0))),
    }


def _glide_json(settings: OptimizerSettings) -> dict | None:
    """The glide path used: its parameters, the investor's age and share, and the curve by age."""
    glide = settings.glide
    if glide.age is None:
        return None
    plugin = load_glide_path(glide.plugin, knots=glide.knots, retirement_age=glide.retirement_age)
    knots = getattr(plugin, "knots", None)
    return {
        "age": glide.age,
        "equity_share": _sig(blend_shares(plugin, glide.age)[0]),
        "retirement_age": getattr(plugin, "retirement_age", glide.retirement_age),
        "knots": [[age, share] for age, share in knots] if knots else None,
        "plugin": glide.plugin,
        "safe_bond_share": glide.safe_bond_share,
        "curve": [[age, _sig(blend_shares(plugin, age)[0], 4)] for age in GLIDE_CURVE_AGES],
    }


def frontier_key(result: CoreResult) -> str:
    """Digest of what the efficient frontier depends on: the universe's estimates and its compiled
    constraints. Results that differ only in age, strategy or risk-free rate share it (and the frontier)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(result.universe)).encode())
    estimates, compiled = result.estimates, result.constraints
    for array in (estimates.mu, estimates.cov, compiled.lower, compiled.upper):
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    for array in (compiled.a_min, compiled.b_min, compiled.a_max, compiled.b_max):
        digest.update(repr(np.asarray(array, dtype=float).shape).encode())
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    digest.update(repr(float(compiled.l2_gamma)).encode())
    return digest.hexdigest()


# Frontiers by `frontier_key`, per process: a frontier is a function of its key alone (the
# universe's estimates and constraints). Without this memory every new result of the daily run
# looked for it among the day's stored results, whose JSON grows with them.
_frontiers = Memo(max_entries=256)


def _frontier(result: CoreResult, key: str) -> list | str:
    """[[volatility, expected return], ...], or why there is none; remembered, from a result
    stored today with the same key, or solved (about 30 solves, once per universe and constraints)."""
    return _frontiers.get_or_compute(key, lambda: _frontier_read_or_solve(result, key))


def _frontier_read_or_solve(result: CoreResult, key: str) -> list | str:
    as_of = result.as_of.date() if hasattr(result.as_of, "date") else result.as_of
    stored = (
        OptimizationResult.objects.filter(as_of=as_of, analysis__frontier_key=key)
        .values_list("analysis__frontier", flat=True)
        .first()
    )
    if stored:
        return stored
    try:
        points = frontier_points(result.estimates, result.constraints, result.risk_free_rate, FRONTIER_POINTS)
    except (Infeasible, OptimizationError) as error:
        return f"efficient frontier not computed: {str(error) or type(error).__name__}"
    return [[_sig(point.volatility), _sig(point.expected_return)] for point in points]


def result_analysis(result: CoreResult, settings: OptimizerSettings) -> dict:
    """What the run report draws for a result, computed once when the result is stored.

    ``symbols`` (the universe, in order) with annualised ``mu`` (N,) and ``cov`` (N x N);
    ``frontier``: about 30 [volatility, expected return] points from minimum volatility to
    maximum return under the same constraints (None when a solve failed; ``notes`` says why),
    shared by results with the same ``frontier_key``; ``sleeves``: the glide path's aggressive
    and safe portfolios (share, weights by symbol, expected return and volatility); ``glide``:
    the glide path used (None without an age). Fractions, annualised; floats rounded to
    `ANALYSIS_DIGITS` significant digits.
    """
    estimates = result.estimates
    if estimates is None or result.constraints is None:
        return {}
    mu, cov = estimates.mu, estimates.cov
    notes: list[str] = []
    key = frontier_key(result)
    frontier = _frontier(result, key)
    if isinstance(frontier, str):
        notes.append(frontier)
        frontier = None
    sleeves = {
        sleeve.name: {
            "share": _sig(sleeve.share),
            "weights": {
                symbol: _sig(float(weight))
                for symbol, weight in zip(estimates.symbols, sleeve.weights, strict=True)
                if abs(weight) > 1e-12
            },
            **_risk_point(sleeve.weights, mu, cov),
        }
        for sleeve in result.sleeves
    }
    return {
        "version": ANALYSIS_VERSION,
        "symbols": list(estimates.symbols),
        "mu": [_sig(value) for value in mu.tolist()],
        "cov": [[_sig(value) for value in row] for row in cov.tolist()],
        "risk_free_rate": result.risk_free_rate,
        "frontier_key": key,
        "frontier": frontier,
        "sleeves": sleeves,
        "glide": _glide_json(settings),
        "notes": notes,
    }


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
                equity_share=_decimal_or_none(result.equity_share, 5),
                expected_return=_decimal_or_none(result.metrics.expected_return, 10),
                volatility=_decimal_or_none(result.metrics.volatility, 10),
                sharpe=_decimal_or_none(result.metrics.sharpe, 10),
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
