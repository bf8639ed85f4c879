"""Portfolios a user owns and the optimization policy each one carries.

The rebalancing policy (holdings, cash, bands, costs, mode) extends this model; here lives what
the optimizer needs: the universe, the investor profile for the glide path, the strategy and
its estimators, and the constraints.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from optimization.core.estimators import COV_METHODS, RETURN_METHODS
from optimization.core.names import STRATEGY_NAMES


def _setting(name: str):
    value = getattr(settings, name)
    return Decimal(str(value)) if isinstance(value, float) else value


# Model defaults come from the environment (the seed's variables) when a portfolio is created.
def default_user_age() -> int:
    return _setting("USER_AGE")


def default_retirement_age() -> int:
    return _setting("RETIREMENT_AGE")


def default_strategy() -> str:
    return _setting("OPTIMIZATION_STRATEGY")


def default_returns_method() -> str:
    return _setting("EXPECTED_RETURNS_METHOD")


def default_cov_method() -> str:
    return _setting("COVARIANCE_METHOD")


def default_risk_free_rate() -> Decimal:
    return _setting("RISK_FREE_RATE")


def default_lookback_days() -> int:
    return _setting("LOOKBACK_DAYS")


def default_min_observations() -> int:
    return _setting("MIN_OBSERVATIONS")


def default_min_weight() -> Decimal:
    return _setting("MIN_WEIGHT")


def default_max_weight() -> Decimal:
    return _setting("MAX_WEIGHT")


def default_safe_bond_share() -> Decimal:
    return _setting("SAFE_PORTFOLIO_BONDS")


def default_fallbacks() -> list[str]:
    return list(settings.OPTIMIZATION_FALLBACKS)


def default_group_limits() -> list[str]:
    return list(settings.GROUP_LIMITS)


FRACTION = [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))]


class Portfolio(models.Model):
    class Currency(models.TextChoices):
        USD = "USD", "US dollar"

    class EsgMode(models.TextChoices):
        WEIGHTED = "weighted", "Portfolio-weighted ESG score at least the floor"
        EXCLUDE = "exclude", "Exclude assets scoring below the floor"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolios")
    name = models.CharField(max_length=100)
    base_currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    instruments = models.ManyToManyField("marketdata.Instrument", related_name="portfolios", blank=True)

    # Investor profile (glide path). Birth year wins over age when both are set.
    use_glide_path = models.BooleanField(default=True)
    age = models.PositiveSmallIntegerField(
        null=True, blank=True, default=default_user_age, validators=[MinValueValidator(18), MaxValueValidator(100)]
    )
    birth_year = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1900), MaxValueValidator(2100)]
    )
    retirement_age = models.PositiveSmallIntegerField(
        default=default_retirement_age, validators=[MinValueValidator(40), MaxValueValidator(100)]
    )
    glide_path_knots = models.JSONField(
        null=True, blank=True, help_text="Custom knots [[age, equity share], ...]; empty for the default curve."
    )
    glide_path_class = models.CharField(max_length=200, blank=True, help_text="Dotted path of a plug-in class.")
    safe_bond_share = models.DecimalField(
        max_digits=5, decimal_places=4, default=default_safe_bond_share, validators=FRACTION
    )

    # Optimization.
    strategy = models.CharField(max_length=200, default=default_strategy)
    fallbacks = models.JSONField(default=default_fallbacks, blank=True)
    returns_method = models.CharField(
        max_length=20, choices=[(m, m) for m in RETURN_METHODS], default=default_returns_method
    )
    cov_method = models.CharField(max_length=20, choices=[(m, m) for m in COV_METHODS], default=default_cov_method)
    risk_free_rate = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=default_risk_free_rate,
        validators=[MinValueValidator(Decimal("-0.05")), MaxValueValidator(Decimal("0.25"))],
    )
    lookback_days = models.PositiveIntegerField(
        default=default_lookback_days, validators=[MinValueValidator(30), MaxValueValidator(10_000)]
    )
    min_observations = models.PositiveIntegerField(default=default_min_observations, validators=[MinValueValidator(2)])
    target_volatility = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True, validators=FRACTION)
    target_return = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True)
    risk_aversion = models.DecimalField(
        max_digits=8, decimal_places=4, default=Decimal(1), validators=[MinValueValidator(Decimal("0.0001"))]
    )

    # Constraints.
    min_weight = models.DecimalField(max_digits=5, decimal_places=4, default=default_min_weight, validators=FRACTION)
    max_weight = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=default_max_weight,
        validators=[MinValueValidator(Decimal("0.001")), MaxValueValidator(Decimal(1))],
    )
    weight_overrides = models.JSONField(
        default=dict, blank=True, help_text='Per-asset bounds: {"AAPL": [min or null, max or null]}.'
    )
    group_limits = models.JSONField(
        default=default_group_limits, blank=True, help_text='e.g. ["technology <= 30%", "bonds >= 20%"].'
    )
    esg_floor = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    esg_mode = models.CharField(max_length=10, choices=EsgMode.choices, default=EsgMode.WEIGHTED)
    excluded_symbols = models.JSONField(default=list, blank=True)
    l2_gamma = models.DecimalField(
        max_digits=8, decimal_places=4, default=Decimal(0), validators=[MinValueValidator(Decimal(0))]
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="portfolio_unique_name_per_owner"),
            models.CheckConstraint(
                condition=models.Q(min_weight__lte=models.F("max_weight")), name="portfolio_min_le_max"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"

    def investor_age(self, on: date | None = None) -> int | None:
        """Age used by the glide path: from the birth year when known, else the stored age."""
        if not self.use_glide_path:
            return None
        if self.birth_year:
            return (on or date.today()).year - self.birth_year
        return self.age

    def clean(self) -> None:
        super().clean()
        if self.strategy and self.strategy not in STRATEGY_NAMES and "." not in self.strategy:
            raise ValidationError({"strategy": f"{self.strategy!r} is not one of {', '.join(STRATEGY_NAMES)}"})
        # The optimizer's own validation names the offending setting; map it onto the form field.
        from optimization.services import optimizer_settings_for

        try:
            optimizer_settings_for(self)
        except ValueError as error:
            raise ValidationError(_field_error(str(error))) from None


_FIELD_BY_PREFIX = {
    "min_weight": "min_weight",
    "max_weight": "max_weight",
    "weight_overrides": "weight_overrides",
    "group limit": "group_limits",
    "esg": "esg_floor",
    "knots": "glide_path_knots",
    "glide_path": "glide_path_class",
    "retirement_age": "retirement_age",
    "age": "age",
    "target_volatility": "target_volatility",
    "target_return": "target_return",
    "risk_aversion": "risk_aversion",
    "risk_free_rate": "risk_free_rate",
    "strategy": "strategy",
    "l2_gamma": "l2_gamma",
    "lookback_days": "lookback_days",
    "min_observations": "min_observations",
    "safe_bond_share": "safe_bond_share",
}


def _field_error(message: str) -> dict[str, str] | str:
    for prefix, field_name in _FIELD_BY_PREFIX.items():
        if message.startswith(prefix):
            return {field_name: message}
    return message
