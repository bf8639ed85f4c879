"""export_prices: stored bars to a CSV or parquet file (one row per symbol and date)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from marketdata.management.commands._progress import parse_date
from marketdata.services import prices_export


class Command(BaseCommand):
    help = "Export stored daily bars (symbol,date,open,high,low,close,adj_close,volume,source,synthetic)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
        parser.add_argument("--output", help="File to write (default: STORAGE_PATH/exports/prices-DATE.FORMAT).")
        parser.add_argument("--tickers", help="Comma-separated symbols (default: every stored symbol).")
        parser.add_argument("--start", help="First date (YYYY-MM-DD).")
        parser.add_argument("--end", help="Last date (YYYY-MM-DD).")

    def handle(self, *args: object, **options: object) -> None:
        fmt = str(options["format"])
        output = Path(
            str(options["output"])
            if options["output"]
            else settings.STORAGE_PATH / "exports" / f"prices-{timezone.localdate():%Y%m%d}.{fmt}"
        )
        symbols = [s.strip().upper() for s in str(options["tickers"]).split(",")] if options["tickers"] else None
        start = parse_date(str(options["start"]), "--start") if options["start"] else None
        end = parse_date(str(options["end"]), "--end") if options["end"] else None
        summary = prices_export(output=output, fmt=fmt, symbols=symbols, start=start, end=end)
        if summary.rows == 0:
            raise CommandError("no stored bars match; nothing exported")
        self.stdout.write(f"exported {summary.rows} bars of {summary.symbols} symbols to {summary.path}")
