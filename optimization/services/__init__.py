"""Services of the optimization app: targets (optimizer) and planning (trade planner) glue."""

from .planning import (
    manual_targets_parse,
    plan_covariance,
    plan_inputs_build,
    price_decimal,
    quantity_decimal,
    ratio_decimal,
    rebalance_policy_for,
    usd_decimal,
)
from .targets import (
    PORTFOLIO_SETTING_NAMES,
    asset_info,
    build_settings,
    optimizer_settings_for,
    optimizer_settings_from_defaults,
    portfolio_optimize,
    portfolio_symbols,
    price_window,
    result_store,
    targets_compute,
    targets_compute_many,
    weights_to_decimal,
)

__all__ = [
    "PORTFOLIO_SETTING_NAMES",
    "asset_info",
    "build_settings",
    "manual_targets_parse",
    "optimizer_settings_for",
    "optimizer_settings_from_defaults",
    "plan_covariance",
    "plan_inputs_build",
    "portfolio_optimize",
    "portfolio_symbols",
    "price_decimal",
    "price_window",
    "quantity_decimal",
    "ratio_decimal",
    "rebalance_policy_for",
    "result_store",
    "targets_compute",
    "targets_compute_many",
    "usd_decimal",
    "weights_to_decimal",
]
