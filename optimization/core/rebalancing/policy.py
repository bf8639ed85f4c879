"""The rebalancing policy: tolerance bands, triggers, costs and trading rules.

Weights and bands are fractions of total portfolio value (cash included): 0.05 is 5 percentage
points. Every validation error starts with the name of the offending field, which is also the
name of the portfolio's model field, so forms and the API can attach it to the right input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigurationError
from ..names import PLANNING_STRATEGY_NAMES

BAND_MODES = ("absolute", "relative", "five_twenty_five", "hybrid")
CALENDARS = ("daily", "weekly", "monthly", "quarterly", "annually")
THRESHOLD_TARGETS = ("target", "band_edge")
CASH_FLOW_TARGETS = ("target", "band_edge")
# A band is never narrower than one basis point of value, so a target of 0 (sell everything)
# still gives a finite urgency and a position of a few cents does not count as a breach.
MIN_BAND = 0.0001


def _check_fraction(name: str, value: float | None, *, allow_zero: bool, allow_none: bool = False) -> None:
    if value is None:
        if allow_none:
            return
        raise ConfigurationError(f"{name}: required")
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name}: expected a number, got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not low_ok or value > 1:
        lower = "0" if allow_zero else "above 0"
        raise ConfigurationError(f"{name}: must be {lower} and at most 1 (100%), got {value:g}")


def _check_non_negative(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name}: expected a number at least 0, got {value!r}")


@dataclass(frozen=True)
class BandPolicy:
    """Per-holding tolerance bands around the target weight.

    ``absolute``: a fixed width in weight (0.05 = 5 pp). ``relative``: a fraction of the target
    (0.25 = 25% of it). ``five_twenty_five``: the narrower of the two, so a holding is outside as
    soon as either limit is crossed (Swedroe's 5/25 rule: 60% target -> 5 pp, 10% -> 2.5 pp).
    ``hybrid``: the wider of the two, so a holding is outside only once both are crossed
    (Wealthfolio's default: 60% target -> 15 pp, 10% -> 5 pp).

    ``unheld_outside_band``: a symbol with a positive target and no shares held counts as outside
    its band whatever its deviation (as Lumibot's drift rebalancer buys a new asset at once), so
    the band trigger fires and `threshold` buys it.
    """

    band_mode: str = "five_twenty_five"
    band_abs: float = 0.05
    band_rel: float = 0.25
    unheld_outside_band: bool = False

    def __post_init__(self) -> None:
        if self.band_mode not in BAND_MODES:
            raise ConfigurationError(f"band_mode: {self.band_mode!r} is not one of {', '.join(BAND_MODES)}")
        _check_fraction("band_abs", self.band_abs, allow_zero=False)
        _check_fraction("band_rel", self.band_rel, allow_zero=False)
        if not isinstance(self.unheld_outside_band, bool):
            raise ConfigurationError(f"unheld_outside_band: expected true or false, got {self.unheld_outside_band!r}")

    def bands(self, targets: np.ndarray) -> np.ndarray:
        """Band width per holding (weights, shape of ``targets``), never below ``MIN_BAND``."""
        targets = np.asarray(targets, dtype=float)
        if self.band_mode == "absolute":
            width = np.full_like(targets, self.band_abs)
        elif self.band_mode == "relative":
            width = self.band_rel * targets
        elif self.band_mode == "hybrid":
            width = np.maximum(self.band_abs, self.band_rel * targets)
        else:
            width = np.minimum(self.band_abs, self.band_rel * targets)
        return np.maximum(width, MIN_BAND)


@dataclass(frozen=True)
class TriggerPolicy:
    """When a plan may trade. Any enabled trigger fires a rebalance; the cooldown blocks them all.

    ``band_trigger``: any holding outside its band. ``drift_threshold``: portfolio drift
    (sum |w - t| / 2, cash included) at or above this. ``calendar``: the first trading day of a
    new period since the last rebalance. ``cash_trigger_weight`` / ``cash_trigger_usd``: cash
    above the buffer by more than this share of value / this many dollars. ``cooldown_days``:
    calendar days after the last rebalance during which no trigger fires (a manual request does).
    """

    band_trigger: bool = True
    drift_threshold: float | None = None
    calendar: str | None = None
    cooldown_days: int = 0
    cash_trigger_weight: float | None = None
    cash_trigger_usd: float | None = None

    def __post_init__(self) -> None:
        _check_fraction("drift_threshold", self.drift_threshold, allow_zero=False, allow_none=True)
        if self.calendar is not None and self.calendar not in CALENDARS:
            raise ConfigurationError(f"calendar: {self.calendar!r} is not one of {', '.join(CALENDARS)}")
        if not isinstance(self.cooldown_days, int) or not 0 <= self.cooldown_days <= 3660:
            raise ConfigurationError(
                f"cooldown_days: expected whole days between 0 and 3660, got {self.cooldown_days!r}"
            )
        _check_fraction("cash_trigger_weight", self.cash_trigger_weight, allow_zero=False, allow_none=True)
        _check_non_negative("cash_trigger_usd", self.cash_trigger_usd, allow_none=True)


@dataclass(frozen=True)
class CostModel:
    """Estimated cost of one trade: a fixed commission plus spread and market impact in bps of notional."""

    commission_per_trade_usd: float = 0.0
    spread_bps: float = 5.0
    impact_bps: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative("commission_per_trade_usd", self.commission_per_trade_usd)
        for name in ("spread_bps", "impact_bps"):
            value = getattr(self, name)
            _check_non_negative(name, value)
            if value > 1000:
                raise ConfigurationError(f"{name}: at most 1000 bps (10%), got {value:g}")

    @property
    def variable_rate(self) -> float:
        """Cost per dollar traded (spread + impact)."""
        return (self.spread_bps + self.impact_bps) / 10_000

    def cost_usd(self, notional_usd: np.ndarray) -> np.ndarray:
        """Cost per trade for absolute notionals (USD); zero where nothing is traded."""
        notional = np.abs(np.asarray(notional_usd, dtype=float))
        return np.where(notional > 0, self.commission_per_trade_usd + notional * self.variable_rate, 0.0)


@dataclass(frozen=True)
class TradingPolicy:
    """How trades are sized.

    ``cash_buffer_weight``: share of value kept in cash; targets scale to ``1 - buffer``.
    ``max_turnover``: one-way turnover cap, sum |trade notional| / (2 x value). ``do_not_trade``:
    symbols never traded. ``threshold_to``: where `threshold` moves a holding outside its band
    (the target or the nearest band edge). ``cash_flow_to``: where `cash_flow` takes a holding
    with the cash it invests (an underweight holding up to its target, or only up to the lower
    edge of its band) and, for a withdrawal, where it sells an overweight one down to (its
    target, or the upper edge of its band). ``drift_cost_bps``: what `minimize_costs` charges per
    percentage point of drift left, in bps of value. ``tracking_error_aversion``: the weight of
    ex-ante tracking error variance against costs in `risk_aware`.
    """

    strategy: str = "threshold"
    threshold_to: str = "target"
    cash_flow_to: str = "target"
    min_trade_usd: float = 10.0
    fractional_shares: bool = True
    cash_buffer_weight: float = 0.0025
    max_turnover: float | None = None
    do_not_trade: frozenset[str] = field(default_factory=frozenset)
    drift_cost_bps: float = 10.0
    tracking_error_aversion: float = 100.0

    def __post_init__(self) -> None:
        if self.strategy not in PLANNING_STRATEGY_NAMES and "." not in self.strategy:
            raise ConfigurationError(
                f"rebalancing_strategy: {self.strategy!r} is not one of {', '.join(PLANNING_STRATEGY_NAMES)} "
                "and is not a dotted path"
            )
        if self.threshold_to not in THRESHOLD_TARGETS:
            raise ConfigurationError(
                f"threshold_to: {self.threshold_to!r} is not one of {', '.join(THRESHOLD_TARGETS)}"
            )
        if self.cash_flow_to not in CASH_FLOW_TARGETS:
            raise ConfigurationError(
                f"cash_flow_to: {self.cash_flow_to!r} is not one of {', '.join(CASH_FLOW_TARGETS)}"
            )
        _check_non_negative("min_trade_usd", self.min_trade_usd)
        _check_fraction("cash_buffer_weight", self.cash_buffer_weight, allow_zero=True)
        if self.cash_buffer_weight >= 1:
            raise ConfigurationError("cash_buffer_weight: must be below 1 (100%)")
        _check_fraction("max_turnover", self.max_turnover, allow_zero=False, allow_none=True)
        _check_non_negative("drift_cost_bps", self.drift_cost_bps)
        _check_non_negative("tracking_error_aversion", self.tracking_error_aversion)
        object.__setattr__(self, "do_not_trade", frozenset(s.upper() for s in self.do_not_trade))


@dataclass(frozen=True)
class RebalancePolicy:
    """Everything a plan needs besides holdings, prices and targets."""

    bands: BandPolicy = field(default_factory=BandPolicy)
    triggers: TriggerPolicy = field(default_factory=TriggerPolicy)
    costs: CostModel = field(default_factory=CostModel)
    trading: TradingPolicy = field(default_factory=TradingPolicy)
