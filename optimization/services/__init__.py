"""Services of the optimization app: optimizer settings, inputs, targets and report analysis, and
the trade planner's glue (planning)."""

from .decimals import weights_to_decimal
from .inputs import asset_info, portfolio_symbols, price_window
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
from .settings import (
    PORTFOLIO_SETTING_NAMES,
    build_settings,
    optimizer_settings_for,
    optimizer_settings_from_defaults,
)
from .targets import portfolio_optimize, result_store, targets_compute, targets_compute_many

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
