"""Instruments, daily price bars, and the log of every fetch with its data-quality findings."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from rebalancer_site.env import SYMBOL_RE

# Prices: 12 integer digits and 8 decimals (adjusted closes of old history go below 1 USD).
PRICE_DIGITS = 20
PRICE_PLACES = 8

symbol_validator = RegexValidator(
    SYMBOL_RE, "A ticker symbol: capital letters, digits, '.', '-' or '=', optionally starting with '^'."
)


class AssetClass(models.TextChoices):
    EQUITY = "equity", "Equity"
    BOND = "bond", "Bond"
    REAL_ESTATE = "real_estate", "Real estate"
    COMMODITY = "commodity", "Commodity"
    CASH = "cash", "Cash"
    OTHER = "other", "Other"


class Instrument(models.Model):
    """A tradable security (ETF, stock or index) identified by its ticker symbol."""

    symbol = models.CharField(max_length=20, unique=True, validators=[symbol_validator])
    name = models.CharField(max_length=200, blank=True)
    asset_class = models.CharField(max_length=20, choices=AssetClass.choices, default=AssetClass.OTHER)
    sector = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    esg_score = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="Optional ESG score from 0 (worst) to 100 (best).",
    )
    fractionable = models.BooleanField(default=True, help_text="Whether brokers accept fractional shares.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                condition=Q(esg_score__isnull=True) | Q(esg_score__gte=0, esg_score__lte=100),
                name="instrument_esg_score_0_100",
            )
        ]

    def __str__(self) -> str:
        return self.symbol


def _price_field(*, null: bool) -> models.DecimalField:
    return models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, null=null, blank=null)


class PriceBar(models.Model):
    """One trading day of one instrument: OHLC, adjusted close (USD) and volume.

    Sources that publish only an adjusted close leave open/high/low/close empty.
    `synthetic` marks invented prices (the offline sample provider).
    """

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="bars")
    date = models.DateField(help_text="Trading date in the exchange's time zone.")
    open = _price_field(null=True)
    high = _price_field(null=True)
    low = _price_field(null=True)
    close = _price_field(null=True)
    adj_close = _price_field(null=False)
    volume = models.BigIntegerField(null=True, blank=True)
    source = models.CharField(max_length=40)
    synthetic = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instrument", "date"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "date"], name="pricebar_unique_instrument_date"),
            models.CheckConstraint(condition=Q(adj_close__gt=0), name="pricebar_adj_close_positive"),
            models.CheckConstraint(
                condition=(Q(open__isnull=True) | Q(open__gt=0))
                & (Q(high__isnull=True) | Q(high__gt=0))
                & (Q(low__isnull=True) | Q(low__gt=0))
                & (Q(close__isnull=True) | Q(close__gt=0)),
                name="pricebar_ohlc_positive",
            ),
            models.CheckConstraint(condition=Q(volume__isnull=True) | Q(volume__gte=0), name="pricebar_volume_gte_0"),
        ]
        indexes = [models.Index(fields=["date"], name="pricebar_date_idx")]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.date} {self.adj_close}"


class FetchLog(models.Model):
    """One fetch or import: what was asked, which providers answered, what was written and found."""

    class Kind(models.TextChoices):
        FETCH = "fetch", "Fetch from providers"
        IMPORT = "import", "Import from files"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        PARTIAL = "partial", "Partial: some symbols failed"
        FAILED = "failed", "Failed: nothing fetched"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FETCH)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    providers = models.JSONField(default=list, help_text="Providers tried, in order.")
    store = models.CharField(max_length=20)
    symbols = models.JSONField(default=list, help_text="Symbols requested.")
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    symbol_sources = models.JSONField(default=dict, help_text="Symbol -> provider that supplied it.")
    rows_written = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    gaps_found = models.PositiveIntegerField(default=0)
    stale_symbols = models.JSONField(default=list)
    failed_symbols = models.JSONField(default=list)
    errors = models.JSONField(default=list, help_text="[{provider, symbol, error}] per failed attempt.")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="fetchlog_started_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class QualityFinding(models.Model):
    """A data-quality observation made while writing bars; rejected rows are never stored."""

    class Kind(models.TextChoices):
        REJECTED_PRICE = "rejected_price", "Rejected: non-positive or missing price"
        DUPLICATE_DATE = "duplicate_date", "Rejected: duplicate date"
        NON_SESSION = "non_session", "Rejected: not an NYSE session"
        GAP = "gap", "Gap: missing session"
        SUSPICIOUS_MOVE = "suspicious_move", "Suspicious daily move (kept)"
        STALE = "stale", "Stale: last bar older than the last session"
        PROVIDER_FAILED = "provider_failed", "Provider could not supply the symbol"

    fetch_log = models.ForeignKey(FetchLog, on_delete=models.CASCADE, related_name="findings")
    symbol = models.CharField(max_length=20, db_index=True)
    date = models.DateField(null=True, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["fetch_log", "symbol", "date"]
        indexes = [models.Index(fields=["kind", "symbol"], name="finding_kind_symbol_idx")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.date or ''} {self.kind}"
