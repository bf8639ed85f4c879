"""Names of the built-in strategies, importable without cvxpy (settings validate against it)."""

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
