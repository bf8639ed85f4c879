"""Portfolios a user owns and the policy each one carries.

The policy has two halves: what the optimizer needs (universe, investor profile for the glide
path, strategy, estimators, constraints) and how the planner trades towards the targets (bands,
triggers, costs, sizing, mode). Defaults come from the environment when a portfolio is created.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from optimization.core.estimators import COV_METHODS, RETURN_METHODS
from optimization.core.names import PLANNING_STRATEGY_NAMES, STRATEGY_NAMES
from optimization.core.rebalancing.policy import BAND_MODES, CALENDARS, CASH_FLOW_TARGETS, THRESHOLD_TARGETS


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


def default_band_abs() -> Decimal:
    return _setting("REBALANCE_THRESHOLD")


def default_band_mode() -> str:
    return _setting("BAND_MODE")


def default_band_rel() -> Decimal:
    return _setting("BAND_RELATIVE")


def default_drift_threshold() -> Decimal | None:
    return _setting("DRIFT_THRESHOLD")


def default_calendar() -> str:
    return _setting("REBALANCE_CALENDAR")


def default_cooldown_days() -> int:
    return _setting("COOLDOWN_DAYS")


def default_cash_trigger_weight() -> Decimal | None:
    return _setting("CASH_TRIGGER_WEIGHT")


def default_cash_trigger_usd() -> Decimal | None:
    return _setting("CASH_TRIGGER_USD")


def default_rebalancing_strategy() -> str:
    return _setting("REBALANCING_STRATEGY")


def default_commission_per_trade_usd() -> Decimal:
    return _setting("COMMISSION_PER_TRADE_USD")


def default_spread_bps() -> Decimal:
    return _setting("SPREAD_BPS")


def default_impact_bps() -> Decimal:
    return _setting("IMPACT_BPS")


def default_min_trade_usd() -> Decimal:
    return _setting("MIN_TRADE_USD")


def default_fractional_shares() -> bool:
    return _setting("FRACTIONAL_SHARES")


def default_cash_buffer_weight() -> Decimal:
    return _setting("CASH_BUFFER_WEIGHT")


def default_max_turnover() -> Decimal | None:
    return _setting("MAX_TURNOVER")


def default_mode() -> str:
    return _setting("PORTFOLIO_MODE")


def default_order_type() -> str:
    return _setting("ORDER_TYPE")


# Labelled (unlike `threshold_to`'s same values) so that the API schema names the two choice sets apart.
CASH_FLOW_TO_LABELS = {"target": "to the target", "band_edge": "to the nearest band edge"}
FRACTION = [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))]
# Bands, drift and turnover limits: above 0 and at most 100%.
POSITIVE_FRACTION = [MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal(1))]
NON_NEGATIVE = [MinValueValidator(Decimal(0))]
BPS = [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1000))]


class Portfolio(models.Model):
    class Currency(models.TextChoices):
        USD = "USD", "US dollar"

    class EsgMode(models.TextChoices):
        WEIGHTED = "weighted", "Portfolio-weighted ESG score at least the floor"
        EXCLUDE = "exclude", "Exclude assets scoring below the floor"

    class Mode(models.TextChoices):
        PROPOSE = "propose", "Propose (plans wait for approval)"
        AUTO = "auto", "Auto (the daily run executes plans)"

    class OrderType(models.TextChoices):
        MARKET = "market", "Market"
        LIMIT = "limit", "Limit"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolios")
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True, help_text="Included in the daily run.")
    base_currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    # The universe: what the optimizer allocates over, and the symbols whose prices the portfolio needs.
    instruments = models.ManyToManyField(
        "marketdata.Instrument", related_name="portfolios", blank=True, through="PortfolioInstrument"
    )

    # Investor profile (glide path). Birth year wins over age when both are set.
    use_glide_path = models.BooleanField(default=True)
    age = models.PositiveSmallIntegerField(
        null=True, blank=True, default=default_user_age, validators=[MinValueValidator(18), MaxValueValidator(110)]
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

    # Money and targets. Cash is uninvested USD; manual targets, when set, replace the optimizer.
    cash_usd = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0), validators=NON_NEGATIVE)
    manual_targets = models.JSONField(
        null=True, blank=True, help_text='Fixed target weights {"VTI": 0.6, "BND": 0.4} summing to 1; empty = optimize.'
    )

    # Tolerance bands and triggers.
    band_mode = models.CharField(
        max_length=20,
        choices=[(m, m) for m in BAND_MODES],
        default=default_band_mode,
        help_text="absolute, relative, five_twenty_five (the narrower of the two) or hybrid (the wider of the two).",
    )
    band_abs = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=default_band_abs,
        validators=POSITIVE_FRACTION,
        help_text="Absolute band per holding (0.05 = 5 percentage points).",
    )
    band_rel = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=default_band_rel,
        validators=POSITIVE_FRACTION,
        help_text="Relative band as a fraction of the target (0.25 = 25% of it).",
    )
    unheld_outside_band = models.BooleanField(
        default=False,
        help_text="A symbol with a positive target and no shares held counts as outside its band, "
        "so the band trigger fires and `threshold` buys it.",
    )
    band_trigger = models.BooleanField(default=True, help_text="Rebalance when any holding leaves its band.")
    drift_threshold = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        default=default_drift_threshold,
        validators=POSITIVE_FRACTION,
        help_text="Portfolio drift, sum |w - t| / 2, that triggers a rebalance.",
    )
    calendar = models.CharField(
        max_length=10,
        blank=True,
        choices=[(c, c) for c in CALENDARS],
        default=default_calendar,
        help_text="Also rebalance on the first trading day of each period.",
    )
    cooldown_days = models.PositiveIntegerField(
        default=default_cooldown_days,
        validators=[MaxValueValidator(3660)],
        help_text="No automatic rebalance within this many days of the last one.",
    )
    cash_trigger_weight = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        default=default_cash_trigger_weight,
        validators=POSITIVE_FRACTION,
        help_text="Rebalance when cash above the buffer exceeds this share of value.",
    )
    cash_trigger_usd = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
        default=default_cash_trigger_usd,
        validators=NON_NEGATIVE,
        help_text="Rebalance when cash above the buffer exceeds this amount.",
    )

    # Trade planning.
    rebalancing_strategy = models.CharField(max_length=200, default=default_rebalancing_strategy)
    threshold_to = models.CharField(
        max_length=10,
        choices=[(t, t) for t in THRESHOLD_TARGETS],
        default="target",
        help_text="Where `threshold` moves a holding outside its band.",
    )
    cash_flow_to = models.CharField(
        max_length=10,
        choices=[(t, CASH_FLOW_TO_LABELS[t]) for t in CASH_FLOW_TARGETS],
        default="target",
        help_text="Where `cash_flow` takes a holding with the cash it invests or raises: its target, or only "
        "the nearest edge of its band.",
    )
    commission_per_trade_usd = models.DecimalField(
        max_digits=10, decimal_places=4, default=default_commission_per_trade_usd, validators=NON_NEGATIVE
    )
    spread_bps = models.DecimalField(max_digits=8, decimal_places=3, default=default_spread_bps, validators=BPS)
    impact_bps = models.DecimalField(max_digits=8, decimal_places=3, default=default_impact_bps, validators=BPS)
    min_trade_usd = models.DecimalField(
        max_digits=14, decimal_places=4, default=default_min_trade_usd, validators=NON_NEGATIVE
    )
    fractional_shares = models.BooleanField(default=default_fractional_shares)
    cash_buffer_weight = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=default_cash_buffer_weight,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal("0.99"))],
        help_text="Share of value kept in cash (0.0025 = 25 bps).",
    )
    max_turnover = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        default=default_max_turnover,
        validators=POSITIVE_FRACTION,
        help_text="One-way turnover cap per rebalance, sum |trade| / (2 x value).",
    )
    do_not_trade = models.JSONField(default=list, blank=True, help_text='Symbols never traded, e.g. ["VTI"].')
    drift_cost_bps = models.DecimalField(
        max_digits=8,
        decimal_places=3,
        default=Decimal(10),
        validators=NON_NEGATIVE,
        help_text="minimize_costs: cost per percentage point of drift left, in bps of value.",
    )
    tracking_error_aversion = models.DecimalField(
        max_digits=10,
        decimal_places=3,
        default=Decimal(100),
        validators=NON_NEGATIVE,
        help_text="risk_aware: weight of tracking error variance against costs.",
    )

    # Execution.
    mode = models.CharField(max_length=10, choices=Mode.choices, default=default_mode)
    order_type = models.CharField(max_length=10, choices=OrderType.choices, default=default_order_type)
    broker_account = models.ForeignKey(
        "brokers.BrokerAccount",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="portfolios",
        help_text="Where orders go; empty = plans only.",
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
        if (
            self.rebalancing_strategy
            and self.rebalancing_strategy not in PLANNING_STRATEGY_NAMES
            and "." not in self.rebalancing_strategy
        ):
            raise ValidationError(
                {
                    "rebalancing_strategy": f"{self.rebalancing_strategy!r} is not one of "
                    f"{', '.join(PLANNING_STRATEGY_NAMES)}"
                }
            )
        if self.broker_account_id and self.owner_id and self.broker_account.owner_id != self.owner_id:
            raise ValidationError({"broker_account": "this broker account belongs to another user"})
        # The core's own validation names the offending setting; map it onto the form field.
        from optimization.services import manual_targets_parse, optimizer_settings_for, rebalance_policy_for

        try:
            optimizer_settings_for(self)
            rebalance_policy_for(self)
            manual_targets_parse(self.manual_targets)
        except ValueError as error:
            raise ValidationError(_field_error(str(error))) from None


class PortfolioInstrument(models.Model):
    """One instrument of a portfolio's universe: chosen by the owner, or joined because it was held.

    One that only joined with a holding leaves the universe when it is neither held nor targeted
    any more (`universe_follow_holdings`); the owner's own choices stay until the owner removes them.
    """

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE)
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.CASCADE)
    joined_with_holding = models.BooleanField(
        default=False,
        help_text="In the universe only because it was held (not chosen): it leaves when neither held nor targeted.",
    )

    class Meta:
        # The table and unique pair Django made for the relation before it had a model of its own.
        db_table = "portfolios_portfolio_instruments"
        unique_together = [("portfolio", "instrument")]

    def __str__(self) -> str:
        return f"{self.portfolio_id}: {self.instrument_id}"


# Core messages that do not start with the model field's own name.
_FIELD_BY_PREFIX = {
    "group limit": "group_limits",
    "esg": "esg_floor",
    "knots": "glide_path_knots",
    "glide_path": "glide_path_class",
    "weight_overrides": "weight_overrides",
}


def _field_error(message: str) -> dict[str, str] | str:
    prefix = message.split(":", 1)[0].strip()
    field_names = {f.name for f in Portfolio._meta.get_fields()}
    if prefix in field_names:
        return {prefix: message}
    for start, field_name in _FIELD_BY_PREFIX.items():
        if message.startswith(start):
            return {field_name: message}
    return message
