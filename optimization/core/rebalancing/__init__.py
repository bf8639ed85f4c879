"""Trade planning: holdings + prices + targets + policy -> a plan of trades, each with its reason.

`plan_rebalance` (planner.py) is the entry point. Policy lives in policy.py, inputs and the
derived context in inputs.py, answers in results.py, the strategy interface and registry in
base.py; the strategies in simple.py (full, threshold, cash_flow) and optimized.py
(minimize_trades, minimize_costs, risk_aware); finalize.py turns a proposal into orders.
"""
