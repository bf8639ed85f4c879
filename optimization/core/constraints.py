"""Portfolio constraints: per-asset bounds, group floors and caps, ESG, exclusions.

`Constraints` is what a user configures; `compile_constraints` turns it into arrays for one
ordered universe (`feasibility` explains in words why no portfolio can satisfy them, before
any solver runs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigurationError, InfeasibleConstraints

#: Asset classes understood by group limits, with the plural/colloquial names users type.
ASSET_CLASS_ALIASES: dict[str, str] = {
    "equity": "equity",
    "equities": "equity",
    "stock": "equity",
    "stocks": "equity",
    "bond": "bond",
    "bonds": "bond",
    "fixed income": "bond",
    "real_estate": "real_estate",
    "real estate": "real_estate",
    "reits": "real_estate",
    "commodity": "commodity",
    "commodities": "commodity",
    "cash": "cash",
    "other": "other",
}
#: Asset classes that make up the "safe" side of a glide-path blend.
DEFENSIVE_ASSET_CLASSES = frozenset({"bond", "cash"})

TOLERANCE = 1e-9


@dataclass(frozen=True)
class AssetInfo:
    """What the constraints need to know about an asset besides its prices."""

    asset_class: str = "equity"
    sector: str = ""
    esg_score: float | None = None


@dataclass(frozen=True)
class GroupLimit:
    """A floor and/or cap on the total weight of the assets sharing a sector or asset class."""

    field: str  # "sector" | "asset_class" | "symbols"
    value: str
    min_weight: float | None = None
    max_weight: float | None = None

    def __post_init__(self) -> None:
        if self.field not in ("sector", "asset_class", "symbols"):
            raise ConfigurationError(f"group limit field: {self.field!r} is not sector, asset_class or symbols")
        if self.min_weight is None and self.max_weight is None:
            raise ConfigurationError(f"group limit {self.value!r}: give a minimum, a maximum or both")
        for name in ("min_weight", "max_weight"):
            bound = getattr(self, name)
            if bound is not None and not (math.isfinite(bound) and 0 <= bound <= 1):
                raise ConfigurationError(f"group limit {self.value!r}: {name} {bound} is outside [0, 1]")
        if self.min_weight is not None and self.max_weight is not None and self.min_weight > self.max_weight:
            raise ConfigurationError(
                f"group limit {self.value!r}: minimum {self.min_weight} is above maximum {self.max_weight}"
            )

    def members(self, symbols: Sequence[str], assets: Mapping[str, AssetInfo]) -> list[int]:
        wanted = self.value.casefold()
        if self.field == "symbols":
            chosen = {part.strip().upper() for part in self.value.split(",")}
            return [i for i, symbol in enumerate(symbols) if symbol.upper() in chosen]
        found = []
        for i, symbol in enumerate(symbols):
            info = assets.get(symbol, AssetInfo())
            attribute = info.sector if self.field == "sector" else info.asset_class
            if (attribute or "").casefold() == wanted:
                found.append(i)
        return found

    @property
    def label(self) -> str:
        parts = []
        if self.min_weight is not None:
            parts.append(
                f"{self.value} >= {self.min_weight:.0%}"
                if _whole_percent(self.min_weight)
                else f"{self.value} >= {self.min_weight:g}"
            )
        if self.max_weight is not None:
            parts.append(
                f"{self.value} <= {self.max_weight:.0%}"
                if _whole_percent(self.max_weight)
                else f"{self.value} <= {self.max_weight:g}"
            )
        return " and ".join(parts)


def _whole_percent(value: float) -> bool:
    return abs(value * 100 - round(value * 100)) < 1e-9


_GROUP_PATTERN = re.compile(
    r"^\s*(?:(?P<field>sector|asset_class|class|symbols)\s*:\s*)?(?P<name>[^<>=]+?)\s*(?P<op><=|>=|=)\s*"
    r"(?P<number>[0-9]*\.?[0-9]+)\s*(?P<percent>%?)\s*$",
    re.IGNORECASE,
)


def parse_group_limit(text: str) -> GroupLimit:
    """Parse "technology <= 30%", "bonds >= 0.2", "sector:Energy <= 10%", "asset_class:bond = 40%".

    A bare name that is an asset class (or its plural: bonds, equities, commodities, ...) limits
    that class; any other bare name is a sector.
    """
    match = _GROUP_PATTERN.match(text or "")
    if not match:
        raise ConfigurationError(
            f"group limit {text!r}: expected NAME <= PERCENT or NAME >= PERCENT, e.g. 'technology <= 30%'"
        )
    name = match["name"].strip()
    value = float(match["number"]) / (100 if match["percent"] else 1)
    field_name = (match["field"] or "").lower()
    if field_name in ("class", "asset_class") or (not field_name and name.casefold() in ASSET_CLASS_ALIASES):
        canonical = ASSET_CLASS_ALIASES.get(name.casefold())
        if canonical is None:
            known = ", ".join(sorted(set(ASSET_CLASS_ALIASES.values())))
            raise ConfigurationError(f"group limit {text!r}: {name!r} is not an asset class ({known})")
        field_name, name = "asset_class", canonical
    elif not field_name:
        field_name = "sector"
    op = match["op"]
    return GroupLimit(
        field=field_name,
        value=name,
        min_weight=value if op in (">=", "=") else None,
        max_weight=value if op in ("<=", "=") else None,
    )


@dataclass(frozen=True)
class SettingNames:
    """What error messages call each `Constraints` setting: the environment's variables by
    default; a portfolio's settings are named by their labels on its settings page."""

    min_weight: str = "MIN_WEIGHT"
    max_weight: str = "MAX_WEIGHT"
    weight_overrides: str = "weight_overrides"
    groups: str = "GROUP_LIMITS"


ENVIRONMENT_NAMES = SettingNames()


@dataclass(frozen=True)
class Constraints:
    """Everything that limits the weights, independent of the strategy."""

    min_weight: float = 0.0
    max_weight: float = 1.0
    weight_overrides: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    groups: tuple[GroupLimit, ...] = ()
    esg_floor: float | None = None
    esg_mode: str = "weighted"  # "weighted": portfolio score >= floor; "exclude": drop assets below floor
    excluded: frozenset[str] = frozenset()
    long_only: bool = True
    l2_gamma: float = 0.0

    def __post_init__(self) -> None:
        for name in ("min_weight", "max_weight", "l2_gamma"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ConfigurationError(f"{name}: must be a finite number, got {value}")
        if self.long_only and self.min_weight < 0:
            raise ConfigurationError(f"min_weight: {self.min_weight} is negative but the portfolio is long-only")
        if self.max_weight <= 0 or self.max_weight > 1:
            raise ConfigurationError(f"max_weight: {self.max_weight} is outside (0, 1]")
        if self.min_weight > self.max_weight:
            raise ConfigurationError(f"min_weight: {self.min_weight} is above max_weight {self.max_weight}")
        if self.l2_gamma < 0:
            raise ConfigurationError(f"l2_gamma: must be zero or positive, got {self.l2_gamma}")
        if self.esg_mode not in ("weighted", "exclude"):
            raise ConfigurationError(f"esg_mode: {self.esg_mode!r} is not weighted or exclude")
        if self.esg_floor is not None and not math.isfinite(self.esg_floor):
            raise ConfigurationError(f"esg_floor: must be a finite number, got {self.esg_floor}")
        for symbol, (low, high) in self.weight_overrides.items():
            for bound in (low, high):
                if bound is not None and not (
                    math.isfinite(bound) and bound <= 1 and (bound >= 0 or not self.long_only)
                ):
                    raise ConfigurationError(f"weight_overrides[{symbol}]: bound {bound} is outside [0, 1]")
            if low is not None and high is not None and low > high:
                raise ConfigurationError(f"weight_overrides[{symbol}]: minimum {low} is above maximum {high}")

    def universe(self, symbols: Sequence[str], assets: Mapping[str, AssetInfo]) -> tuple[tuple[str, ...], list[str]]:
        """(symbols that may be held, notes on what was left out and why)."""
        excluded = {symbol.upper() for symbol in self.excluded}
        kept, notes = [], []
        dropped_esg = []
        for symbol in symbols:
            if symbol.upper() in excluded:
                continue
            if self.esg_floor is not None and self.esg_mode == "exclude" and _esg(assets, symbol) < self.esg_floor:
                dropped_esg.append(symbol)
                continue
            kept.append(symbol)
        left_out = sorted(set(symbols) - set(kept) - set(dropped_esg))
        if left_out:
            notes.append(f"excluded by settings: {', '.join(left_out)}")
        if dropped_esg:
            notes.append(f"excluded for an ESG score below {self.esg_floor:g}: {', '.join(dropped_esg)}")
        if not kept:
            raise InfeasibleConstraints(
                "every asset is excluded (by the exclusion list or the ESG floor); allow at least one asset",
                "excluded",
            )
        return tuple(kept), notes


def _esg(assets: Mapping[str, AssetInfo], symbol: str) -> float:
    """Unknown ESG scores count as 0: an asset cannot help meet a floor it was never rated for."""
    score = assets.get(symbol, AssetInfo()).esg_score
    return 0.0 if score is None else float(score)


@dataclass(frozen=True, eq=False)
class CompiledConstraints:
    """Constraints as arrays over one ordered universe: lo <= w <= hi, A_min w >= b_min, A_max w <= b_max."""

    symbols: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    a_min: np.ndarray  # (G_min, N)
    b_min: np.ndarray
    a_max: np.ndarray  # (G_max, N)
    b_max: np.ndarray
    min_labels: tuple[str, ...] = ()
    max_labels: tuple[str, ...] = ()
    l2_gamma: float = 0.0
    # (N,) bools: True where a per-asset override, not the uniform minimum / maximum, set the bound.
    lower_overridden: np.ndarray | None = None
    upper_overridden: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def shape_key(self) -> tuple[int, int, int]:
        """What a cached cvxpy problem depends on: numbers of assets, floor rows and cap rows."""
        return (self.size, len(self.b_min), len(self.b_max))

    def violations(self, weights: np.ndarray, tolerance: float = 1e-8) -> list[str]:
        """Human-readable list of every constraint ``weights`` break by more than ``tolerance``."""
        problems = []
        total = float(np.sum(weights))
        if abs(total - 1) > tolerance:
            problems.append(f"weights add up to {total:.10f}, not 1")
        for i, symbol in enumerate(self.symbols):
            if weights[i] < self.lower[i] - tolerance:
                problems.append(f"{symbol} {weights[i]:.10f} is below its minimum {self.lower[i]:g}")
            if weights[i] > self.upper[i] + tolerance:
                problems.append(f"{symbol} {weights[i]:.10f} is above its maximum {self.upper[i]:g}")
        for row, bound, label in zip(self.a_min, self.b_min, self.min_labels, strict=True):
            if row @ weights < bound - tolerance:
                problems.append(f"{label}: {row @ weights:.10f} < {bound:g}")
        for row, bound, label in zip(self.a_max, self.b_max, self.max_labels, strict=True):
            if row @ weights > bound + tolerance:
                problems.append(f"{label}: {row @ weights:.10f} > {bound:g}")
        return problems

    def subset(self, symbols: tuple[str, ...], *, keep_minimums: bool = False, keep_groups: bool = False):
        """Bounds for a sub-universe (glide-path sleeves): caps kept, floors optional."""
        index = [self.symbols.index(symbol) for symbol in symbols]
        lower = self.lower[index] if keep_minimums else np.zeros(len(index))
        empty = np.zeros((0, len(index)))
        return CompiledConstraints(
            symbols=tuple(symbols),
            lower=lower,
            upper=self.upper[index],
            a_min=self.a_min[:, index] if keep_groups else empty,
            b_min=self.b_min if keep_groups else np.zeros(0),
            a_max=self.a_max[:, index] if keep_groups else empty,
            b_max=self.b_max if keep_groups else np.zeros(0),
            min_labels=self.min_labels if keep_groups else (),
            max_labels=self.max_labels if keep_groups else (),
            l2_gamma=self.l2_gamma,
            lower_overridden=None if self.lower_overridden is None else self.lower_overridden[index],
            upper_overridden=None if self.upper_overridden is None else self.upper_overridden[index],
        )


def compile_constraints(
    symbols: Sequence[str], assets: Mapping[str, AssetInfo], constraints: Constraints
) -> CompiledConstraints:
    """Arrays for ``symbols`` (already filtered by `Constraints.universe`)."""
    size = len(symbols)
    lower = np.full(size, float(constraints.min_weight))
    upper = np.full(size, float(constraints.max_weight))
    lower_overridden = np.zeros(size, dtype=bool)
    upper_overridden = np.zeros(size, dtype=bool)
    index = {symbol.upper(): i for i, symbol in enumerate(symbols)}
    for symbol, (low, high) in constraints.weight_overrides.items():
        i = index.get(symbol.upper())
        if i is None:
            continue
        if low is not None:
            lower[i], lower_overridden[i] = low, True
        if high is not None:
            upper[i], upper_overridden[i] = high, True
    rows_min, bounds_min, labels_min, rows_max, bounds_max, labels_max = [], [], [], [], [], []
    for group in constraints.groups:
        row = np.zeros(size)
        row[group.members(symbols, assets)] = 1.0
        if group.min_weight is not None:
            rows_min.append(row)
            bounds_min.append(group.min_weight)
            labels_min.append(f"group {group.value} >= {group.min_weight:g}")
        if group.max_weight is not None:
            rows_max.append(row)
            bounds_max.append(group.max_weight)
            labels_max.append(f"group {group.value} <= {group.max_weight:g}")
    if constraints.esg_floor is not None and constraints.esg_mode == "weighted":
        rows_min.append(np.array([_esg(assets, symbol) for symbol in symbols]))
        bounds_min.append(float(constraints.esg_floor))
        labels_min.append(f"portfolio ESG score >= {constraints.esg_floor:g}")
    return CompiledConstraints(
        symbols=tuple(symbols),
        lower=lower,
        upper=upper,
        a_min=np.array(rows_min).reshape(len(rows_min), size),
        b_min=np.array(bounds_min, dtype=float),
        a_max=np.array(rows_max).reshape(len(rows_max), size),
        b_max=np.array(bounds_max, dtype=float),
        min_labels=tuple(labels_min),
        max_labels=tuple(labels_max),
        l2_gamma=float(constraints.l2_gamma),
        lower_overridden=lower_overridden,
        upper_overridden=upper_overridden,
    )


def percent(value: float) -> str:
    """0.4 -> '40%', 0.33335 -> '33.34%' (at most two decimals, no trailing zeros)."""
    return f"{float(value) * 100:.2f}".rstrip("0").rstrip(".") + "%"
