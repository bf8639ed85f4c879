"""What the planner answers: the needs table, the trigger decision, the trades and the plan."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple


# Need and Trade are named tuples, not dataclasses: a plan of 50 holdings builds 50 needs, and
# 10,000 plans a night make their construction cost count; they are as immutable.
class Need(NamedTuple):
    """One holding against its target (the seed's `RebalancingNeed`).

    ``deviation`` is current minus target weight (> 0 overweight). ``urgency`` is
    |deviation| / band: 1 is on the band's edge, above 1 outside. ``action`` is what bringing
    the holding back to target would take: "buy", "sell" or "hold" (inside its band).
    """

    symbol: str
    current_weight: float
    target_weight: float
    deviation: float
    band: float
    outside: bool
    urgency: float
    action: str


@dataclass(frozen=True)
class TriggerDecision:
    """Whether the policy allows a rebalance today and why.

    ``fired``: names of the triggers that fired ("band", "drift", "calendar", "cash",
    "manual"). ``reasons``: one sentence per fired trigger. ``blocked_by``: why fired triggers
    were ignored (the cooldown), or None.
    """

    rebalance: bool
    fired: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    blocked_by: str | None = None

    @property
    def label(self) -> str:
        """One line for tables and the run's trigger field."""
        if self.blocked_by:
            return self.blocked_by
        if not self.rebalance:
            return "no action needed"
        return "; ".join(self.reasons)


class Trade(NamedTuple):
    """One order to place. ``quantity`` > 0 in shares; ``notional_usd`` = quantity x price."""

    symbol: str
    side: str  # "buy" or "sell"
    quantity: float
    price: float
    notional_usd: float
    cost_usd: float
    reason: str


@dataclass(frozen=True)
class Plan:
    """A rebalancing plan for one portfolio.

    Drift is sum |w - t| / 2 with cash included; turnover is one-way, sum |notional| / (2 x
    value before). ``deposit_needed_usd`` is the smallest deposit after which buying alone
    puts every holding inside its band (None when no deposit can: a do-not-trade holding below its
    band). ``trades`` are sells first,
    then buys, each group by symbol. Weights after are fractions of ``value_after_usd``.
    """

    strategy: str
    trigger: TriggerDecision
    needs: tuple[Need, ...]
    trades: tuple[Trade, ...]
    drift_before: float
    drift_after: float
    turnover: float
    total_cost_usd: float
    value_before_usd: float
    value_after_usd: float
    cash_before_usd: float
    cash_flow_usd: float
    cash_after_usd: float
    weights_after: dict[str, float]
    cash_weight_after: float
    deposit_needed_usd: float | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        # asdict keeps named tuples as tuples: name their fields for JSON.
        data["needs"] = [need._asdict() for need in self.needs]
        data["trades"] = [trade._asdict() for trade in self.trades]
        data["trigger"]["label"] = self.trigger.label
        return data
