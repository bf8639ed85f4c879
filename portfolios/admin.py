"""Admin for portfolios: staff configure every policy setting here."""

from __future__ import annotations

from django.contrib import admin

from portfolios.models import Portfolio


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "strategy", "age", "birth_year", "min_weight", "max_weight", "updated_at"]
    list_filter = ["strategy", "returns_method", "cov_method", "use_glide_path"]
    search_fields = ["name", "owner__username"]
    autocomplete_fields = ["owner"]
    filter_horizontal = ["instruments"]
    list_select_related = ["owner"]
    fieldsets = [
        (None, {"fields": ["owner", "name", "base_currency", "instruments"]}),
        (
            "Profile and glide path",
            {
                "fields": [
                    "use_glide_path",
                    "age",
                    "birth_year",
                    "retirement_age",
                    "glide_path_knots",
                    "glide_path_class",
                    "safe_bond_share",
                ]
            },
        ),
        (
            "Optimization",
            {
                "fields": [
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
                ]
            },
        ),
        (
            "Constraints",
            {
                "fields": [
                    "min_weight",
                    "max_weight",
                    "weight_overrides",
                    "group_limits",
                    "esg_floor",
                    "esg_mode",
                    "excluded_symbols",
                    "l2_gamma",
                ]
            },
        ),
    ]
