"""The portfolio's policy settings by group: the one list the settings form, the admin, the REST
API and the config.json import all take their fields (and their order) from."""

from __future__ import annotations

GLIDE_PATH_FIELDS = (
    "use_glide_path",
    "age",
    "birth_year",
    "retirement_age",
    "glide_path_knots",
    "glide_path_class",
    "safe_bond_share",
)
ESTIMATOR_FIELDS = (
    "strategy",
    "fallbacks",
    "returns_method",
    "cov_method",
    "risk_free_rate",
    "lookback_days",
    "min_observations",
    "target_volatility",
    "target_return",
    "risk_aversion",
)
CONSTRAINT_FIELDS = (
    "min_weight",
    "max_weight",
    "weight_overrides",
    "group_limits",
    "esg_floor",
    "esg_mode",
    "excluded_symbols",
    "l2_gamma",
)
BAND_FIELDS = (
    "band_mode",
    "band_abs",
    "band_rel",
    "unheld_outside_band",
    "band_trigger",
    "drift_threshold",
    "calendar",
    "cooldown_days",
    "cash_trigger_weight",
    "cash_trigger_usd",
)
PLANNING_FIELDS = (
    "rebalancing_strategy",
    "threshold_to",
    "cash_flow_to",
    "commission_per_trade_usd",
    "spread_bps",
    "impact_bps",
    "min_trade_usd",
    "fractional_shares",
    "cash_buffer_weight",
    "max_turnover",
    "do_not_trade",
    "drift_cost_bps",
    "tracking_error_aversion",
)
EXECUTION_FIELDS = ("broker_account", "mode", "order_type")
# Every policy setting (manual targets override the optimizer's; the broker account is a relation).
POLICY_FIELDS = (
    *GLIDE_PATH_FIELDS,
    *ESTIMATOR_FIELDS,
    *CONSTRAINT_FIELDS,
    *BAND_FIELDS,
    *PLANNING_FIELDS,
    "manual_targets",
    *EXECUTION_FIELDS,
)
