"""What a plan starts from: holdings, prices, targets, and the quantities derived from them once.

Shapes: every array has one entry per symbol of ``PlanInputs.symbols`` (N). Money is USD,
quantities are shares, weights are fractions of total value with cash included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigurationError
from .arrays import sum_of
from .policy import RebalancePolicy

# Targets may miss 1 by this much (Decimal weights stored with 10 places sum to exactly 1).
TARGET_SUM_TOLERANCE = 1e-6
# Deviations within this of the band count as inside (float noise on a holding sitting on its edge).
BAND_TOLERANCE = 1e-12


def _vector(name: str, values, size: int, dtype=float) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.shape != (size,):
        raise ConfigurationError(f"{name}: expected {size} values (one per symbol), got shape {array.shape}")
    return array


def drift_of(values_usd: np.ndarray, cash_usd: float, targets: np.ndarray, cash_target: float) -> float:
    """Portfolio drift, sum |w - t| / 2 over holdings and cash, weights of values + cash.

    ``targets`` are the effective targets (shape of ``values_usd``), ``cash_target`` the buffer.
    The same measure as `PlanContext.drift`; 0 for a portfolio worth nothing.
    """
    total = sum_of(values_usd) + cash_usd
    if total <= 0:
        return 0.0
    return float((np.abs(values_usd / total - targets).sum() + abs(cash_usd / total - cash_target)) / 2)


@dataclass(frozen=True, eq=False)
class PlanInputs:
    """Holdings, prices and targets of one portfolio.

    ``symbols``: held or targeted symbols, unique. ``quantities``: shares held (>= 0).
    ``prices``: estimated execution price per share (USD, > 0; the last close). ``targets``:
    target weights of the invested part, >= 0, summing to 1 (the cash buffer is applied by the
    planner). ``fractionable``: whether the instrument accepts fractional shares.
    ``cash_flow_usd``: a deposit (> 0) or withdrawal (< 0) to plan for, on top of ``cash_usd``.
    ``cov``: annualised covariance (N x N), needed by `risk_aware` only.
    """

    symbols: tuple[str, ...]
    quantities: np.ndarray
    prices: np.ndarray
    targets: np.ndarray
    cash_usd: float
    fractionable: np.ndarray | None = None
    cash_flow_usd: float = 0.0
    cov: np.ndarray | None = None

    def __post_init__(self) -> None:
        symbols = tuple(str(s) for s in self.symbols)
        if len(set(symbols)) != len(symbols):
            duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ConfigurationError(f"symbols: duplicate holding for {', '.join(duplicates)}")
        size = len(symbols)
        object.__setattr__(self, "symbols", symbols)
        quantities = _vector("quantities", self.quantities, size)
        prices = _vector("prices", self.prices, size)
        targets = _vector("targets", self.targets, size)
        self._check_each("quantities", quantities, lambda v: np.isfinite(v) & (v >= 0), "negative or not a number")
        self._check_each("prices", prices, lambda v: np.isfinite(v) & (v > 0), "no usable price (missing or <= 0)")
        self._check_each("targets", targets, lambda v: np.isfinite(v) & (v >= 0), "negative or not a number")
        if size and abs(targets.sum() - 1) > TARGET_SUM_TOLERANCE:
            raise ConfigurationError(f"targets: weights sum to {targets.sum():.10g}, not 1")
        if not math.isfinite(self.cash_usd) or self.cash_usd < 0:
            raise ConfigurationError(f"cash_usd: expected an amount at least 0, got {self.cash_usd!r}")
        if not math.isfinite(self.cash_flow_usd):
            raise ConfigurationError(f"cash_flow_usd: expected an amount, got {self.cash_flow_usd!r}")
        fractionable = np.ones(size, dtype=bool) if self.fractionable is None else self.fractionable
        object.__setattr__(self, "quantities", quantities)
        object.__setattr__(self, "prices", prices)
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "fractionable", _vector("fractionable", fractionable, size, dtype=bool))
        if self.cov is not None:
            cov = np.asarray(self.cov, dtype=float)
            if cov.shape != (size, size) or not np.all(np.isfinite(cov)):
                raise ConfigurationError(f"cov: expected a finite {size} x {size} matrix, got shape {cov.shape}")
            object.__setattr__(self, "cov", cov)

    def _check_each(self, name: str, values: np.ndarray, ok, problem: str) -> None:
        bad = [s for s, good in zip(self.symbols, ok(values), strict=True) if not good]
        if bad:
            raise ConfigurationError(f"{name}: {problem} for {', '.join(bad)}")


@dataclass(frozen=True, eq=False)
class PlanContext:
    """Inputs, policy and what every strategy derives from them (computed once, read-only).

    ``total_usd`` is the value the targets apply to: holdings + cash + the cash flow.
    ``targets`` here are the effective targets, ``inputs.targets x (1 - cash buffer)``;
    ``cash_target`` is the buffer. ``deviations`` are current minus target weights (> 0 is
    overweight), ``bands`` the band width per holding, ``outside`` where a deviation exceeds its
    band (and, with ``unheld_outside_band``, where a positive target has no shares held).
    ``tradable`` is False for do-not-trade symbols. ``drift`` is the portfolio drift, sum |w - t| / 2
    over holdings and cash (Betterment's measure).

    Every plan reads all of these, so they are computed eagerly in one pass: at 50 holdings a
    lazy property per array cost more than the arithmetic.
    """

    inputs: PlanInputs
    policy: RebalancePolicy
    values_usd: np.ndarray = field(init=False)
    available_cash_usd: float = field(init=False)
    total_usd: float = field(init=False)
    weights: np.ndarray = field(init=False)
    targets: np.ndarray = field(init=False)
    target_values_usd: np.ndarray = field(init=False)
    deviations: np.ndarray = field(init=False)
    bands: np.ndarray = field(init=False)
    outside: np.ndarray = field(init=False)
    tradable: np.ndarray = field(init=False)
    drift: float = field(init=False)

    def __post_init__(self) -> None:
        inputs, policy = self.inputs, self.policy
        values = inputs.quantities * inputs.prices
        cash = inputs.cash_usd + inputs.cash_flow_usd
        total = sum_of(values) + cash
        if total <= 0:
            raise ConfigurationError(
                "cash_flow_usd: the withdrawal exceeds the portfolio's value"
                if inputs.cash_flow_usd < 0
                else "cash_usd: the portfolio has no value to rebalance (no holdings and no cash)"
            )
        weights = values / total
        targets = inputs.targets * (1 - policy.trading.cash_buffer_weight)
        deviations = weights - targets
        bands = policy.bands.bands(targets)
        blocked = policy.trading.do_not_trade
        if blocked:
            tradable = np.array([s not in blocked for s in inputs.symbols], dtype=bool)
        else:
            tradable = np.ones(len(inputs.symbols), dtype=bool)
        outside = np.abs(deviations) > bands + BAND_TOLERANCE
        if policy.bands.unheld_outside_band:
            outside |= (inputs.quantities == 0) & (targets > 0)
        cash_deviation = abs(cash / total - policy.trading.cash_buffer_weight)
        derived = {
            "values_usd": values,
            "available_cash_usd": float(cash),
            "total_usd": total,
            "weights": weights,
            "targets": targets,
            "target_values_usd": targets * total,
            "deviations": deviations,
            "bands": bands,
            "outside": outside,
            "tradable": tradable,
            # drift_of, inlined: the deviations are already at hand.
            "drift": (sum_of(np.abs(deviations)) + cash_deviation) / 2,
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.inputs.symbols

    @property
    def cash_weight(self) -> float:
        return self.available_cash_usd / self.total_usd

    @property
    def cash_target(self) -> float:
        return self.policy.trading.cash_buffer_weight

    @property
    def whole_shares(self) -> np.ndarray:
        """True where quantities must be whole (the policy or the instrument forbids fractions)."""
        if not self.policy.trading.fractional_shares:
            return np.ones(len(self.symbols), dtype=bool)
        return ~self.inputs.fractionable
