"""Writes of market data: fetching from providers, importing files, exporting.

Every write goes through `_store_bars`: data-quality validation, gap and
suspicious-move detection against what is already stored, one all-or-nothing
store write, and a FetchLog with its findings.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketdata import calendar, quality
from marketdata.models import FetchLog, Instrument, QualityFinding
from marketdata.providers.base import BAR_COLUMNS, conform_bars
from marketdata.providers.chain import ProviderChain, ProviderFailure
from marketdata.providers.csv_files import CsvProvider
from marketdata.reference import lookup
from marketdata.stores import PriceStore, get_price_store

logger = logging.getLogger(__name__)

#: progress(label, done, total): called as long work advances (commands draw a bar).
Progress = Callable[[str, int, int], None]


def _no_progress(label: str, done: int, total: int) -> None:
    return None


class NothingFetched(Exception):
    """Not one requested symbol could be fetched or imported; the log says why."""

    def __init__(self, log: FetchLog):
        super().__init__(f"nothing could be fetched for {', '.join(log.failed_symbols) or 'the request'}")
        self.log = log


# --- instruments ----------------------------------------------------------------


def instrument_new(symbol: str) -> Instrument:
    """An unsaved Instrument for ``symbol`` with the reference table's facts.

    A symbol outside the table gets its conservative defaults (`unknown_instrument`), its
    fractionability "not known" (None): plans show that they trade it in whole shares for want of
    an answer.
    """
    info = lookup(symbol)
    return Instrument(
        symbol=symbol,
        name=info.name,
        asset_class=info.asset_class,
        sector=info.sector,
        region=info.region,
        fractionable=info.fractionable,
    )


def instruments_ensure(*, symbols: Sequence[str]) -> dict[str, Instrument]:
    """The Instrument of each symbol, created from the reference table when missing."""
    existing = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(symbols))}
    missing = [s for s in symbols if s not in existing]
    if missing:
        new = [instrument_new(symbol) for symbol in missing]
        for instrument in new:
            instrument.full_clean(validate_unique=False, validate_constraints=False)
        Instrument.objects.bulk_create(new, ignore_conflicts=True)
        existing = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(symbols))}
    return existing


# --- fetch -------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchPlan:
    """Which symbols need which date range, and which are already up to date."""

    expected_last: date
    ranges: dict[date, list[str]]  # start date -> symbols needing bars from then to `end`
    end: date
    up_to_date: list[str]


def fetch_plan(
    *,
    symbols: Sequence[str],
    store: PriceStore,
    start: date | None,
    end: date | None,
    backfill_days: int,
    now: datetime,
) -> FetchPlan:
    """Incremental by default: each symbol from the day after its last stored bar."""
    last_session = calendar.last_completed_session(now)
    end = min(end, last_session) if end else last_session
    expected_last = end if calendar.is_session(end) else calendar.previous_session(end)
    ranges: dict[date, list[str]] = defaultdict(list)
    up_to_date = []
    last_dates = store.last_dates(symbols) if start is None else {}
    backfill_start = calendar.sessions_back(expected_last, backfill_days)
    for symbol in symbols:
        last = last_dates.get(symbol)
        symbol_start = start or (last + timedelta(days=1) if last else backfill_start)
        if symbol_start > expected_last:
            up_to_date.append(symbol)
        else:
            ranges[symbol_start].append(symbol)
    return FetchPlan(expected_last=expected_last, ranges=dict(ranges), end=end, up_to_date=up_to_date)


def prices_fetch(
    *,
    symbols: Sequence[str] | None = None,
    provider_names: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    backfill_days: int | None = None,
    now: datetime | None = None,
    chain: ProviderChain | None = None,
    store: PriceStore | None = None,
    progress: Progress = _no_progress,
) -> FetchLog:
    """Fetches missing daily bars through the provider chain into the price store.

    Raises `NothingFetched` (with the stored log) when every symbol that
    needed bars failed at every provider.
    """
    symbols = list(dict.fromkeys(symbols or settings.TICKERS))
    store = store or get_price_store()
    chain = chain or ProviderChain.from_settings(provider_names)
    plan = fetch_plan(
        symbols=symbols,
        store=store,
        start=start,
        end=end,
        backfill_days=backfill_days or settings.BACKFILL_DAYS,
        now=now or timezone.now(),
    )
    log = FetchLog.objects.create(
        kind=FetchLog.Kind.FETCH,
        started_at=timezone.now(),
        providers=[p.name for p in chain.providers],
        store=store.name,
        symbols=symbols,
        start_date=min(plan.ranges, default=None),
        end_date=plan.end,
    )
    instruments_ensure(symbols=symbols)

    frames: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    synthetic: dict[str, bool] = {}
    failures: list[ProviderFailure] = []
    tried: list[str] = []
    groups = sorted(plan.ranges.items())
    for done, (group_start, group_symbols) in enumerate(groups):
        progress("fetching", done, len(groups))
        result = chain.fetch(group_symbols, group_start, plan.end, plan.expected_last)
        frames.update(result.bars)
        sources.update(result.sources)
        synthetic.update(result.synthetic)
        failures += result.failures
        tried += [name for name in result.providers_tried if name not in tried]
    progress("fetching", len(groups), len(groups))

    needed = [s for group in plan.ranges.values() for s in group]
    failed = [s for s in needed if s not in frames]
    log.providers = tried or log.providers
    log.failed_symbols = failed
    log.errors = [f.as_dict() for f in failures]
    findings = [
        quality.Finding(f.symbol, QualityFinding.Kind.PROVIDER_FAILED, f"{f.provider}: {f.error}"[:500])
        for f in failures
        if f.symbol in failed
    ]
    _store_bars(
        log=log,
        store=store,
        frames=frames,
        sources=sources,
        synthetic=synthetic,
        extra_findings=findings,
        check_stale_at=plan.expected_last,
        progress=progress,
    )
    if needed and len(failed) == len(needed):
        raise NothingFetched(log)
    return log


# --- import -------------------------------------------------------------------------


def prices_import(
    *,
    path: Path,
    symbol: str | None = None,
    store: PriceStore | None = None,
    progress: Progress = _no_progress,
) -> FetchLog:
    """Imports CSV price files (the csv provider's shapes) into the price store.

    A file the reader rejects is listed in the log's errors; the other files
    are still imported. Raises `NothingFetched` when no file yielded a bar.
    """
    store = store or get_price_store()
    log = FetchLog.objects.create(
        kind=FetchLog.Kind.IMPORT, started_at=timezone.now(), providers=["csv"], store=store.name
    )
    read = CsvProvider(path=str(path), symbol=symbol).read_all()
    symbols = sorted(read.bars)
    log.symbols = symbols
    log.errors = [{"provider": "csv", "symbol": None, "error": problem.message} for problem in read.problems]
    if symbols:
        instruments_ensure(symbols=symbols)
        dates = [frame.index for frame in read.bars.values() if len(frame)]
        if dates:
            log.start_date = min(d.min() for d in dates).date()
            log.end_date = max(d.max() for d in dates).date()
    source = f"csv:{Path(path).name}"[:40]
    _store_bars(
        log=log,
        store=store,
        frames=read.bars,
        sources=dict.fromkeys(symbols, source),
        synthetic=dict.fromkeys(symbols, False),
        extra_findings=[],
        check_stale_at=None,
        progress=progress,
    )
    if log.rows_written == 0 and (read.problems or not symbols):
        raise NothingFetched(log)
    return log


# --- the shared write path ------------------------------------------------------


def _store_bars(
    *,
    log: FetchLog,
    store: PriceStore,
    frames: dict[str, pd.DataFrame],
    sources: dict[str, str],
    synthetic: dict[str, bool],
    extra_findings: list[quality.Finding],
    check_stale_at: date | None,
    progress: Progress,
) -> None:
    progress("validating", 0, 1)
    validated = quality.validate_long(_to_long(frames, sources, synthetic))
    clean = validated.bars
    findings = list(extra_findings) + list(validated.findings)
    log.rows_rejected = validated.rejected
    progress("validating", 1, 1)

    findings += _continuity_findings(store, clean)

    progress("writing", 0, 1)
    with transaction.atomic():
        log.rows_written = store.write_bars(clean)
        if check_stale_at is not None:
            stale = quality.find_stale(store.last_dates(log.symbols), check_stale_at)
            findings += stale
            log.stale_symbols = [f.symbol for f in stale]
        log.gaps_found = quality.count_gaps(findings)
        stored_symbols = clean["symbol"].unique().tolist()
        log.symbol_sources = {s: sources[s] for s in stored_symbols}
        log.finished_at = timezone.now()
        attempted = len(log.failed_symbols) + len(stored_symbols)
        if log.failed_symbols and len(log.failed_symbols) == attempted:
            log.status = FetchLog.Status.FAILED
        elif log.failed_symbols or (log.errors and log.kind == FetchLog.Kind.IMPORT):
            log.status = FetchLog.Status.PARTIAL
        else:
            log.status = FetchLog.Status.SUCCESS
        log.save()
        QualityFinding.objects.bulk_create(
            [
                QualityFinding(fetch_log=log, symbol=f.symbol, date=f.date, kind=f.kind, detail=f.detail[:500])
                for f in findings
            ],
            batch_size=2000,
        )
    progress("writing", 1, 1)
    logger.info(
        "price bars stored",
        extra={
            "fetch_log": log.pk,
            "kind": log.kind,
            "symbols": len(log.symbols),
            "rows_written": log.rows_written,
            "rows_rejected": log.rows_rejected,
            "gaps": log.gaps_found,
            "stale": len(log.stale_symbols),
            "failed": len(log.failed_symbols),
        },
    )


def _continuity_findings(store: PriceStore, clean: pd.DataFrame) -> list[quality.Finding]:
    """Gaps and suspicious moves of the new bars (long, sorted), joined to the bars already stored."""
    if clean.empty:
        return []
    spans = clean.groupby("symbol", sort=True)["date"].agg(["min", "max", "size"])
    symbols = spans.index.tolist()
    # The stored bar just before the new ones, per symbol, to check the seam.
    previous_dates = {
        symbol: day
        for symbol, day in store.last_dates(symbols).items()
        if day is not None and day < spans.at[symbol, "min"].date()
    }
    findings = quality.find_suspicious_moves_long(
        clean, settings.SUSPICIOUS_MOVE_PCT, _closes_on(store, previous_dates)
    )

    first, last = spans["min"].min().date(), spans["max"].max().date()
    stored = store.stored_dates(symbols, first, last)
    window_first = min([first, *previous_dates.values()])
    sessions = calendar.sessions_index(window_first, last)
    # `clean` is sorted by symbol, so each symbol's dates are one slice.
    new_dates = dict(zip(symbols, np.split(clean["date"].to_numpy(), np.cumsum(spans["size"])[:-1]), strict=True))
    for symbol in symbols:
        window_start = spans.at[symbol, "min"].date()
        if symbol in previous_dates:
            # From the first session after the stored bar: a missing session at the seam is a gap too.
            after = sessions[sessions > pd.Timestamp(previous_dates[symbol])]
            window_start = after[0].date() if len(after) else window_start
        present = pd.DatetimeIndex(new_dates[symbol]).union(stored.get(symbol, pd.DatetimeIndex([])))
        findings += quality.find_gaps(symbol, present, window_start, spans.at[symbol, "max"].date(), sessions)
    return findings


def _closes_on(store: PriceStore, days: dict[str, date]) -> dict[str, float]:
    if not days:
        return {}
    wide = store.price_frame(list(days), min(days.values()), max(days.values()))
    closes = {}
    for symbol, day in days.items():
        stamp = pd.Timestamp(day)
        if stamp in wide.index and pd.notna(wide.at[stamp, symbol]):
            closes[symbol] = float(wide.at[stamp, symbol])
    return closes


def _to_long(frames: dict[str, pd.DataFrame], sources: dict[str, str], synthetic: dict[str, bool]) -> pd.DataFrame:
    """One long frame (symbol, date, bar columns, source, synthetic) from per-symbol bars frames."""
    symbols = list(frames)
    parts = [conform_bars(frames[s]) for s in symbols]
    lengths = [len(part) for part in parts]
    values = np.concatenate([part.to_numpy(dtype="float64") for part in parts]) if parts else np.empty((0, 6))
    long = pd.DataFrame(values, columns=list(BAR_COLUMNS))
    long.insert(0, "date", np.concatenate([p.index.to_numpy(dtype="datetime64[ns]") for p in parts]) if parts else [])
    long.insert(0, "symbol", np.repeat(np.array(symbols, dtype=object), lengths))
    long["source"] = np.repeat(np.array([sources[s] for s in symbols], dtype=object), lengths)
    long["synthetic"] = np.repeat(np.array([synthetic.get(s, False) for s in symbols], dtype=bool), lengths)
    return long


# --- export ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    symbols: int
    rows: int


def prices_export(
    *,
    output: Path,
    fmt: str,
    symbols: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    store: PriceStore | None = None,
) -> ExportSummary:
    """Writes stored bars (long format: one row per symbol and date) to a CSV or parquet file."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown export format {fmt!r}; expected csv or parquet")
    store = store or get_price_store()
    symbols = list(symbols or store.symbols())
    bars = store.read_bars(symbols, start, end)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    if fmt == "csv":
        bars.assign(date=bars["date"].dt.strftime("%Y-%m-%d")).to_csv(tmp, index=False, float_format="%.8f")
    else:
        bars.to_parquet(tmp, index=False)
    tmp.replace(output)
    return ExportSummary(path=output, symbols=bars["symbol"].nunique(), rows=len(bars))
