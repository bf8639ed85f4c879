"""Instruments, daily price bars, and the log of every fetch with its data-quality findings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Func, Q
from django.db.models.functions import Now

from ground.env import SYMBOL_RE

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
    # None is "not known": plans trade it in whole shares (which every broker accepts) and say why.
    # A portfolio's broker account answers for itself (see portfolios.models.BrokerAsset).
    fractionable = models.BooleanField(
        null=True,
        blank=True,
        default=None,
        help_text="Whether brokers accept fractional shares of it; empty when not known (plans then trade it "
        "in whole shares and say so). A portfolio's broker account, once synced, answers for its own plans.",
    )
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


# Price bars are keyed by (instrument, trading day) packed into one 64-bit integer.
DAY_ZERO = date(1900, 1, 1)
_DAY_BITS = 32


def bar_id(instrument_id: int, day: date) -> int:
    """The primary key of an instrument's bar on a day: instrument id in the high 32 bits, day in the low."""
    return (instrument_id << _DAY_BITS) | (day - DAY_ZERO).days


def bar_id_range(instrument_id: int, start: date, end: date) -> tuple[int, int]:
    """The first and last possible bar ids of an instrument between two days (inclusive)."""
    return bar_id(instrument_id, max(start, DAY_ZERO)), bar_id(instrument_id, end)


class DaysSinceDayZero(Func):
    """Days from 1900-01-01 to a date column, in SQL (PostgreSQL and SQLite)."""

    output_field = models.BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(%(expressions)s - DATE '1900-01-01')", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        template = "CAST(julianday(%(expressions)s) - julianday('1900-01-01') AS INTEGER)"
        return self.as_sql(compiler, connection, template=template, **extra)


class PriceBar(models.Model):
    """One trading day of one instrument: OHLC, adjusted close (USD) and volume.

    Sources that publish only an adjusted close leave open/high/low/close empty.
    `synthetic` marks invented prices (the offline sample provider).

    The table takes million-bar imports and answers hundred-thousand-bar price
    frames, which shapes it: the primary key is the natural key (instrument,
    day) packed by `bar_id`, so one index serves uniqueness and every lookup
    (a check constraint keeps the id equal to its instrument and date); the
    instrument reference has no database foreign key (its per-row trigger
    tripled import time), so the price store refuses bars of unknown
    instruments and PROTECT keeps instruments with bars from being deleted;
    `adj_close_f8` repeats the adjusted close as a double, written with it, so
    price frames need no decimal conversion per value.
    """

    id = models.BigIntegerField(primary_key=True, editable=False, help_text="bar_id(instrument, date).")
    instrument = models.ForeignKey(
        Instrument, on_delete=models.PROTECT, related_name="bars", db_constraint=False, db_index=False
    )
    date = models.DateField(help_text="Trading date in the exchange's time zone.")
    open = _price_field(null=True)
    high = _price_field(null=True)
    low = _price_field(null=True)
    close = _price_field(null=True)
    adj_close = _price_field(null=False)
    adj_close_f8 = models.FloatField(editable=False, help_text="adj_close as a double.")
    volume = models.BigIntegerField(null=True, blank=True)
    source = models.CharField(max_length=40)
    synthetic = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(id=F("instrument_id") * 2**_DAY_BITS + DaysSinceDayZero("date")),
                name="pricebar_id_is_instrument_and_date",
            ),
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

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.date} {self.adj_close}"

    def save(self, *args: object, **kwargs: object) -> None:
        # Bulk writers set both themselves; this keeps single ORM writes consistent too.
        if self.id is None:
            self.id = bar_id(self.instrument_id, self.date)
        if self.adj_close_f8 is None and self.adj_close is not None:
            self.adj_close_f8 = float(self.adj_close)
        super().save(*args, **kwargs)


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
