"""Names of the built-in strategies, importable without cvxpy (settings and models validate against them)."""

STRATEGY_NAMES: tuple[str, ...] = (
    "max_sharpe",
    "min_volatility",
    "efficient_risk",
    "efficient_return",
    "max_quadratic_utility",
    "risk_parity",
    "inverse_volatility",
    "equal_weight",
)

#: Built-in trade planning strategies (optimization.core.rebalancing.strategies registry).
PLANNING_STRATEGY_NAMES: tuple[str, ...] = (
    "full",
    "threshold",
    "minimize_trades",
    "minimize_costs",
    "risk_aware",
    "cash_flow",
)
