"""The one interface every trade planning strategy implements, and their registry.

A strategy looks at a `PlanContext` and answers with a `Proposal`: the value in USD it wants
each holding to have after trading, as continuous amounts. The shared finishing step
(`finalize`) turns that into orders: whole or fractional quantities, minimum trade size,
no shorts, buys funded by cash and sell proceeds, the cash buffer, the turnover cap, costs
and a one-line reason per trade. A strategy therefore only decides *where* to go.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import ConfigurationError
from ..names import PLANNING_STRATEGY_NAMES
from .inputs import PlanContext


@dataclass(frozen=True, eq=False)
class Proposal:
    """Desired holding values after trading (USD, one per symbol, >= 0), before rounding.

    ``reasons`` overrides the default one-line reason for a symbol's trade; ``notes`` are
    sentences for the plan (a fallback taken, a constraint that bound). ``idle_cash_reason``:
    why the strategy leaves cash above the buffer uninvested; finalize turns it into a note with
    the amount left after rounding ("about $200 stays in cash above the buffer: <reason>").
    """

    target_values_usd: np.ndarray
    reasons: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    idle_cash_reason: str | None = None


class PlanningStrategy(ABC):
    """Turns a context into a proposal. Subclasses set ``name`` and implement ``propose``.

    ``sells``: False for strategies that must never sell (the finishing step enforces it).
    """

    name: ClassVar[str]
    sells: ClassVar[bool] = True

    @abstractmethod
    def propose(self, context: PlanContext) -> Proposal: ...

    def final_notes(
        self, context: PlanContext, values_after_usd: np.ndarray, value_after_usd: float
    ) -> tuple[str, ...]:
        """Sentences about the final orders (holding values after trading, USD, shape (N,), and the
        portfolio's value after costs), once finalize has rounded, funded and guarded them."""
        return ()


#: Built-in planning strategies by name; any other name is imported as a dotted path.
PLANNING_STRATEGIES: dict[str, str] = {
    "full": "optimization.core.rebalancing.simple.FullRebalance",
    "threshold": "optimization.core.rebalancing.simple.ThresholdRebalance",
    "cash_flow": "optimization.core.rebalancing.simple.CashFlowRebalance",
    "minimize_trades": "optimization.core.rebalancing.optimized.MinimizeTrades",
    "minimize_costs": "optimization.core.rebalancing.optimized.MinimizeCosts",
    "risk_aware": "optimization.core.rebalancing.optimized.RiskAware",
}
assert set(PLANNING_STRATEGIES) == set(PLANNING_STRATEGY_NAMES)

_instances: dict[str, PlanningStrategy] = {}


def check_strategy_name(name: str) -> str:
    """``name`` if it is a registered strategy or a dotted path, else `ConfigurationError`."""
    if name not in PLANNING_STRATEGIES and "." not in name:
        raise ConfigurationError(
            f"rebalancing_strategy: {name!r} is not one of {', '.join(PLANNING_STRATEGIES)} and is not a dotted path"
        )
    return name


def resolve_planner(name: str) -> PlanningStrategy:
    """A strategy instance by registry name or dotted path of a `PlanningStrategy` subclass."""
    if name in _instances:
        return _instances[name]
    path = PLANNING_STRATEGIES.get(check_strategy_name(name), name)
    module_name, _, attribute = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"rebalancing_strategy: cannot import {path!r} ({error})") from error
    if not (isinstance(cls, type) and issubclass(cls, PlanningStrategy)):
        raise ConfigurationError(f"rebalancing_strategy: {path!r} is not a PlanningStrategy subclass")
    _instances[name] = instance = cls()
    return instance
