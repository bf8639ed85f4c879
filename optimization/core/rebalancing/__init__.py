"""Trade planning: holdings + prices + targets + policy -> a plan of trades, each with its reason.

`plan_rebalance` (planner.py) is the entry point. Policy lives in policy.py, inputs and the
derived context in inputs.py, answers in results.py, the strategy interface and registry in
base.py; the strategies in simple.py (full, threshold, cash_flow) and optimized.py
(minimize_trades, minimize_costs, risk_aware); finalize.py turns a proposal into orders.
"""

from .base import PLANNING_STRATEGIES, PlanningStrategy, Proposal, resolve_planner
from .finalize import Orders, finalize
from .inputs import PlanContext, PlanInputs
from .needs import deposit_needed_usd, need_sentence, needs
from .planner import plan_rebalance
from .policy import BandPolicy, CostModel, RebalancePolicy, TradingPolicy, TriggerPolicy
from .results import Need, Plan, Trade, TriggerDecision
from .triggers import evaluate_triggers

__all__ = [
    "PLANNING_STRATEGIES",
    "BandPolicy",
    "CostModel",
    "Need",
    "Orders",
    "Plan",
    "PlanContext",
    "PlanInputs",
    "PlanningStrategy",
    "Proposal",
    "RebalancePolicy",
    "Trade",
    "TradingPolicy",
    "TriggerDecision",
    "TriggerPolicy",
    "deposit_needed_usd",
    "evaluate_triggers",
    "finalize",
    "need_sentence",
    "needs",
    "plan_rebalance",
    "resolve_planner",
]
