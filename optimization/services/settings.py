"""Optimizer settings from a portfolio's policy or from the environment's defaults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from django.conf import settings as django_settings

from optimization.core.constraints import Constraints, GroupLimit, SettingNames, parse_group_limit
from optimization.core.engine import GlidePathSettings, OptimizerSettings
from optimization.core.estimators import EstimatorSettings
from optimization.core.strategies import StrategyParams

from .decimals import float_or_none

# What the core's messages call a portfolio's settings: their labels on its settings page
# (`portfolios.forms.LABELS`; a test keeps the two equal).
PORTFOLIO_SETTING_NAMES = SettingNames(
    min_weight="Minimum weight",
    max_weight="Maximum weight",
    weight_overrides="Weight overrides",
    groups="Group limits",
)


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
        "risk_free_rate": float_or_none(portfolio.risk_free_rate),
        "target_volatility": float_or_none(portfolio.target_volatility),
        "target_return": float_or_none(portfolio.target_return),
        "risk_aversion": float_or_none(portfolio.risk_aversion),
        "min_weight": float_or_none(portfolio.min_weight),
        "max_weight": float_or_none(portfolio.max_weight),
        "weight_overrides": _overrides(portfolio.weight_overrides),
        "group_limits": tuple(string_list("group_limits", portfolio.group_limits)),
        "esg_floor": float_or_none(portfolio.esg_floor),
        "esg_mode": portfolio.esg_mode,
        "excluded": frozenset(string_list("excluded_symbols", portfolio.excluded_symbols, upper=True)),
        "l2_gamma": float_or_none(portfolio.l2_gamma),
        "age": portfolio.investor_age(on),
        "retirement_age": portfolio.retirement_age,
        "knots": _knots(portfolio.glide_path_knots),
        "glide_plugin": portfolio.glide_path_class or None,
        "safe_bond_share": float_or_none(portfolio.safe_bond_share),
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
