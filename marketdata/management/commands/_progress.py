"""Progress bars and summaries shared by the market-data commands."""

from __future__ import annotations

import sys
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string
from tqdm import tqdm

from marketdata.models import FetchLog


class ProgressBars:
    """One tqdm bar per stage label, on stderr; silent at verbosity 0."""

    def __init__(self, verbosity: int):
        self.enabled = verbosity > 0
        self.bars: dict[str, tqdm] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(label)
        if bar is None:
            bar = self.bars[label] = tqdm(total=total, desc=label, file=sys.stderr, leave=False, unit="step")
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option}={value!r} is invalid: expected a date as YYYY-MM-DD") from None


def print_summary(command: BaseCommand, log: FetchLog) -> None:
    suspicious = log.findings.filter(kind="suspicious_move").count()
    shown = ", ".join(log.symbols[:12]) + (" ..." if len(log.symbols) > 12 else "")
    lines = [
        f"{log.get_kind_display()} #{log.pk} into the {log.store} store: {log.get_status_display()}",
        f"  symbols:        {len(log.symbols)} ({shown})",
        f"  date range:     {log.start_date or '-'} .. {log.end_date or '-'}",
        f"  rows written:   {log.rows_written}",
        f"  rows rejected:  {log.rows_rejected}",
        f"  gaps:           {log.gaps_found} missing sessions",
        f"  suspicious:     {suspicious} daily moves flagged",
        f"  stale:          {len(log.stale_symbols)} {', '.join(log.stale_symbols)}".rstrip(),
        f"  failures:       {len(log.failed_symbols)} {', '.join(log.failed_symbols)}".rstrip(),
    ]
    sources = sorted(set(log.symbol_sources.values()))
    if sources:
        lines.append(f"  sources:        {', '.join(_label(source) for source in sources)}")
    for error in log.errors[:20]:
        who = f"{error['provider']}" + (f" {error['symbol']}" if error.get("symbol") else "")
        lines.append(f"  error: {who}: {error['error']}")
    if len(log.errors) > 20:
        lines.append(f"  ... {len(log.errors) - 20} more errors in fetch log #{log.pk}")
    command.stdout.write("\n".join(lines))


def _label(source: str) -> str:
    """A source name, marked when its prices are invented."""
    path = settings.PRICE_PROVIDER_REGISTRY.get(source)
    if path and import_string(path).synthetic:
        return f"{source} (SYNTHETIC prices, not market data)"
    return source
